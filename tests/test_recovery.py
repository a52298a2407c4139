"""Recovery from any machine: abort, resume and rollback after kill -9, signals, races and
config changes, on the local environment (real moto server, real Locust, real edge).

"Another machine" is another EDGESHIP_HOST: it cannot see the first machine's pids, so
only the lease's expiry tells it the driver is gone, exactly as on a second CI runner."""

from __future__ import annotations

import signal
import subprocess
import time

from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject, locusts_of, wait_for
from tests.test_local_release import (
    KILL_HOLD_S,
    _kill_group,
    _promotion_at_canary,
    _start_slow_promotion,
    _status,
    _up,
)

OTHER = {"EDGESHIP_HOST": "other-machine"}


def _assert_clean_end(project: LocalProject, version: str, phase: str) -> None:
    code, status = project.json("status", "--env", "local", **OTHER)
    assert code == 0, status
    assert status["live"] == {"version": version, "weights": {}}
    assert status["promotion"]["phase"] == phase and status["lease"] is None and not status["interrupted"]
    assert locusts_of(project.root) == []


def test_kill_9_then_abort_from_another_machine(local_project: LocalProject) -> None:
    run = _promotion_at_canary(local_project, hold_s=KILL_HOLD_S)
    _kill_group(run)
    killed_at = time.monotonic()
    assert (
        locusts_of(local_project.root) == []
        or wait_for(lambda: locusts_of(local_project.root) == [], 5) is None
    )

    code, seen = local_project.json("status", "--env", "local", **OTHER)
    # Another machine cannot know the driver died until its lease runs out (lease_s = 3):
    # running before that, interrupted after (a slow machine can take longer to look).
    # (expires_in_s is told as of the look that judged the lease; 0.0 is a rounded instant)
    expected = "running" if seen["lease"]["expires_in_s"] > 0 else "interrupted"
    assert code == 0 and (seen["situation"] == expected or seen["lease"]["expires_in_s"] == 0.0), seen
    assert seen["situation"] == ("running" if seen["lease"]["live"] else "interrupted"), seen
    code, result = local_project.json("abort", "--env", "local", **OTHER)
    assert code == 0, result
    assert result["outcome"] == "aborted" and result["live"] == "1" and result["weights"] == {}
    assert time.monotonic() - killed_at < 3 + 30  # lease_s + 30 s
    _assert_clean_end(local_project, "1", "aborted")


def test_abort_from_another_machine_stops_a_live_driver(local_project: LocalProject) -> None:
    # Gates of 20 s: seeing `gating` takes a status or two (a CLI run each, a few seconds on a
    # busy machine), and the abort must land before the promotion could finish: with 6 s gates
    # the driver finished both steps first (abort then says "finished (promoted) before it saw
    # the abort", which is right, but not this test's case).
    run = _promotion_at_canary(local_project, gate_s=20)
    wait_for(lambda: _status(local_project)["promotion"]["phase"] == "gating", 30)  # Locust is running
    code, result = local_project.json("abort", "--env", "local", **OTHER)
    _out, err = run.communicate(timeout=90)
    assert run.returncode == ExitCode.ABORTED, (code, result, err)
    assert "aborted by an operator" in err and "live is back on v1 at 100%" in err
    assert code == 0 and result["outcome"] == "aborted", result
    _assert_clean_end(local_project, "1", "aborted")


def test_resume_and_rollback_with_nothing_interrupted_publish_nothing(local_project: LocalProject) -> None:
    _up(local_project)
    for flag in ("--rollback", "--resume"):
        code, error = local_project.json(
            "promote", "--env", "local", flag, "--model", str(local_project.model("2"))
        )
        assert code == ExitCode.USAGE, error
        assert "has none" in error["message"] and "nothing was published" in error["fix"]
    assert _status(local_project)["versions"] == ["1"]
    code, result = local_project.json("abort", "--env", "local")
    assert code == 0 and result["outcome"] == "nothing_to_abort"


