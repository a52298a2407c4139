"""No wedge: a rollback whose blue no longer exists (a version clean-up, a replaced function)
is refused before it writes anything, and `abort --to VERSION` finishes what an older
edgeship left sticky. On the local environment (real moto server, real edge, real Locust);
blue is deleted with boto3 against the emulator, as a user's clean-up would."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject
from tests.test_local_release import _status, _up

OTHER = {"EDGESHIP_HOST": "other-machine"}


def _promoted_then_blue_deleted(project: LocalProject) -> Any:
    """v1 -> v2 promoted, then v1 deleted; returns the environment's target (in this process)."""
    _up(project)
    code, report = project.json(  # all at once: one gate fewer than the canary, the same record
        "promote", "--env", "local", "--schedule", "all-at-once", "--model", str(project.model("2"))
    )
    assert code == 0 and report["outcome"] == "promoted", report
    target = project.target()
    target.lambda_client().delete_function(FunctionName=target.function_name, Qualifier="1")
    assert _status(project)["versions"] == ["2"]
    return target


def test_rollback_to_a_deleted_blue_is_refused_and_leaves_the_environment_usable(
    local_project: LocalProject,
) -> None:
    target = _promoted_then_blue_deleted(local_project)
    before = _status(local_project)["promotion"]

    code, error = local_project.json("rollback", "--env", "local", **OTHER)
    assert code == ExitCode.REFUSED, error
    assert error["message"].startswith(
        f"cannot roll back promotion {before['id']} of 'local': its blue, v1, "
    )
    assert "is no longer published" in error["message"] and "nothing was changed" in error["message"]
    assert "abort --env local --to VERSION" in error["fix"]
    status = _status(local_project)
    assert status["promotion"]["phase"] == "promoted" and status["lease"] is None, status
    assert status["promotion"]["transitions"] == before["transitions"]  # nothing written
    assert status["live"] == {"version": "2", "weights": {}}

    # What an older edgeship's rollback left: a sticky rolling_back record to the deleted v1.
    from orchestrator.release import machine
    from orchestrator.release.record import RecordStore

    records = RecordStore(target.s3_client(), target.bucket, "local")
    record, etag = records.read()
    wedged = machine.advance(record, machine.Outcome.ABORT, now=time.time(), by="old@vm", reason="rollback")
    records.write(wedged, etag)

    for command in (("rollback",), ("abort",), ("promote", "--rollback")):
        code, error = local_project.json(*command, "--env", "local", **OTHER)
        assert code == ExitCode.REFUSED, (command, error)
        assert "its blue, v1, is no longer published" in error["message"], error
        assert "`--to 2` keeps the version live serves now" in error["fix"], error
    code, error = local_project.json("up", "--yes", "--env", "local")
    assert code == ExitCode.PROMOTION_INTERRUPTED and "interrupted" in error["message"], error

    code, result = local_project.json("abort", "--env", "local", "--to", "2", **OTHER)
    assert code == 0, result
    assert result["outcome"] == "rolled_back" and result["live"] == "2" and result["weights"] == {}, result
    status = _status(local_project)
    assert status["promotion"]["phase"] == "rolled_back" and status["promotion"]["blue"] == "2"
    assert "(blue was v1)" in status["promotion"]["transitions"][-2]["note"], status["promotion"]
    assert status["lease"] is None and not status["interrupted"]

    code, result = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, result
    code, result = local_project.json("rollback", "--env", "local")  # the closed record agrees with live
    assert code == 0 and result["live"] == "2" and result["weights"] == {}, result

    # Split by hand with nothing in flight: `abort` puts live on where the last record ended.
    lam = target.lambda_client()
    extra = _another_version(lam, target.function_name)
    _split(lam, target.function_name, "2", extra)
    code, result = local_project.json("abort", "--env", "local", **OTHER)
    assert code == 0, result
    assert result["outcome"] == "unsplit" and result["live"] == "2" and result["weights"] == {}, result
    assert result["was"] == f"live is on v2 + v{extra} 30%" and result["promotion"] == before["id"]
    assert _status(local_project)["lease"] is None


def _another_version(lam: Any, function: str) -> str:
    """A new published version, made as a user would by hand (a config change, then publish)."""
    lam.update_function_configuration(FunctionName=function, Description="changed by hand")
    lam.get_waiter("function_updated_v2").wait(FunctionName=function)
    return str(lam.publish_version(FunctionName=function)["Version"])


