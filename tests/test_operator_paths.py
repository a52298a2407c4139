"""Paths of a promotion no other test reached (issue 26, "Untested today"), end to end on one
local environment shared by the module (real moto server, real edge, real Locust, real hook
processes): a driver deposed while it runs, an alarm already firing before traffic moves, a
signal and an abort during a hook, an abort of a paused promotion, `promote --rollback` of an
interrupted promotion (the deploy workflow's recover job), and a promotion that first
finishes a rollback left behind.

Each test starts from and ends in a clean state (live whole on one version, nothing in
flight, no lease), so the tests share one `up`. Gates and SLOs are the fault matrix's (2 s
gates, lenient SLOs: only a fault fails them), its lease too (8 s: the module runs niced).
A dead driver of this machine is judged gone by its pid at once; a driver that is alive but
silent (SIGSTOP) only by its lease's expiry, as on another machine.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode
from orchestrator.base.processes import alive
from tests.conftest import SAMPLE_MODEL, LocalProject, locusts_of, wait_for
from tests.test_fault_matrix import FAST_TOML, _look

OTHER = {"EDGESHIP_HOST": "other-machine"}
ALARM = "paths-5xx"
HOLD = 'echo $$ > "{pid}"\nsleep 120\n'  # a hook that outlasts any test: only a stop ends it


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProject]:
    project = LocalProject(tmp_path_factory.mktemp("paths"))
    _configure(project)
    code, up = project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    project.versions = itertools.count(2)  # type: ignore[attr-defined]
    project.looker = project.target()  # type: ignore[attr-defined]
    try:
        yield project
    finally:
        project.stop()


def _configure(project: LocalProject, *, hooks: str = "", alarms: str = "") -> None:
    """The module's edgeship.toml, with `hooks` (a TOML list) and `alarms` (a TOML list) if given."""
    text = FAST_TOML.format(model=SAMPLE_MODEL)
    if hooks:
        text = text.replace("lease_s = 8\n", f"lease_s = 8\nhooks = {hooks}\n")
    if alarms:
        text = text.replace("relative_p95_factor = 0\n", f"relative_p95_factor = 0\nalarms = {alarms}\n")
    project.config.write_text(text)


def _model(project: LocalProject) -> str:
    return str(project.model(str(next(project.versions))))  # type: ignore[attr-defined]


