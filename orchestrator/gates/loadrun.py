"""Runs Locust as a subprocess and returns the per-version statistics it wrote.

Never import locust here: its gevent monkey-patching breaks boto3 (ssl recursion) and
Pulumi's gRPC in the same process.

Locust never outlives the run that started it: it gets its own process group (a
terminal's Ctrl-C reaches only the driver, which decides), is killed with its group on
every exit path, receives SIGKILL from the kernel if the driver dies (the locustfile sets
PR_SET_PDEATHSIG at import, so even kill -9 of the driver leaves no load running), and is
killed when it overruns its --run-time by a minute.

One Locust process generates at most one core's worth of load. With `load.workers` > 1
it runs as Locust's own distributed mode: a master (no users; it starts the test once
every worker has connected, then merges the workers' per-version statistics into the
same file) and that many worker processes, each in its own group like the master. A
worker that dies fails the run at once, with its exit status and its log: its requests
would otherwise be missing from the verdict.

A gate looks while the load runs: the locustfile writes the statistics so far to
`<stats>.live.json` every second, and `on_snapshot` reads each new one on the same polling
as `should_stop`; when it says so, Locust is stopped as at its --run-time end (SIGUSR1,
which the locustfile takes as its --run-time end: the users stop with their grace, then the
final statistics are written, which the gate then judges). That is how a sequential gate
ends early, and how a gate sized by green's requests (orchestrator/gates/sizing.py) ends once it
has them: its --run-time (`run_time_s`) is then the most it may run, not its length.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.base import paths
from orchestrator.base.errors import EdgeshipError
from orchestrator.config.settings import LoadSettings

# Passed to Locust as a path (it imports the file as `locustfile`, never through a package);
# orchestrator/loadtests is a symlink to loadtests/ in a checkout, resolved to it.
LOCUSTFILE = paths.LOCUSTFILE


class LoadTestError(EdgeshipError):
    """Locust did not run or wrote no statistics."""


class WorkerLostError(LoadTestError):
    """A Locust worker died (or stopped reporting) while the load ran."""


class LoadRunStopped(Exception):
    """`should_stop` asked for the run to end early; Locust was stopped. Carries the reason."""


@dataclass(frozen=True)
class LoadRun:
    """Where one load test's outputs went."""

    stats: dict[str, Any]
    html: Path | None  # Locust's own page, when asked for (reports.locust_html)
    stats_file: Path
    stopped_early: bool = False  # `on_snapshot` ended the load (before its --run-time)


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
    html: bool = False,
    on_snapshot: Callable[[dict[str, Any]], bool] | None = None,
    run_time_s: float | None = None,
) -> LoadRun:
    """Headless Locust against `url` for `run_time_s` (default load.duration_s) unless
    `on_snapshot` ends it sooner; returns its per-version statistics.

    `should_stop` is polled while Locust runs; a truthy answer stops Locust and raises
    LoadRunStopped with that answer (an abort or a signal must not wait for the load).
    `credentials` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are what Locust signs with when
    `sigv4_region` is set; without them, the ambient AWS credentials. `html` keeps Locust's own
    HTML page (about 1 MB a run) beside the statistics. `on_snapshot` gets each new live
    snapshot; True stops the load early (cleanly: the final statistics are still written).
    """
    run_time = load.duration_s if run_time_s is None else run_time_s
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_file, page = out_dir / f"{name}.stats.json", out_dir / f"{name}.html"
    stats_file.unlink(missing_ok=True)
    live = live_file(stats_file)
    live.unlink(missing_ok=True)
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
        "--users", str(load.users), "--spawn-rate", str(load.spawn_rate), "--run-time", f"{run_time:g}s",
        "--stop-timeout", f"{stop_grace_s(late_ms):g}",
        "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        *(["--html", str(page)] if html else []),
    ]  # fmt: skip
    distributed = load.workers > 1 or load.remote_workers > 0
    port = (load.master_port or _free_port(load.master_bind)) if distributed else 0
    if port:
        expected = load.workers + load.remote_workers
        argv += [
            "--master", "--master-bind-host", load.master_bind, "--master-bind-port", str(port),
            "--expect-workers", str(expected), "--expect-workers-max-wait", str(WORKERS_MAX_WAIT_S),
        ]  # fmt: skip
    log = out_dir / f"{name}.locust.log"
    workers: list[tuple[subprocess.Popen[str], Path]] = []
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            for i in range(load.workers if port else 0):
                worker_log = out_dir / f"{name}.worker{i + 1}.log"
                workers.append(_start_worker(_reach(load.master_bind), port, env, worker_log))
            startup_s = WORKERS_MAX_WAIT_S if port else 0
            timeout_s = run_time + stop_grace_s(late_ms) + startup_s + 60
            stopped_early = _wait(proc, workers, timeout_s, should_stop, _looker(live, on_snapshot))
        finally:
            _stop_group(proc)  # a master tells its workers to quit and waits for their last report
            for worker, _ in workers:
                _stop_group(worker)
    output = log.read_text(errors="replace")
    if not stats_file.exists() and port and "Address already in use" in output:
        raise LoadTestError(
            f"the Locust master could not listen on {load.master_bind}:{port}: another process holds "
            f"the port (Locust's log: {log})",
            fix=f"free load.master_port = {port}, or leave master_port unset for a free port "
            "(only remote workers need a fixed one)",
        )
    if not stats_file.exists():
        raise LoadTestError(
            f"Locust wrote no statistics (exit {proc.returncode}): {output[-800:]}",
            fix="run the locustfile by hand: locust -f loadtests/locustfile.py --host URL",
        )
    stats = json.loads(stats_file.read_text())
    if stats.get("workers_lost"):
        raise WorkerLostError(
            f"{stats['workers_lost']} of {stats['workers']} Locust workers stopped reporting before the "
            "load test ended: their requests are missing from the statistics",
            fix="see the worker logs in the report folder; lower load.workers if the machine is short of memory",
        )
    live.unlink(missing_ok=True)  # the final file has all of it
    return LoadRun(stats, page if html else None, stats_file, stopped_early)


