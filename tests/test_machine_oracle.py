"""Oracles for the phase tables (issue 28, step E5b): the machine's successors and the
driver's phase-keyed branches, as they were written in code before the tables replaced them,
copied here verbatim (only renamed: `old_*`), and checked equal to the code of today.

The pure functions (`advance`, `end_after_rollback`, `resume`, `retarget`, the fix after a
failed write) are compared exhaustively: every phase x outcome x step from -1 to past the
last x pause_at x the record's `then` and `cause`, on plans of 1, 3 and 5 steps, exceptions
included (type and message). The driver's branches are compared through their effects on a
driver built without I/O (its actions, its writes, the lease and the fault points replaced by
fakes that log): `_act` over every in-flight phase x stop request x action result x hooks
result, `stop_requested` over every signal x abort request x lost lease, and `run` and
`_roll_back_unrecorded` over generated scenarios (hypothesis) of outcomes, failed writes,
S3 away and the lease held or not. Equal logs and equal results: no behaviour changed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.base import faults
from orchestrator.base.errors import (
    EdgeshipError,
    FencedError,
    LeaseLostError,
    LeaseUnconfirmedError,
    LeaseUnreadError,
    RollbackIncompleteError,
)
from orchestrator.config.settings import Environment, TrafficSettings
from orchestrator.release import driver as driver_module
from orchestrator.release import machine
from orchestrator.release.driver import Driver, Step
from orchestrator.release.machine import Outcome, Phase, PromotionRecord
from orchestrator.release.machine import after_failed_write as new_after_failed_write
from orchestrator.release.plan import Plan, make_plan

# --- the oracle: machine.py, fixes.py and driver.py as they were (commit 1bf9d08) ----------------

OLD_TERMINAL = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})

OLD_FORWARD: dict[Phase, Phase] = {
    Phase.PLANNED: Phase.PRE_TRAFFIC,
    Phase.PRE_TRAFFIC: Phase.SHIFTING,
    Phase.SHIFTING: Phase.BAKING,
    Phase.BAKING: Phase.GATING,
    Phase.GATING: Phase.SHIFTING,
    Phase.PAUSED: Phase.SHIFTING,
    Phase.PROMOTING: Phase.PROMOTED,
}

OLD_RESUME_AT: dict[Phase, Phase] = {
    Phase.PLANNED: Phase.PLANNED,
    Phase.PRE_TRAFFIC: Phase.PLANNED,
    Phase.SHIFTING: Phase.SHIFTING,
    Phase.BAKING: Phase.SHIFTING,
    Phase.GATING: Phase.SHIFTING,
    Phase.PAUSED: Phase.PAUSED,
    Phase.PROMOTING: Phase.PROMOTING,
    Phase.ROLLING_BACK: Phase.ROLLING_BACK,
}


def old_advance(
    record: PromotionRecord, outcome: Outcome, *, now: float, by: str, reason: str = ""
) -> PromotionRecord:
    """The record after `record.phase`'s action ended with `outcome`. Pure."""
    phase = record.phase
    if phase == Phase.ROLLING_BACK:
        if outcome != Outcome.DONE:  # sticky: only a completed rollback leaves it
            return record
        return replace(record, phase=record.then or Phase.ROLLED_BACK).log(now, by, "live on blue, read back")
    if phase in OLD_TERMINAL:
        if phase == Phase.PROMOTED and outcome == Outcome.ABORT:  # `rollback` of the last promotion
            return replace(
                record, phase=Phase.ROLLING_BACK, then=Phase.ROLLED_BACK, cause=outcome, reason=reason
            ).log(now, by, reason)
        raise ValueError(f"promotion {record.id} already ended {phase}")
    if outcome != Outcome.DONE:
        then = old_end_after_rollback(record, outcome)
        return replace(record, phase=Phase.ROLLING_BACK, then=then, cause=outcome, reason=reason).log(
            now, by, reason or str(outcome)
        )
    nxt, step = OLD_FORWARD[phase], record.step
    if phase == Phase.PRE_TRAFFIC:
        step = 0
    elif phase == Phase.GATING and record.plan.get("pause_at") == record.weight:
        return replace(record, phase=Phase.PAUSED).log(now, by, f"holding at {record.weight}%")
    elif phase in (Phase.GATING, Phase.PAUSED):
        step += 1
        if step >= len(record.plan["steps"]):
            nxt, step = Phase.PROMOTING, record.step
    return replace(record, phase=nxt, step=step).log(now, by)


