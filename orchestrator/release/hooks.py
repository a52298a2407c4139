"""Runs one promotion hook (a Flagger webhook, an Argo analysis job): a user's shell command
whose non-zero exit fails the gate it belongs to.

A hook is arbitrary user code that may start its own children (`sleep 100 & wait`), so it
runs in a process group of its own (a terminal's Ctrl-C reaches only the driver, which
decides) and that whole group is killed on timeout, on stop, and on every exit path of
`run`.

None of that helps when the driver is killed with SIGKILL (CI runners and the fault tests
do this): no `finally` runs, and the hook would keep probing, or worse, mutating, an
environment nobody is promoting any more. Hence the guard: the hook is started through
`python -m orchestrator.release.hooks <driver-pid> -- <command>`, a small stdlib-only process
that asks the kernel for SIGTERM when the driver dies (PR_SET_PDEATHSIG, set on itself so
the driver needs no `preexec_fn`, which is unsafe next to its heartbeat thread), starts
`/bin/sh -c <command>` in a new process group, and answers SIGTERM by SIGKILLing that
group. The driver stops a hook the same way: SIGTERM to the guard, then SIGKILL to the
guard's group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TAIL_LINES = 5
# How long the guard gets to forward a SIGTERM before its group is SIGKILLed; it only
# has to run one killpg, so this is only ever reached when the guard itself is wedged.
_GUARD_GRACE_S = 5.0
_POLL_S = 0.1


@dataclass(frozen=True)
class HookResult:
    """What one hook run did; `describe()` is the line shown to the user."""

    on: str  # "pre-traffic" or "step" (copied from the hook)
    run: str  # the command
    exit_code: int | None  # None when it was killed (timeout or stop) or never started
    seconds: float
    outcome: str  # "passed" | "failed" | "timed_out" | "stopped" | "not_started"
    tail: str  # last lines of combined stdout+stderr, stripped (the reason for not_started)
    log: str  # file name of the full log, in the directory the caller chose

    @property
    def ok(self) -> bool:
        return self.outcome == "passed"

    def describe(self) -> str:
        """One line a user can act on."""
        head = f"hook `{self.run}` ({self.on})"
        last = self.tail.splitlines()[-1] if self.tail else ""
        took = f"{round(self.seconds, 1):g}s"
        if self.outcome == "passed":
            return f"{head} passed in {took}"
        if self.outcome == "failed":
            return (
                f"{head} exited {self.exit_code}: {last}"
                if last
                else f"{head} exited {self.exit_code} (no output)"
            )
        if self.outcome == "timed_out":
            return f"{head} timed out after {took}" + (f"; last output: {last}" if last else "")
        if self.outcome == "stopped":
            return f"{head} was stopped after {took} because the promotion is stopping"
        return f"{head} could not start: {self.tail}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def run(
    on: str,
    command: str,
    *,
    timeout_s: float,
    cwd: Path,
    env: dict[str, str],
    log: Path,
    should_stop: Callable[[], object] | None = None,
) -> HookResult:
    """Run `command` with /bin/sh -c in `cwd`, env = os.environ plus `env`, output to `log`.

    Only a failure to start is turned into a result; an exception raised by `should_stop`
    (or a KeyboardInterrupt) propagates once the hook's processes are killed.
    """
    started = time.monotonic()

    def result(outcome: str, exit_code: int | None, tail: str) -> HookResult:
        seconds = round(time.monotonic() - started, 3)
        return HookResult(on, command, exit_code, seconds, outcome, tail, log.name)

    # -P: the hook's cwd is the user's project; an `orchestrator/` there must not shadow us.
    argv = [sys.executable, "-P", "-m", "orchestrator.release.hooks", str(os.getpid()), "--", command]
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        sink = open(log, "wb")  # noqa: SIM115 - closed below, after the process is reaped
    except OSError as exc:
        return result("not_started", None, f"cannot write the log {log}: {exc}")
    with sink:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=str(cwd),  # so a start error names the directory plainly
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,  # a hook never reads the driver's terminal
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except (OSError, ValueError, TypeError, subprocess.SubprocessError) as exc:
            sink.write(f"edgeship: could not start the hook: {exc}\n".encode())
            return result("not_started", None, str(exc))
        try:
            outcome = _wait(proc, started + timeout_s, should_stop)
        finally:
            _stop(proc)
    tail = _tail(log)
    if outcome != "exited":
        return result(outcome, None, tail)
    code = proc.returncode
    if code < 0:  # the guard itself died by a signal nobody here sent
        code = 128 - code
    return result("passed" if code == 0 else "failed", code, tail)


def _wait(proc: subprocess.Popen[bytes], deadline: float, should_stop: Callable[[], object] | None) -> str:
    """Wait for the guard to exit: "exited", "timed_out" or "stopped"."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timed_out"
        try:
            proc.wait(timeout=min(_POLL_S, remaining))
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        if should_stop is not None and should_stop():
            return "stopped"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Have the guard SIGKILL the hook's group, then SIGKILL the guard's own group."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_GUARD_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)  # the guard if wedged, and anything left in its group
    proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))  # a hook may log megabytes
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-TAIL_LINES:]).strip()


# --- the guard: runs as `python -P -m orchestrator.release.hooks <driver-pid> -- <command>` -------
# Stdlib only, and nothing heavier than this module, so a hook starts in tens of ms.


def _die_with_parent(parent: int) -> None:
    """Have the kernel send us SIGTERM when the driver dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # no prctl: the driver's kill on every exit path still applies
    if os.getppid() != parent:  # the driver died before the prctl took effect
        os._exit(1)


def _guard(argv: list[str]) -> int:
    """Start the command in a new group, kill that group on SIGTERM, pass its exit code on."""
    if len(argv) != 3 or argv[1] != "--":
        print("usage: python -m orchestrator.release.hooks <parent-pid> -- <command>", file=sys.stderr)
        return 2
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None:
            _signal_group(child.pid, signal.SIGKILL)
            os._exit(128 + signum)
        # Not started yet (or Popen has not returned): the check after Popen does it.

    # The handler goes in before the command can exist, so no SIGTERM finds it unguarded.
    signal.signal(signal.SIGTERM, on_term)
    _die_with_parent(int(argv[0]))
    if stopping:
        return 128 + signal.SIGTERM
    # process_group=0 is done by the C fork helper, no preexec_fn; the group's id is its pid.
    child = subprocess.Popen(["/bin/sh", "-c", argv[2]], process_group=0)
    if stopping:  # SIGTERM arrived while Popen was running
        on_term(signal.SIGTERM, None)
    code = child.wait()
    # The hook is over: background processes it left behind must not outlive it.
    _signal_group(child.pid, signal.SIGKILL)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(_guard(sys.argv[1:]))