def _interrupted_elsewhere(project: LocalProject) -> bool:
    code, status = project.json("status", "--env", "local", **OTHER)
    return code == 0 and status["situation"] == "interrupted"


def test_two_machines_racing_to_resume_one_wins(local_project: LocalProject) -> None:
    run = _promotion_at_canary(local_project, hold_s=KILL_HOLD_S)
    _kill_group(run)
    wait_for(lambda: _interrupted_elsewhere(local_project), 30)  # the dead driver's lease ran out
    racers = [
        subprocess.Popen(
            local_project.argv("promote", "--env", "local", "--resume", "--json"),
            env=local_project.env(EDGESHIP_HOST=host),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in ("runner-a", "runner-b")
    ]
    outputs = [p.communicate(timeout=180) for p in racers]
    codes = sorted(p.returncode for p in racers)
    assert codes == [0, ExitCode.LOCKED], outputs
    _assert_clean_end(local_project, "2", "promoted")


def test_rollback_cannot_undercut_a_running_promotion(local_project: LocalProject) -> None:
    # Gates of 20 s: `rollback` and `up` are a CLI run each (several seconds on a busy
    # machine), and `up` must look while the promotion runs: with 6 s gates it once looked
    # after the promotion had ended, and rightly went ahead (CI, 2026-12-07).
    run = _promotion_at_canary(local_project, gate_s=20)
    code, error = local_project.json("rollback", "--env", "local", **OTHER)
    assert code == ExitCode.LOCKED and "orchestrator abort" in error["fix"], error
    code, error = local_project.json("up", "--yes", "--env", "local", **OTHER)
    assert code == ExitCode.LOCKED and "is running" in error["message"], error
    _out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err
    _assert_clean_end(local_project, "2", "promoted")


def test_resume_uses_the_recorded_plan_after_a_config_change(local_project: LocalProject) -> None:
    run = _promotion_at_canary(local_project, hold_s=KILL_HOLD_S)  # canary: 20 %, then 100 %
    _kill_group(run)
    wait_for(lambda: _interrupted_elsewhere(local_project), 30)
    text = local_project.config.read_text().replace(
        'schedule = "canary"', 'schedule = "linear"\nlinear_steps = 4'
    )
    local_project.config.write_text(text)
    done = local_project.cli("promote", "--env", "local", "--resume", "--json", **OTHER)
    assert done.returncode == 0, done.stderr
    assert "resuming with the recorded steps" in done.stderr
    import json

    report = json.loads(done.stdout)
    assert [s["weight"] for s in report["steps"] if s["attempt"] == 1] == [20, 100]
    _assert_clean_end(local_project, "2", "promoted")


def test_two_signals_during_the_rollback_do_not_cut_it(local_project: LocalProject) -> None:
    # The first SIGTERM (at the canary) starts the rollback; two more signals sent while the
    # record says rolling_back (the driver is held there 8 s) are acknowledged only. Looks are
    # in-process (a CLI run each could miss an 8 s window on a busy machine).
    from orchestrator.base.progress import NullReporter
    from orchestrator.release.operations import Release

    _up(local_project)
    target = local_project.target()

    def phase() -> str | None:
        found = Release(target, target.env, NullReporter(), local_project.root / "reports").status()
        return found["promotion"]["phase"] if found["promotion"] else None

    run = _start_slow_promotion(local_project, hold_s=8, faults="enter-rolling-back=sleep(8000)")
    wait_for(lambda: phase() == "baking", 120)  # held at the canary, live split
    run.send_signal(signal.SIGTERM)
    wait_for(lambda: phase() == "rolling_back", 60)
    for sig in (signal.SIGINT, signal.SIGTERM):
        run.send_signal(sig)
        time.sleep(0.05)
    assert phase() == "rolling_back"  # both landed during the rollback, not before it
    _out, err = run.communicate(timeout=60)
    assert run.returncode == ExitCode.INTERRUPTED, err
    assert "please wait" in err and "live is back on v1 at 100%" in err
    _assert_clean_end(local_project, "1", "rolled_back")
