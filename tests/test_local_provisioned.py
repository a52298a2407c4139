"""Releases with provisioned concurrency on the local environment, end to end: the emulator
holds a moving alias's weights ({old: 1}) until the new version's provisioned concurrency
is READY, as Lambda does, and the release waits for it instead of reading `live` as split."""

from __future__ import annotations

import json
import ssl
import urllib.request
from typing import Any

from orchestrator.base.errors import ExitCode
from orchestrator.local import daemon, provisioned
from tests.conftest import LocalProject, wait_for

FAILING_HOOK = 'echo "conversion rate dropped" >&2\nexit 3\n'


def _run(project: LocalProject, *args: str, **env: str) -> tuple[int, dict[str, Any], list[str]]:
    """Exit code, the JSON result, and the progress messages (JSON lines on stderr)."""
    done = project.cli(*args, "--json", **env)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {done.returncode}): {done.stdout}\n{done.stderr}") from None
    said = []
    for line in done.stderr.splitlines():
        try:
            said.append(str(json.loads(line).get("message", "")))
        except ValueError:
            continue
    return done.returncode, result, said


def _live(project: LocalProject) -> tuple[dict[str, Any], str]:
    code, status, _ = _run(project, "status", "--env", "local")
    assert code == 0, status
    return status["live"], status["promotion"]["phase"] if status["promotion"] else ""


def test_promotion_rollback_and_failed_gate_with_provisioned_concurrency(local_project: LocalProject) -> None:
    text = local_project.config.read_text()
    (local_project.root / "kpi.sh").write_text(FAILING_HOOK)
    local_project.config.write_text(text + "[environments.local.function]\nprovisioned_concurrency = 2\n")
    # The emulator this `up` starts allocates in 3 s: long enough that the first read-back
    # after a move sees it under way, however busy the machine.
    code, result, _ = _run(local_project, "up", "--yes", "--env", "local", **{provisioned.READY_S_ENV: "3"})
    assert code == 0, result
    assert _control(local_project)["ready_s"] == 3
    lam = local_project.target().lambda_client()
    function = result["outputs"]["functionName"]
    pc = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    assert (pc["Status"], pc["RequestedProvisionedConcurrentExecutions"]) == ("READY", 2)

    # promote: the last move changes live's version; Lambda keeps v1 at 100% until v2 is warm
    code, report, said = _run(
        local_project, "promote", "--env", "local", "--model", str(local_project.model("2"))
    )
    assert code == 0, report
    assert report["outcome"] == "promoted", report
    assert any(m.startswith("waiting for Lambda: live is moving to v2") for m in said), said
    assert _live(local_project) == ({"version": "2", "weights": {}}, "promoted")

    # rollback of the finished promotion: a version change back, waited for as well
    code, result, said = _run(local_project, "rollback", "--env", "local")
    assert code == 0, result
    assert result["outcome"] == "rolled_back" and (result["live"], result["weights"]) == ("1", {}), result
    assert any(m.startswith("waiting for Lambda: live is moving to v1") for m in said), said

    # someone moves live to v2 by hand: Lambda holds v1 at 100% meanwhile, and status says so
    # (long enough to outlast the next promotion's publish, an `up`, on a busy machine)
    _control(local_project, ready_s=45)
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}})  # fmt: skip
    code, status, _ = _run(local_project, "status", "--env", "local")
    assert status["live"] == {"version": "2", "weights": {"1": 1.0}, "moving_from": "1"}, status
    assert "live v2 + moving: v1 serves until its provisioned concurrency is ready" in (
        local_project.cli("status", "--env", "local").stdout
    )
    _control(local_project, ready_s=3)

    # a later promotion is not refused: it waits for that move, then its gate fails at the
    # canary and it rolls back to v2
    hooks = 'hooks = [{ on = "step", run = "sh kpi.sh" }]'
    local_project.config.write_text(
        local_project.config.read_text().replace("lease_s = 3", f"lease_s = 3\n{hooks}")
    )
    code, error, said = _run(
        local_project, "promote", "--env", "local", "--model", str(local_project.model("3"))
    )
    assert code == ExitCode.GATE_FAILED, error
    assert "conversion rate dropped" in error["message"] and "live is back on v2" in error["message"], error
    assert any(m.startswith("waiting for Lambda: live is moving to v2") for m in said), said
    assert any("provisioned concurrency IN_PROGRESS" in m for m in said), said  # the canary's re-allocation
    assert _live(local_project) == ({"version": "2", "weights": {}}, "rolled_back")

    # live moved to v3 by hand after that promotion ended: `rollback` puts it back on v2 and
    # reads it back until Lambda serves v2, never answering rolled_back while v3 still serves
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion="3", RoutingConfig={"AdditionalVersionWeights": {}})  # fmt: skip
    wait_for(lambda: _live(local_project)[0] == {"version": "3", "weights": {}}, timeout=60)
    code, result, said = _run(local_project, "rollback", "--env", "local")
    assert code == 0, result
    assert result["outcome"] == "rolled_back" and (result["live"], result["weights"]) == ("2", {}), result
    assert any(m.startswith("waiting for Lambda: live is moving to v2") for m in said), said


def _control(project: LocalProject, **settings: float) -> dict[str, Any]:
    """The emulator's allocation settings (orchestrator/local/provisioned.py), changed by `settings`."""
    server = daemon.read(project.state / "emulator.json")
    assert server is not None
    context = ssl.create_default_context(cafile=str(project.state / "tls" / "cert.pem"))
    request = urllib.request.Request(
        server.url + provisioned.CONTROL_PATH, json.dumps(settings).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        return dict(json.loads(answer.read()))
