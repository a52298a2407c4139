"""The promotion state machine, the command table, lease staleness and the fault grammar:
pure decisions, table-tested without any I/O. The phase tables' totality is here; that they say
what the code said before they were tables is tests/test_machine_oracle.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator import faults, lease
from orchestrator.errors import ConfigError, InjectedFault
from orchestrator.machine import (
    AFTER_WRITE_FAILURE,
    FIX_AFTER_FAILED_WRITE,
    PHASES,
    RESUME_AT,
    RETARGET,
    S3_AWAY,
    STOP_PRIORITY,
    TERMINAL,
    TRANSITIONS,
    Act,
    Course,
    Family,
    Outcome,
    Phase,
    PromotionRecord,
    Stop,
    Verb,
    When,
    advance,
    after_failed_write,
    course,
    holds,
    resume,
    rules,
    snapshot_hash,
    verb,
)
from orchestrator.plan import make_plan, plan_from_dict
from orchestrator.settings import Environment, TrafficSettings

ENV = Environment(
    "local", "us-east-1", "123456789012", traffic=TrafficSettings(schedule="linear", linear_steps=3)
)


def record(phase: Phase = Phase.PLANNED, step: int = -1) -> PromotionRecord:
    fresh = PromotionRecord.new(make_plan(ENV, "1", "2"), "ci", now=1000.0)
    return replace(fresh, phase=phase, step=step)


def walk(outcomes: list[Outcome]) -> list[tuple[str, int]]:
    current, seen = record(), []
    for outcome in outcomes:
        current = advance(current, outcome, now=1.0, by="ci")
        seen.append((str(current.phase), current.step))
    return seen


def test_happy_path_visits_every_step_in_order() -> None:
    done = Outcome.DONE
    assert walk([done] * 12) == [
        ("pre_traffic", -1),
        ("shifting", 0), ("baking", 0), ("gating", 0),
        ("shifting", 1), ("baking", 1), ("gating", 1),
        ("shifting", 2), ("baking", 2), ("gating", 2),
        ("promoting", 2), ("promoted", 2),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "step", "outcome", "then"),
    [
        (Phase.PLANNED, -1, Outcome.FAILED, Phase.FAILED),  # nothing moved yet
        (Phase.PRE_TRAFFIC, -1, Outcome.ERROR, Phase.FAILED),
        (Phase.PRE_TRAFFIC, -1, Outcome.INTERRUPTED, Phase.FAILED),
        (Phase.SHIFTING, 0, Outcome.ERROR, Phase.ROLLED_BACK),  # the shift may have landed
        (Phase.BAKING, 0, Outcome.INTERRUPTED, Phase.ROLLED_BACK),
        (Phase.GATING, 1, Outcome.FAILED, Phase.ROLLED_BACK),
        (Phase.GATING, 0, Outcome.VOID, Phase.ROLLED_BACK),  # blue failed the load: as a failure
        (Phase.PROMOTING, 2, Outcome.ERROR, Phase.ROLLED_BACK),
        (Phase.GATING, 0, Outcome.ABORT, Phase.ABORTED),
        (Phase.PLANNED, -1, Outcome.ABORT, Phase.ABORTED),
    ],
)
def test_every_failure_rolls_back_and_remembers_how_it_ends(
    phase: Phase, step: int, outcome: Outcome, then: Phase
) -> None:
    nxt = advance(record(phase, step), outcome, now=2.0, by="ci", reason="why")
    assert (nxt.phase, nxt.then, nxt.cause, nxt.reason) == (Phase.ROLLING_BACK, then, outcome, "why")
    assert nxt.step == step  # the record keeps where green was, for status and recovery
    done = advance(nxt, Outcome.DONE, now=3.0, by="ci")
    assert done.phase == then and not done.in_flight


@pytest.mark.parametrize("outcome", list(Outcome.__members__.values())[1:])  # all but DONE
def test_rolling_back_is_sticky(outcome: Outcome) -> None:
    rolling = advance(record(Phase.GATING, 0), Outcome.ERROR, now=2.0, by="ci")
    assert advance(rolling, outcome, now=3.0, by="ci") is rolling


def test_rollback_of_a_finished_promotion_and_nothing_else_terminal() -> None:
    back = advance(record(Phase.PROMOTED, 2), Outcome.ABORT, now=2.0, by="op")
    assert (back.phase, back.then) == (Phase.ROLLING_BACK, Phase.ROLLED_BACK)
    for phase in TERMINAL - {Phase.PROMOTED}:
        with pytest.raises(ValueError, match="already ended"):
            advance(record(phase, 0), Outcome.ABORT, now=2.0, by="op")


@pytest.mark.parametrize(("phase", "restart"), sorted(RESUME_AT.items()))
def test_resume_restarts_a_gate_from_its_shift(phase: Phase, restart: Phase) -> None:
    resumed = resume(
        record(phase, 1 if phase not in (Phase.PLANNED, Phase.PRE_TRAFFIC) else -1), now=5.0, by="other"
    )
    assert resumed.phase == restart and resumed.holder == "other"
    assert resumed.transitions[-1].note == f"resumed from {phase}"
    if phase in (Phase.BAKING, Phase.GATING):
        assert (resumed.phase, resumed.step) == (Phase.SHIFTING, 1)


def test_record_round_trips_and_keeps_its_plan() -> None:
    rolling = advance(record(Phase.GATING, 1), Outcome.ABORT, now=2.0, by="op", reason="asked")
    back = PromotionRecord.from_dict(rolling.to_dict())
    assert back == rolling and back.weight == 67
    plan = back.the_plan()
    assert plan == plan_from_dict(plan.to_snapshot()) and plan.steps == [33, 67, 100]
    assert back.plan_hash == snapshot_hash(plan.to_snapshot())
    other = make_plan(Environment("local", "us-east-1", "123456789012"), "1", "2")
    assert snapshot_hash(other.to_snapshot()) != back.plan_hash  # a config change shows


@pytest.mark.parametrize(
    ("cause", "fix"),
    [
        (Outcome.VOID, "the load, not green, is suspect: live's own version failed the gate's requests. "
         "Check the load against live's model (did green's model change its input or output? the load "
         "follows green's example) and whether live is healthy (`orchestrator status`), then promote again"),
        (Outcome.FAILED, "fix green and promote again"),
    ],
)  # fmt: skip
def test_a_void_gate_says_the_load_is_suspect_from_the_recorded_cause(cause: Outcome, fix: str) -> None:
    from orchestrator.release import gate_fix

    # the cause is read from the record as stored: a resumed run that finishes the rollback
    # says the same (the reason's text, which quotes the gate, is not matched)
    rolling = advance(record(Phase.GATING, 0), cause, now=2.0, by="ci", reason="gate step 1 failed: x")
    ended = PromotionRecord.from_dict(advance(rolling, Outcome.DONE, now=3.0, by="ci").to_dict())
    assert (ended.phase, ended.cause) == (Phase.ROLLED_BACK, cause)
    assert ended.cause is not None and gate_fix(ended.cause) == fix


@pytest.mark.parametrize(
    ("command", "found", "lease_live", "expected"),
    [
        ("promote", None, False, Verb.START),
        ("promote", Phase.PROMOTED, False, Verb.START),
        ("promote", Phase.GATING, True, Verb.REFUSE_RUNNING),
        ("promote", None, True, Verb.REFUSE_RUNNING),  # a driver still publishing
        ("promote", Phase.GATING, False, Verb.REFUSE_INTERRUPTED),
        ("promote", Phase.ROLLING_BACK, False, Verb.FINISH_THEN_START),
        ("promote --resume", Phase.PROMOTED, False, Verb.NOTHING_INTERRUPTED),
        ("promote --resume", None, False, Verb.NOTHING_INTERRUPTED),
        ("promote --resume", Phase.SHIFTING, False, Verb.RESUME),
        ("promote --resume", Phase.SHIFTING, True, Verb.REFUSE_RUNNING),
        ("promote --rollback", Phase.ROLLED_BACK, False, Verb.NOTHING_INTERRUPTED),
        ("promote --rollback", Phase.BAKING, False, Verb.ROLL_BACK),
        ("rollback", Phase.PROMOTED, False, Verb.ROLL_BACK),
        ("rollback", Phase.BAKING, True, Verb.REFUSE_RUNNING),
        ("abort", Phase.PROMOTED, False, Verb.NOTHING_TO_DO),
        ("abort", Phase.GATING, True, Verb.REQUEST_ABORT),
        ("abort", Phase.GATING, False, Verb.ROLL_BACK),
        ("abort", Phase.ROLLING_BACK, False, Verb.ROLL_BACK),
        ("up", Phase.PROMOTED, False, Verb.PROCEED),
        ("up", Phase.PROMOTED, True, Verb.REFUSE_RUNNING),
        ("up", Phase.SHIFTING, False, Verb.REFUSE_INTERRUPTED),
    ],
)
def test_command_table(command: str, found: Phase | None, lease_live: bool, expected: Verb) -> None:
    assert verb(command, record(found, 0) if found else None, lease_live) == expected


@pytest.mark.parametrize(
    ("expires_at", "host", "boot", "pid_alive", "stale"),
    [
        (100.0, "runner-1", "b1", True, False),  # live on this machine
        (100.0, "runner-1", "b1", False, True),  # its process is gone: stale at once
        (100.0, "runner-1", "b2", False, False),  # same host name, other container/boot: pid says nothing
        (100.0, "runner-1", "", False, False),  # boot unknown (not Linux): pid says nothing
        (100.0, "elsewhere", "b1", False, False),  # another machine: only expiry tells
        (49.0, "elsewhere", "b1", True, True),  # expired
        (50.0, "elsewhere", "b1", True, True),  # expiry is inclusive
    ],
)
def test_lease_staleness(expires_at: float, host: str, boot: str, pid_alive: bool, stale: bool) -> None:
    held = lease.Lease("ci", "runner-1", 42, expires_at, "t", boot="b1")
    assert lease.is_stale(held, now=50.0, host=host, boot=boot, pid_alive=lambda pid: pid_alive) is stale


def test_lease_identity_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESHIP_HOST", "builder-7")
    monkeypatch.delenv("EDGESHIP_HOLDER", raising=False)
    mine = lease.me(60)
    assert mine.host == "builder-7" and mine.holder.endswith(f"@builder-7:{mine.pid}")
    monkeypatch.setenv("EDGESHIP_HOLDER", "https://github.com/o/r/actions/runs/1")
    assert lease.me(60).holder == "https://github.com/o/r/actions/runs/1"
    assert lease.me(60).token != lease.me(60).token


@pytest.mark.parametrize(
    ("spec", "armed"),
    [
        ("", {}),
        ("enter-shifting=kill", {"enter-shifting": ("kill", "")}),
        (
            "enter-gating:raise; done-rolling-back=sigint",
            {"enter-gating": ("raise", ""), "done-rolling-back": ("sigint", "")},
        ),
        ("in-gate=sleep(250)", {"in-gate": ("sleep", "250")}),
    ],
)
def test_fault_grammar(spec: str, armed: dict[str, tuple[str, str]]) -> None:
    assert faults.parse(spec) == armed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("enter-shiftng=kill", "unknown fault point"),
        ("enter-shifting=explode", "unknown action"),
        ("enter-shifting", "cannot read"),
        ("enter-baking=sleep(soon)", "milliseconds"),
    ],
)
def test_fault_typos_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        faults.parse(spec)


def test_fault_points_fire_once_and_count() -> None:
    try:
        faults.arm("done-baking=raise")
        faults.point("enter-baking")  # not armed: returns
        with pytest.raises(InjectedFault, match="done-baking"):
            faults.point("done-baking")
        faults.point("done-baking")  # second hit: inert
        assert faults.hits["done-baking"] == 2 and faults.hits["enter-baking"] == 1
    finally:
        faults.arm("")


def test_every_phase_in_flight_has_an_act_and_both_fault_points() -> None:
    for phase, row in PHASES.items():
        name = phase.replace("_", "-")
        if phase in TERMINAL:  # an end runs nothing, and the driver's loop never enters it
            assert (row.act, row.hooks, row.stoppable, row.resume_at) == (None, None, False, None), phase
            assert f"enter-{name}" not in faults.POINTS
        else:
            assert row.act is not None, phase
            assert {f"enter-{name}", f"done-{name}"} <= set(faults.POINTS)


def paused_record(pause_at: int | None) -> PromotionRecord:
    return PromotionRecord.new(make_plan(ENV, "1", "2", pause_at=pause_at), "ci", now=1000.0)


def test_pause_holds_after_the_gate_at_its_weight_then_goes_on() -> None:
    current, seen = paused_record(33), []
    for _ in range(9):
        current = advance(current, Outcome.DONE, now=1.0, by="ci")
        seen.append((str(current.phase), current.step))
    assert seen == [
        ("pre_traffic", -1),
        ("shifting", 0), ("baking", 0), ("gating", 0), ("paused", 0),
        ("shifting", 1), ("baking", 1), ("gating", 1),
        ("shifting", 2),
    ]  # fmt: skip
    assert current.plan["pause_at"] == 33


def test_a_paused_promotion_rolls_back_on_abort_and_resumes_holding() -> None:
    paused = replace(paused_record(67), phase=Phase.PAUSED, step=1)
    back = advance(paused, Outcome.ABORT, now=2.0, by="op")
    assert (back.phase, back.then) == (Phase.ROLLING_BACK, Phase.ABORTED)
    assert resume(paused, now=3.0, by="other").phase == Phase.PAUSED  # only a person ends a pause


@pytest.mark.parametrize(
    ("found", "lease_live", "expected"),
    [
        (None, False, Verb.NOT_PAUSED),
        (Phase.PAUSED, True, Verb.CONTINUE),
        (Phase.PAUSED, False, Verb.RESUME),  # its driver is gone: this machine drives it on
        (Phase.GATING, True, Verb.NOT_PAUSED),
        (Phase.PROMOTED, False, Verb.NOT_PAUSED),
    ],
)
def test_resume_promotion_command(found: Phase | None, lease_live: bool, expected: Verb) -> None:
    assert verb("resume-promotion", record(found, 0) if found else None, lease_live) == expected


@pytest.mark.parametrize("weight", [100, 50, 0])
def test_pause_at_must_be_a_step_before_the_last(weight: int) -> None:
    from orchestrator.errors import UsageError

    with pytest.raises(UsageError, match=f"no step at {weight}%") as info:
        make_plan(ENV, "1", "2", pause_at=weight)
    assert info.value.fix == "pause at one of: 33, 67"


# --- the phase tables are total -------------------------------------------------------------


def test_every_phase_has_one_row_and_every_act_one_phase() -> None:
    assert set(PHASES) == set(Phase)  # a dict: one row each
    acts = [row.act for row in PHASES.values() if row.act is not None]
    assert sorted(acts) == sorted(Act)  # each act runs in exactly one phase


def test_the_driver_has_a_function_for_every_act() -> None:
    from orchestrator.driver import _ACTS

    assert set(_ACTS) == set(Act)


def test_only_a_rollback_ignores_stop_requests_and_is_the_only_phase_going_back() -> None:
    in_flight = [p for p in Phase if p not in TERMINAL]
    assert [p for p in in_flight if not PHASES[p].stoppable] == [Phase.ROLLING_BACK]
    assert [p for p in Phase if PHASES[p].family is Family.BACK] == [Phase.ROLLING_BACK]
    assert {p for p in Phase if PHASES[p].family in (Family.DONE_GREEN, Family.DONE_BLUE)} == TERMINAL


def test_resume_restarts_in_flight_and_a_rollback_finishes() -> None:
    assert set(RESUME_AT) == {p for p in Phase if p not in TERMINAL}
    assert all(at not in TERMINAL for at in RESUME_AT.values())
    assert RESUME_AT[Phase.ROLLING_BACK] == Phase.ROLLING_BACK and RESUME_AT[Phase.PAUSED] == Phase.PAUSED


def _situations() -> list[PromotionRecord]:
    """A record in every situation the guards tell apart: each step, pausing there or not."""
    plan = make_plan(ENV, "1", "2")
    found = []
    for step in range(-1, len(plan.steps)):
        for pause_at in (None, *plan.steps):
            fresh = PromotionRecord.new(plan, "ci", now=1000.0)
            found.append(replace(fresh, step=step, plan={**fresh.plan, "pause_at": pause_at}))
    return found


def test_every_phase_in_flight_meets_every_outcome_on_exactly_one_edge() -> None:
    """A phase's rules for an outcome come from its own rows or its family's, never both; their
    guards are distinct and, PAUSE_HERE aside (tried first: the pause before the last-step
    test), split every situation in exactly one."""
    for phase in Phase:
        for outcome in Outcome:
            found = rules(phase, outcome)
            own = [r for r in found if r.source is phase]
            assert not own or len(own) == len(found), (phase, outcome)  # not both
            whens = [r.when for r in found]
            assert len(set(whens)) == len(whens), (phase, outcome)
            if phase in TERMINAL:
                continue
            assert found, (phase, outcome)
            assert When.PAUSE_HERE not in whens[1:], (phase, outcome)
            for record in _situations():
                rest = [r for r in found if r.when is not When.PAUSE_HERE]
                at = replace(record, phase=phase)
                assert sum(holds(r.when, at) for r in rest) == 1, (phase, outcome, at.step)


def test_an_ended_promotion_rejects_every_outcome_but_the_rollback_of_a_promoted_one() -> None:
    for phase in sorted(TERMINAL):
        for outcome in Outcome:
            if (phase, outcome) == (Phase.PROMOTED, Outcome.ABORT):
                assert advance(record(phase, 2), outcome, now=2.0, by="op").phase == Phase.ROLLING_BACK
                continue
            assert rules(phase, outcome) == ()
            with pytest.raises(ValueError, match="already ended"):
                advance(record(phase, 2), outcome, now=2.0, by="op")


def test_every_row_of_transitions_is_reached() -> None:
    used = {id(r) for phase in Phase for outcome in Outcome for r in rules(phase, outcome)}
    assert used == {id(r) for r in TRANSITIONS}


def test_the_driver_tables_have_every_cell() -> None:
    cells = {(f, held) for f in Family for held in (True, False)}
    assert set(AFTER_WRITE_FAILURE) == cells and set(S3_AWAY) == cells
    assert set(FIX_AFTER_FAILED_WRITE) == set(Family) and set(RETARGET) == set(Family)
    assert [stop for stop, _ in STOP_PRIORITY] == [Stop.SIGNAL, Stop.ABORT_REQUEST]  # a signal wins
    assert dict(STOP_PRIORITY) == {Stop.SIGNAL: Outcome.INTERRUPTED, Stop.ABORT_REQUEST: Outcome.ABORT}


@pytest.mark.parametrize(
    ("phase", "held", "asked", "then"),
    [
        (Phase.BAKING, True, True, Course.ROLL_BACK_UNRECORDED),  # live has just moved: back to blue
        (Phase.BAKING, False, True, Course.STOP),
        (Phase.ROLLING_BACK, True, True, Course.ROLL_BACK_UNRECORDED),
        (Phase.PROMOTED, True, False, Course.STOP),  # the lease is not even asked (nor renewed)
        (Phase.ROLLED_BACK, False, False, Course.STOP),
    ],
)
def test_a_driver_table_asks_the_lease_only_where_it_decides(
    phase: Phase, held: bool, asked: bool, then: Course
) -> None:
    seen: list[bool] = []

    def lease() -> bool:
        seen.append(held)
        return held

    assert course(AFTER_WRITE_FAILURE, phase, lease) is then
    assert bool(seen) is asked


def test_s3_away_rolls_back_before_recording_only_a_rollback_under_a_valid_lease() -> None:
    for phase in Phase:
        for valid in (True, False):
            got = course(S3_AWAY, phase, lambda v=valid: v)
            rolls = phase == Phase.ROLLING_BACK and valid
            assert (got is Course.ROLL_BACK_UNRECORDED) is rolls, (phase, valid)


# --- the fix after a failed record write (exit 8): FIX_AFTER_FAILED_WRITE --------------------

# The phase the failed write carried -> the command the fix must name, and the one it must not.
FIX = [
    (Phase.PROMOTED, "promote --env dev --resume", "`orchestrator abort --env"),
    *[
        (p, "orchestrator abort --env dev", "--resume")
        for p in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED)
    ],
    *[
        (p, "orchestrator abort --env dev", None)
        for p in (
            Phase.PLANNED,
            Phase.PRE_TRAFFIC,
            Phase.SHIFTING,
            Phase.BAKING,
            Phase.GATING,
            Phase.PAUSED,
            Phase.PROMOTING,
        )
    ],
]


@pytest.mark.parametrize(("phase", "names", "never"), FIX, ids=[str(p) for p, _, _ in FIX])
def test_the_fix_after_a_failed_write_follows_its_phase(phase: Phase, names: str, never: str | None) -> None:
    fix = after_failed_write("dev", phase)
    assert names in fix, fix
    if never is not None:
        assert never not in fix, fix


def test_every_phase_has_a_fix() -> None:
    assert {p for p, _, _ in FIX} == set(Phase)
    promoted = after_failed_write("dev", Phase.PROMOTED)
    assert "orchestrator status --env dev" in promoted and "nothing to undo" in promoted
    forward = after_failed_write("dev", Phase.BAKING)
    assert "orchestrator promote --env dev --resume" in forward  # going on is offered too