def live_file(stats_file: Path) -> Path:
    """Where the locustfile writes its statistics so far while the load runs."""
    return stats_file.with_name(stats_file.name + ".live.json")


def _looker(live: Path, on_snapshot: Callable[[dict[str, Any]], bool] | None) -> Callable[[], bool] | None:
    """Polled with `should_stop`: hands each new live snapshot to `on_snapshot`."""
    if on_snapshot is None:
        return None
    seen: list[int] = [0]

    def look() -> bool:
        try:
            stamp = live.stat().st_mtime_ns
            if stamp == seen[0]:
                return False
            text = live.read_text()
        except FileNotFoundError:
            return False  # not written yet
        seen[0] = stamp
        try:
            snapshot = json.loads(text)
        except json.JSONDecodeError:
            return False  # replaced atomically, so never half-written; a stray file is not evidence
        return bool(on_snapshot(snapshot))

    return look


WORKERS_MAX_WAIT_S = 60  # for every worker to connect before the master gives up
STOP_GRACE_MAX_S = 8  # below _stop_group's 10 s SIGTERM wait: Locust still writes its statistics


def stop_grace_s(late_ms: float | None) -> float:
    """How long Locust lets requests in flight at the end of the run finish (--stop-timeout).

    Locust's default cuts them off, and the ones cut off are the slowest of the run: dropping
    them flatters the gate's percentiles and, on a starved machine, can leave a gate with no
    answer at all. Waiting up to the p99 budget (`late_ms`) measures every request that
    could still pass; the ones still unanswered then are timeouts (the locustfile counts them).
    """
    # Locust takes whole seconds: round up, never cutting the budget short.
    return float(min(math.ceil(late_ms / 1000), STOP_GRACE_MAX_S)) if late_ms else 0.0


def _start_worker(host: str, port: int, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], Path]:
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
        "--master-host", host, "--master-port", str(port),
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    # The master writes the statistics; a worker's environment names the file it serves.
    worker_env = {k: v for k, v in env.items() if k != "EDGESHIP_STATS_FILE"}
    worker_env["EDGESHIP_WORKER_OF"] = env["EDGESHIP_STATS_FILE"]
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            argv, env=worker_env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True,
        )  # fmt: skip
    return proc, log


def _free_port(host: str) -> int:
    """A port for the master (the kernel's pick; the master binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _reach(bind: str) -> str:
    """Where this machine's workers find a master bound to `bind`."""
    return "127.0.0.1" if bind in ("", "*", "0.0.0.0") else bind


def _wait(
    proc: subprocess.Popen[str],
    workers: list[tuple[subprocess.Popen[str], Path]],
    timeout_s: float,
    should_stop: Callable[[], object] | None,
    look: Callable[[], bool] | None = None,
) -> bool:
    """Until Locust ends; True when `look` asked it to end early (it then ends on its own)."""
    from orchestrator.base import faults

    deadline, fired, early = time.monotonic() + timeout_s, False, False
    while proc.poll() is None:
        if not fired:  # once Locust is up: a fault here lands in the middle of a gate
            fired = True
            faults.point("in-gate")
        for i, (worker, log) in enumerate(workers):
            # A worker quits with 0 when the master ends the test; anything else is a death.
            if worker.poll() not in (None, 0):
                raise WorkerLostError(
                    f"Locust worker {i + 1} of {len(workers)} died ({_status(worker.returncode)}) "
                    f"during the load test: {log.read_text(errors='replace').strip()[-400:] or 'no output'}",
                    fix=f"see {log}; lower load.workers if the machine is short of memory",
                )
        reason = should_stop() if should_stop else None
        if reason:
            raise LoadRunStopped(reason)
        if not early and look is not None and look():
            early = True
            _signal_one(proc.pid, signal.SIGUSR1)  # the master (or Locust alone) only
        if time.monotonic() > deadline:
            raise LoadTestError(
                f"Locust overran its run time by {timeout_s:g}s and was killed",
                fix="check the edge answers at all (`orchestrator status`), or lower load.users",
            )
        time.sleep(0.1)
    return early


def _signal_one(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _status(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


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
