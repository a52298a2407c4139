"""Runs Locust as a subprocess and returns the per-version statistics it wrote.

Never import locust here: its gevent monkey-patching breaks boto3 (ssl recursion) and
Pulumi's gRPC in the same process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import EdgeshipError
from orchestrator.settings import LoadSettings

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtests" / "locustfile.py"


class LoadTestError(EdgeshipError):
    """Locust did not run or wrote no statistics."""


@dataclass(frozen=True)
class LoadRun:
    """Where one load test's outputs went."""

    stats: dict[str, Any]
    html: Path
    stats_file: Path


def run(
    url: str,
    load: LoadSettings,
    out_dir: Path,
    name: str,
    *,
    path: str = "/infer",
    headers: dict[str, str] | None = None,
    model: Path | None = None,
    sigv4_region: str | None = None,
) -> LoadRun:
    """Headless Locust against `url` for load.duration_s; returns its per-version statistics."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_file, html = out_dir / f"{name}.stats.json", out_dir / f"{name}.html"
    stats_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "EDGESHIP_STATS_FILE": str(stats_file),
        "EDGESHIP_PATH": path,
        "EDGESHIP_HEADERS": json.dumps(headers or {}),
        **({"EDGESHIP_MODEL": str(model)} if model else {}),
        **({"EDGESHIP_SIGV4_REGION": sigv4_region} if sigv4_region else {}),
    }
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(load.users), "--spawn-rate", str(load.spawn_rate), "--run-time", f"{load.duration_s:g}s",
        "--html", str(html), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=load.duration_s + 60)
    except BaseException:
        # Interrupted or timed out: stop Locust so it writes its file, then re-raise.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if not stats_file.exists():
        raise LoadTestError(
            f"Locust wrote no statistics (exit {proc.returncode}): {output[-800:]}",
            fix="run the locustfile by hand: locust -f loadtests/locustfile.py --host URL",
        )
    return LoadRun(json.loads(stats_file.read_text()), html, stats_file)
