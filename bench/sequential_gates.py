"""Sequential gates vs fixed-length gates: how much load-testing time does a healthy green save?

    python bench/sequential_gates.py [--rounds N]

One local project (emulator + edge + Locust); the same healthy-green promotion plan (canary
at CANARY_WEIGHT %, then 100 %: three gates, bake_s = 0) run alternately with
`[load] sequential = true` and `= false`, each promotion a new model version of the sample
model, ROUNDS times each. Reported: the median time spent load-testing per promotion (the
gates' Locust durations, from the report) and the median wall time of `promote`.
Target (issue 25): sequential load-testing time at most 1/3 of fixed.
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

DURATION_S = 20
CANARY_WEIGHT = 50
USERS = 8
# Thresholds a healthy green meets by far on a shared 2-core machine (as tests/conftest.py's).
SETTINGS = f"""
[environments.local.traffic]
schedule = "canary"
canary_weight = {CANARY_WEIGHT}
bake_s = 0
[environments.local.load]
users = {USERS}
spawn_rate = {USERS}
duration_s = {DURATION_S}
min_duration_s = 5
sequential = true
[environments.local.slo]
p95_ms = 1000
p99_ms = 2000
max_error_ratio = 0.05
min_samples = 30
relative_p95_factor = 0
"""


def promote(cli: list[str], config: Path, model: Path, sequential: bool) -> dict[str, Any]:
    """One promotion with sequential or fixed gates: its wall time and its gates' load time."""
    text = config.read_text()
    config.write_text(
        text.replace(
            f"sequential = {'false' if sequential else 'true'}", f"sequential = {str(sequential).lower()}"
        )
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
        "sequential": sequential,
        "wall_s": wall,
        "load_s": sum(float((g.get("green") or {}).get("duration_s", 0)) for g in gates),
        "gates": [(g.get("sequential") or {}).get("stop", "fixed") for g in gates],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds
    from orchestrator.demo import model_version

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, local_project(Path(tmp), "bench", SETTINGS) as cli:
        config = Path(tmp) / "edgeship.toml"
        subprocess.run([*cli, "up", "--yes", "--env", "local"], check=True, capture_output=True)
        version = 2
        for _ in range(rounds):
            for sequential in (True, False):  # alternating: drift on a shared machine hits both
                model = model_version(SAMPLE_MODEL, str(version), Path(tmp) / f"v{version}.tar.gz")
                runs.append(promote(cli, config, model, sequential))
                print(json.dumps(runs[-1]), flush=True)
                version += 1
    seq = [r for r in runs if r["sequential"]]
    fixed = [r for r in runs if not r["sequential"]]
    load_ratio = median([r["load_s"] for r in seq]) / median([r["load_s"] for r in fixed])
    wall_ratio = median([r["wall_s"] for r in seq]) / median([r["wall_s"] for r in fixed])
    met = load_ratio <= 1 / 3
    stops = "; ".join(sorted({s.split(" (")[0] for r in seq for s in r["gates"]}))  # without the counts
    body = f"""## Sequential gates (`bench/sequential_gates.py`)

The same healthy-green plan on the local environment (canary {CANARY_WEIGHT} %, then 100 %: three
gates; {USERS} users; duration_s = {DURATION_S}; bake_s = 0), alternating sequential and fixed-length
gates, {rounds} promotions each. Sequential gates (orchestrator/sequential.py) end the load once
every SLO is clearly met (an always-valid test; min_duration_s = 5); the verdict is still the
fixed judge's on what was measured.

| gates | median load-testing time | median promote wall time |
|---|---:|---:|
| fixed-length | {median([r["load_s"] for r in fixed]):.1f} s | {median([r["wall_s"] for r in fixed]):.1f} s |
| sequential | {median([r["load_s"] for r in seq]):.1f} s | {median([r["wall_s"] for r in seq]):.1f} s |
| ratio | {load_ratio:.2f} | {wall_ratio:.2f} |

Target: sequential load-testing time at most 1/3 of fixed: **{"met" if met else "MISSED"}**.
How the sequential gates ended: {stops}."""
    write_section("sequential_gates", body)
    print(body)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
