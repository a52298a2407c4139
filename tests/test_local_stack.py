"""The local environment is a Pulumi stack: the real engine (file backend) runs
programs/local.py, whose dynamic resources create everything in a real moto server and
run the local edge. Driven through the CLI, as a user would."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode
from orchestrator.local import daemon, edge_port, emulator
from orchestrator.programs import serving
from orchestrator.release.traffic import Traffic
from tests.conftest import LocalProject, wait_for
from tests.test_stack_contract import surface


def _ok(project: LocalProject, *args: str) -> Any:
    code, result = project.json(*args, "--env", "local")
    assert code == 0, result
    return result


def _changed(result: dict[str, Any]) -> dict[str, int]:
    return {op: n for op, n in result["changes"].items() if op != "same" and n}


def _infer(url: str) -> int:
    request = urllib.request.Request(url, data=b'{"inputs": [5.1, 3.5, 1.4, 0.2]}', method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_up_preview_refresh_history_then_destroy(
    local_project: LocalProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _ok(local_project, "up", "--yes")
    assert _changed(first) == {"create": 10}
    outputs = first["outputs"]
    # the contract, with the real engine: the same output keys as the serving program's
    _, serving_outputs = surface(serving.program, monkeypatch)
    assert set(outputs) == serving_outputs
    assert outputs["publishedVersion"] == "1" and outputs["distributionId"] == "local-edge"
    # before any request, live's version has sandboxes (real users keep it warm on AWS)
    running = daemon.read(local_project.state / "edge.json")
    assert running is not None
    status_url = running.url + "/_edgeship/status"
    wait_for(lambda: json.loads(urllib.request.urlopen(status_url).read())["warm"] == ["1"], timeout=30)
    assert _infer(outputs["edgeUrl"] + "/infer") == 200
    assert _infer(outputs["apiUrl"] + "/candidate/infer") == 403  # unsigned, as API Gateway's IAM route
    assert _changed(_ok(local_project, "preview")) == {}

    # a promotion moves live (here directly); neither refresh nor up moves it back
    target = local_project.target()
    traffic = Traffic(target.lambda_client(), target.function_name)
    second = local_project.model("2")
    text = local_project.config.read_text().split("\n")
    local_project.config.write_text(
        "\n".join(f'model = "{second}"' if line.startswith("model = ") else line for line in text)
    )
    up2 = _ok(local_project, "up", "--yes")
    assert up2["outputs"]["publishedVersion"] == "2"
    assert traffic.state("live").version == "1" and traffic.state("candidate").version == "2"
    traffic.rollback("2")  # what a promotion that finished on green leaves
    _ok(local_project, "refresh")
    assert _changed(_ok(local_project, "preview")) == {}
    assert _changed(_ok(local_project, "up", "--yes")) == {} and traffic.state("live").version == "2"

    history = _ok(local_project, "history")
    assert [h["kind"] for h in history][:4] == ["update", "refresh", "update", "update"]
    assert all(h["result"] == "succeeded" for h in history)

    stopped = _ok(local_project, "destroy", "--yes")
    assert stopped["stopped"]["emulator"] is True  # the edge went with the stack's Edge resource
    assert _changed(stopped) == {"delete": 10}
    assert daemon.read(local_project.state / "edge.json") is None
    assert emulator.running(local_project.state) is None
    code, error = local_project.json("status", "--env", "local")
    assert code == ExitCode.USAGE and "no stack yet" in error["message"], error


def test_an_emulator_restarted_empty_is_noticed_and_recreated_by_up(local_project: LocalProject) -> None:
    before = _ok(local_project, "up", "--yes")["outputs"]
    old = emulator.running(local_project.state)
    assert old is not None
    emulator.stop(local_project.state)  # the local cloud forgets everything
    code, error = local_project.json("status", "--env", "local")
    assert code == ExitCode.USAGE and "emulator is not running" in error["message"], error
    assert "orchestrator up --env local" in error["fix"] and emulator.running(local_project.state) is None
    again = _ok(local_project, "up", "--yes")
    new = emulator.running(local_project.state)
    assert new is not None
    # refreshed first: the cloud resources (the origin parameter among them) are created again;
    # the edge is updated (restarted on the new emulator) only when the emulator's port moved:
    # back on its old one (free again: ports are bound with SO_REUSEADDR), the edge serves on
    moved = {"update": 1} if new.port != old.port else {}
    assert _changed(again) == {"create": 7, **moved}, (again["changes"], old.port, new.port)
    assert again["outputs"]["functionName"] == before["functionName"]
    assert _infer(again["outputs"]["edgeUrl"] + "/infer") == 200
    status = _ok(local_project, "status")
    assert status["live"] == {"version": "1", "weights": {}} and status["versions"] == ["1"]


def test_a_dead_edge_is_started_again_by_up(local_project: LocalProject) -> None:
    # A port of its own to remember (edge_port.json, as an earlier run leaves it), not the
    # default 8787: every other test's first edge asks for that one, and in a busy CI run one
    # took it in the moment this test's edge was down (the product then moves, and says so).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        own = probe.getsockname()[1]
    edge_port.record(local_project.state, own, own)
    first = _ok(local_project, "up", "--yes")
    assert first["outputs"]["edgeUrl"] == f"http://127.0.0.1:{own}", first["outputs"]
    # A client still connected when the edge stops (a load test's user): the edge's end of
    # it, closed first, waits in TIME_WAIT on the edge's port.
    with socket.create_connection(("127.0.0.1", own)) as held:
        held.sendall(b"GET /_edgeship/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200")
        daemon.stop(local_project.state / "edge.json")
    again = _ok(local_project, "up", "--yes")
    assert _changed(again) == {"create": 1}, again["changes"]
    assert again["outputs"]["edgeUrl"] == first["outputs"]["edgeUrl"]  # on the port it had
    assert _infer(again["outputs"]["edgeUrl"] + "/infer") == 200
    running = daemon.read(local_project.state / "edge.json")
    assert running is not None and json.loads(
        urllib.request.urlopen(running.url + "/_edgeship/status").read()
    )


def test_an_up_killed_before_its_checkpoint_is_finished_by_the_next(local_project: LocalProject) -> None:
    """The function and aliases exist in the emulator but not in the state (as after a
    kill -9 between a provider's create and the engine's checkpoint): `up` adopts them,
    and `live` stays on the version a release put it on."""
    _ok(local_project, "up", "--yes")
    target = local_project.target()
    traffic = Traffic(target.lambda_client(), target.function_name)
    text = local_project.config.read_text().split("\n")
    second = local_project.model("2")
    local_project.config.write_text(
        "\n".join(f'model = "{second}"' if line.startswith("model = ") else line for line in text)
    )
    _ok(local_project, "up", "--yes")
    traffic.rollback("2")  # a promotion finished on v2
    stacks = target._stacks({}, target.reporter)
    stacks.workspace().remove_stack("local", force=True)  # the state forgets; the emulator keeps all
    again = _ok(local_project, "up", "--yes")
    assert again["outputs"]["publishedVersion"] == "3"
    assert traffic.state("live").version == "2" and traffic.state("candidate").version == "3"
    assert _changed(_ok(local_project, "preview")) == {}
