"""Gate load beyond one core: one Locust process vs a master and a worker per core.

    python bench/load_scaling.py      # needs Go (bench/fastserver is built on the fly)

A gate runs Locust with the same code as a promotion (orchestrator/gates/loadrun.py, the real
locustfile, the same per-version statistics) against a fast loopback service
(bench/fastserver: a fixed 100 ms service time, as a warm function, and its own record of
every request's latency; one Go thread, so it takes as little of the machine's cores as it
can). Every contender runs the same sweep of users, interleaved, median of 3 runs per point:
one process and `auto` workers (a master and a worker per core), as a gate runs them, and
one process with Python's default garbage collector (the locustfile without _quiet_gc: a
wrapper undoes it), the baseline for what keeping the collector quiet buys.

A gate's load is worth what it measures. A load generator short of CPU adds its own
queueing to every latency it reports, and a gate then judges the generator instead of the
service. So each contender gets two figures:

- faithful load: the requests/s at the heaviest sweep point before its p95 first strays
  more than 10% from the p95 the server measured for the same requests (the load a gate
  can send and still judge the service);
- peak: the most requests/s it sent at any point, however wrong its percentiles were.
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
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from _report import percentile, write_section  # noqa: E402  (path set up above)

from orchestrator.config.settings import LoadSettings, available_cores  # noqa: E402
from orchestrator.gates import loadrun  # noqa: E402

SERVICE_MS = 100
# users; each offers up to 1000/SERVICE_MS requests/s, so 1600 users offer far more than
# two cores can send: the top of the sweep is every contender's saturation.
SWEEP = (200, 300, 400, 500, 600, 700, 800, 1200, 1600)
DURATION_S = 10
ROUNDS = 3
BUDGET_RPS, BUDGET_P95 = 1.6, 0.10


@dataclass(frozen=True)
class Point:
    """One sweep point of one contender: medians over the rounds."""

    users: int
    rps: float
    gate_p95_ms: float
    server_p95_ms: float
    error: float  # median over rounds of |gate p95 / server p95 - 1|
    lag_p95_ms: float  # the generator's own delay, as its lag probe saw it (what the gate reads)


def faithful(points: list[Point], budget: float) -> Point | None:
    """The heaviest point before the gate's p95 first strays past `budget` (None: never true)."""
    best = None
    for point in sorted(points, key=lambda p: p.users):
        if point.error > budget:
            break
        best = point
    return best


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


@dataclass(frozen=True)
class Contender:
    label: str
    workers: int
    locustfile: Path


# The gate's locustfile as it was before it kept the collector quiet: Locust loads this file,
# which takes the real one's user and listeners and turns _quiet_gc into a no-op.
DEFAULT_GC = f"""import sys
sys.path.insert(0, {str(loadrun.LOCUSTFILE.parent)!r})
import locustfile
from locustfile import *  # noqa: F403  (InferenceUser; the listeners are registered at import)
locustfile._quiet_gc = lambda: None
"""


def _gate(url: str, users: int, contender: Contender, out: Path, name: str) -> dict[str, float]:
    _server_stats(url, "/_reset")
    load = LoadSettings(
        users=users, spawn_rate=users, duration_s=DURATION_S, get_share=0, workers=contender.workers
    )
    real, loadrun.LOCUSTFILE = loadrun.LOCUSTFILE, contender.locustfile
    try:
        run = loadrun.run(url, load, out, name, late_ms=5000)
    finally:
        loadrun.LOCUSTFILE = real
    latencies = run.stats["versions"]["1"]["latencies_ms"]
    server = _server_stats(url, "/_stats")
    return {
        "rps": len(latencies) / run.stats["duration_s"],
        "gate_p95_ms": percentile(latencies, 95),
        "server_p95_ms": server["p95_ms"],
        "lag_p95_ms": percentile(run.stats["generator_lag_ms"], 95),
        "answered": len(latencies),
        "server_count": server["count"],
    }


