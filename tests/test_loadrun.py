"""The load run, with real Locust processes against a loopback server.

Its end: requests in flight when the run time is up are measured if they finish within the
p99 budget, counted as timeouts if they do not, never silently dropped. Its workers: a
master and N workers count every request the server answered exactly once, and a worker
that dies fails the run with its status."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.config.settings import LoadSettings
from orchestrator.gates import loadrun

USERS = 2
LOAD = LoadSettings(users=USERS, spawn_rate=USERS, duration_s=1, get_share=0)


def _slow_server(delay_s: float) -> ThreadingHTTPServer:
    answered, lock, seen = [0], threading.Lock(), set()

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Locust's clients expect

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            time.sleep(delay_s)
            with lock:
                answered[0] += 1
                seen.add((self.path, len(body["inputs"])))
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
    server.answered = answered  # type: ignore[attr-defined]
    server.seen = seen  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> Iterator[str]:
    server = _slow_server(request.param)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def counting() -> Iterator[ThreadingHTTPServer]:
    server = _slow_server(0.005)
    yield server
    server.shutdown()


def _url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_master_and_two_workers_count_every_answer_once(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    load = LoadSettings(users=4, spawn_rate=4, duration_s=2, get_share=0, workers=2)
    run = loadrun.run(_url(counting), load, tmp_path, "pair", late_ms=2000)
    answered = counting.answered[0]  # type: ignore[attr-defined]
    recorded = len(run.stats["versions"]["7"]["latencies_ms"]) + run.stats["versions"]["7"]["errors"]
    assert answered > 20 and recorded == answered, (recorded, answered)
    assert (run.stats["workers"], run.stats["workers_lost"], run.stats["in_flight"]) == (2, 0, 0)
    assert len(run.stats["generator_lag_ms"]) >= 50  # the workers' lag probes, merged on the master
    assert {p.name for p in tmp_path.glob("pair.worker*.log")} == {"pair.worker1.log", "pair.worker2.log"}


def test_a_worker_late_with_its_last_report_is_still_counted(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    """A headless Locust master waits 0.5 s for its workers' last reports after telling them
    to quit; a worker held up past that (a busy CI runner: here SIGSTOP over the load's
    end) lost its numbers (`workers_lost`), unless the locustfile waits for them. Held from
    the start for longer than Locust's 3 missed heartbeats: the master then counted the held
    worker missing, and when the other one quit it had "no worker left" and quit before the
    held one's last report (CI, a busy runner: `workers_lost` 1 of 2), unless the locustfile
    gives a worker more heartbeats."""
    import psutil

    load = LoadSettings(users=2, spawn_rate=2, duration_s=6, get_share=0, workers=2)
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["run"] = loadrun.run(_url(counting), load, tmp_path, "late", late_ms=1000)
        except loadrun.LoadTestError as exc:  # WorkerLostError without the locustfile's wait
            result["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    log = tmp_path / "late.worker1.log"
    worker = None
    while worker is None and runner.is_alive():  # the first worker, by the log it writes
        for proc in psutil.process_iter(["cmdline", "pid"]):
            if "--worker" in (proc.info["cmdline"] or []) and any(
                f.path == str(log) for f in _open_files(proc)
            ):
                worker = proc
        time.sleep(0.05)
    assert worker is not None
    while counting.answered[0] == 0:  # type: ignore[attr-defined]
        time.sleep(0.05)  # the test has started: its 2 s run out while the worker is held
    # Held soon after the first answer (1.5 s later, a busy CI machine once saw the worker
    # already gone), for longer than the rest of the 6 s run and the master's own 0.5 s: the
    # master counts it missing (about 5 s without a heartbeat) before the other worker quits
    time.sleep(0.3)
    worker.send_signal(signal.SIGSTOP)
    time.sleep(8)
    worker.send_signal(signal.SIGCONT)
    runner.join(timeout=120)
    assert "error" not in result, result["error"]
    run = result["run"]
    assert isinstance(run, loadrun.LoadRun)
    assert (run.stats["workers"], run.stats["workers_lost"]) == (2, 0)
    recorded = len(run.stats["versions"]["7"]["latencies_ms"]) + run.stats["versions"]["7"]["errors"]
    assert recorded == counting.answered[0]  # type: ignore[attr-defined]


def _open_files(proc: object) -> list:  # type: ignore[type-arg]
    import psutil

    try:
        return proc.open_files()  # type: ignore[attr-defined, no-any-return]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def test_a_remote_worker_gets_the_request_shape_from_the_master(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    # "Remote": started by hand as on another machine, with none of the gate's environment;
    # the master forwards its options (path, example row, ...) when the test starts.
    port = _port()
    load = LoadSettings(
        users=4, spawn_rate=4, duration_s=2, get_share=0, workers=1, remote_workers=1, master_port=port
    )
    bare = {k: v for k, v in os.environ.items() if not k.startswith("EDGESHIP_")}
    remote = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(loadrun.LOCUSTFILE), "--worker", "--master-port", str(port)],
        env=bare, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        example = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        run = loadrun.run(
            _url(counting), load, tmp_path, "remote", path="/custom/infer", example=example, late_ms=2000
        )
        assert remote.wait(timeout=30) == 0  # the master told it to quit
    finally:
        remote.kill()
        remote.wait()
    assert (run.stats["workers"], run.stats["workers_lost"]) == (2, 0)
    recorded = len(run.stats["versions"]["7"]["latencies_ms"]) + run.stats["versions"]["7"]["errors"]
    assert recorded == counting.answered[0]  # type: ignore[attr-defined]
    assert counting.seen == {("/custom/infer", 7)}  # type: ignore[attr-defined]


def test_a_frozen_load_generator_shows_in_its_lag(counting: ThreadingHTTPServer, tmp_path: Path) -> None:
    # Locust stopped for half a second mid-run (a busy core, a long collection): every answer
    # waited that long for it, and so did its lag probe, which is what the gate reads.
    load = LoadSettings(users=2, spawn_rate=2, duration_s=3, get_share=0)
    frozen: list[int] = []

    def freeze_once_load_flows() -> None:
        if not frozen and counting.answered[0] > 20:  # type: ignore[attr-defined]
            (locust,) = [pid for pid in _children() if b"locust" in _cmdline(pid)]
            os.kill(locust, signal.SIGSTOP)
            time.sleep(0.5)
            os.kill(locust, signal.SIGCONT)
            frozen.append(locust)

    run = loadrun.run(
        _url(counting), load, tmp_path, "frozen", late_ms=2000, should_stop=freeze_once_load_flows
    )
    assert frozen
    lag = run.stats["generator_lag_ms"]
    assert max(lag) >= 400, sorted(lag)[-5:]
    assert sorted(lag)[len(lag) // 2] < 100  # the rest of the run was on time


def test_a_master_that_cannot_start_fails_the_run_with_its_own_reason(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    # The master's port is taken: the master quits at once, and the error carries its own
    # log and the fix, not a worker's (the workers only waited for a master to connect to).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        load = LoadSettings(users=2, spawn_rate=2, duration_s=2, get_share=0, workers=2, master_port=port)
        with pytest.raises(loadrun.LoadTestError) as caught:
            loadrun.run(_url(counting), load, tmp_path, "busy", late_ms=2000)
    assert type(caught.value) is loadrun.LoadTestError
    assert f"could not listen on 127.0.0.1:{port}: another process holds the port" in str(caught.value)
    assert "busy.locust.log" in str(caught.value)  # the master's log, where Locust says why
    assert f"free load.master_port = {port}" in (caught.value.fix or "")
    assert counting.answered[0] == 0  # type: ignore[attr-defined]
    assert not [pid for pid in _children() if b"locust" in _cmdline(pid)]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_killed_mid_run_fails_it_with_its_status(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    load = LoadSettings(users=4, spawn_rate=4, duration_s=20, get_share=0, workers=2)
    killed: list[int] = []

    def kill_a_worker_once_load_flows() -> None:
        if not killed and counting.answered[0] > 20:  # type: ignore[attr-defined]
            worker = next(pid for pid in _children() if b"--worker" in _cmdline(pid))
            os.kill(worker, signal.SIGKILL)
            killed.append(worker)

    started = time.monotonic()
    with pytest.raises(loadrun.WorkerLostError, match=r"Locust worker [12] of 2 died \(killed by SIGKILL\)"):
        loadrun.run(
            _url(counting), load, tmp_path, "kill", late_ms=2000, should_stop=kill_a_worker_once_load_flows
        )
    assert killed and time.monotonic() - started < 20  # failed at once, not at the end of the run
    assert not [pid for pid in _children() if b"locust" in _cmdline(pid)]  # master and survivor gone


def _children() -> list[int]:
    mine = str(os.getpid())
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "stat").read_text().rsplit(")", 1)[1].split()[1] == mine:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


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
    ("late_ms", "grace_s"),
    [(None, 0.0), (0, 0.0), (400, 1.0), (1000, 1.0), (6000, 6.0), (6001, 7.0), (60000, 8.0)],
)
def test_the_stop_grace_is_the_p99_budget_in_whole_seconds_capped_below_the_sigterm_wait(
    late_ms: float | None, grace_s: float
) -> None:
    assert loadrun.stop_grace_s(late_ms) == grace_s


@pytest.mark.parametrize("workers", [1, 2])
def test_a_look_at_the_live_snapshot_stops_the_load_early_and_the_final_file_has_everything(
    counting: ThreadingHTTPServer, tmp_path: Path, workers: int
) -> None:
    # A 60 s run asked to stop at the first snapshot showing 20 answers: it ends within
    # seconds, and the final statistics still count every answer the server gave.
    load = LoadSettings(users=2, spawn_rate=2, duration_s=60, get_share=0, workers=workers)
    seen: list[dict] = []  # type: ignore[type-arg]

    def enough(snapshot: dict) -> bool:  # type: ignore[type-arg]
        seen.append(snapshot)
        return len(snapshot["versions"].get("7", {}).get("latencies_ms", [])) >= 20

    started = time.monotonic()
    run = loadrun.run(_url(counting), load, tmp_path, "early", late_ms=1000, on_snapshot=enough)
    assert run.stopped_early
    assert time.monotonic() - started < 50  # far from the 60 s it would otherwise run
    assert seen and all("elapsed_s" in s for s in seen)
    answered = counting.answered[0]  # type: ignore[attr-defined]
    final = run.stats["versions"]["7"]
    assert len(final["latencies_ms"]) + final["errors"] == answered >= 20
    assert run.stats["workers_lost"] == 0
    assert not loadrun.live_file(run.stats_file).exists()


def test_a_monitored_load_runs_past_duration_s_up_to_its_run_time(
    counting: ThreadingHTTPServer, tmp_path: Path
) -> None:
    # A gate sized by green's requests (orchestrator/gates/sizing.py): duration_s 1, Locust's
    # --run-time 60; the look ends it once 3 s have passed, not Locust at 1 s.
    load = LoadSettings(users=2, spawn_rate=2, duration_s=1, get_share=0)
    run = loadrun.run(
        _url(counting), load, tmp_path, "sized", late_ms=1000, run_time_s=60,
        on_snapshot=lambda snapshot: float(snapshot["elapsed_s"]) >= 3,
    )  # fmt: skip
    assert run.stopped_early and run.stats["duration_s"] >= 3
    # without run_time_s: load.duration_s, as ever
    run = loadrun.run(_url(counting), load, tmp_path, "plain", late_ms=1000)
    assert not run.stopped_early and run.stats["duration_s"] < 3