def old_end_after_rollback(record: PromotionRecord, outcome: Outcome) -> Phase:
    """How a rollback started now will be remembered."""
    if outcome == Outcome.ABORT:
        return Phase.ABORTED
    return Phase.ROLLED_BACK if record.step >= 0 else Phase.FAILED


def old_resume(record: PromotionRecord, *, now: float, by: str) -> PromotionRecord:
    """The record a resuming driver starts from (it has taken the lease)."""
    return replace(record, phase=OLD_RESUME_AT[record.phase], holder=by).log(
        now, by, f"resumed from {record.phase}"
    )


def old_retarget(record: PromotionRecord, version: str, *, now: float, by: str, note: str) -> PromotionRecord:
    if record.phase == Phase.ROLLING_BACK:
        then, cause = record.then or Phase.ABORTED, record.cause or Outcome.ABORT
    elif record.in_flight:
        then, cause = Phase.ABORTED, Outcome.ABORT
    elif record.phase == Phase.PROMOTED:
        then, cause = Phase.ROLLED_BACK, Outcome.ABORT
    else:
        then, cause = record.phase, record.cause or Outcome.ABORT
    return replace(record, blue=version, phase=Phase.ROLLING_BACK, then=then, cause=cause, reason=note).log(
        now, by, f"{note} (blue was v{record.blue})"
    )


_OLD_FIX_FORWARD = frozenset(
    {
        Phase.PLANNED,
        Phase.PRE_TRAFFIC,
        Phase.SHIFTING,
        Phase.BAKING,
        Phase.GATING,
        Phase.PAUSED,
        Phase.PROMOTING,
    }
)
_OLD_FIX_BACK = frozenset({Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})


def old_after_failed_write(env: str, written: Phase) -> str:
    """The fix for a failed record write whose body said `written`."""
    if written == Phase.PROMOTED:
        # live is on green alone (promoting's action finished): `abort` would undo a promotion
        # that succeeded, since a record left at promoting is an interrupted one.
        return (
            f"live already serves green alone: the promotion succeeded, only its record may not say so. "
            f"Once S3 answers, `orchestrator status --env {env}`: promoted, nothing to undo; still "
            f"promoting, `orchestrator promote --env {env} --resume` records it as promoted "
            f"(`orchestrator abort` would put live back on blue)"
        )
    if written in _OLD_FIX_BACK:
        return (
            f"run `orchestrator abort --env {env}` once AWS (or the emulator) answers: it finishes "
            "putting live on blue (nothing to do if the record already says the rollback ended)"
        )
    assert written in _OLD_FIX_FORWARD, written  # every phase is in one of the three
    return (
        f"once AWS (or the emulator) answers, `orchestrator abort --env {env}` puts live back on blue, "
        f"or `orchestrator promote --env {env} --resume` goes on from the recorded step"
    )


def old_rolls_back_after_failed_write(phase: Phase, *, lease_held: bool) -> bool:
    return lease_held and phase not in OLD_TERMINAL


def old_keep_lease(heartbeat: Any) -> bool:
    """Renew the lease (if due); a lost one is raised: nothing more may be done. False: go on."""
    heartbeat.beat()
    if heartbeat.lost is not None:
        raise heartbeat.lost
    return False


def old_stop_requested(heartbeat: Any, latch: Any) -> Step | None:
    """A reason to stop now (a signal, an operator's abort), or None; a lost lease is raised.
    The driver asks between and during its actions; `promote` too while it waits for Lambda."""
    old_keep_lease(heartbeat)
    if latch.received:
        return Step(Outcome.INTERRUPTED, f"interrupted ({latch.received})")
    if heartbeat.abort_requested:
        return Step(Outcome.ABORT, "aborted by an operator (`orchestrator abort`)")
    return None


