"""What a promotion watches besides its own load test, end to end on the local environment
(real moto server with its CloudWatch, real edge publishing Lambda's metrics, real Locust,
real hook processes): real-traffic metrics through the bake, header-less failures at a
canary, hooks, and holding a promotion with --pause-at."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from orchestrator.base.errors import ExitCode
from orchestrator.demo import faulty_function
from tests.conftest import LocalProject, Viewers, wait_for


def _edit(project: LocalProject, old: str, new: str) -> None:
    """Change one line of the test project's edgeship.toml (it must be there)."""
    text = project.config.read_text()
    assert old in text, old
    project.config.write_text(text.replace(old, new, 1))


def _report(project: LocalProject) -> dict[str, Any]:
    """report.json of the newest promotion."""
    promotion = _status(project)["promotion"]["id"]
    return dict(json.loads((project.root / "reports" / "local" / promotion / "report.json").read_text()))


def _up(project: LocalProject) -> None:
    code, result = project.json("up", "--yes", "--env", "local")
    assert code == 0, result


def _status(project: LocalProject) -> dict[str, Any]:
    code, result = project.json("status", "--env", "local")
    assert code == 0, result
    return dict(result)


def _edge_url(project: LocalProject) -> str:
    return f"http://127.0.0.1:{json.loads((project.state / 'edge.json').read_text())['port']}"


# Users the load test does not imitate: they send batches, about 30 a second.
BATCHES = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()


def test_errors_seen_only_in_real_traffic_roll_back_during_the_bake(local_project: LocalProject) -> None:
    # Lambda's metrics arrive later than the bake lasts (as on AWS, in seconds): the errors
    # are seen while the bake waits for green's datapoints, and still roll back at once.
    _edit(local_project, "bake_s = 0", f"bake_s = 1\nmetric_delay_s = {DELAY_S}")
    _up(local_project)
    bad = faulty_function(local_project.root / "batch-crash", crash_on_batch=True)
    with Viewers(_edge_url(local_project), BATCHES, pause_s=0.03) as users:
        code, error = local_project.json("promote", "--env", "local", "--function-dir", str(bad))
    assert code == ExitCode.GATE_FAILED, error
    assert "step 1 at 20%: Errors:" in error["message"] and "live is back on v1" in error["message"]
    assert 500 in users.answers  # real users did meet green's crashes (API Gateway's 500)
    report = _report(local_project)
    assert report["outcome"] == "rolled_back"
    # the load test passed green before traffic, and never ran at 20 %: the bake stopped it first
    assert [s["name"] for s in report["steps"]] == ["pre-traffic"]
    bake = report["bakes"][0]
    assert (bake["name"], bake["weight"], bake["verdict"]) == ("step 1", 20, "breach")
    errors = next(c for c in bake["checks"] if c["name"] == "Errors")
    assert errors["verdict"] == "breach" and errors["value"] > 0.5
    assert bake["reason"].startswith("Errors: ")
    assert _status(local_project)["live"] == {"version": "1", "weights": {}}


DELAY_S = 6  # the edge publishes Lambda's metrics this late: longer than the bakes below


