"""Seeing and touching what runs: status's models, history, invoke, logs, doctor, the local
edge's port and log. Decisions as tables; the commands against one local environment
(real moto, real edge running the shipped zip); CloudWatch Logs against a moto server."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode, UsageError
from orchestrator.cli.release import _model_lines
from orchestrator.local import daemon
from orchestrator.project import doctor, invoke, logs
from orchestrator.release import timeline
from orchestrator.release.machine import Phase, PromotionRecord, Transition
from orchestrator.stacks.deployed import ModelInfo, model_location, routed_versions
from tests.conftest import LocalProject, Moto

# -- decisions ------------------------------------------------------------------------------


def _probes(**changed: Any) -> doctor.Probes:
    ok = doctor.Found("fine")
    base: dict[str, Any] = dict(
        env="local", local=True, pinned="3.260.0", pulumi=doctor.Found("v3.260.0"), interpreter=ok,
        emulator=ok, credentials=ok, backend=ok, passphrase=ok,
    )  # fmt: skip
    return doctor.Probes(**{**base, **changed})


@pytest.mark.parametrize(
    ("changed", "failing", "fix"),
    [
        ({}, [], ""),
        ({"pulumi": doctor.Found("v3.100.0")}, ["pulumi"], "install-pulumi"),
        ({"pulumi": doctor.Found(error="not installed", fix="run make")}, ["pulumi"], "run make"),
        ({"interpreter": doctor.Found(error="no python3.12")}, ["interpreter"], "python3.12"),
        ({"emulator": doctor.Found(error="down")}, ["emulator"], "orchestrator up --env local"),
        ({"credentials": doctor.Found(error="denied"), "local": False, "interpreter": None, "emulator": None},
         ["credentials"], "AWS credentials"),
        ({"backend": doctor.Found(error="no bucket")}, ["backend"], "PULUMI_BACKEND_URL"),
        ({"passphrase": doctor.Found(error="unset", fix="export it")}, ["passphrase"], "export it"),
    ],
)  # fmt: skip
def test_doctor_judges_each_probe(changed: dict[str, Any], failing: list[str], fix: str) -> None:
    checks = doctor.judge(_probes(**changed))
    assert [c.name for c in doctor.failed(checks)] == failing
    assert all(fix in c.fix for c in doctor.failed(checks))
    names = [c.name for c in checks]
    local = changed.get("local", True)
    assert names == [
        "pulumi",
        *(["interpreter", "emulator"] if local else []),
        "credentials",
        "backend",
        "passphrase",
    ]


def test_history_rows_carry_their_zone_and_merge_newest_first(tmp_path: Path) -> None:
    assert timeline.iso("2026-12-06T23:00:00.5") == "2026-12-06T23:00:00+00:00"  # Pulumi's naive UTC
    assert timeline.iso(0) == "1970-01-01T00:00:00+00:00"
    assert timeline.iso("2026-12-06T23:00:00+01:00") == "2026-12-06T22:00:00+00:00"
    steps = (Transition(1, 100.0, "planned", -1, "a"), Transition(2, 142.5, "promoted", 1, "a"))
    record = PromotionRecord(
        "19700101T000140-abc", "local", "1", "2", {}, "h", Phase.PROMOTED, transitions=steps
    )
    (tmp_path / "local" / record.id).mkdir(parents=True)
    row = timeline.promotion_row(record, timeline.report_of(tmp_path, "local", record.id))
    assert row == {
        "type": "promotion", "id": record.id, "started": "1970-01-01T00:01:40+00:00",
        "ended": "1970-01-01T00:02:22+00:00", "duration_s": 42.5, "outcome": "promoted", "blue": "1",
        "green": "2", "reason": "", "report": str(tmp_path / "local" / record.id),
    }  # fmt: skip
    running = timeline.promotion_row(
        PromotionRecord("x", "local", "2", "3", {}, "h", transitions=steps[:1]), None
    )
    assert running["ended"] is None and running["duration_s"] == 0.0 and running["report"] is None
    update = timeline.update_row(
        {"kind": "update", "started": "1970-01-01T00:02:00", "ended": "1970-01-01T00:02:08"}
    )
    assert update["duration_s"] == 8.0 and update["type"] == "stack"
    assert [r["started"] for r in timeline.merge([update], [row, running], 2)] == [
        "1970-01-01T00:02:00+00:00", "1970-01-01T00:01:40+00:00",
    ]  # fmt: skip


def test_log_lines_in_a_window_keep_untimed_lines_with_their_neighbours() -> None:
    assert (
        logs.since_seconds("10m") == 600 and logs.since_seconds("2h") == 7200 and logs.since_seconds("5") == 5
    )
    with pytest.raises(UsageError, match="not a duration"):
        logs.since_seconds("ten minutes")
    texts = [
        "old traceback line",  # before an old timed line: out
        json.dumps({"ts": 100, "event": "old"}),
        "  continuation of old",  # between old and new: the new one after it is in -> kept
        json.dumps({"ts": 200, "event": "new"}),
        "Traceback (most recent call last):",  # after the newest: kept
    ]
    kept = [line.text for line in logs.window(texts, since=150)]
    assert kept == texts[2:]
    assert [line.at for line in logs.window(texts, None)] == [None, 100.0, None, 200.0, None]


def test_where_a_version_s_model_is_and_what_a_request_sends() -> None:
    assert model_location({"MODEL_URI": "s3://b/models/abc.tar.gz"}) == ("b", "models/abc.tar.gz")
    assert model_location({"MODEL_URI": "file:///m.tar.gz"}) is None and model_location({}) is None
    assert routed_versions("1", {"2": 0.2}, "2") == ["1", "2"]
    assert ModelInfo("iris", "3", "ab" * 32).describe() == "iris 3 (sha256 abababababab)"
    assert json.loads(invoke.body_of(None, (1.0, 2.0), 2)) == {"inputs": [1.0, 2.0]}
    assert json.loads(invoke.body_of(None, (), 3)) == {"inputs": [0.0, 0.0, 0.0]}
    with pytest.raises(UsageError, match="not JSON"):
        invoke.body_of("{inputs", (), 0)


# -- CloudWatch Logs, as `logs` reads it on AWS (moto's server) ------------------------------


def test_cloudwatch_logs_are_read_from_the_function_s_group(moto: Moto) -> None:
    from orchestrator.local import emulator

    client = emulator.client("logs", moto.url)
    group = logs.log_group("edgeship-fn")
    with pytest.raises(UsageError, match="does not exist"):
        logs.read_cloudwatch(client, group, 0)
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="2026/12/06/[2]abc")
    now_ms = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group, logStreamName="2026/12/06/[2]abc",
        logEvents=[{"timestamp": now_ms - 3_600_000, "message": "an hour ago"},
                   {"timestamp": now_ms - 1000, "message": "START RequestId: 1\n"},
                   {"timestamp": now_ms, "message": '{"event": "unhandled_error"}'}],
    )  # fmt: skip
    seen: set[str] = set()
    lines = logs.read_cloudwatch(client, group, time.time() - 600, seen)
    assert [line.text for line in lines] == ["START RequestId: 1", '{"event": "unhandled_error"}']
    assert {line.stream for line in lines} == {"2026/12/06/[2]abc"} and len(seen) == 2
    assert logs.read_cloudwatch(client, group, time.time() - 600, seen) == []  # shown once when following


# -- the commands against the local environment ------------------------------------------------


def _ok(project: LocalProject, *args: str) -> Any:
    code, result = project.json(*args, "--env", "local")
    assert code == 0, result
    return result


def _edge_port(project: LocalProject) -> int:
    running = daemon.read(project.state / "edge.json")
    assert running is not None
    return running.port


def _reset_connection(port: int) -> None:
    """A client that sends half a request and resets the connection (SO_LINGER 0)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_status_invoke_logs_doctor_and_the_edge_s_port(local_project: LocalProject) -> None:
    first = _ok(local_project, "up", "--yes")
    status = _ok(local_project, "status")
    model = status["models"]["1"]
    assert (model["name"], model["version"], model["error"]) == ("iris-classifier", "1", None)
    assert model["delivery"] == "package"
    assert model["sha256"] == first["outputs"]["modelSha256"]
    assert _model_lines(status) == [
        f"  v1 (live, candidate): iris-classifier 1 (sha256 {model['sha256'][:12]}), model in the package"
    ]

    live = _ok(local_project, "invoke")  # the live model's example row, unsigned through the edge
    assert (live["status"], live["version"], live["model_version"]) == (200, "1", "1")
    assert live["body"]["predictions"][0]["label"] == "setosa"
    candidate = _ok(
        local_project, "invoke", "--route", "candidate", "--data", '{"inputs": [6.7, 3.0, 5.2, 2.3]}'
    )
    assert (candidate["status"], candidate["version"]) == (200, "1")
    assert candidate["url"].endswith("/api/candidate/infer")  # the IAM route: signed, or 403
    code, bad = local_project.json("invoke", "--env", "local", "--data", '{"inputs": [1]}')
    assert code == ExitCode.ERROR and bad["status"] == 400 and bad["body"]["error"] == "bad_shape", bad
    code, error = local_project.json("invoke", "--env", "local", "--data", "{")
    assert code == ExitCode.USAGE and "not JSON" in error["message"]

    checks = _ok(local_project, "doctor")
    assert checks["ok"] and [c["name"] for c in checks["checks"] if c["ok"]] == [
        "pulumi", "interpreter", "emulator", "credentials", "backend", "passphrase",
    ]  # fmt: skip

    # logs: what the sandboxes and the edge write, as it arrives
    port = _edge_port(local_project)
    follow = local_project.popen("logs", "--env", "local", "--follow", "--json")
    bound = threading.Timer(60, follow.kill)  # a follow that never prints fails, not hangs
    bound.start()
    try:
        with (local_project.state / "edge.log").open("a") as log:
            log.write(json.dumps({"event": "model_load_failed", "ts": time.time()}) + "\n")
        shown = (json.loads(line) for line in iter(follow.stdout.readline, ""))  # type: ignore[union-attr]
        found = next(line for line in shown if "model_load_failed" in line["text"])
        assert found["time"].endswith("+00:00")
    finally:
        bound.cancel()
        follow.terminate()
        follow.wait(timeout=30)
    assert "model_load_failed" in local_project.cli("logs", "--env", "local", "--since", "1m").stdout
    assert local_project.cli("logs", "--env", "local", "--since", "0s").stdout == ""

    # a client that resets its connection is not a traceback in edge.log
    _reset_connection(port)
    assert _ok(local_project, "invoke")["status"] == 200  # the edge served on (and handled the reset)
    time.sleep(0.5)
    assert "Traceback" not in (local_project.state / "edge.log").read_text()

    _history_shows_promotions_beside_updates(local_project)