def old_error(exc: Exception) -> Step:
    message = exc.message if isinstance(exc, EdgeshipError) else f"{type(exc).__name__}: {exc}"
    return Step(Outcome.ERROR, f"error: {message}")


def old_run(self: Any, record: PromotionRecord, etag: str) -> PromotionRecord:
    """Drive `record` (already written, with `etag`) to a terminal phase and return it."""
    plan = record.the_plan()
    step_started = time.monotonic()
    while record.in_flight:
        self.heartbeat.beat()
        self._phase = record.phase  # what a stop for want of the lease tells to do next
        phase = record.phase.replace("_", "-")
        if record.phase == Phase.SHIFTING:  # overhead per step: all but bake and load time
            step_started, self._waited = time.monotonic(), 0.0
        # From the moment the record says rolling_back, before its enter point: a signal
        # there says "rolling back, please wait", not "stopping and rolling back"
        self.latch.rolling_back = record.phase == Phase.ROLLING_BACK
        try:
            faults.point(f"enter-{phase}")
            step = self._act(record, plan)
            faults.point(f"done-{phase}")
        except (LeaseLostError, LeaseUnconfirmedError):
            raise
        except Exception as exc:  # whatever breaks between the record and the alias: roll back
            step = old_error(exc)
        nxt = old_advance(record, step.outcome, now=time.time(), by=self.by, reason=step.reason)
        if nxt is record:  # rolling_back is sticky: the alias call did not complete
            raise RollbackIncompleteError(
                f"promotion {record.id}: could not put live back on v{record.blue}: {step.reason}; "
                f"live may be split ({self._alias_text()})",
                fix=f"run `orchestrator abort --env {record.env}` once AWS (or the emulator) answers",
            )
        if self._own_revision and nxt.live_revision != self._own_revision:
            nxt = replace(nxt, live_revision=self._own_revision)
        if self._s3_away is not None and nxt.phase == Phase.ROLLING_BACK and self.heartbeat.valid():
            return self._roll_back_unrecorded(record, etag, nxt, self._s3_away)
        written = self._try_write(nxt, etag, previous=record)
        if isinstance(written, Exception):  # S3 did not take the record
            # held: valid, or renewed now (a write that failed slowly may have used the third)
            held = nxt.phase not in OLD_TERMINAL and (self.heartbeat.valid() or self.heartbeat.renew_now())
            if old_rolls_back_after_failed_write(nxt.phase, lease_held=held):
                return self._roll_back_unrecorded(record, etag, nxt, written)
            raise self._write_failed(nxt, written)
        etag = written
        if record.phase == Phase.GATING:
            self.report.overhead_s.append(time.monotonic() - step_started - self._waited)
        record = nxt
        self._announce(record)
    return record


def old_act(self: Any, record: PromotionRecord, plan: Plan) -> Step:
    if record.phase != Phase.ROLLING_BACK:
        stop = self._stop_requested()
        if stop is not None:
            return stop
    try:
        if record.phase == Phase.PLANNED:
            return self._prepare_candidate(plan)
        if record.phase == Phase.PRE_TRAFFIC:
            step = self._gate(plan, "pre-traffic", 0, self.target.candidate(), share=1.0)
            return self._hooks(plan, record, "pre-traffic") if step.outcome == Outcome.DONE else step
        if record.phase == Phase.SHIFTING:
            return self._move(plan.blue, plan.green, plan.steps[record.step], record.live_revision)
        if record.phase == Phase.BAKING:
            return self._bake(plan, record)
        if record.phase == Phase.GATING:
            weight = plan.steps[record.step]
            step = self._gate(plan, f"step {record.step + 1}", weight, self.target.edge(), share=weight / 100)
            return self._hooks(plan, record, "step") if step.outcome == Outcome.DONE else step
        if record.phase == Phase.PAUSED:
            return self._hold(plan, record)
        if record.phase == Phase.PROMOTING:
            step = self._move(plan.blue, plan.green, 100, record.live_revision)
            if step.outcome == Outcome.DONE:
                self._invalidate_cache()
            return step
        return self._put_on_blue(record.blue)
    except (LeaseLostError, LeaseUnconfirmedError):
        raise
    except Exception as exc:  # any failure of an action is a reason to roll back, never to stop half-way
        return old_error(exc)


