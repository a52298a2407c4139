"""The stacks module and the CLI against the real Pulumi engine and a local file backend."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.base.errors import ExitCode
from orchestrator.config import settings as settings_mod
from orchestrator.stacks import engine as stacks
from tests.conftest import Project, wait_for
from tests.engine_program import SECRET_MARKER

PROGRAM = "tests.engine_program:program"


def _stacks(project: Project, pulumi_root: Path) -> stacks.Stacks:
    settings = settings_mod.load(project.config)
    spec = stacks.spec_for(settings, settings.environment("test"), pulumi_root=pulumi_root)
    return stacks.Stacks(spec, stacks.load_program(PROGRAM))


def _slow_up(
    project: Project, delay_s: int, sigint_ignored: bool = False, hold: Path | None = None
) -> subprocess.Popen[str]:
    """`orchestrator up` whose dynamic resource takes delay_s (with `hold`: until that file
    exists, delay_s at most); returns once the engine is inside it."""
    started = project.root / "started"
    run = project.popen(
        "up", "--yes", "--env", "test", "--program", PROGRAM, sigint_ignored=sigint_ignored,
        EDGESHIP_TEST_DELAY_S=str(delay_s), EDGESHIP_TEST_STARTED_FILE=str(started),
        EDGESHIP_TEST_HOLD_FILE=str(hold or ""),
    )  # fmt: skip
    # An `up` that ended before reaching the resource is the failure to show, not a timeout.
    wait_for(lambda: started.exists() or run.poll() is not None)
    if not started.exists():
        out, err = run.communicate()
        raise AssertionError(
            f"`up` ended (exit {run.returncode}) before the engine reached the slow resource:\n{err[-3000:]}\n{out[-1000:]}"
        )
    return run


def test_up_outputs_idempotence_config_change_and_secret(project: Project, pulumi_root: Path) -> None:
    driver = _stacks(project, pulumi_root)

    first = driver.up()
    assert first.changes.get("create", 0) >= 2  # the stack itself and the dynamic resource
    assert first.outputs["memoryMb"] == "512"
    assert first.outputs["stamp"].startswith("memory=512@")
    assert first.outputs["token"] == "[secret]"

    # Outputs round-trip through the state; secrets only on request.
    assert driver.outputs()["token"] == "[secret]"
    assert driver.outputs(show_secrets=True)["token"] == SECRET_MARKER

    # The secret is encrypted in the state file.
    state_files = list(project.backend.rglob("test.json"))
    assert state_files, "no state file written"
    assert SECRET_MARKER not in state_files[0].read_text()
    assert "memory=512" in state_files[0].read_text()

    # A second up changes nothing.
    second = _stacks(project, pulumi_root).up()
    assert not second.changed, second.changes

    # A config change in edgeship.toml shows in preview, and preview changes nothing.
    project.set_memory(1024)
    planned = _stacks(project, pulumi_root).preview()
    assert planned.changes.get("update") == 1, planned.changes
    assert _stacks(project, pulumi_root).outputs()["memoryMb"] == "512"

    history = _stacks(project, pulumi_root).history()
    assert [h["kind"] for h in history][:2] == ["update", "update"]
    assert all(h["result"] == "succeeded" for h in history)


def test_cli_up_json_then_destroy_and_remove(project: Project) -> None:
    up = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM, "--json")
    assert up.returncode == 0, up.stderr
    result = json.loads(up.stdout)
    assert result["operation"] == "up" and result["outputs"]["memoryMb"] == "512"
    # progress went to stderr as JSON lines
    events = [json.loads(line) for line in up.stderr.splitlines() if line.startswith("{")]
    assert any(e["kind"] == "resource" and e.get("status") == "done" for e in events)

    outputs = project.cli("outputs", "--env", "test", "--program", PROGRAM, "--json")
    assert json.loads(outputs.stdout)["memoryMb"] == "512"

    unconfirmed = project.cli("destroy", "--env", "test", "--program", PROGRAM)
    assert unconfirmed.returncode == ExitCode.REFUSED
    assert "not confirmed" in unconfirmed.stderr

    gone = project.cli("destroy", "--env", "test", "--program", PROGRAM, "--yes", "--remove", "--json")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["changes"].get("delete", 0) >= 2
    assert not list(project.backend.rglob("test.json")), "stack not removed"


def test_concurrent_up_is_refused_with_lock_holder(project: Project) -> None:
    # The first `up` holds the lock until the second has answered (a file, not a delay: on a
    # starved machine the second's start-up took longer than any fixed delay)
    hold = project.root / "hold"
    slow = _slow_up(project, delay_s=300, hold=hold)
    try:
        second = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM, "--json")
        assert second.returncode == ExitCode.STACK_LOCKED, second.stdout + second.stderr
        error = json.loads(second.stdout)
        assert error["error"] == "StackLockedError"
        assert "locked" in error["message"] and "pid" in error["message"]
        assert "orchestrator unlock --env test" in error["fix"]
    finally:
        hold.write_text("go on")
        _out, err = slow.communicate(timeout=420)
    assert slow.returncode == 0, err


# sigint_ignored: a background job of a non-interactive shell (a CI wrapper, make's niced
# streams) starts with SIGINT ignored, and Python then installs no KeyboardInterrupt: a
# cancel was ignored and `up` ran to its end (exit 0), unless the CLI restores it.
@pytest.mark.parametrize("sigint_ignored", [False, True])
def test_sigint_during_up_leaves_a_usable_stack(project: Project, sigint_ignored: bool) -> None:
    run = _slow_up(project, delay_s=5, sigint_ignored=sigint_ignored)
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=120)
    assert run.returncode == ExitCode.INTERRUPTED, err
    assert "cancelled" in err

    again = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["outputs"]["memoryMb"] == "512"


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a handler of its own for SIGINT (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_the_cli_installs_pythons_sigint_handler_whatever_it_inherited() -> None:
    from orchestrator.base.interrupts import cancel_on_sigint

    def own(signum: int, frame: object) -> None:
        pass

    before = signal.getsignal(signal.SIGINT)
    try:
        for inherited, expected in ((signal.SIG_IGN, signal.default_int_handler),
                                    (signal.SIG_DFL, signal.default_int_handler),
                                    (signal.default_int_handler, signal.default_int_handler),
                                    (own, own)):  # fmt: skip
            signal.signal(signal.SIGINT, inherited)
            cancel_on_sigint()
            assert signal.getsignal(signal.SIGINT) is expected, inherited
    finally:
        signal.signal(signal.SIGINT, before)


def test_sigint_right_after_start_cancels_before_the_engine_runs(project: Project) -> None:
    # Started as a non-interactive shell's background job (SIGINT ignored), signalled as soon
    # as the CLI holds a handler (its first act), long before the engine could start: the
    # command is cancelled, exit 130 without a traceback, and nothing was applied.
    run = project.popen("up", "--yes", "--env", "test", "--program", PROGRAM, sigint_ignored=True)
    while not _catches_sigint(run.pid) and run.poll() is None:
        time.sleep(0.002)
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=120)
    assert run.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and "interrupted" in err
    assert not list(project.backend.rglob("test.json")), "a stack was written"
    assert not list(project.backend.rglob("*.json")), "the backend holds a lock or a stack"

    again = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM, "--json")
    assert again.returncode == 0, again.stdout + again.stderr


def test_stale_lock_from_a_killed_run_can_be_cleared(project: Project) -> None:
    run = _slow_up(project, delay_s=30)
    # kill -9 the whole tree: nothing gets to release the lock
    import psutil

    for proc in [*psutil.Process(run.pid).children(recursive=True), psutil.Process(run.pid)]:
        proc.kill()
    run.wait(timeout=30)

    locked = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM)
    assert locked.returncode == ExitCode.STACK_LOCKED, locked.stderr
    cleared = project.cli("unlock", "--env", "test", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert len(json.loads(cleared.stdout)["removed"]) == 1
    recovered = project.cli("up", "--yes", "--env", "test", "--program", PROGRAM)
    assert recovered.returncode == 0, recovered.stderr


def test_destroy_prod_needs_force(project: Project) -> None:
    refused = project.cli("destroy", "--env", "prod", "--yes", "--program", PROGRAM)
    assert refused.returncode == ExitCode.REFUSED
    assert "--force" in refused.stderr


def test_missing_passphrase_is_a_clear_config_error(project: Project, pulumi_root: Path) -> None:
    settings = settings_mod.load(project.config)
    with pytest.raises(Exception) as info:
        stacks.spec_for(settings, settings.environment("test"), pulumi_root=pulumi_root, environ={})
    assert "PULUMI_CONFIG_PASSPHRASE" in str(info.value)


@pytest.mark.parametrize("command", ["status", "abort", "rollback", "outputs", "history", "refresh"])
def test_commands_on_a_never_deployed_environment_say_what_to_run(project: Project, command: str) -> None:
    done = project.cli(command, "--env", "test", "--json")
    assert done.returncode == ExitCode.USAGE, done.stderr
    error = json.loads(done.stdout)
    assert "Traceback" not in done.stderr
    assert error["error"] == "NotDeployedError"
    assert error["message"] == "environment 'test' has no stack yet (nothing deployed)"
    assert "orchestrator up --env test" in error["fix"]


def test_a_stack_created_but_never_deployed_says_what_to_run(project: Project) -> None:
    # bootstrap creates the stack but deploys nothing: no outputs yet (a preview creates
    # nothing: tests/test_state_backend.py)
    bootstrap = project.cli("bootstrap", "--env", "test", "--json")
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert json.loads(bootstrap.stdout)["created"] is True
    done = project.cli("status", "--env", "test", "--json")
    assert done.returncode == ExitCode.USAGE, done.stderr
    error = json.loads(done.stdout)
    assert (
        error["message"] == "environment 'test' is not deployed yet (its stack has no 'functionName' output)"
    )
    assert "orchestrator up --env test" in error["fix"]