def test_doctor_fails_with_the_fix_when_the_emulator_is_down(local_project: LocalProject) -> None:
    done = local_project.cli("doctor", "--env", "local")
    assert done.returncode == ExitCode.ERROR, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:2] == ["FAIL", "emulator"] for line in lines), done.stdout
    assert any("fix: run `orchestrator up --env local`" in line for line in lines), done.stdout
    assert any(line.split()[:2] == ["ok", "pulumi"] for line in lines), done.stdout


def _history_shows_promotions_beside_updates(local_project: LocalProject) -> None:
    """The records' history copies (as a driver writes them) are read back as rows."""
    from orchestrator.release.record import RecordStore

    target = local_project.target()
    store = RecordStore(target.s3_client(), target.bucket, "local")
    steps = (
        Transition(1, time.time() - 30, "planned", -1, "a"),
        Transition(2, time.time(), "rolled_back", 0, "a"),
    )
    record = PromotionRecord(
        "20261206T230000-abcdef",
        "local",
        "1",
        "2",
        {},
        "h",
        Phase.ROLLED_BACK,
        reason="p95",
        transitions=steps,
    )
    store.write(record, None)
    rows = _ok(local_project, "history")
    assert sorted(r["type"] for r in rows) == ["promotion", "stack"]
    assert [r["started"] for r in rows] == sorted((r["started"] for r in rows), reverse=True)
    rows = [r for r in rows if r["type"] == "promotion"]
    assert (
        rows[0]["outcome"] == "rolled_back" and rows[0]["duration_s"] == 30.0 and rows[0]["reason"] == "p95"
    )
    assert all(r["started"].endswith("+00:00") for r in rows)
    text = local_project.cli("history", "--env", "local").stdout
    assert "promotion rolled_back  v1 -> v2  30.0s  p95" in text, text


