"""The origin secret end to end on the local environment (real engine, real edge): the
API refuses what did not come through the edge, and a rotation under load refuses nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from orchestrator.local import daemon
from orchestrator.local.origin import Origin, read_origin
from orchestrator.progress import NullReporter
from orchestrator.rotation import Rotation
from tests.conftest import LocalProject, Viewers, wait_for

BODY = json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]}).encode()


def _post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        url, BODY, {"content-type": "application/json", **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_rotating_the_origin_secret_under_load_refuses_no_request(local_project: LocalProject) -> None:
    code, up = local_project.json("up", "--env", "local")
    assert code == 0, up
    edge_url, api_url = up["outputs"]["edgeUrl"], up["outputs"]["apiUrl"]
    assert up["outputs"]["originSecretRotation"] == "0:settled"
    before = read_origin(local_project.state)
    edge_pid = daemon.read(local_project.state / "edge.json").pid  # type: ignore[union-attr]

    # Straight to the API: refused by the gateway, the function never runs (no version header).
    for headers, refused in (({}, 401), ({"x-origin-verify": "guess"}, 403)):
        status, answer = _post(api_url + "/infer", headers)
        assert status == refused and "x-function-version" not in {k.lower() for k in answer}
    assert _post(api_url + "/infer", {"x-origin-verify": before.sent})[0] == 200

    with Viewers(edge_url, BODY, threads=3) as users:
        wait_for(lambda: len(users.answers) >= 30, timeout=60)
        code, rotated = local_project.json("rotate-origin-secret", "--env", "local")
        assert code == 0, rotated
        during = len(users.answers)
        wait_for(lambda: len(users.answers) >= during + 30, timeout=60)
    assert rotated == {
        "from": "0:settled",
        "to": "1:settled",
        "stages": ["1:accepting", "1:sending", "1:settled"],
    }
    failed: dict[Any, int] = {}
    for answer in users.answers:
        if answer != 200:
            failed[answer] = failed.get(answer, 0) + 1
    assert failed == {} and len(users.answers) >= 60, failed

    after = read_origin(local_project.state)
    assert after.sent != before.sent and after.accepted == (after.sent,)
    assert daemon.read(local_project.state / "edge.json").pid == edge_pid  # type: ignore[union-attr]
    assert _post(api_url + "/infer", {"x-origin-verify": before.sent})[0] == 403  # the old value is gone
    assert _post(api_url + "/infer", {"x-origin-verify": after.sent})[0] == 200
    code, outputs = local_project.json("outputs", "--env", "local")
    assert code == 0 and outputs["originSecretRotation"] == "1:settled", outputs
    # a later `up` keeps the rotated secret (the stage is stack config)
    code, again = local_project.json("up", "--env", "local")
    assert code == 0 and read_origin(local_project.state) == after, again


def test_a_rotation_stopped_after_its_first_stage_is_finished_by_running_it_again(
    local_project: LocalProject,
) -> None:
    code, up = local_project.json("up", "--env", "local")
    assert code == 0, up
    before = read_origin(local_project.state)
    # what a kill right after the first stage leaves: both values accepted, the old one sent
    target = local_project.target()
    target.rotate_origin_secret(Rotation(1, "accepting"), up["outputs"]["originSecretUrn"], NullReporter())
    half = read_origin(local_project.state)
    assert half.sent == before.sent and half.accepted[0] == before.sent and len(half.accepted) == 2
    code, finished = local_project.json("rotate-origin-secret", "--env", "local")
    assert code == 0, finished
    assert finished == {"from": "1:accepting", "to": "1:settled", "stages": ["1:sending", "1:settled"]}
    # the value sent now is the one the first stage made the API accept
    assert read_origin(local_project.state) == Origin(half.accepted[1], (half.accepted[1],))
