"""Runs Locust as a subprocess and returns the per-version statistics it wrote.

Never import locust here: its gevent monkey-patching breaks boto3 (ssl recursion) and
Pulumi's gRPC in the same process.

Locust never outlives the run that started it: it gets its own process group (a
terminal's Ctrl-C reaches only the driver, which decides), is killed with its group on
every exit path, receives SIGKILL from the kernel if the driver dies (the locustfile sets
PR_SET_PDEATHSIG at import, so even kill -9 of the driver leaves no load running), and is
killed when it overruns its --run-time by a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import EdgeshipError
from orchestrator.settings import LoadSettings

LOCUSTFILE = Path(__file__).resolve().parents[1] / "loadtests" / "locustfile.py"


class LoadTestError(EdgeshipError):
    """Locust did not run or wrote no statistics."""


class LoadRunStopped(Exception):
    """`should_stop` asked for the run to end early; Locust was stopped. Carries the reason."""


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
    credentials: dict[str, str] | None = None,
    should_stop: Callable[[], object] | None = None,
    example: list[float] | None = None,
    late_ms: float | None = None,
) -> LoadRun:
    """Headless Locust against `url` for load.duration_s; returns its per-version statistics.

    `should_stop` is polled while Locust runs; a truthy answer stops Locust and raises
    LoadRunStopped with that answer (an abort or a signal must not wait for the load).
    `credentials` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are what Locust signs with when
    `sigv4_region` is set; without them, the ambient AWS credentials.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_file, html = out_dir / f"{name}.stats.json", out_dir / f"{name}.html"
    stats_file.unlink(missing_ok=True)
    ambient = dict(os.environ)
    if credentials:
        # A session token or profile belongs to other credentials than the ones given.
        for key in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            ambient.pop(key, None)
    env = {
        **ambient,
        **(credentials or {}),
        "EDGESHIP_STATS_FILE": str(stats_file),
        "EDGESHIP_PATH": path,
        "EDGESHIP_HEADERS": json.dumps(headers or {}),
        **({"EDGESHIP_MODEL": str(model)} if model else {}),
        **({"EDGESHIP_SIGV4_REGION": sigv4_region} if sigv4_region else {}),
        **({"EDGESHIP_EXAMPLE": json.dumps(example)} if example else {}),
        **({"EDGESHIP_LATE_MS": f"{late_ms:g}"} if late_ms else {}),
        "EDGESHIP_GET_SHARE": f"{load.get_share:g}",
        # The locustfile asks the kernel to kill it when this process dies (PR_SET_PDEATHSIG).
        "EDGESHIP_PARENT_PID": str(os.getpid()),
    }
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(load.users), "--spawn-rate", str(load.spawn_rate), "--run-time", f"{load.duration_s:g}s",
        "--stop-timeout", f"{stop_grace_s(late_ms):g}",
        "--html", str(html), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    log = out_dir / f"{name}.locust.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )  # fmt: skip
        try:
            _wait(proc, load.duration_s + 60, should_stop)
        finally:
            _stop_group(proc)
    output = log.read_text(errors="replace")
    if not stats_file.exists():
        raise LoadTestError(
            f"Locust wrote no statistics (exit {proc.returncode}): {output[-800:]}",
            fix="run the locustfile by hand: locust -f loadtests/locustfile.py --host URL",
        )
    return LoadRun(json.loads(stats_file.read_text()), html, stats_file)


STOP_GRACE_MAX_S = 8.0  # below _stop_group's 10 s SIGTERM wait: Locust still writes its statistics


def stop_grace_s(late_ms: float | None) -> float:
    """How long Locust lets requests in flight at the end of the run finish (--stop-timeout).

    Locust's default cuts them off, and the ones cut off are the slowest of the run: dropping
    them flatters the gate's percentiles and, on a starved machine, can leave a gate with no
    answer at all. Waiting up to the p99 budget (`late_ms`) measures every request that
    could still pass; the ones still unanswered then are timeouts (the locustfile counts them).
    """
    return min(late_ms / 1000, STOP_GRACE_MAX_S) if late_ms else 0.0


def _wait(proc: subprocess.Popen[str], timeout_s: float, should_stop: Callable[[], object] | None) -> None:
    from orchestrator import faults

    deadline, fired = time.monotonic() + timeout_s, False
    while proc.poll() is None:
        if not fired:  # once Locust is up: a fault here lands in the middle of a gate
            fired = True
            faults.point("in-gate")
        reason = should_stop() if should_stop else None
        if reason:
            raise LoadRunStopped(reason)
        if time.monotonic() > deadline:
            raise LoadTestError(
                f"Locust overran its run time by {timeout_s:g}s and was killed",
                fix="check the edge answers at all (`orchestrator status`), or lower load.users",
            )
        time.sleep(0.1)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM Locust's group (it writes its statistics), SIGKILL it if that takes too long."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    _signal_group(proc.pid, signal.SIGKILL)  # anything left in the group
    proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
