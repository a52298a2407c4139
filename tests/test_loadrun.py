"""The load run's end, with a real Locust process against a loopback server whose answers
take longer than the run: requests in flight when the run time is up are measured if they
finish within the p99 budget, counted as timeouts if they do not, never silently dropped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator import loadrun
from orchestrator.settings import LoadSettings

USERS = 2
LOAD = LoadSettings(users=USERS, spawn_rate=USERS, duration_s=1, get_share=0)


def _slow_server(delay_s: float) -> ThreadingHTTPServer:
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            time.sleep(delay_s)
            body = b'{"prediction": 0}'
            self.send_response(200)
            self.send_header("x-function-version", "7")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> Iterator[str]:
    server = _slow_server(request.param)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("slow", [1.6], indirect=True)
def test_requests_in_flight_at_the_end_are_measured_within_the_p99_budget(slow: str, tmp_path: Path) -> None:
    # Every request outlives the 1 s run: Locust's default would drop them all.
    run = loadrun.run(slow, LOAD, tmp_path, "grace", late_ms=5000)
    answered = run.stats["versions"]["7"]["latencies_ms"]
    assert len(answered) == USERS, run.stats
    assert min(answered) >= 1600, answered  # their real latency, not cut short
    assert run.stats["in_flight"] == 0


@pytest.mark.parametrize("slow", [30], indirect=True)
def test_requests_unanswered_after_the_p99_budget_are_timeouts(slow: str, tmp_path: Path) -> None:
    run = loadrun.run(slow, LOAD, tmp_path, "late", late_ms=1000)
    assert run.stats["versions"] == {}, run.stats
    assert run.stats["in_flight"] == USERS


@pytest.mark.parametrize(
    ("late_ms", "grace_s"), [(None, 0.0), (0, 0.0), (400, 0.4), (6000, 6.0), (60000, 8.0)]
)
def test_the_stop_grace_is_the_p99_budget_capped_below_the_sigterm_wait(
    late_ms: float | None, grace_s: float
) -> None:
    assert loadrun.stop_grace_s(late_ms) == grace_s
