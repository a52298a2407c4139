"""Do real promotions decide right on a busy machine? (issue 25's acceptance)

    python bench/promotion_outcomes.py                 # 10 promotions per scenario
    python bench/promotion_outcomes.py --runs 3        # a shorter run (say so where you quote it)

On a throwaway local environment (emulator + edge, `orchestrator up`), with `--hogs` busy-loop
processes running (a Python `while True: pass` each; 2 by default, as many as this 2-core
machine has cores), it runs canary promotions through the product's CLI
(`orchestrator promote --json`), round-robin over three scenarios:

- identical: green is the same model under a new version label (`demo.model_version`); the
  right outcome is promoted.
- latency: the same model in a handler that sleeps a fixed delay on every request
  (`demo.faulty_function(delay_s=...)`). The delay is blue's p95 as the first canary gate of
  the run measured it through the edge under the hog (or `--delay-ms`), so green's p95 is
  twice blue's: a +100 % p95 regression. The right outcome is rolled back.
- errors: the same model in a handler that answers 500 to 3 % of requests, drawn from a seeded
  RNG per sandbox (`demo.faulty_function(error_ratio=0.03, seed=25)`). Right: rolled back.

The faulty builds are deployed only by `promote --function-dir` with their directory: nothing
of them is in the shipped handler. The environment's settings are the repository's
edgeship.toml (`[defaults]` merged with `[environments.local]`, so a new judge's keys come
with it) with the schedule pinned to canary (`canary_weight` as configured, then 100 %),
`bake_s = 0` and `load.duration_s = --duration-s` (default 10): three gates per promotion
(pre-traffic, the canary, 100 %).

A promotion counts as rolled back when the CLI exits with the gate-failed code and live is
back on blue, whichever gate failed (the pre-traffic gate fails a promotion before green
had live traffic: outcome `failed` in its report, still a rollback here). Anything else is
"other" with its message. Every run is appended to `--out` (JSON lines) as it ends, so a
long run interrupted keeps what it measured. docs/performance.md's section
"Promotions under a CPU hog" is rewritten unless `--no-write`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from _report import SAMPLE_MODEL, write_section  # noqa: E402  (path set up above)

from orchestrator.base.errors import ExitCode  # noqa: E402
from orchestrator.demo import faulty_function, model_version  # noqa: E402

SCENARIOS = ("identical", "latency", "errors")
EXPECTED = {"identical": "promoted", "latency": "rolled_back", "errors": "rolled_back"}
ERROR_RATIO, ERROR_SEED = 0.03, 25


@dataclass
class Run:
    """One promotion and what decided it."""

    scenario: str
    index: int
    green_label: str
    exit_code: int
    outcome: str  # promoted | rolled_back | other
    report_outcome: str  # the report's own word (promoted, rolled_back, failed, ...)
    decided_at: str  # the first gate not passed ("" when every gate passed)
    reasons: list[str]
    wall_s: float
    gates: list[dict[str, Any]] = field(default_factory=list)  # name, verdict, blue/green p50/p95, samples
    message: str = ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for what edgeship.toml holds
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} as TOML here")


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """A TOML document of nested tables of scalars and flat lists (edgeship.toml's shape)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ([f"[{prefix}]"] if prefix and lines else []) + lines
    for key, sub in table.items():
        if isinstance(sub, dict):
            out.append(_toml(sub, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out)


def bench_config(root: Path, duration_s: int) -> Path:
    """The repository's edgeship.toml, local environment only, canary, no bake, short gates."""
    source = tomllib.loads((REPO / "edgeship.toml").read_text())
    local = source["environments"]["local"]
    local.setdefault("traffic", {}).update({"schedule": "canary", "bake_s": 0})
    local.setdefault("load", {})["duration_s"] = duration_s
    doc = {
        "project": {"name": "outcomes", "model": str(SAMPLE_MODEL)},
        "defaults": source.get("defaults", {}),
        "environments": {"local": local},
    }
    path = root / "edgeship.toml"
    path.write_text(_toml(doc) + "\n")
    return path


class Cli:
    """The product's CLI on the bench's project (`python -m orchestrator` of this checkout)."""

    def __init__(self, config: Path) -> None:
        self.argv = [sys.executable, "-m", "orchestrator", "--config", str(config), "--env", "local"]

    def json(self, *args: str, timeout: float = 900) -> tuple[int, Any]:
        done = subprocess.run([*self.argv, *args, "--json"], capture_output=True, text=True, timeout=timeout)
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            return done.returncode, {"message": (done.stdout + done.stderr)[-2000:]}


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """n busy loops, one process each (the scheduler spreads them over the cores)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for hog in hogs:
        hog.kill()
        hog.wait(timeout=10)


def _gates(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for step in report.get("steps", []):
        blue, green = step.get("blue") or {}, step.get("green") or {}
        rows.append({
            "name": step["name"], "weight": step.get("weight"), "verdict": step["verdict"],
            "reasons": step.get("reasons", []),
            "blue_p50_ms": blue.get("p50_ms"), "blue_p95_ms": blue.get("p95_ms"), "blue_samples": blue.get("samples"),
            "green_p50_ms": green.get("p50_ms"), "green_p95_ms": green.get("p95_ms"),
            "green_samples": green.get("samples"), "green_errors": green.get("errors"),
        })  # fmt: skip
    return rows


def promote(cli: Cli, scenario: str, index: int, label: str, model: Path, function_dir: Path | None) -> Run:
    args = ["promote", "--model", str(model)] + (
        ["--function-dir", str(function_dir)] if function_dir else []
    )
    started = time.monotonic()
    code, result = cli.json(*args)
    wall = time.monotonic() - started
    _, report = cli.json("report", "latest", timeout=120)
    gates = _gates(report) if isinstance(report, dict) else []
    failed = [g for g in gates if g["verdict"] != "pass"]
    message = "" if code == 0 else str(result.get("message", ""))
    if code == 0 and result.get("outcome") == "promoted":
        outcome = "promoted"
    elif code == ExitCode.GATE_FAILED and "live is back on v" in message:
        outcome = "rolled_back"
    else:
        outcome = "other"
    return Run(
        scenario=scenario, index=index, green_label=label, exit_code=code, outcome=outcome,
        report_outcome=str(report.get("outcome", "?")) if isinstance(report, dict) else "?",
        decided_at=failed[0]["name"] if failed else "",
        reasons=[f"{g['name']}: {r}" for g in failed for r in g["reasons"]],
        wall_s=round(wall, 1), gates=gates, message=message,
    )  # fmt: skip


def canary_blue_p95(run: Run) -> float | None:
    """Blue's p95 at the first gate that measured blue (the canary), as the gate saw it."""
    for gate in run.gates:
        if gate["blue_p95_ms"] and (gate["blue_samples"] or 0) >= 30:
            return float(gate["blue_p95_ms"])
    return None


def table(runs: list[Run], scenarios: list[str]) -> str:
    lines = [
        "| scenario | promotions | promoted | rolled back (at pre-traffic) | other | right "
        "| canary p95 blue -> green, median |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in scenarios:
        mine = [r for r in runs if r.scenario == name]
        promoted = sum(r.outcome == "promoted" for r in mine)
        back = [r for r in mine if r.outcome == "rolled_back"]
        early = sum(r.decided_at == "pre-traffic" for r in back)
        other = sum(r.outcome == "other" for r in mine)
        right = sum(r.outcome == EXPECTED[name] for r in mine)
        canary = [g for r in mine for g in r.gates[1:2] if g["blue_p95_ms"] and g["green_p95_ms"]]
        shift = (
            f"{statistics.median(g['blue_p95_ms'] for g in canary):.1f} -> "
            f"{statistics.median(g['green_p95_ms'] for g in canary):.1f} ms ({len(canary)} gates)"
            if canary
            else "- (no canary gate ran)"
        )
        lines.append(
            f"| {name} | {len(mine)} | {promoted} | {len(back)} ({early}) | {other} "
            f"| {right}/{len(mine)} | {shift} |"
        )
    return "\n".join(lines)


def _fmt(ms: Any) -> str:
    return "-" if ms is None else f"{ms:.1f}"


def details(runs: list[Run]) -> str:
    lines = [
        "| # | scenario | outcome | gate that failed | figures of | blue p50/p95 ms | green p50/p95 ms | reasons |",
        "|---:|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(runs, 1):
        gate = next((g for g in r.gates if g["name"] == r.decided_at), None) or next(
            (g for g in r.gates if g["blue_p95_ms"]), r.gates[0] if r.gates else None
        )
        blue = f"{_fmt(gate['blue_p50_ms'])}/{_fmt(gate['blue_p95_ms'])}" if gate else "-"
        green = f"{_fmt(gate['green_p50_ms'])}/{_fmt(gate['green_p95_ms'])}" if gate else "-"
        where = f"{gate['name']}" if gate else "-"
        reasons = "; ".join(r.reasons) or (r.message[:160] if r.outcome == "other" else "all gates passed")
        reasons = reasons.replace("|", "\\|")
        lines.append(
            f"| {n} | {r.scenario} | {r.outcome} | {r.decided_at or 'none'} | {where} | {blue} | {green} | {reasons} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="promotions per scenario (default 10)")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--hogs", type=int, default=2, help="busy-loop processes during the promotions (default 2)"
    )
    parser.add_argument(
        "--duration-s", type=int, default=10, help="load.duration_s of each gate (default 10)"
    )
    parser.add_argument("--delay-ms", type=float, default=None, help="the latency scenario's added delay "
                        "(default: blue's p95 at the run's first canary gate, i.e. +100 %% p95)")  # fmt: skip
    parser.add_argument("--judge", default="", help="a label for the judge under test, shown in the docs")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON lines of every run (default: a temp file)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not rewrite docs/performance.md's section"
    )
    parser.add_argument(
        "--from-runs", type=Path, default=None,
        help="run nothing: the table and the docs section from an earlier run's --out (e.g. one "
        "interrupted; give --runs, --hogs, --duration-s and --judge as that run had them)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.from_runs:
        return report_only(args)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; use {', '.join(SCENARIOS)}")
    work = Path(tempfile.mkdtemp(prefix="edgeship-outcomes-"))
    out = args.out or work / "runs.jsonl"
    cli = Cli(bench_config(work, args.duration_s))
    print(f"project {work}; runs -> {out}", flush=True)
    code, up = cli.json("up", "--yes")
    if code != 0:
        print(f"up failed (exit {code}): {up}", file=sys.stderr)
        return 1
    errors_dir = faulty_function(work / "errors", error_ratio=ERROR_RATIO, seed=ERROR_SEED)
    delay_ms, slow_dir = args.delay_ms, None
    runs: list[Run] = []
    hogs = start_hogs(args.hogs)
    started = time.monotonic()
    label = 1
    try:
        # identical first in each round: its canary gate measures blue's p95 for the latency scenario
        order = sorted(scenarios, key=SCENARIOS.index)
        for index in range(args.runs):
            for scenario in order:
                label += 1
                model = model_version(SAMPLE_MODEL, str(label), work / f"model-v{label}.tar.gz")
                function_dir = None
                if scenario == "errors":
                    function_dir = errors_dir
                elif scenario == "latency":
                    if delay_ms is None:
                        measured = [p for p in (canary_blue_p95(r) for r in runs) if p]
                        delay_ms = round(statistics.median(measured), 1) if measured else 10.0
                        print(f"latency scenario: +{delay_ms} ms per request "
                              f"({'blue p95 measured' if measured else 'no blue p95 measured yet: 10 ms'})",
                              flush=True)  # fmt: skip
                    if slow_dir is None:
                        slow_dir = faulty_function(work / "slow", delay_s=delay_ms / 1000)
                    function_dir = slow_dir
                run = promote(cli, scenario, index, str(label), model, function_dir)
                runs.append(run)
                with out.open("a") as fh:
                    fh.write(json.dumps({**asdict(run), "delay_ms": delay_ms}) + "\n")
                print(f"[{len(runs)}] {scenario:<9} {run.outcome:<11} {run.wall_s:6.1f}s "
                      f"{run.decided_at or '-'}: {'; '.join(run.reasons)[:200]}", flush=True)  # fmt: skip
    finally:
        stop_hogs(hogs)
        cli.json("destroy", "--yes", timeout=300)
    elapsed = time.monotonic() - started
    summary = table(runs, order)
    print(summary)
    if not args.no_write:
        write_section("promotion_outcomes", section(runs, summary, args, delay_ms, elapsed))
    wrong = sum(r.outcome != EXPECTED[r.scenario] for r in runs)
    return 0 if wrong == 0 else 1


def report_only(args: argparse.Namespace) -> int:
    """The table and the docs section from the runs an earlier invocation recorded."""
    rows = [json.loads(line) for line in args.from_runs.read_text().splitlines() if line.strip()]
    delays = [r.pop("delay_ms", None) for r in rows]
    runs = [Run(**r) for r in rows]
    order = [s for s in SCENARIOS if any(r.scenario == s for r in runs)]
    summary = table(runs, order)
    print(summary)
    delay_ms = next((d for d, r in zip(delays, runs, strict=True) if r.scenario == "latency"), None)
    elapsed = sum(r.wall_s for r in runs)
    if not args.no_write:
        write_section("promotion_outcomes", section(runs, summary, args, delay_ms, elapsed))
    return 0 if all(r.outcome == EXPECTED[r.scenario] for r in runs) else 1


def section(
    runs: list[Run], summary: str, args: argparse.Namespace, delay_ms: float | None, elapsed: float
) -> str:
    judge = f" Judge: {args.judge}." if args.judge else ""
    return f"""## Promotions under a CPU hog (`bench/promotion_outcomes.py`)

Canary promotions on the local environment through `orchestrator promote`, with {args.hogs}
busy-loop processes (`while True: pass`) running on this 2-core machine. Settings: the
repository's edgeship.toml (local environment), schedule canary (green at the configured
canary weight, then 100 %), `bake_s = 0`, `load.duration_s = {args.duration_s}`: three gates
per promotion (pre-traffic, canary, 100 %). {args.runs} promotion(s) per scenario, round-robin.{judge}

- identical: the same model under a new version label; right outcome promoted.
- latency: the same model, its handler sleeping {delay_ms} ms per request (blue's p95 at the
  run's first canary gate{", given" if args.delay_ms is not None else ""}; shifted by it alone, green's p95 would be twice
  blue's); right outcome rolled back.
- errors: the same model, its handler answering 500 to {ERROR_RATIO:.0%} of requests (seeded
  RNG per sandbox, the same seed in every promotion: the share varies only with how the
  requests fall on the sandboxes); right outcome rolled back.

{summary}

The latency scenario's delay holds a sandbox as long: at the canary, green's requests queue
for its sandboxes (the edge's default 2 per version) on a starved CPU, so the gates measure more
than the delay itself (the medians above): a slower model also serves fewer requests at once.

Every promotion (about {elapsed / 60:.0f} min of promotions; the p50/p95 of the gate that failed, else of
the canary):

{details(runs)}

{verdict(runs)}"""


def verdict(runs: list[Run]) -> str:
    """The acceptance line, from the runs themselves (issue 25: every promotion decided right)."""
    counts = {
        name: (
            sum(r.outcome == EXPECTED[name] for r in runs if r.scenario == name),
            sum(r.scenario == name for r in runs),
        )
        for name in EXPECTED
    }
    said = ", ".join(f"{name} {right}/{total} {EXPECTED[name]}" for name, (right, total) in counts.items())
    met = all(right == total for right, total in counts.values())
    return f"Acceptance (issue 25, every promotion right): {said}: {'met' if met else 'NOT met'}."


if __name__ == "__main__":
    sys.exit(main())
