"""Gate load beyond one core: one Locust process vs a master and a worker per core.

    python bench/load_scaling.py      # needs Go (bench/fastserver is built on the fly)

A gate runs Locust with the same code as a promotion (orchestrator/loadrun.py, the real
locustfile, the same per-version statistics) against a fast loopback service
(bench/fastserver: a fixed 100 ms service time, as a warm function, and its own record of
every request's latency; one Go thread, so it takes as little of the machine's cores as it
can). Two loads, the same for both contenders, interleaved, median of 3 runs each:

- capacity: enough users that the service could answer far more than either contender
  sends: the requests/s each generates;
- a load one process cannot send (about 1.3x its capacity): what each delivers, and the
  gate's p95 against the p95 the server measured for the same requests. A load generator
  short of CPU adds its own queueing to every latency it reports, and a gate then judges
  the generator instead of the service.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from _report import percentile, write_section  # noqa: E402  (path set up above)

from orchestrator import loadrun  # noqa: E402
from orchestrator.settings import LoadSettings, available_cores  # noqa: E402

SERVICE_MS = 100
# users: 8k, 16k and 6k requests/s on offer; the rps budget is judged at every capacity load
LOADS = {"capacity": 800, "capacity, more users": 1600, "beyond one process": 600}
CAPACITY = ("capacity", "capacity, more users")
DURATION_S = 10
ROUNDS = 3
BUDGET_RPS, BUDGET_P95 = 1.6, 0.10


def _server(work: Path) -> tuple[subprocess.Popen[str], str]:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("needs Go to build bench/fastserver")
    binary = work / "fastserver"
    subprocess.run([go, "build", "-o", str(binary), str(BENCH / "fastserver" / "main.go")], check=True)
    proc = subprocess.Popen(
        [str(binary), "-addr", "127.0.0.1:0", "-delay", f"{SERVICE_MS}ms"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "GOMAXPROCS": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, "http://" + proc.stdout.readline().strip()


def _server_stats(url: str, path: str) -> dict[str, float]:
    method = "POST" if path == "/_reset" else "GET"
    with urllib.request.urlopen(urllib.request.Request(url + path, method=method), timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else {}


def _gate(url: str, users: int, workers: int, out: Path, name: str) -> dict[str, float]:
    _server_stats(url, "/_reset")
    load = LoadSettings(users=users, spawn_rate=users, duration_s=DURATION_S, get_share=0, workers=workers)
    run = loadrun.run(url, load, out, name, late_ms=5000)
    latencies = run.stats["versions"]["1"]["latencies_ms"]
    server = _server_stats(url, "/_stats")
    return {
        "rps": len(latencies) / run.stats["duration_s"],
        "gate_p95_ms": percentile(latencies, 95),
        "server_p95_ms": server["p95_ms"],
        "answered": len(latencies),
        "server_count": server["count"],
    }


def main() -> int:
    cores = available_cores()
    work = Path(tempfile.mkdtemp(prefix="edgeship-scaling-"))
    server, url = _server(work)
    runs: dict[tuple[str, int], list[dict[str, float]]] = {
        (load, w): [] for load in LOADS for w in (1, cores)
    }
    try:
        for round_ in range(ROUNDS):  # interleaved: drift in machine load hits every contender alike
            for load, workers in runs:
                name = f"u{LOADS[load]}-w{workers}-r{round_}"
                runs[(load, workers)].append(_gate(url, LOADS[load], workers, work / "runs", name))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    def median(key: tuple[str, int], field: str) -> float:
        return statistics.median(r[field] for r in runs[key])

    def error(key: tuple[str, int]) -> float:
        return statistics.median(abs(r["gate_p95_ms"] / r["server_p95_ms"] - 1) for r in runs[key])

    ratios = {load: median((load, cores), "rps") / median((load, 1), "rps") for load in CAPACITY}
    ratio = min(ratios.values())
    beyond = ("beyond one process", cores)
    checks = {
        f"{cores} workers >= {BUDGET_RPS}x the requests/s of one process": ratio >= BUDGET_RPS,
        f"gate p95 within {BUDGET_P95:.0%} of the server's with {cores} workers": error(beyond) <= BUDGET_P95,
    }
    rows = "\n".join(
        f"| {load} ({LOADS[load]} users) | {'one process' if w == 1 else f'master + {w} workers (`auto`)'} | "
        f"{median((load, w), 'rps'):,.0f} | {median((load, w), 'gate_p95_ms'):.0f} ms | "
        f"{median((load, w), 'server_p95_ms'):.0f} ms | {error((load, w)):.0%} |"
        for load, w in runs
    )
    body = f"""## Gate load beyond one core (`bench/load_scaling.py`)

The gate's own code (orchestrator/loadrun.py and the locustfile) against bench/fastserver, a Go
loopback service (one thread) with a fixed {SERVICE_MS} ms service time that records each request's
latency. {DURATION_S} s per run, {cores} cores, interleaved, median of {ROUNDS} runs.

| load | load generator | requests/s | gate p95 | server p95 | gate p95 error |
|---|---|---:|---:|---:|---:|
{rows}

With the same users, `auto` workers generate **{ratios["capacity"]:.2f}x** the requests/s of one
process at {LOADS["capacity"]} users and {ratios["capacity, more users"]:.2f}x at {LOADS["capacity, more users"]} (one process running that many users also
spends more per request on its own scheduling); the budget is judged on the lower.
The gate's p95 is closer to the server's with workers ({error(beyond):.0%} off at
{LOADS["beyond one process"]} users, against {error(("beyond one process", 1)):.0%} for one process) but not within
{BUDGET_P95:.0%}: on this {cores}-core machine the service shares the cores with the load
generator, and once they are busy the scheduler's delays reach every latency the gate
measures. For load beyond one core with faithful percentiles, run the workers where the
service under test is not (remote workers: README, `[load] remote_workers`).

Budgets: {"; ".join(f"{name}: **{'met' if ok else 'MISSED'}**" for name, ok in checks.items())}."""
    write_section("load_scaling", body)
    print(body)
    print(json.dumps({f"{k[0]} w{k[1]}": v for k, v in runs.items()}), file=sys.stderr)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