def _alarm_ok(project: LocalProject, name: str) -> None:
    """A CloudWatch alarm in the emulator, in state OK (about something other than green)."""
    from orchestrator.local import daemon, emulator

    running = daemon.read(project.state / "emulator.json")
    assert running is not None
    cloudwatch = emulator.client("cloudwatch", running.url, project.state / "tls" / "cert.pem")
    cloudwatch.put_metric_alarm(
        AlarmName=name, MetricName="5XXError", Namespace="AWS/ApiGateway", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")


def test_a_bake_whose_metrics_arrive_late_never_passes_without_a_judged_datapoint_of_green(
    local_project: LocalProject,
) -> None:
    """Metrics later than the bake, and an alarm that is OK: the bake waits for green's
    datapoints. With no real user on green it judged nothing and fails (the alarm is no
    evidence about green); with real users it passes once their datapoints cover it."""
    _edit(local_project, "bake_s = 0", f"bake_s = 1\nmetric_delay_s = {DELAY_S}")
    _edit(local_project, "relative_p95_factor = 0", 'relative_p95_factor = 0\nalarms = ["e2e-quiet"]')
    _up(local_project)
    _alarm_ok(local_project, "e2e-quiet")

    code, error = local_project.json("promote", "--env", "local", "--model", str(local_project.model("2")))
    assert code == ExitCode.GATE_FAILED, error
    assert "step 1 at 20%: not judged: no metric of green judged" in error["message"], error
    assert "an OK alarm says nothing about green" in error["message"]
    report = _report(local_project)
    assert report["outcome"] == "rolled_back" and [s["name"] for s in report["steps"]] == ["pre-traffic"]
    (bake,) = report["bakes"]
    assert (bake["name"], bake["verdict"]) == ("step 1", "not_judged")
    assert {c["name"]: c["verdict"] for c in bake["checks"]} == {
        "Errors": "not_judged", "Throttles": "not_judged", "Duration Average": "not_judged",
        "alarm e2e-quiet": "ok",
    }  # fmt: skip
    assert _status(local_project)["live"] == {"version": "1", "weights": {}}

    with Viewers(_edge_url(local_project), BATCHES, pause_s=0.03) as users:
        code, result = local_project.json(
            "promote", "--env", "local", "--model", str(local_project.model("3"))
        )
    assert code == 0, result
    assert result["outcome"] == "promoted" and set(users.answers) == {200}
    assert [b["name"] for b in result["bakes"]] == ["step 1", "step 2"]
    for bake in result["bakes"]:
        assert bake["verdict"] == "ok", bake
        errors = next(c for c in bake["checks"] if c["name"] == "Errors")
        assert errors["verdict"] == "ok" and errors["kind"] == "metric", bake
        # the bake could not end before green's datapoints (DELAY_S late) came in
        assert bake["waited_s"] > 0 and bake["reason"], bake


FIRE = """
from pathlib import Path
from orchestrator.local import emulator

cloudwatch = emulator.client("cloudwatch", {url!r}, Path({ca!r}))
cloudwatch.set_alarm_state(AlarmName="e2e-5xx", StateValue="ALARM", StateReason="5xx at the edge")
"""


def test_without_a_bake_an_alarm_in_alarm_at_a_step_still_rolls_back(local_project: LocalProject) -> None:
    """bake_s = 0 skips the bake, not the alarms: one look at them per step. The alarm is OK
    when the promotion starts (checked before any traffic) and fires before step 1 (the
    pre-traffic hook sets it), as CodeDeploy stops a deployment on an alarm."""
    from orchestrator.local import daemon

    assert "bake_s = 0" in local_project.config.read_text()
    _edit(local_project, "relative_p95_factor = 0", 'relative_p95_factor = 0\nalarms = ["e2e-5xx"]')
    _edit(
        local_project, "lease_s = 3", 'lease_s = 3\nhooks = [{ on = "pre-traffic", run = "python fire.py" }]'
    )
    _up(local_project)
    _alarm_ok(local_project, "e2e-5xx")
    running = daemon.read(local_project.state / "emulator.json")
    assert running is not None
    ca = str(local_project.state / "tls" / "cert.pem")
    (local_project.root / "fire.py").write_text(FIRE.format(url=running.url, ca=ca))

    code, error = local_project.json("promote", "--env", "local", "--model", str(local_project.model("2")))
    assert code == ExitCode.GATE_FAILED, error
    assert "step 1 at 20%: alarm e2e-5xx: in ALARM" in error["message"], error
    report = _report(local_project)
    assert report["outcome"] == "rolled_back" and [s["name"] for s in report["steps"]] == ["pre-traffic"]
    (bake,) = report["bakes"]
    assert (bake["name"], bake["verdict"], bake["looks"]) == ("step 1", "breach", 1)
    assert [(c["name"], c["verdict"]) for c in bake["checks"]] == [("alarm e2e-5xx", "breach")]
    assert _status(local_project)["live"] == {"version": "1", "weights": {}}


def test_failures_without_a_version_header_at_a_10_percent_canary_are_charged_to_green(
    local_project: LocalProject,
) -> None:
    _edit(local_project, "canary_weight = 20", "canary_weight = 10")
    _edit(local_project, "min_samples = 30", "min_samples = 20")
    _up(local_project)
    # about 9 % of green's live requests crash; API Gateway answers those without green's
    # headers, so against all traffic (blue's 90 % included) they would be under 1 %, far
    # under the 5 % threshold; charged to green they are over it
    bad = faulty_function(local_project.root / "crashes", crash_every=11, live_only=True)
    code, error = local_project.json("promote", "--env", "local", "--function-dir", str(bad))
    assert code == ExitCode.GATE_FAILED, error
    assert (
        error["message"].startswith("gate step 1 failed:")
        and "got no answer from any version" in error["message"]
    )
    status = _status(local_project)
    assert status["live"] == {"version": "1", "weights": {}}
    assert status["promotion"]["phase"] == "rolled_back"


SMOKE = """
import json, os, urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import get_session

# the candidate route wants SigV4 in EDGESHIP_REGION, as a pre-traffic smoke test signs it:
# with the credentials in its environment (locally, the emulator's, given by the driver)
url, body = os.environ["EDGESHIP_CANDIDATE_URL"], json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]}).encode()
signed = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
credentials = get_session().get_credentials().get_frozen_credentials()
SigV4Auth(credentials, "execute-api", os.environ["EDGESHIP_REGION"]).add_auth(signed)
request = urllib.request.Request(url, body, dict(signed.headers.items()))
with urllib.request.urlopen(request, timeout=10) as response:
    assert response.headers["x-function-version"] == os.environ["EDGESHIP_GREEN"]
"""
KPI = """
echo "kpi check at $EDGESHIP_WEIGHT% of v$EDGESHIP_GREEN"
if [ "$EDGESHIP_WEIGHT" -ge 20 ]; then echo "conversion rate dropped" >&2; exit 3; fi
"""


def test_a_failing_step_hook_rolls_back_after_the_pre_traffic_hook_passed(
    local_project: LocalProject,
) -> None:
    (local_project.root / "smoke.py").write_text(SMOKE)
    (local_project.root / "kpi.sh").write_text(KPI)
    hooks = 'hooks = [{ on = "pre-traffic", run = "python smoke.py" }, { on = "step", run = "sh kpi.sh" }]'
    _edit(local_project, "lease_s = 3", f"lease_s = 3\n{hooks}")
    _up(local_project)
    # a developer's shell with temporary credentials: their token is not the emulator keys'
    code, error = local_project.json(
        "promote", "--env", "local", "--model", str(local_project.model("2")), AWS_SESSION_TOKEN="sso-token"
    )
    assert code == ExitCode.GATE_FAILED, error
    assert "step 1: hook `sh kpi.sh` (step) exited 3: conversion rate dropped" in error["message"], error
    status = _status(local_project)
    assert status["live"] == {"version": "1", "weights": {}} and status["promotion"]["phase"] == "rolled_back"
    hooks_run = _report(local_project)["hooks"]
    assert [(h["on"], h["step"], h["outcome"], h["exit_code"]) for h in hooks_run] == [
        ("pre-traffic", "pre-traffic", "passed", 0),
        ("step", "step 1", "failed", 3),
    ]


def _promote_in_background(project: LocalProject, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        project.argv("promote", "--env", "local", "--model", str(project.model("2")), "--json", *args),
        env=project.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _wait_paused(project: LocalProject, run: subprocess.Popen[str]) -> None:
    """Until the promotion run in the background pauses; it ending first fails the test
    with what it printed (a gate's verdict, an error) instead of a bare timeout."""

    def paused() -> bool:
        if run.poll() is not None:
            out, err = run.communicate()
            raise AssertionError(
                f"the promotion ended (exit {run.returncode}) before pausing: {out[-2000:]}{err[-2000:]}"
            )
        promotion = _status(project)["promotion"]
        return bool(promotion and promotion["phase"] == "paused")

    wait_for(paused, timeout=120)


def test_pause_at_holds_with_the_lease_alive_until_resumed(local_project: LocalProject) -> None:
    _edit(local_project, "canary_weight = 20", "canary_weight = 10")
    _edit(local_project, "min_samples = 30", "min_samples = 20")
    _up(local_project)
    run = _promote_in_background(local_project, "--pause-at", "10")
    try:
        _wait_paused(local_project, run)
        time.sleep(4)  # longer than lease_s (3 s): only renewals keep the lease
        held = _status(local_project)
        assert held["promotion"]["phase"] == "paused" and held["live"]["weights"] == {"2": 0.1}
        assert held["situation"] == "running" and held["lease"]["live"]
        shown = local_project.cli("status", "--env", "local").stdout
        assert "PAUSED at 10%" in shown and "orchestrator resume-promotion --env local" in shown
        code, resumed = local_project.json("resume-promotion", "--env", "local", EDGESHIP_HOST="approver")
        assert code == 0, resumed
        assert resumed["outcome"] == "resumed" and resumed["phase"] != "paused"
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["outcome"] == "promoted"
    (pause,) = report["pauses"]
    assert pause["weight"] == 10 and pause["seconds"] > 0 and pause["ended_by"].startswith("resumed by ")
    assert [b["name"] for b in report["bakes"]] == ["step 1", "step 1 (paused)", "step 2"]
    assert _status(local_project)["live"] == {"version": "2", "weights": {}}


def test_resume_promotion_drives_on_a_pause_whose_driver_was_killed(local_project: LocalProject) -> None:
    _up(local_project)
    code, none = local_project.json("resume-promotion", "--env", "local")
    assert code == ExitCode.USAGE and "nothing is paused" in none["message"]
    run = _promote_in_background(local_project, "--pause-at", "20")
    _wait_paused(local_project, run)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    # the config moved on meanwhile: the recorded plan (and its pause) still rules
    _edit(local_project, "canary_weight = 20", "canary_weight = 30")
    code, report = local_project.json("resume-promotion", "--env", "local", EDGESHIP_HOST="approver")
    assert code == 0, report
    assert report["outcome"] == "promoted"
    assert [b["name"] for b in report["bakes"]] == ["step 1 (paused)", "step 2"]
    status = _status(local_project)
    assert status["live"] == {"version": "2", "weights": {}} and status["lease"] is None


def test_a_bake_waiting_for_late_metrics_still_stops_on_a_signal(local_project: LocalProject) -> None:
    """The wait past bake_s for green's datapoints is part of the bake: Ctrl-C there rolls
    back at once, not when the wait would have ended (here half a minute later)."""
    _edit(local_project, "bake_s = 0", "bake_s = 1\nmetric_delay_s = 30")
    _up(local_project)
    run = _promote_in_background(local_project)
    try:
        assert run.stderr is not None
        for line in run.stderr:  # progress, one JSON object a line, until the bake starts waiting
            if "step 1: no metric of green judged yet: waiting up to" in line:
                break
        else:
            raise AssertionError(f"the promotion ended (exit {run.wait()}) before its bake waited")
        run.send_signal(signal.SIGINT)
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == ExitCode.INTERRUPTED, err[-2000:]
    report = _report(local_project)
    assert report["outcome"] == "rolled_back" and report["bakes"][0]["verdict"] == "stopped"
    assert _status(local_project)["live"] == {"version": "1", "weights": {}}
