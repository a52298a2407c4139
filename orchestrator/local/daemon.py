"""Background processes that outlive one command: start, find, stop, with a state file.

A state file (pid, port, url) says where a daemon is. A stale file (the pid is gone, or
belongs to something else) is ignored and replaced; a taken port makes us pick another.
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
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.errors import EdgeshipError
from orchestrator.processes import alive


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
    argv: list[str],
    state_file: Path,
    log_file: Path,
    health_path: str,
    port: int,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    scheme: str = "http",
    ca: Path | None = None,
) -> Daemon:
    """Start a daemon detached from this process group, wait until it answers, record it."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: Ctrl-C on a command must not take the environment down.
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=state_file.parent,
        )
    daemon = Daemon(name, proc.pid, port, scheme)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-800:]
            raise LocalEnvError(
                f"{name} exited at start (code {proc.returncode}): {tail}", fix=f"see {log_file}"
            )
        if healthy(daemon.url + health_path, timeout=0.5, ca=ca):
            state_file.write_text(json.dumps(asdict(daemon)))
            return daemon
        time.sleep(0.1)
    proc.kill()
    raise LocalEnvError(f"{name} did not answer within {timeout:.0f}s", fix=f"see {log_file}")


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