def old_roll_back_unrecorded(
    self: Any, record: PromotionRecord, etag: str, nxt: PromotionRecord, exc: Exception
) -> PromotionRecord:
    why = (
        f"S3 did not answer ({exc.message})" if isinstance(exc, LeaseUnreadError)
        else f"could not write the record ({type(exc).__name__}: {exc})"
    )  # fmt: skip
    self._diagnose(f"{why}; the lease is still held: rolling back to v{record.blue} before recording it")
    try:
        step = self._put_on_blue(record.blue)
    except (LeaseLostError, LeaseUnconfirmedError):
        raise
    except Exception as failed:  # Lambda refusing too: live stays where it is, said
        step = old_error(failed)
    if step.outcome != Outcome.DONE:
        raise RollbackIncompleteError(
            f"promotion {record.id}: {why}, and live could not be put back on v{record.blue}: "
            f"{step.reason}; live may be split ({self._alias_text()})",
            fix=old_after_failed_write(record.env, nxt.phase),
        )
    faults.point("rolled-back-unrecorded")
    now = time.time()
    rolling = nxt if nxt.phase == Phase.ROLLING_BACK else old_advance(
        record, Outcome.ERROR, now=now, by=self.by, reason=f"error: {why}"
    )  # fmt: skip
    done = old_advance(rolling, Outcome.DONE, now=now, by=self.by)
    if self._own_revision:
        done = replace(done, live_revision=self._own_revision)
    try:
        self._write_over_own(done, etag)
    except FencedError:
        raise  # another holder wrote the record: deposed (exit 12), it finishes the job
    except Exception as again:  # S3 still away
        raise RollbackIncompleteError(
            f"promotion {record.id}: {why}; live is back on v{record.blue} "
            f"({self._alias_text()}), but the record could not be written either "
            f"({type(again).__name__}: {again}) and still says the promotion is in flight",
            fix=f"run `orchestrator abort --env {record.env}` once S3 answers: it closes the record "
            "(live is already on blue)",
        ) from again
    self._announce(done)
    return done


def old_write_failed(self: Any, record: PromotionRecord, exc: Exception) -> RollbackIncompleteError:
    return RollbackIncompleteError(
        f"promotion {record.id}: could not write the record ({type(exc).__name__}: {exc}); "
        f"live may be split ({self._alias_text()})",
        fix=old_after_failed_write(record.env, record.phase),  # `abort` would undo a promoted one
    )


# --- the domain -----------------------------------------------------------------------------------

IN_FLIGHT = [p for p in Phase if p not in OLD_TERMINAL]
THENS: list[Phase | None] = [None, *Phase]
ENDS: list[Phase | None] = [None, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED]
CAUSES: list[Outcome | None] = [None, *Outcome]


def _plan(steps: int, pause_at: int | str | None) -> dict[str, Any]:
    """A recorded plan of `steps` steps; pause_at "absent" leaves the key out (older records)."""
    env = Environment("local", "us-east-1", "123456789012",
                      traffic=TrafficSettings(schedule="linear", linear_steps=steps))  # fmt: skip
    snapshot = make_plan(env, "1", "2").to_snapshot()
    if pause_at == "absent":
        snapshot.pop("pause_at", None)
    else:
        snapshot["pause_at"] = pause_at
    return snapshot


def _pause_values(steps: list[int]) -> list[int | str | None]:
    # every step's weight (the last one included: make_plan refuses it, a record may not), no
    # pause, no key at all, 0 (the weight of step -1) and one weight of no step
    return [None, "absent", 0, 42, *steps]


