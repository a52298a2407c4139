"""Sequential gates vs fixed-length gates: how much load-testing time does a healthy green save?

    python bench/sequential_gates.py [--runs N] [--plans 10,25] [--smoke]

One local project (emulator + edge + Locust) with the product's default gate settings: the
defaults of `[load]` (users, duration_s, min_green_requests, max_duration_s, min_duration_s),
`[slo]` (the budgets, min_samples, the comparison with blue ON) and the sequential policy;
only the traffic is set: a canary at each plan's weight (10: the default plan, and 25), then
100 % (three gates), bake_s = 0 (no real users here; bakes stay as configured elsewhere, so
the saving below is on load-testing time only). For each run and each plan, one promotion
with `[load] sequential = true` and one with `= false`, alternating (drift on a shared
machine hits both), each a new model version of the sample model.

Reported per plan: the median time spent load-testing per promotion (the gates' Locust
durations, from report.json), the median wall time of `promote`, green's requests per gate,
how each sequential gate ended, and any gate judged short of min_green_requests.
Target (issue 25): sequential load-testing time at most 1/3 of fixed, for the default plan.

Takes about 5 minutes per run of both plans on a 2-core machine (a fixed-length promotion
about 2 minutes: three gates of at least duration_s = 30), so ~16 minutes with the default
--runs 3. `--smoke` checks the script works in under two minutes (`--runs 1 --plans 25
--smoke`): tiny gates, nothing written to docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from _report import SAMPLE_MODEL, local_project, median, write_section  # noqa: E402  (path set up above)

DEFAULT_PLANS = (10, 25)  # canary weights: the default plan's (traffic.canary_weight) and a 25 % one
SHORT = "requests the gate's error rates need"  # orchestrator/gates/sizing.py's shortfall caveat


def settings_toml(weight: int, sequential: bool, smoke: bool) -> str:
    """The local environment's tables: the product's defaults but for the traffic (and the
    sequential switch); `smoke`: gates of a few seconds, to check the script only."""
    load = ["[environments.local.load]", f"sequential = {str(sequential).lower()}"]
    if smoke:
        load += ["users = 4", "spawn_rate = 4", "duration_s = 2", "min_duration_s = 1",
                 "min_green_requests = 100", "max_duration_s = 10"]  # fmt: skip
    return "\n".join(
        [
            "[environments.local.traffic]",
            'schedule = "canary"',
            f"canary_weight = {weight}",
            "bake_s = 0",
            *load,
            "",
        ]
    )


def promote(
    cli: list[str], config: Path, model: Path, weight: int, sequential: bool, smoke: bool
) -> dict[str, Any]:
    """One promotion of a healthy green: its wall time, its gates' load time and how each ended."""
    text = config.read_text()
    config.write_text(
        text[: text.index("[environments.local.traffic]")] + settings_toml(weight, sequential, smoke)
    )
    started = time.monotonic()
    out = subprocess.run(
        [*cli, "promote", "--env", "local", "--model", str(model), "--json"], capture_output=True, text=True
    )
    wall = time.monotonic() - started
    report = json.loads(out.stdout)
    assert report["outcome"] == "promoted", report
    gates = report["steps"]
    return {
        "plan": weight,
        "sequential": sequential,
        "wall_s": round(wall, 1),
        "load_s": round(sum(float((g.get("green") or {}).get("duration_s", 0)) for g in gates), 1),
        "green": [(g.get("green") or {}).get("samples", 0) for g in gates],
        "gates": [(g.get("sequential") or {}).get("stop", "fixed") for g in gates],
        "short": [g["name"] for g in gates if any(SHORT in c for c in g.get("caveats", []))],
    }


