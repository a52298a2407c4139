"""The origin secret end to end on the local environment (real engine, real edge, the
shipped authorizer behind API Gateway's result cache): the API refuses what did not come
through the edge, and a rotation under load refuses nothing, with the authorizer's sandbox
frozen across it or its parameter unreadable during it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

from orchestrator.base.progress import NullReporter
from orchestrator.local import daemon, emulator
from orchestrator.local.origin import Origin, read_origin
from orchestrator.programs.rotation import Rotation
from orchestrator.programs.serving import AUTHORIZER_RESULT_TTL_S
from orchestrator.release.lease import LeaseStore
from tests.conftest import LocalProject, Viewers, wait_for

BODY = json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]}).encode()


def _authorizer(edge_url: str, **request: Any) -> dict[str, Any]:
    """Freeze or thaw the edge's authorizer sandbox, make its time pass (authorizer.py)."""
    posted = urllib.request.Request(
        edge_url + "/_edgeship/authorizer", json.dumps(request).encode(), method="POST"
    )
    with urllib.request.urlopen(posted, timeout=10) as response:
        return dict(json.loads(response.read()))


def _ssm(project: LocalProject) -> tuple[Any, str]:
    """The emulator's SSM and the name of the authorizer's parameter (the only one)."""
    running = daemon.read(project.state / "emulator.json")
    assert running is not None
    ssm = emulator.client("ssm", running.url, project.state / "tls" / "cert.pem")
    (name,) = [
        p["Name"] for p in ssm.describe_parameters()["Parameters"] if p["Name"].endswith("/origin-secrets")
    ]
    return ssm, name


def _accepted(project: LocalProject) -> list[str]:
    ssm, name = _ssm(project)
    return list(json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]))


def _failed(answers: list[int | str]) -> dict[Any, int]:
    failed: dict[Any, int] = {}
    for answer in answers:
        if answer != 200:
            failed[answer] = failed.get(answer, 0) + 1
    return failed


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
    """With the authorizer's sandbox frozen across the rotation: code that aged its list by
    time.monotonic() kept the old list and denied the new value, for every request, for the
    result cache's TTL."""
    code, up = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    edge_url, api_url = up["outputs"]["edgeUrl"], up["outputs"]["apiUrl"]
    assert up["outputs"]["originSecretRotation"] == "0:settled"
    before = read_origin(local_project.state)
    assert _accepted(local_project) == [before.sent]
    assert _authorizer(edge_url, frozen=True)["ttl_s"] == AUTHORIZER_RESULT_TTL_S
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
    failed = _failed(users.answers)
    assert failed == {} and len(users.answers) >= 60, failed
    assert _authorizer(edge_url)["frozen_s"] > 0  # its monotonic clock missed the idle time

    after = read_origin(local_project.state)
    assert after.sent != before.sent and _accepted(local_project) == [after.sent]
    assert daemon.read(local_project.state / "edge.json").pid == edge_pid  # type: ignore[union-attr]
    assert _post(api_url + "/infer", {"x-origin-verify": after.sent})[0] == 200
    # API Gateway still holds its allow of the old value, until its TTL ends: then it is gone
    assert _post(api_url + "/infer", {"x-origin-verify": before.sent})[0] == 200
    _authorizer(edge_url, advance_s=AUTHORIZER_RESULT_TTL_S)
    assert _post(api_url + "/infer", {"x-origin-verify": before.sent})[0] == 403
    code, outputs = local_project.json("outputs", "--env", "local")
    assert code == 0 and outputs["originSecretRotation"] == "1:settled", outputs
    # a later `up` keeps the rotated secret (the stage is stack config)
    code, again = local_project.json("up", "--yes", "--env", "local")
    assert code == 0 and read_origin(local_project.state) == after, again


