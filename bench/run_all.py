"""Run every benchmark; each rewrites its own section of docs/performance.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "cli_startup.py",
    "handler.py",
    "cold_start.py",
    "cold_init.py",
    "edge.py",
    "gate.py",
    "gate_errors.py",
    "load_scaling.py",
    "sequential_gates.py",
]

if __name__ == "__main__":
    failed = [s for s in SCRIPTS if subprocess.run([sys.executable, str(BENCH / s)]).returncode != 0]
    print("budgets missed in: " + ", ".join(failed) if failed else "every budget met")
    sys.exit(1 if failed else 0)
