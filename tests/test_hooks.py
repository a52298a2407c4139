"""orchestrator.release.hooks with real processes: outcomes, output, and that no hook process
outlives a timeout, a stop, an exception, or a kill -9 of the driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.release import hooks
from orchestrator.release.hooks import HookResult

REPO = Path(__file__).resolve().parents[1]
# Writes the guard's pid ($PPID), the shell's and a background child's, then blocks.
WRITE_PIDS = (
    "echo $PPID > pids.tmp; echo $$ >> pids.tmp; sleep 30 & echo $! >> pids.tmp; mv pids.tmp pids; wait"
)


def _run(tmp_path: Path, command: str, **kw: object) -> HookResult:
    args: dict = {"timeout_s": 20.0, "cwd": tmp_path, "env": {}, "log": tmp_path / "logs" / "hook.log"}
    args.update(kw)
    return hooks.run("step", command, **args)


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie is dead (PID 1 here may be slow to reap or never)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_gone(pids: list[int], within_s: float = 5.0) -> list[int]:
    """The pids still alive after a bounded wait (SIGKILLed processes vanish asynchronously)."""
    deadline = time.monotonic() + within_s
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _pids(tmp_path: Path) -> list[int]:
    return [int(line) for line in (tmp_path / "pids").read_text().split()]


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    """A failing test must not leave sleeps behind for the rest of the suite."""
    yield
    if (tmp_path / "pids").exists():
        for pid in _pids(tmp_path):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("command", "outcome", "exit_code", "tail"),
    [
        ("echo fine", "passed", 0, "fine"),
        ("echo one; echo two >&2; exit 3", "failed", 3, "one\ntwo"),
        ("seq 1 20; exit 1", "failed", 1, "16\n17\n18\n19\n20"),  # only the last lines
        ("no-such-command-xyz", "failed", 127, "/bin/sh: 1: no-such-command-xyz: not found"),
        ("kill -9 $$", "failed", 128 + 9, ""),  # death by a signal reads as 128+signal
    ],
)
def test_exit_status_and_output(
    tmp_path: Path, command: str, outcome: str, exit_code: int, tail: str
) -> None:
    result = _run(tmp_path, command)
    assert (result.outcome, result.exit_code, result.tail) == (outcome, exit_code, tail)
    assert result.ok is (outcome == "passed")
    assert result.log == "hook.log"


def test_log_holds_all_output(tmp_path: Path) -> None:
    result = _run(tmp_path, "seq 1 20; echo err >&2")
    assert result.ok
    assert (tmp_path / "logs" / result.log).read_text() == "".join(f"{i}\n" for i in range(1, 21)) + "err\n"


def test_env_is_os_environ_plus_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESHIP_FROM_DRIVER", "inherited")
    check = 'test "$EDGESHIP_WEIGHT" = 10 && test "$EDGESHIP_FROM_DRIVER" = inherited'
    assert _run(tmp_path, check, env={"EDGESHIP_WEIGHT": "10"}).outcome == "passed"
    assert _run(tmp_path, check, env={"EDGESHIP_WEIGHT": "20"}).outcome == "failed"


def test_cwd_is_honoured(tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    assert _run(tmp_path, "pwd", cwd=work).tail == str(work)


def test_project_named_orchestrator_does_not_shadow_the_guard(tmp_path: Path) -> None:
    fake = tmp_path / "orchestrator"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise SystemExit(99)\n")
    (fake / "hooks.py").write_text("raise SystemExit(98)\n")
    result = _run(tmp_path, "echo ran")
    assert (result.outcome, result.tail) == ("passed", "ran")


def test_missing_cwd_is_not_started(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = _run(tmp_path, "true", cwd=missing)
    assert (result.outcome, result.exit_code, result.ok) == ("not_started", None, False)
    assert (
        result.describe()
        == f"hook `true` (step) could not start: [Errno 2] No such file or directory: '{missing}'"
    )


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    # Blocks in `wait` with a background child: the shell and the sleep must die. The
    # timeout leaves room for the guard's interpreter to start on a loaded machine.
    result = _run(
        tmp_path, "echo $$ > pids.tmp; sleep 30 & echo $! >> pids.tmp; mv pids.tmp pids; wait", timeout_s=2.0
    )
    assert (result.outcome, result.exit_code) == ("timed_out", None)
    assert len(_pids(tmp_path)) == 2
    assert _wait_gone(_pids(tmp_path)) == []


def test_timeout_of_a_foreground_and_background_sleep(tmp_path: Path) -> None:
    result = _run(tmp_path, "sleep 30 & sleep 30; wait", timeout_s=0.5)
    assert (result.outcome, result.exit_code) == ("timed_out", None)


def test_should_stop_kills_everything(tmp_path: Path) -> None:
    polls = []

    def should_stop() -> object:
        polls.append(1)
        return "lease lost" if (tmp_path / "pids").exists() else None

    result = _run(tmp_path, WRITE_PIDS, should_stop=should_stop)
    assert (result.outcome, result.exit_code) == ("stopped", None)
    assert len(polls) >= 1
    assert _wait_gone(_pids(tmp_path)) == []


def test_exception_while_waiting_kills_everything(tmp_path: Path) -> None:
    def should_stop() -> object:
        if (tmp_path / "pids").exists():
            raise RuntimeError("heartbeat failed")
        return None

    with pytest.raises(RuntimeError, match="heartbeat failed"):
        _run(tmp_path, WRITE_PIDS, should_stop=should_stop)
    assert _wait_gone(_pids(tmp_path)) == []


def test_background_processes_do_not_outlive_a_finished_hook(tmp_path: Path) -> None:
    result = _run(tmp_path, "sleep 30 & echo $! > pids; echo started")
    assert (result.outcome, result.tail) == ("passed", "started")
    assert _wait_gone(_pids(tmp_path)) == []


def test_hook_dies_with_a_sigkilled_driver(tmp_path: Path) -> None:
    driver_code = textwrap.dedent(
        f"""
        from pathlib import Path
        from orchestrator.release import hooks
        hooks.run("step", {WRITE_PIDS!r}, timeout_s=60, cwd=Path({str(tmp_path)!r}), env={{}},
                  log=Path({str(tmp_path / "hook.log")!r}))
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_code], cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "pids").exists():
            assert driver.poll() is None, "the driver exited before the hook wrote its pids"
            assert time.monotonic() < deadline, "the hook never wrote its pids"
            time.sleep(0.05)
        pids = _pids(tmp_path)
        assert len(pids) == 3
        assert pids[0] != driver.pid  # the guard sits between driver and shell
        assert all(_alive(p) for p in pids)
        driver.send_signal(signal.SIGKILL)
        assert driver.wait(timeout=10) == -signal.SIGKILL
        assert _wait_gone(pids) == []  # guard, shell and background sleep
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@pytest.mark.parametrize(
    ("outcome", "exit_code", "seconds", "tail", "line"),
    [
        ("passed", 0, 1.23, "ok", "hook `scripts/smoke.sh` (pre-traffic) passed in 1.2s"),
        ("failed", 3, 2.0, "a\nb: 502", "hook `scripts/smoke.sh` (pre-traffic) exited 3: b: 502"),
        ("failed", 1, 2.0, "", "hook `scripts/smoke.sh` (pre-traffic) exited 1 (no output)"),
        ("timed_out", None, 60.04, "", "hook `scripts/smoke.sh` (pre-traffic) timed out after 60s"),
        (
            "timed_out",
            None,
            60.04,
            "waiting\nstill waiting",
            "hook `scripts/smoke.sh` (pre-traffic) timed out after 60s; last output: still waiting",
        ),
        (
            "stopped",
            None,
            4.56,
            "x",
            "hook `scripts/smoke.sh` (pre-traffic) was stopped after 4.6s because the promotion is stopping",
        ),
        (
            "not_started",
            None,
            0.0,
            "[Errno 13] Permission denied: '/srv'",
            "hook `scripts/smoke.sh` (pre-traffic) could not start: [Errno 13] Permission denied: '/srv'",
        ),
    ],
)
def test_describe(outcome: str, exit_code: int | None, seconds: float, tail: str, line: str) -> None:
    result = HookResult("pre-traffic", "scripts/smoke.sh", exit_code, seconds, outcome, tail, "hook.log")
    assert result.describe() == line


def test_to_dict() -> None:
    result = HookResult("step", "exit 3", 3, 0.5, "failed", "boom", "step-10.log")
    assert result.to_dict() == {
        "on": "step",
        "run": "exit 3",
        "exit_code": 3,
        "seconds": 0.5,
        "outcome": "failed",
        "tail": "boom",
        "log": "step-10.log",
        "ok": False,
    }


def test_describe_of_a_real_failure(tmp_path: Path) -> None:
    result = hooks.run(
        "pre-traffic",
        'echo "checking $EDGESHIP_URL"; echo "HTTP 502" >&2; exit 3',
        timeout_s=20,
        cwd=tmp_path,
        env={"EDGESHIP_URL": "http://candidate"},
        log=tmp_path / "pre.log",
    )
    assert (
        result.describe()
        == 'hook `echo "checking $EDGESHIP_URL"; echo "HTTP 502" >&2; exit 3` (pre-traffic) exited 3: HTTP 502'
    )
    assert result.tail == "checking http://candidate\nHTTP 502"