def _records() -> Iterator[PromotionRecord]:
    for count in (1, 3, 5):
        steps = _plan(count, None)["steps"]
        for pause_at in _pause_values(steps):
            plan = _plan(count, pause_at)
            base = PromotionRecord("p1", "dev", "1", "2", plan, "h", holder="ci").log(1.0, "ci", "planned")
            for phase, step in itertools.product(Phase, range(-1, len(steps) + 1)):
                # `then` is read in rolling_back (where it ends) and only carried elsewhere
                for then in THENS if phase == Phase.ROLLING_BACK else ENDS:
                    yield replace(base, phase=phase, step=step, then=then)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """A result or the exception it raised, comparable."""
    try:
        return "returned", fn(*args, **kwargs)
    except Exception as exc:
        return "raised", (type(exc), str(exc))


def _same(old: tuple[str, Any], new: tuple[str, Any], old_in: Any, new_in: Any) -> bool:
    # identity matters too: the driver reads `advance(...) is record` as "sticky, stop"
    if old[0] == "returned" and (old[1] is old_in) != (new[1] is new_in):
        return False
    return old == new


# --- the pure functions, exhaustively ------------------------------------------------------------


def test_advance_is_the_old_advance_in_every_cell() -> None:
    cells = 0
    for record in _records():
        for outcome, reason in itertools.product(Outcome, ("", "why")):
            old = _call(old_advance, record, outcome, now=2.0, by="d", reason=reason)
            new = _call(machine.advance, record, outcome, now=2.0, by="d", reason=reason)
            assert _same(old, new, record, record), (
                record.phase,
                record.step,
                record.plan,
                outcome,
                old,
                new,
            )
            cells += 1
    # plans of n = 1, 3, 5 steps x (4 + n) pause_at x (n + 2) steps x (11 phases x 4 `then` + rolling_back
    # x 13 `then`) x 6 outcomes x 2 reasons
    assert cells == sum((4 + n) * (n + 2) * (11 * 4 + 13) for n in (1, 3, 5)) * 6 * 2 == 77_292


def test_end_after_rollback_is_the_old_one_for_every_outcome_that_starts_a_rollback() -> None:
    for record in _records():
        for outcome in Outcome:
            if outcome == Outcome.DONE:  # a done action starts no rollback: never asked
                continue
            assert machine.end_after_rollback(record, outcome) == old_end_after_rollback(record, outcome)


def test_resume_is_the_old_resume_in_every_cell() -> None:
    for record in _records():
        old = _call(old_resume, record, now=3.0, by="other")
        new = _call(machine.resume, record, now=3.0, by="other")
        assert old == new, (record.phase, old, new)


def test_retarget_is_the_old_retarget_in_every_cell() -> None:
    for record in _records():
        for cause in CAUSES:
            found = replace(record, cause=cause)
            old = _call(old_retarget, found, "3", now=4.0, by="op", note="live put on v3")
            new = _call(machine.retarget, found, "3", now=4.0, by="op", note="live put on v3")
            assert old == new, (found.phase, found.then, found.cause, old, new)


@pytest.mark.parametrize("env", ["dev", "prod-eu", ""])
def test_the_fix_after_a_failed_write_is_the_old_one_for_every_phase(env: str) -> None:
    for phase in Phase:
        assert new_after_failed_write(env, phase) == old_after_failed_write(env, phase)


# --- the driver's branches, through fakes ----------------------------------------------------------


@dataclass
class FakeHeartbeat:
    log: list[Any]
    valid_answers: list[bool] = field(default_factory=list)  # then True
    renew_answers: list[bool] = field(default_factory=list)  # then True
    lost: Exception | None = None
    abort_requested: bool = False

    def beat(self) -> None:
        self.log.append("beat")

    def valid(self) -> bool:
        answer = self.valid_answers.pop(0) if self.valid_answers else True
        self.log.append(("valid", answer))
        return answer

    def renew_now(self) -> bool:
        answer = self.renew_answers.pop(0) if self.renew_answers else True
        self.log.append(("renew_now", answer))
        return answer