def _start(project: LocalProject, log: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """A promote in the background, its output in files (a pipe nobody reads could block it)."""
    return subprocess.Popen(
        project.argv("promote", "--env", "local", "--json", *args), env=project.env(**env),
        stdout=(log.with_suffix(".out")).open("w"), stderr=(log.with_suffix(".err")).open("w"),
        text=True, start_new_session=True,
    )  # fmt: skip


def _ended(run: subprocess.Popen[str], log: Path, timeout: float = 180) -> tuple[int, Any, str]:
    """Exit code, the --json answer on stdout and the progress on stderr of a background promote."""
    try:
        run.wait(timeout=timeout)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
    out, err = log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()
    try:
        return run.returncode, json.loads(out), err
    except ValueError:
        raise AssertionError(f"not JSON (exit {run.returncode}): {out}\n{err[-3000:]}") from None


def _promote_until_the_hook_runs(
    project: LocalProject, tmp_path: Path, on: str
) -> tuple[subprocess.Popen[str], int]:
    """A promotion in the background whose hook `on` ("pre-traffic" or "step") holds until
    stopped; returns once the hook runs, with the hook's pid (its shell's)."""
    pid_file = tmp_path / "hook.pid"
    (tmp_path / "hold.sh").write_text(HOLD.format(pid=pid_file))
    _configure(project, hooks=f'[{{ on = "{on}", run = "sh {tmp_path / "hold.sh"}" }}]')
    run = _start(project, tmp_path / "driver", "--model", _model(project))

    def started() -> bool:
        return run.poll() is not None or (pid_file.exists() and pid_file.read_text().strip() != "")

    wait_for(started, 180)
    assert run.poll() is None, f"the promotion ended (exit {run.returncode}) before its hook ran"
    return run, int(pid_file.read_text())


def _report(project: LocalProject, promotion: str) -> dict[str, Any]:
    return dict(json.loads((project.root / "reports" / "local" / promotion / "report.json").read_text()))


def _clean_end(project: LocalProject, version: str, phase: str) -> dict[str, Any]:
    """The invariant after every test: live whole on `version`, the record ended in `phase`,
    no lease, nothing interrupted, no Locust left; the newest record, returned."""
    seen = _look(project)
    assert seen["live"] == {"version": version, "weights": {}}, seen["live"]
    assert seen["promotion"]["phase"] == phase, seen["promotion"]
    assert seen["lease"] is None and not seen["interrupted"], seen["lease"]
    assert locusts_of(project.root) == []
    return dict(seen["promotion"])


def _phases(record: dict[str, Any]) -> list[str]:
    return [t["phase"] for t in record["transitions"]]


def test_an_alarm_already_firing_fails_the_promotion_at_planned_without_moving_live(
    paths: LocalProject,
) -> None:
    blue = _look(paths)["live"]["version"]
    cloudwatch = paths.looker.cloudwatch_client()  # type: ignore[attr-defined]
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM, MetricName="5XXError", Namespace="AWS/ApiGateway", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx at the edge")
    _configure(paths, alarms=f'["{ALARM}"]')
    try:
        code, error = paths.json("promote", "--env", "local", "--model", _model(paths))
    finally:
        cloudwatch.delete_alarms(AlarmNames=[ALARM])
        _configure(paths)
    assert code == ExitCode.GATE_FAILED, error
    assert error["message"].startswith(
        f"alarm {ALARM} before any traffic moved: in ALARM; live is still on v{blue} at 100% (report: "
    ), error
    record = _clean_end(paths, blue, "failed")
    # the rollback of a promotion that never shifted: no step, no gate, no load test
    assert _phases(record) == ["planned", "rolling_back", "failed"], record
    report = _report(paths, record["id"])
    assert (report["steps"], report["bakes"], report["outcome"]) == ([], [], "failed"), report


def test_a_signal_during_a_hook_stops_the_hook_and_rolls_back(paths: LocalProject, tmp_path: Path) -> None:
    blue = _look(paths)["live"]["version"]
    try:
        run, hook = _promote_until_the_hook_runs(paths, tmp_path, "pre-traffic")
        run.send_signal(signal.SIGTERM)
        code, error, _progress = _ended(run, tmp_path / "driver")
    finally:
        _configure(paths)
    assert code == ExitCode.INTERRUPTED, error
    assert "interrupted (SIGTERM)" in error["message"], error
    wait_for(lambda: not alive(hook), 10)  # the hook's whole group was killed, not left running
    record = _clean_end(paths, blue, "failed")  # stopped before any live traffic moved
    hooks = _report(paths, record["id"])["hooks"]
    assert [(h["on"], h["outcome"], h["exit_code"]) for h in hooks] == [("pre-traffic", "stopped", None)]


def test_an_abort_during_a_step_hook_stops_the_hook_and_rolls_back(
    paths: LocalProject, tmp_path: Path
) -> None:
    blue = _look(paths)["live"]["version"]
    try:
        run, hook = _promote_until_the_hook_runs(paths, tmp_path, "step")
        assert _look(paths)["live"]["weights"] != {}  # the step hook runs with live split
        code, aborted = paths.json("abort", "--env", "local", **OTHER)
        driver, error, _progress = _ended(run, tmp_path / "driver")
    finally:
        _configure(paths)
    assert code == 0 and aborted["outcome"] == "aborted", aborted
    assert driver == ExitCode.ABORTED, error
    assert (
        "aborted by an operator" in error["message"]
        and f"live is back on v{blue} at 100%" in error["message"]
    )
    wait_for(lambda: not alive(hook), 10)
    record = _clean_end(paths, blue, "aborted")
    hooks = _report(paths, record["id"])["hooks"]
    assert [(h["on"], h["step"], h["outcome"]) for h in hooks] == [("step", "step 1", "stopped")]


def test_an_abort_of_a_paused_promotion_rolls_it_back(paths: LocalProject, tmp_path: Path) -> None:
    blue = _look(paths)["live"]["version"]
    run = _start(paths, tmp_path / "driver", "--model", _model(paths), "--pause-at", "50")

    def paused() -> bool:
        promotion = _look(paths)["promotion"]
        return run.poll() is not None or bool(promotion and promotion["phase"] == "paused")

    wait_for(paused, 180)
    assert run.poll() is None, "the promotion ended before it paused"
    code, aborted = paths.json("abort", "--env", "local", **OTHER)
    driver, error, _progress = _ended(run, tmp_path / "driver")
    assert code == 0 and aborted["outcome"] == "aborted", aborted
    assert driver == ExitCode.ABORTED, error
    record = _clean_end(paths, blue, "aborted")
    assert _phases(record)[-3:] == ["paused", "rolling_back", "aborted"], record
    (pause,) = _report(paths, record["id"])["pauses"]
    assert (pause["weight"], pause["ended_by"]) == (50, "aborted by an operator (`orchestrator abort`)")


def test_a_driver_deposed_while_it_runs_stops_without_touching_live(
    paths: LocalProject, tmp_path: Path
) -> None:
    """The driver falls silent after its first shift (SIGSTOP: a suspended laptop, a frozen
    VM) long enough for its lease to run out; another machine resumes the promotion and
    finishes it. The first driver, woken, finds the lease or the record taken: it exits 12
    and touches nothing."""
    model = _model(paths)
    run = _start(paths, tmp_path / "driver", "--model", model,
                 EDGESHIP_FAULT="done-shifting=sleep(20000)", EDGESHIP_HOST="driver-machine")  # fmt: skip

    def shifted() -> bool:
        seen = _look(paths)
        return run.poll() is not None or bool(
            seen["promotion"] and seen["promotion"]["phase"] == "shifting" and seen["live"]["weights"]
        )

    wait_for(shifted, 180)
    assert run.poll() is None, "the promotion ended before its first shift"
    os.kill(run.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: _look(paths)["situation"] == "interrupted", 60)  # the lease ran out
        code, resumed = paths.json("promote", "--env", "local", "--resume", **OTHER)
    finally:
        os.kill(run.pid, signal.SIGCONT)
    driver, error, _progress = _ended(run, tmp_path / "driver")
    assert code == 0 and resumed["outcome"] == "promoted", resumed
    assert driver == ExitCode.DEPOSED, error
    # the heartbeat's renewal or the record write, whichever ran first, found the take-over
    assert error["error"] in ("LeaseLostError", "FencedError"), error
    record = _clean_end(paths, resumed["green"], "promoted")
    assert record["id"] == resumed["id"] and "@other-machine:" in record["holder"], record


def test_promote_rollback_finishes_an_interrupted_promotion_on_blue(paths: LocalProject) -> None:
    # What the deploy workflow's recover job runs when asked to roll back (`promote --rollback`).
    blue = _look(paths)["live"]["version"]
    killed = paths.cli(
        "promote", "--env", "local", "--model", _model(paths), EDGESHIP_FAULT="done-shifting=kill"
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    seen = _look(paths)
    assert seen["interrupted"] and seen["live"]["weights"] != {}, seen  # killed with live split
    code, result = paths.json("promote", "--env", "local", "--rollback")
    assert code == 0, result
    assert (result["outcome"], result["blue"]) == ("aborted", blue), result
    record = _clean_end(paths, blue, "aborted")
    assert _phases(record)[-3:] == ["shifting", "rolling_back", "aborted"], record
    assert "rolled back by `promote --rollback`" in record["transitions"][-2]["note"], record


def test_a_promotion_first_finishes_a_rollback_left_behind(paths: LocalProject) -> None:
    from orchestrator.release.record import RecordStore

    blue = _look(paths)["live"]["version"]
    killed = paths.cli(
        "promote", "--env", "local", "--model", _model(paths),
        EDGESHIP_FAULT="enter-gating=raise;enter-rolling-back=kill",
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    left = _look(paths)
    assert left["promotion"]["phase"] == "rolling_back" and left["live"]["weights"] != {}, left
    done = paths.cli("promote", "--env", "local", "--model", _model(paths), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"finishing the interrupted rollback of {left['promotion']['id']} first" in done.stderr
    report = json.loads(done.stdout)
    assert (report["outcome"], report["blue"]) == ("promoted", blue), report
    record = _clean_end(paths, report["green"], "promoted")
    target = paths.looker  # type: ignore[attr-defined]
    history = {r.id: r for r in RecordStore(target.s3_client(), target.bucket, "local").history(5)}
    finished = history[left["promotion"]["id"]]
    assert (finished.phase, finished.cause) == ("rolled_back", "error"), finished
    assert record["id"] != finished.id and record["blue"] == blue