def test_a_rotation_stopped_after_its_first_stage_is_finished_by_running_it_again(
    local_project: LocalProject,
) -> None:
    code, up = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    before = read_origin(local_project.state)
    # what a kill right after the first stage leaves: both values accepted, the old one sent
    target = local_project.target()
    target.rotate_origin_secret(Rotation(1, "accepting"), up["outputs"]["originSecretUrn"], NullReporter())
    half, accepted = read_origin(local_project.state), _accepted(local_project)
    assert half.sent == before.sent and accepted[0] == before.sent and len(accepted) == 2
    # It holds the environment's lease for its whole run (issue 26: no promotion starts between
    # its stages), of kind `rotate-origin-secret`, and gives it back: watched from outside.
    store = LeaseStore(target.s3_client(), target.bucket, "local")
    out, err = local_project.root / "rotate.json", local_project.root / "rotate.log"
    with out.open("w") as stdout, err.open("w") as stderr:  # files: its progress must never block it
        rotating = subprocess.Popen(
            local_project.argv("rotate-origin-secret", "--env", "local", "--json"),
            env=local_project.env(), stdout=stdout, stderr=stderr, text=True,
        )  # fmt: skip
        seen: set[tuple[str, int]] = set()
        while rotating.poll() is None:
            held, _ = store.read()
            if held is not None:
                seen.add((held.kind, held.pid))
            time.sleep(0.1)
    assert rotating.returncode == 0, err.read_text()[-3000:]
    assert seen == {("rotate-origin-secret", rotating.pid)}, seen
    assert store.read() == (None, None)
    finished = json.loads(out.read_text())
    assert finished == {"from": "1:accepting", "to": "1:settled", "stages": ["1:sending", "1:settled"]}
    # the value sent now is the one the first stage made the API accept
    assert read_origin(local_project.state) == Origin(accepted[1]) and _accepted(local_project) == [
        accepted[1]
    ]


def test_an_unreadable_parameter_during_a_rotation_refuses_no_request(local_project: LocalProject) -> None:
    """The authorizer's parameter deleted (GetParameter fails) twice during a rotation, each
    time for longer than the result cache's TTL, so the authorizer is asked again while it
    cannot read: it answers from the values it last read. Code that denied on a read error
    denied the value everyone sends, and that deny was served to every request."""
    code, up = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    edge_url, urn = up["outputs"]["edgeUrl"], up["outputs"]["originSecretUrn"]
    _authorizer(edge_url, frozen=False)  # its clocks run: a cache aged by either has expired
    target = local_project.target()

    def unreadable_for_a_ttl(users: Viewers) -> None:
        ssm, name = _ssm(local_project)
        ssm.delete_parameter(Name=name)
        called = _authorizer(edge_url, advance_s=AUTHORIZER_RESULT_TTL_S)["invocations"]
        seen = len(users.answers)
        wait_for(lambda: len(users.answers) >= seen + 10, timeout=60)
        assert _authorizer(edge_url)["invocations"] > called  # it was asked, and could not read

    with Viewers(edge_url, BODY, threads=2) as users:
        wait_for(lambda: len(users.answers) >= 10, timeout=60)
        target.rotate_origin_secret(Rotation(1, "accepting"), urn, NullReporter())
        _authorizer(edge_url, advance_s=AUTHORIZER_RESULT_TTL_S)  # it reads both values
        wait_for(lambda: len(users.answers) >= 20, timeout=60)
        unreadable_for_a_ttl(users)
        target.rotate_origin_secret(Rotation(1, "sending"), urn, NullReporter())  # writes it again
        wait_for(lambda: len(users.answers) >= 50, timeout=60)
        unreadable_for_a_ttl(users)
        target.rotate_origin_secret(Rotation(1, "settled"), urn, NullReporter())
        seen = len(users.answers)
        wait_for(lambda: len(users.answers) >= seen + 10, timeout=60)
    failed = _failed(users.answers)
    assert failed == {} and len(users.answers) >= 80, failed
    assert _accepted(local_project) == [read_origin(local_project.state).sent]