@dataclass
class FakeLatch:
    received: str | None = None
    rolling_back: bool = False


@dataclass
class FakeReport:
    overhead_s: list[float] = field(default_factory=list)


@dataclass
class FakeEndpoint:
    name: str


class FakeTarget:
    def candidate(self) -> FakeEndpoint:
        return FakeEndpoint("candidate")

    def edge(self) -> FakeEndpoint:
        return FakeEndpoint("edge")


def fake_driver(log: list[Any], heartbeat: FakeHeartbeat | None = None) -> Any:
    """A Driver without its constructor (no clients, no I/O): the caller sets what it needs."""
    d: Any = object.__new__(Driver)
    d.heartbeat = heartbeat or FakeHeartbeat(log)
    d.latch = FakeLatch()
    d.target = FakeTarget()
    d.report = FakeReport()
    d.by = "driver@vm"
    d._waited = 0.0
    d._own_revision = ""
    d._s3_away = None
    d._phase = Phase.PLANNED
    d._alias_text = lambda state=None: "live: v1 100%"
    d._diagnose = lambda text: log.append(("diagnose", text))
    d._announce = lambda record: log.append(("announce", record.phase, record.step))
    return d


@contextmanager
def quiet_clock_and_faults(log: list[Any]) -> Iterator[None]:
    ticks = itertools.count()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: 1000.0)
        mp.setattr(time, "monotonic", lambda: float(next(ticks)))
        mp.setattr(faults, "point", lambda name: log.append(("fault", name)))
        yield


