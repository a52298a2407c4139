"""Each benchmark owns one section of docs/performance.md, replaced in place."""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
HEADER = """# Performance

Every figure is a ratio against a baseline measured in the same run on the same machine,
by the script named in its section. Re-run with `make bench` (or one script directly).
"""


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section `name` of docs/performance.md."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = f"_{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, {platform.machine()}_"
    block = f"{begin}\n{body.strip()}\n\n{stamp}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def percentile(samples: list[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(samples: list[float]) -> float:
    """Median of the samples."""
    return statistics.median(samples)


SAMPLE_MODEL = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"


@contextmanager
def local_project(root: Path, name: str, extra_toml: str = "") -> Iterator[list[str]]:
    """A throwaway project with a local environment; yields the CLI argv, destroys it after."""
    (root / "edgeship.toml").write_text(
        f'[project]\nname = "{name}"\nmodel = "{SAMPLE_MODEL}"\n[environments.local]\n'
        f'region = "us-east-1"\naccount_id = "123456789012"\n{extra_toml}'
    )
    cli = [sys.executable, "-m", "orchestrator", "--config", str(root / "edgeship.toml")]
    try:
        yield cli
    finally:
        subprocess.run([*cli, "destroy", "--env", "local", "--yes"], capture_output=True)