def main() -> int:
    cores = available_cores()
    work = Path(tempfile.mkdtemp(prefix="edgeship-scaling-"))
    (work / "default_gc_locustfile.py").write_text(DEFAULT_GC)
    baseline = Contender("one process, default collector", 1, work / "default_gc_locustfile.py")
    one = Contender("one process", 1, loadrun.LOCUSTFILE)
    auto = Contender(f"`auto` ({cores} workers)", cores, loadrun.LOCUSTFILE)
    contenders = (baseline, one, auto)
    server, url = _server(work)
    runs: dict[tuple[int, Contender], list[dict[str, float]]] = {
        (u, c): [] for u in SWEEP for c in contenders
    }
    try:
        for round_ in range(ROUNDS):  # interleaved: drift in machine load hits every contender alike
            for users, contender in runs:
                run = _gate(url, users, contender, work / "runs", f"u{users}-w{contender.workers}-r{round_}")
                runs[(users, contender)].append(run)
                print(f"round {round_ + 1}/{ROUNDS} {users} users, {contender.label}: {run}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    def point(users: int, contender: Contender) -> Point:
        got = runs[(users, contender)]
        return Point(
            users=users,
            rps=statistics.median(r["rps"] for r in got),
            gate_p95_ms=statistics.median(r["gate_p95_ms"] for r in got),
            server_p95_ms=statistics.median(r["server_p95_ms"] for r in got),
            error=statistics.median(abs(r["gate_p95_ms"] / r["server_p95_ms"] - 1) for r in got),
            lag_p95_ms=statistics.median(r["lag_p95_ms"] for r in got),
        )

    sweeps = {c: [point(u, c) for u in SWEEP] for c in contenders}
    true_load = {c: faithful(sweeps[c], BUDGET_P95) for c in contenders}
    peak = {c: max(sweeps[c], key=lambda p: p.rps) for c in contenders}

    def ratio(a: Contender, b: Contender) -> float:
        x, y = true_load[a], true_load[b]
        return x.rps / y.rps if x and y else 0.0

    rows = "\n".join(
        f"| {users} | "
        + " | ".join(
            f"{p.rps:,.0f} | {p.gate_p95_ms:.0f} ms ({p.error:.0%}) | {p.lag_p95_ms:.1f} ms" for p in points
        )
        + " |"
        for users, *points in zip(SWEEP, *(sweeps[c] for c in contenders), strict=True)
    )

    def said(c: Contender) -> str:
        got = true_load[c]
        if got is None:
            return f"{c.label}: none (its p95 is off by more than {BUDGET_P95:.0%} at every point)"
        return f"{c.label}: **{got.rps:,.0f}** requests/s ({got.users} users, p95 {got.error:.0%} off)"

    scaling = ratio(auto, one)
    check = f"`auto` sends >= {BUDGET_RPS}x the faithful load of one process"
    met = scaling >= BUDGET_RPS
    header = " | ".join(f"{c.label}: requests/s | gate p95 (off) | lag p95" for c in contenders)
    body = f"""## Gate load beyond one core (`bench/load_scaling.py`)

The gate's own code (orchestrator/gates/loadrun.py and the locustfile) against bench/fastserver, a Go
loopback service (one thread) with a fixed {SERVICE_MS} ms service time that records each request's
latency. The same sweep of users for every contender, {DURATION_S} s per run, {cores} cores shared by
the service and the load generator, interleaved, median of {ROUNDS} runs per point. "(off)" is how
far the gate's p95 is from the p95 the server measured for the same requests (about {SERVICE_MS} ms);
"lag p95" is the generator's own delay as its lag probe saw it, which a gate names as a caveat
past 10% of the p95 budget (gate.generator_caveats). It rises with the error but stays well
below it: the probe is one timer among the users' work, while a request also waits in the
queues the generator's bursts build on the service's side. A caveat is a sure sign; its
absence is not proof of a faithful p95.

| users | {header} |
|---:|{"---:|---:|---:|" * len(contenders)}
{rows}

Faithful load, the requests/s at the heaviest point before the gate's p95 first strays more than
{BUDGET_P95:.0%} from the server's (what a gate can send and still judge the service):
- {said(baseline)}
- {said(one)}
- {said(auto)}

Keeping the collector quiet (the locustfile's `_quiet_gc`) lets one process send
**{ratio(one, baseline):.2f}x** the faithful load it sent with Python's default collector, whose
pauses stall every request in flight. `auto` sends **{scaling:.2f}x** the faithful load of one
process here. Pushed to its peak, however wrong its percentiles by then, `auto` sends
{peak[auto].rps / peak[one].rps:.2f}x ({peak[auto].rps:,.0f} against {peak[one].rps:,.0f} requests/s, the gate's p95
{peak[auto].error:.0%} and {peak[one].error:.0%} off). On {cores} cores the workers share the cores with each
other, the master and the service, and that contention reaches the percentiles before one
process runs out of core: more workers buy faithful load only on cores the service under test
does not use (a bigger runner, or remote workers: README, `[load] remote_workers`).

Budget: {check}: **{"met" if met else "MISSED"}**."""
    write_section("load_scaling", body)
    print(body)
    print(json.dumps({f"u{k[0]} {k[1].label}": v for k, v in runs.items()}), file=sys.stderr)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