def _outcome_of(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    try:
        return "returned", fn(*args)
    except Exception as exc:
        return "raised", (type(exc), str(exc), getattr(exc, "fix", None))


# `_act`: every in-flight phase x stop request x action result x hooks result x step

STOPS: list[Step | str | None] = [None, Step(Outcome.INTERRUPTED, "interrupted (SIGTERM)"),
                                  Step(Outcome.ABORT, "aborted"), "lost"]  # fmt: skip
RESULTS: list[Step | str] = [*(Step(o, f"{o} here") for o in Outcome), "raise", "lost"]


def _answer(kind: Step | str | None, what: str) -> Step | None:
    if kind == "raise":
        raise RuntimeError(f"{what} broke")
    if kind == "lost":
        raise LeaseLostError(f"deposed in {what}")
    assert not isinstance(kind, str)
    return kind


def _act_driver(log: list[Any], stop: Step | str | None, result: Step | str, hooks: Step | str) -> Any:
    d = fake_driver(log)

    def act(name: str) -> Callable[..., Step]:
        def called(*args: Any, **kwargs: Any) -> Step:
            log.append((name, args, tuple(sorted(kwargs.items()))))
            got = _answer(hooks if name == "_hooks" else result, name)
            assert got is not None
            return got

        return called

    for name in ("_prepare_candidate", "_gate", "_move", "_bake", "_hold", "_put_on_blue", "_hooks"):
        setattr(d, name, act(name))
    d._invalidate_cache = lambda: log.append("invalidate_cache")
    d._stop_requested = lambda: log.append("stop?") or _answer(stop, "stop_requested")
    return d


def test_act_dispatches_as_the_old_if_chain_in_every_cell() -> None:
    plan_dict = _plan(3, None)
    cells = 0
    for phase, step, stop, result, hooks in itertools.product(
        IN_FLIGHT, (0, 2), STOPS, RESULTS, (Step(Outcome.DONE), Step(Outcome.FAILED, "hook said no"), "raise")
    ):
        record = replace(PromotionRecord("p1", "dev", "1", "2", plan_dict, "h"), phase=phase, step=step,
                         live_revision="r7")  # fmt: skip
        plan = record.the_plan()
        old_log: list[Any] = []
        new_log: list[Any] = []
        old = _outcome_of(old_act, _act_driver(old_log, stop, result, hooks), record, plan)
        new = _outcome_of(Driver._act, _act_driver(new_log, stop, result, hooks), record, plan)
        assert (old, old_log) == (new, new_log), (phase, stop, result, hooks)
        cells += 1
    assert cells == len(IN_FLIGHT) * 2 * len(STOPS) * len(RESULTS) * 3


@pytest.mark.parametrize(
    ("received", "abort", "lost"),
    list(itertools.product((None, "SIGTERM", "SIGINT"), (False, True), (None, LeaseLostError("deposed")))),
)
def test_stop_requested_is_the_old_one(received: str | None, abort: bool, lost: Exception | None) -> None:
    def ask(stop: Callable[[Any, Any], Step | None]) -> tuple[tuple[str, Any], list[Any]]:
        log: list[Any] = []
        heartbeat = FakeHeartbeat(log, lost=lost, abort_requested=abort)
        return _outcome_of(stop, heartbeat, FakeLatch(received=received)), log

    assert ask(old_stop_requested) == ask(driver_module.stop_requested)


@pytest.mark.parametrize("phase", list(Phase))
def test_write_failed_is_the_old_one(phase: Phase) -> None:
    record = replace(PromotionRecord("p1", "dev", "1", "2", _plan(3, None), "h"), phase=phase, step=0)
    exc = TimeoutError("S3 away")
    old = old_write_failed(fake_driver([]), record, exc)
    new = Driver._write_failed(fake_driver([]), record, exc)
    assert (type(old), str(old), old.fix) == (type(new), str(new), new.fix)


# `run` and `_roll_back_unrecorded` over generated scenarios


@dataclass(frozen=True)
class Scenario:
    phase: Phase
    step: int
    then: Phase | None
    pause_at: int | None
    acts: tuple[tuple[str, Outcome, bool, bool], ...]  # (kind, outcome, S3 away after, moved live)
    writes: tuple[bool, ...]  # True: S3 took the record; then True
    valid: tuple[bool, ...]
    renew: tuple[bool, ...]
    s3_away: bool
    own_revision: str


ACT_KINDS = st.sampled_from(["step", "step", "step", "raise", "lost", "unconfirmed"])
SCENARIOS = st.builds(
    Scenario,
    phase=st.sampled_from(IN_FLIGHT),
    step=st.integers(0, 2),
    then=st.sampled_from([None, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED]),
    pause_at=st.sampled_from([None, 33, 67]),
    acts=st.lists(
        st.tuples(ACT_KINDS, st.sampled_from(list(Outcome)), st.booleans(), st.booleans()), max_size=8
    ).map(tuple),
    writes=st.lists(st.booleans(), max_size=6).map(tuple),
    valid=st.lists(st.booleans(), max_size=4).map(tuple),
    renew=st.lists(st.booleans(), max_size=4).map(tuple),
    s3_away=st.booleans(),
    own_revision=st.sampled_from(["", "r0"]),
)


def _scenario_record(s: Scenario) -> PromotionRecord:
    step = -1 if s.phase in (Phase.PLANNED, Phase.PRE_TRAFFIC) else s.step
    then = s.then if s.phase == Phase.ROLLING_BACK else None
    plan = _plan(3, s.pause_at)
    return replace(PromotionRecord("p1", "dev", "1", "2", plan, "h", holder="driver@vm"),
                   phase=s.phase, step=step, then=then)  # fmt: skip


def _run_driver(s: Scenario, log: list[Any]) -> Any:
    heartbeat = FakeHeartbeat(log, list(s.valid), list(s.renew))
    d = fake_driver(log, heartbeat)
    d._own_revision = s.own_revision
    d._s3_away = LeaseUnreadError("S3 did not answer the lease read") if s.s3_away else None
    acts, writes = list(s.acts), list(s.writes)
    calls = itertools.count()

    def act(record: PromotionRecord, plan: Plan) -> Step:
        log.append(("act", record.phase, record.step, d._phase, d.latch.rolling_back, d._waited))
        assert next(calls) < 60, "the run does not end"
        kind, outcome, away, moved = acts.pop(0) if acts else ("step", Outcome.DONE, False, False)
        if away:
            d._s3_away = LeaseUnreadError("S3 did not answer the lease read (in an act)")
        if moved:
            d._own_revision = f"r{len(log)}"
        d._waited += 0.5
        if kind == "raise":
            raise RuntimeError("the action broke")
        if kind == "lost":
            raise LeaseLostError("deposed")
        if kind == "unconfirmed":
            raise LeaseUnconfirmedError("lease unconfirmed")
        return Step(outcome, f"{outcome} in {record.phase}")

    def try_write(record: PromotionRecord, etag: str, *, previous: PromotionRecord) -> str | Exception:
        log.append(("write", record.phase, record.step, record.then, record.cause, record.live_revision,
                    etag, previous.phase))  # fmt: skip
        if writes and not writes.pop(0):
            return TimeoutError("S3 did not take the record")
        return f"etag-{len(log)}"

    def unrecorded(
        record: PromotionRecord, etag: str, nxt: PromotionRecord, exc: Exception
    ) -> PromotionRecord:
        log.append(
            ("roll back unrecorded", record.phase, etag, nxt.phase, nxt.then, nxt.live_revision, str(exc))
        )
        return replace(nxt, phase=Phase.ROLLED_BACK, reason="unrecorded")

    def write_failed(record: PromotionRecord, exc: Exception) -> RollbackIncompleteError:
        log.append(("write failed", record.phase, str(exc)))
        return RollbackIncompleteError(f"write of {record.phase} failed", fix=f"fix for {record.phase}")

    d._act, d._try_write, d._roll_back_unrecorded, d._write_failed = act, try_write, unrecorded, write_failed
    return d


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCENARIOS)
def test_run_branches_as_the_old_run(s: Scenario) -> None:
    def drive(run: Callable[[Any, PromotionRecord, str], PromotionRecord]) -> Any:
        log: list[Any] = []
        d = _run_driver(s, log)
        with quiet_clock_and_faults(log):
            result = _outcome_of(run, d, _scenario_record(s), "etag-0")
        return result, log, d.report.overhead_s, d.latch.rolling_back

    assert drive(old_run) == drive(Driver.run)


