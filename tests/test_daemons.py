"""Local daemons survive stale state files and busy ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from orchestrator.base.processes import alive
from orchestrator.local import daemon, emulator


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


# A daemon that binds the port it is given (exits if it cannot) and answers every GET with
# its pid, as the edge's status does.
FAKE_DAEMON = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Status(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", int(sys.argv[1])), Status).serve_forever()
"""


def _pid_at(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(json.loads(response.read())["pid"])


def _start_fake(root: Path, port: int) -> daemon.Daemon:
    script = root / "fake.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(FAKE_DAEMON)
    return daemon.start(
        "fake", lambda port: [sys.executable, str(script), str(port)], root / "fake.json", root / "fake.log",
        "/", port, ours=lambda d: _pid_at(d.url) == d.pid,
    )  # fmt: skip


def test_a_port_taken_after_the_look_is_not_mistaken_for_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another project's daemon holds the port by the time ours binds it, and answers there...
    other = _start_fake(tmp_path / "other", daemon.free_port())
    looks = iter([other.port])  # ...though it was free when start() looked
    real = daemon.free_port
    monkeypatch.setattr(daemon, "free_port", lambda preferred=0: next(looks, None) or real(preferred))
    try:
        started = _start_fake(tmp_path / "ours", other.port)
        try:
            assert started.port != other.port  # it lost the port, exited, and started on a fresh one
            assert _pid_at(started.url) == started.pid  # and what answers there is ours
            assert daemon.read(tmp_path / "ours" / "fake.json") == started
        finally:
            assert daemon.stop(tmp_path / "ours" / "fake.json")
    finally:
        assert daemon.stop(tmp_path / "other" / "fake.json")


def test_two_starts_racing_for_one_preferred_port_each_get_their_own(tmp_path: Path) -> None:
    preferred = daemon.free_port()
    barrier = threading.Barrier(2)
    started: dict[str, daemon.Daemon | BaseException] = {}

    def start(name: str) -> None:
        barrier.wait()
        try:
            started[name] = _start_fake(tmp_path / name, preferred)
        except BaseException as exc:  # reported below, not lost in the thread
            started[name] = exc

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        a, b = started["a"], started["b"]
        assert isinstance(a, daemon.Daemon) and isinstance(b, daemon.Daemon), started
        assert a.port != b.port
        assert _pid_at(a.url) == a.pid and _pid_at(b.url) == b.pid
    finally:
        for name in ("a", "b"):
            daemon.stop(tmp_path / name / "fake.json")


def test_a_command_reading_the_emulator_marker_while_it_is_rewritten_never_sees_a_restart(
    tmp_path: Path,
) -> None:
    # `status` during a promotion's publish: the publish rewrites which emulator the stack
    # was reconciled with while `status` reads it. A half-written (empty) marker would read
    # as "the local emulator was restarted" and fail `status` with exit 2.
    from orchestrator.config import settings
    from orchestrator.stacks import clouds
    from tests.conftest import LocalProject

    project = LocalProject(tmp_path)
    loaded = settings.load(project.config)
    cloud = clouds.EmulatorCloud(loaded, loaded.environment("local"))
    marker = cloud.state_dir / "reconciled-with-emulator"
    emulator.ensure(cloud.state_dir)
    try:
        cloud.reconciled()
        identity = marker.read_text()
        seen: set[str] = set()
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                seen.add(marker.read_text())

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(200):
                (tmp_path / "other").write_text("another emulator")
                (tmp_path / "other").replace(marker)  # as if reconciled with another one before
                cloud.reconciled()
        finally:
            done.set()
            reader.join()
        assert seen == {identity, "another emulator"}
        assert cloud.client("s3") is not None  # this emulator, as reconciled last
    finally:
        assert emulator.stop(cloud.state_dir)
