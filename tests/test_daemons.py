"""Local daemons survive stale state files and busy ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from orchestrator.local import daemon, emulator
from orchestrator.processes import alive


def test_stale_pid_and_busy_port_are_handled(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "emulator.json").write_text(
        json.dumps({"name": "emulator", "pid": dead.pid, "port": 1, "scheme": "https"})
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert daemon.free_port(taken) != taken  # a busy preferred port yields another
        try:
            running = emulator.ensure(tmp_path)
            assert running.pid != dead.pid and alive(running.pid)
            assert daemon.healthy(running.url + "/moto-api/", ca=tmp_path / "tls" / "cert.pem")
            # a second call finds the same emulator instead of starting another
            assert emulator.ensure(tmp_path) == running
        finally:
            assert emulator.stop(tmp_path)
    assert not (tmp_path / "emulator.json").exists()
    assert not emulator.stop(tmp_path)  # stopping twice is not an error
