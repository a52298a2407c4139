"""`orchestrator --help` wall time against `python -c pass`, interleaved runs.

Budget (issue 2): at most 3x. Heavy libraries (pulumi, boto3, locust) must stay lazy.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import median, write_section

RUNS = 30
BUDGET = 3.0


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    orchestrator = str(Path(sys.executable).parent / "orchestrator")
    baseline_argv = [sys.executable, "-c", "pass"]
    help_argv = [orchestrator, "--help"]
    _time(baseline_argv), _time(help_argv)  # warm the page cache
    base, cli = [], []
    for _ in range(RUNS):
        base.append(_time(baseline_argv))
        cli.append(_time(help_argv))
    ratio = median(cli) / median(base)
    verdict = "within" if ratio <= BUDGET else "OVER"
    write_section(
        "cli_startup",
        f"""## CLI start-up (`bench/cli_startup.py`)

| command | median of {RUNS} | ratio |
|---|---:|---:|
| `python -c pass` (baseline) | {median(base) * 1000:.1f} ms | 1.00x |
| `orchestrator --help` | {median(cli) * 1000:.1f} ms | {ratio:.2f}x |

Budget: at most {BUDGET:.0f}x the baseline: **{verdict} budget**.""",
    )
    print(f"orchestrator --help: {ratio:.2f}x python -c pass ({verdict} the {BUDGET}x budget)")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
