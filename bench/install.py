"""A fresh `make install` (uv, from uv.lock) against what it ran before the lock (pip
resolving pyproject.toml's ranges), each in its own fresh clone of this checkout, in the
same run.

As a new machine sees it: no pip or uv download cache (PIP_NO_CACHE_DIR, UV_NO_CACHE), so
every wheel comes from PyPI. Both then run the same toolchain scripts (Pulumi CLI and
actionlint; Go's build cache is this machine's for both), so the difference is the Python
install. Not in `make bench` (it downloads ~1 GB twice): run it by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

REPO = Path(__file__).resolve().parents[1]
# What `make install` ran before uv.lock: pip, resolving the ranges in pyproject.toml.
BEFORE = [
    "python3 -m venv .venv",
    ".venv/bin/pip install --quiet --upgrade pip",
    ".venv/bin/pip install --quiet -e '.[test,dev]'",
    "bash scripts/install-pulumi.sh",
    "bash scripts/install-tools.sh",
]
AFTER = ["make install"]


def _fresh_install(commands: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="edgeship-install-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1"}
        started = time.perf_counter()
        for command in commands:
            subprocess.run(command, shell=True, cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started


def main() -> int:
    before = _fresh_install(BEFORE)
    after = _fresh_install(AFTER)
    ratio = after / before
    write_section(
        "install",
        f"""## Fresh install (`bench/install.py`)

A fresh clone's `make install`, no download cache (as on a new machine), each in its own
clone in the same run; the toolchain scripts (Pulumi CLI, actionlint) are the same in both,
and both compile the installed modules to bytecode.

| install | wall time | ratio |
|---|---:|---:|
| pip resolving pyproject.toml's ranges (before uv.lock; baseline) | {before:.0f} s | 1.00x |
| `make install`: uv from uv.lock, hash-checked, bytecode compiled (as pip does) | {after:.0f} s | {ratio:.2f}x |""",
    )
    print(f"fresh install: pip {before:.0f} s, uv.lock {after:.0f} s ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