def test_a_restarted_daemon_gets_its_port_back_or_says_why_not(tmp_path: Path) -> None:
    """What the edge's provider does on each start (programs/emulated.py), with a plain HTTP
    server as the daemon: the port it had, even with connections of the last one in
    TIME_WAIT; another when that port is taken, and a note once."""
    import sys
    import urllib.request

    from orchestrator.local import edge_port

    state = tmp_path / "state"

    def start() -> int:
        wanted = edge_port.wanted(state)
        running = daemon.start(
            "web", lambda port: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            state / "web.json", state / "web.log", "/", wanted,
        )  # fmt: skip
        urllib.request.urlopen(running.url + "/").close()  # a connection: TIME_WAIT after the stop
        edge_port.record(state, wanted, running.port)
        daemon.stop(state / "web.json")
        return running.port

    first = start()
    assert edge_port.take_note(state) is None  # a first start moved from nothing
    assert start() == first and edge_port.take_note(state) is None
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", first))
        squatter.listen()
        second = start()
    assert second != first
    assert edge_port.take_note(state) == (
        f"the local edge could not have its port {first} back (something else listens there): "
        f"it now listens on {second}, and the stack's edgeUrl says so"
    )
    assert edge_port.take_note(state) is None and start() == second  # said once; kept from now on