UNRECORDED = st.tuples(
    st.sampled_from(IN_FLIGHT),
    st.sampled_from(list(Outcome)),
    st.sampled_from(["unread", "write"]),
    st.sampled_from([Step(Outcome.DONE), Step(Outcome.ERROR, "error: Lambda away"), "raise", "lost"]),
    st.sampled_from(["ok", "fenced", "away"]),
    st.sampled_from(["", "r9"]),
    st.integers(0, 2),
)


@settings(max_examples=300, deadline=None)
@given(UNRECORDED)
def test_roll_back_unrecorded_is_the_old_one(cell: tuple[Any, ...]) -> None:
    phase, outcome, exc_kind, put, write, own, step = cell
    record = replace(PromotionRecord("p1", "dev", "1", "2", _plan(3, None), "h"), phase=phase,
                     step=-1 if phase in (Phase.PLANNED, Phase.PRE_TRAFFIC) else step)  # fmt: skip
    nxt = old_advance(record, outcome, now=5.0, by="driver@vm", reason="r")
    if nxt is record or not nxt.in_flight:  # the driver stops there: never called
        return
    exc = LeaseUnreadError("S3 did not answer") if exc_kind == "unread" else TimeoutError("write timed out")

    def roll(fn: Callable[..., PromotionRecord]) -> Any:
        log: list[Any] = []
        d = fake_driver(log)
        d._own_revision = own
        d._put_on_blue = lambda blue: log.append(("put_on_blue", blue)) or _answer(put, "put_on_blue")

        def write_over_own(done: PromotionRecord, etag: str) -> str:
            log.append(("write", done, etag))
            if write == "fenced":
                raise FencedError("another holder")
            if write == "away":
                raise TimeoutError("S3 still away")
            return "etag-9"

        d._write_over_own = write_over_own
        with quiet_clock_and_faults(log):
            return _outcome_of(fn, d, record, "etag-1", nxt, exc), log

    assert roll(old_roll_back_unrecorded) == roll(Driver._roll_back_unrecorded)
