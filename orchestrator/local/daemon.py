"""Background processes that outlive one command: start, find, stop, with a state file.

A state file (pid, port, url) says where a daemon is. A stale file (the pid is gone, or
belongs to something else) is ignored and replaced; a taken port makes us pick another,
including one taken between our look and the daemon's bind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.base.errors import EdgeshipError
from orchestrator.base.processes import alive


class LocalEnvError(EdgeshipError):
    """The local environment could not be started or reached."""


@dataclass(frozen=True)
class Daemon:
    """A running background process and where it listens."""

    name: str
    pid: int
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"{self.scheme}://127.0.0.1:{self.port}"


def free_port(preferred: int = 0) -> int:
    """`preferred` if nothing listens there, else any free loopback port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            # As the daemons bind (http.server sets it): a port whose last server just
            # stopped still has connections in TIME_WAIT, and is free for a new listener.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise LocalEnvError("no free port on 127.0.0.1", fix="stop something listening on loopback")


def read(state_file: Path) -> Daemon | None:
    """The daemon the state file describes, if it is still running."""
    try:
        data = json.loads(state_file.read_text())
        daemon = Daemon(data["name"], int(data["pid"]), int(data["port"]), data.get("scheme", "http"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return daemon if alive(daemon.pid) else None


def healthy(url: str, timeout: float = 1.0, ca: Path | None = None) -> bool:
    """True if GET url answers at all (any HTTP status)."""
    import ssl

    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start(
    name: str,
    argv: Callable[[int], list[str]],
    state_file: Path,
    log_file: Path,
    health_path: str,
    port: int,
    env: dict[str, str] | None = None,
    inherit: bool = True,
    timeout: float = 30.0,
    scheme: str = "http",
    ca: Path | None = None,
    ours: Callable[[Daemon], bool] = lambda daemon: True,
    attempts: int = 3,
) -> Daemon:
    """Start a daemon detached from this process group on `port` (if free, else any free
    port), wait until it answers, record it.

    `argv(port)` is its command line. A port that is free when we look can be taken before
    the daemon binds it (two projects starting at once both pick the preferred port): the
    loser exits at start, and meanwhile the winner answers its health URL. So an answer
    counts only if `ours(daemon)` says it came from our process, and a daemon that exited
    because someone else now holds its port is started again on a fresh one. Its
    environment is this process's plus `env`, or `env` alone when not `inherit`.
    """
    state_file.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        port = free_port(port)
        with log_file.open("ab") as log:
            proc = subprocess.Popen(
                argv(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: Ctrl-C on a command must not take the environment down.
                start_new_session=True,
                env={**(os.environ if inherit else {}), **(env or {})},
                cwd=state_file.parent,
            )
        daemon = Daemon(name, proc.pid, port, scheme)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if healthy(daemon.url + health_path, timeout=0.5, ca=ca) and ours(daemon):
                state_file.write_text(json.dumps(asdict(daemon)))
                return daemon
            if time.monotonic() > deadline:
                proc.kill()
                raise LocalEnvError(f"{name} did not answer within {timeout:.0f}s", fix=f"see {log_file}")
            time.sleep(0.1)
        if free_port(port) == port:
            break  # it exited for a reason of its own: starting it again would not help
        # else another process took the port between our look and the daemon's bind: a fresh one
    tail = log_file.read_text(errors="replace")[-800:]
    raise LocalEnvError(f"{name} exited at start (code {proc.returncode}): {tail}", fix=f"see {log_file}")


def stop(state_file: Path, timeout: float = 10.0) -> bool:
    """Stop the daemon in the state file (if running) and remove the file."""
    daemon = read(state_file)
    state_file.unlink(missing_ok=True)
    if daemon is None:
        return False
    try:
        os.killpg(daemon.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(daemon.pid):
        time.sleep(0.05)
    if alive(daemon.pid):
        os.killpg(daemon.pid, signal.SIGKILL)
    return True


def python() -> str:
    """The interpreter daemons run with: ours, so they see the same packages."""
    return sys.executable