def _split(lam: Any, function: str, version: str, other: str) -> None:
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion=version,
                     RoutingConfig={"AdditionalVersionWeights": {other: 0.3}})  # fmt: skip


def test_abort_with_nothing_in_flight_does_not_ignore_a_split_live(local_project: LocalProject) -> None:
    # No promotion ever recorded: nothing says which version live belongs on, so abort says
    # so (exit 6) and names the fix; `abort --to` applies it.
    _up(local_project)
    target = local_project.target()
    lam = target.lambda_client()
    extra = _another_version(lam, target.function_name)
    _split(lam, target.function_name, "1", extra)

    code, error = local_project.json("abort", "--env", "local")
    assert code == ExitCode.REFUSED, error
    assert error["message"] == f"live is on v1 + v{extra} 30% but no promotion of 'local' is in flight", error
    assert error["fix"] == (
        f"`orchestrator abort --env local --to VERSION` puts live on one version (published: 1, {extra})"
    )
    code, result = local_project.json("abort", "--env", "local", "--to", extra)
    assert code == 0 and result == {"env": "local", "outcome": "moved", "live": extra, "weights": {}}, result
    code, error = local_project.json("abort", "--env", "local", "--to", "7")
    assert code == ExitCode.USAGE and error["message"].startswith("v7 is not a published version"), error


def test_a_failed_record_write_after_a_shift_rolls_back_while_the_lease_holds(
    local_project: LocalProject,
) -> None:
    # The write that records live's move to the canary weight fails (S3 away for that one
    # write); the lease still holds, so the driver puts live back on blue instead of stopping
    # with it split, then records the rollback.
    _up(local_project)
    code, error = local_project.json(
        "promote", "--env", "local", "--model", str(local_project.model("2")),
        EDGESHIP_FAULT="write-after-shift=raise",
    )  # fmt: skip
    assert code == ExitCode.ERROR, error
    assert error["message"].startswith("promotion "), error
    assert (
        "stopped: error: could not write the record (InjectedFault: injected fault at write-after-shift); "
        "live is back on v1 at 100%"
    ) in error["message"], error
    status = _status(local_project)
    assert status["live"] == {"version": "1", "weights": {}}, status
    assert status["promotion"]["phase"] == "rolled_back" and status["promotion"]["cause"] == "error"
    assert status["lease"] is None and not status["interrupted"]


@pytest.mark.parametrize("action", ["kill", "sigterm"])
def test_a_driver_stopped_between_its_unrecorded_rollback_and_the_record_leaves_a_job_any_machine_finishes(
    local_project: LocalProject, action: str
) -> None:
    # As above, and the driver is stopped right after it put live back on blue, before it
    # recorded the rollback: the record in S3 still says the canary shift is in flight.
    # kill -9: live is whole (the rollback's alias write came first) and `abort` from another
    # machine closes the record. SIGTERM: a rollback in progress is never abandoned half-way,
    # so the driver records it itself.
    _up(local_project)
    driver = local_project.cli(
        "promote", "--env", "local", "--model", str(local_project.model("2")), "--json",
        EDGESHIP_FAULT=f"write-after-shift=raise;rolled-back-unrecorded={action}",
        EDGESHIP_HOST="driver-machine",
    )  # fmt: skip
    code = driver.returncode
    seen = _status(local_project)
    assert seen["live"] == {"version": "1", "weights": {}}, seen  # whole before any recovery
    if action == "kill":
        assert code == -9, driver.stderr[-3000:]
        assert seen["promotion"]["phase"] == "shifting", seen  # in flight, by a dead driver
        code, result = local_project.json("abort", "--env", "local", EDGESHIP_HOST="recovery-machine")
        assert code == 0, result
        want = "aborted"
    else:
        assert code == ExitCode.ERROR, driver.stderr[-3000:]
        error = json.loads(driver.stdout)
        assert "live is back on v1 at 100%" in error["message"], error
        want = "rolled_back"
    status = _status(local_project)
    assert status["live"] == {"version": "1", "weights": {}}, status
    assert status["promotion"]["phase"] == want and status["promotion"]["blue"] == "1", status
    assert status["lease"] is None and not status["interrupted"], status
    assert _up(local_project)["outputs"]["publishedVersion"], status  # the environment is usable