def _section(runs: list[dict[str, Any]], plans: list[int], count: int) -> tuple[str, bool | None]:
    """docs/performance.md's section, and whether the default plan met the target (None: not measured)."""
    from orchestrator.config.settings import LoadSettings, SloSettings

    load, slo = LoadSettings(), SloSettings()
    rows, notes = [], []
    met: bool | None = None
    for weight in plans:
        seq = [r for r in runs if r["plan"] == weight and r["sequential"]]
        fixed = [r for r in runs if r["plan"] == weight and not r["sequential"]]
        ratio = median([r["load_s"] for r in seq]) / median([r["load_s"] for r in fixed])
        wall = median([r["wall_s"] for r in seq]) / median([r["wall_s"] for r in fixed])
        if weight == DEFAULT_PLANS[0]:
            met = ratio <= 1 / 3
        for mode, group in (("fixed-length", fixed), ("sequential", seq)):
            green = [min(r["green"]) for r in group]
            rows.append(
                f"| canary {weight} % | {mode} | {median([r['load_s'] for r in group]):.1f} s "
                f"| {median([r['wall_s'] for r in group]):.1f} s | {min(green)} |"
            )
        rows.append(f"| canary {weight} % | ratio | {ratio:.2f} | {wall:.2f} | |")
        stops = "; ".join(sorted({s.split(" (")[0] for r in seq for s in r["gates"]}))  # without counts
        short = sorted({f"{r['plan']} % {'sequential' if r['sequential'] else 'fixed'}: {g}"
                        for r in seq + fixed for g in r["short"]})  # fmt: skip
        notes.append(
            f"Canary {weight} %: the sequential gates ended: {stops}. "
            + (
                f"Judged short of min_green_requests: {', '.join(short)}."
                if short
                else "No gate was short of min_green_requests."
            )
        )
    body = f"""## Sequential gates (`bench/sequential_gates.py`)

A healthy green promoted on the local environment with the product's default gate settings
({load.users} users, duration_s = {load.duration_s:g}, min_green_requests = {load.min_green_requests},
max_duration_s = {load.max_duration_s:g}, min_duration_s = {load.min_duration_s:g}; p95 <= {slo.p95_ms:g} ms,
p99 <= {slo.p99_ms:g} ms, errors <= {slo.max_error_ratio:.0%}, min_samples = {slo.min_samples}, the comparison
with blue on), bake_s = 0, a canary then 100 % (three gates), alternating sequential and
fixed-length gates, {count} promotions of each per plan. Sequential gates (orchestrator/gates/sequential.py)
end the load once every SLO is clearly met with min_green_requests answered and green vs blue is
clear, or once one is clearly broken; the verdict is still the fixed judge's on what was measured.
Load-testing time: the gates' Locust durations; green's requests: the fewest in any gate.

| plan | gates | median load-testing time | median promote wall time | green's requests (fewest) |
|---|---|---:|---:|---:|
{chr(10).join(rows)}

Target: sequential load-testing time at most 1/3 of fixed for the default plan (canary
{DEFAULT_PLANS[0]} %): **{"not measured" if met is None else "met" if met else "MISSED"}**.
{chr(10).join(notes)}"""
    return body, met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="promotions per mode and plan (default 3)")
    parser.add_argument(
        "--plans",
        default=",".join(str(w) for w in DEFAULT_PLANS),
        help="canary weights to measure, comma-separated (default 10,25; 10 is the default plan's)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="one run of tiny gates to check the script; writes nothing"
    )
    args = parser.parse_args()
    plans = [int(w) for w in args.plans.split(",") if w.strip()]
    from orchestrator.demo import model_version

    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_project(Path(tmp), "bench", settings_toml(plans[0], True, args.smoke)) as cli,
    ):
        config = Path(tmp) / "edgeship.toml"
        subprocess.run([*cli, "up", "--yes", "--env", "local"], check=True, capture_output=True)
        version = 2
        for _ in range(args.runs):
            for weight in plans:
                for sequential in (True, False):  # alternating: drift on a shared machine hits both
                    model = model_version(SAMPLE_MODEL, str(version), Path(tmp) / f"v{version}.tar.gz")
                    runs.append(promote(cli, config, model, weight, sequential, args.smoke))
                    print(json.dumps(runs[-1]), flush=True)
                    version += 1
    body, met = _section(runs, plans, args.runs)
    if args.smoke:  # its gates are not the defaults the section describes
        print("smoke run (tiny gates, not the product's defaults); docs/performance.md left as it was")
    else:
        write_section("sequential_gates", body)
    print(body)
    return 0 if met is not False or args.smoke else 1


if __name__ == "__main__":
    raise SystemExit(main())
