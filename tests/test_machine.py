"""The promotion state machine, the command table, lease staleness and the fault grammar:
pure decisions, table-tested without any I/O. The phase tables' totality is here; that they say
what the code said before they were tables is tests/test_machine_oracle.py."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.base import faults
from orchestrator.base.errors import ConfigError, InjectedFault
from orchestrator.config.settings import Environment, TrafficSettings
from orchestrator.release import lease
from orchestrator.release.machine import (
    ABORT_GAVE_UP,
    ABORT_TO_HELD,
    ABORT_WAIT,
    AFTER_WRITE_FAILURE,
    COMMANDS,
    ENDINGS,
    FIX_AFTER_FAILED_WRITE,
    FOUND_IN,
    PHASES,
    RESUME_AT,
    RESUME_PAUSED,
    RESUME_WAIT,
    RETARGET,
    S3_AWAY,
    START_LIVE,
    STOP_PRIORITY,
    TERMINAL,
    TRANSITIONS,
    UNSPLIT,
    UNSPLIT_HELD,
    Act,
    Command,
    Course,
    Ending,
    Ends,
    Family,
    Found,
    Holder,
    Outcome,
    Phase,
    PromotionRecord,
    Stop,
    Verdict,
    Waiting,
    When,
    _table,
    advance,
    after_failed_write,
    ask,
    course,
    ends,
    found,
    holder,
    holds,
    resume,
    rules,
    snapshot_hash,
    verb,
)
from orchestrator.release.plan import make_plan, plan_from_dict
from orchestrator.release.traffic import Reading

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
    from orchestrator.release.operations import gate_fix

    # the cause is read from the record as stored: a resumed run that finishes the rollback
    # says the same (the reason's text, which quotes the gate, is not matched)
    rolling = advance(record(Phase.GATING, 0), cause, now=2.0, by="ci", reason="gate step 1 failed: x")
    ended = PromotionRecord.from_dict(advance(rolling, Outcome.DONE, now=3.0, by="ci").to_dict())
    assert (ended.phase, ended.cause) == (Phase.ROLLED_BACK, cause)
    assert ended.cause is not None and gate_fix(ended.cause) == fix


@pytest.mark.parametrize(
    ("command", "found", "lease_live", "expected"),
    [
        ("promote", None, False, Verdict.START),
        ("promote", Phase.PROMOTED, False, Verdict.START),
        ("promote", Phase.GATING, True, Verdict.REFUSE_RUNNING),
        ("promote", None, True, Verdict.REFUSE_RUNNING),  # a driver still publishing
        ("promote", Phase.GATING, False, Verdict.REFUSE_INTERRUPTED),
        ("promote", Phase.ROLLING_BACK, False, Verdict.FINISH_THEN_START),
        ("promote --resume", Phase.PROMOTED, False, Verdict.NOTHING_INTERRUPTED),
        ("promote --resume", None, False, Verdict.NOTHING_INTERRUPTED),
        ("promote --resume", Phase.SHIFTING, False, Verdict.RESUME),
        ("promote --resume", Phase.SHIFTING, True, Verdict.REFUSE_RUNNING),
        ("promote --rollback", Phase.ROLLED_BACK, False, Verdict.NOTHING_INTERRUPTED),
        ("promote --rollback", Phase.BAKING, False, Verdict.ROLL_BACK),
        ("rollback", Phase.PROMOTED, False, Verdict.ROLL_BACK),
        ("rollback", Phase.BAKING, True, Verdict.REFUSE_RUNNING),
        ("abort", Phase.PROMOTED, False, Verdict.NOTHING_IN_FLIGHT),  # live put whole if split
        ("abort", Phase.GATING, True, Verdict.REQUEST_ABORT),
        ("abort", Phase.GATING, False, Verdict.ROLL_BACK),
        ("abort", Phase.ROLLING_BACK, False, Verdict.ROLL_BACK),
        ("up", Phase.PROMOTED, False, Verdict.PROCEED),
        ("up", Phase.PROMOTED, True, Verdict.REFUSE_RUNNING),
        ("up", Phase.SHIFTING, False, Verdict.REFUSE_INTERRUPTED),
    ],
)
def test_command_table(command: str, found: Phase | None, lease_live: bool, expected: Verdict) -> None:
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
        (None, False, Verdict.NOT_PAUSED),
        (Phase.PAUSED, True, Verdict.CONTINUE),
        (Phase.PAUSED, False, Verdict.RESUME),  # its driver is gone: this machine drives it on
        (Phase.GATING, True, Verdict.NOT_PAUSED),
        (Phase.PROMOTED, False, Verdict.NOT_PAUSED),
    ],
)
def test_resume_promotion_command(found: Phase | None, lease_live: bool, expected: Verdict) -> None:
    assert verb("resume-promotion", record(found, 0) if found else None, lease_live) == expected


@pytest.mark.parametrize("weight", [100, 50, 0])
def test_pause_at_must_be_a_step_before_the_last(weight: int) -> None:
    from orchestrator.base.errors import UsageError

    with pytest.raises(UsageError, match=f"no step at {weight}%") as info:
        make_plan(ENV, "1", "2", pause_at=weight)
    assert info.value.fix == "pause at one of: 33, 67"


# --- the phase tables are total -------------------------------------------------------------


def test_every_phase_has_one_row_and_every_act_one_phase() -> None:
    assert set(PHASES) == set(Phase)  # a dict: one row each
    acts = [row.act for row in PHASES.values() if row.act is not None]
    assert sorted(acts) == sorted(Act)  # each act runs in exactly one phase


def test_the_driver_has_a_function_for_every_act() -> None:
    from orchestrator.release.driver import _ACTS

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


# -- the command tables (issue 28, step E6): what each command does with each situation ----------


def test_every_command_table_has_exactly_one_verdict_in_every_cell() -> None:
    # `_table` refuses a cell two rows cover at import; here: none is missing
    domains: dict[str, tuple[dict[Any, Any], list[list[Any]]]] = {
        "COMMANDS": (COMMANDS, [list(Command), list(Holder), list(Found)]),
        "RESUME_PAUSED": (RESUME_PAUSED, [list(Found), [True, False]]),
        "ABORT_WAIT": (ABORT_WAIT, [list(Waiting), list(Found), [True, False]]),
        "ABORT_GAVE_UP": (ABORT_GAVE_UP, [list(Found)]),
        "RESUME_WAIT": (RESUME_WAIT, [list(Waiting), list(Found), [True, False]]),
        "START_LIVE": (START_LIVE, [list(Reading), [True, False], [True, False]]),
        "UNSPLIT": (UNSPLIT, [list(Reading), list(Ends)]),
        "UNSPLIT_HELD": (UNSPLIT_HELD, [list(Found), [True, False]]),
        "ABORT_TO_HELD": (ABORT_TO_HELD, [list(Found), [True, False]]),
        "ENDINGS": (ENDINGS, [list(Phase), [None, *Outcome]]),
    }
    for name, (table, keys) in domains.items():
        cells = {cell if len(cell) > 1 else cell[0] for cell in itertools.product(*keys)}
        assert set(table) == cells, name


def test_two_rows_for_one_cell_are_refused() -> None:
    with pytest.raises(ValueError, match="two rows"):
        _table(
            ((Found.PAUSED, Verdict.RESUME), (frozenset({Found.PAUSED, Found.IN_FLIGHT}), Verdict.NOT_PAUSED))
        )


def test_every_phase_is_found_as_one_kind_and_a_look_is_classified() -> None:
    assert set(FOUND_IN) == set(Phase)
    assert found(False, record(Phase.PAUSED)) is Found.NOT_DEPLOYED
    assert found(True, None) is Found.NO_RECORD
    assert [found(True, record(p)) for p in (Phase.PAUSED, Phase.GATING, Phase.ROLLING_BACK, Phase.FAILED)] == [
        Found.PAUSED, Found.IN_FLIGHT, Found.ROLLING_BACK, Found.ENDED_ON_BLUE,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("present", "live", "stack_change", "promotion", "expected"),
    [
        (False, False, False, None, Holder.NONE),
        (True, False, True, None, Holder.STALE),  # a dead `up`: anyone may take it
        (True, True, True, None, Holder.STACK_CHANGE),
        (True, True, False, None, Holder.PUBLISHING),
        (True, True, False, "p1", Holder.PROMOTION),
    ],
)
def test_a_lease_is_classified(
    present: bool, live: bool, stack_change: bool, promotion: str | None, expected: Holder
) -> None:
    assert holder(present=present, live=live, stack_change=stack_change, promotion=promotion) is expected


@pytest.mark.parametrize(
    ("command", "held", "seen", "expected"),
    [
        # rollback says "nothing recorded" before it looks at a running lease
        (Command.ROLLBACK, Holder.STACK_CHANGE, Found.NO_RECORD, Verdict.NOTHING_TO_ROLL_BACK),
        (Command.ROLLBACK, Holder.PROMOTION, Found.PROMOTED, Verdict.REFUSE_RUNNING),
        (
            Command.ROLLBACK,
            Holder.OURS,
            Found.PROMOTED,
            Verdict.TAKE_OVER_ROLL_BACK,
        ),  # the last promotion's blue
        # only `rollback` undoes a promotion that ended promoted under the lease; abort says so
        (Command.ABORT, Holder.OURS, Found.PROMOTED, Verdict.FINISHED_PROMOTED),
        (Command.PROMOTE_ROLLBACK, Holder.OURS, Found.ROLLING_BACK, Verdict.TAKE_OVER_FINISH),
        (Command.ABORT, Holder.OURS, Found.ENDED_ON_BLUE, Verdict.REPUT_BLUE),
        # abort looks twice at a stack change's lease
        (Command.ABORT, Holder.STACK_CHANGE, Found.IN_FLIGHT, Verdict.LOOK_AGAIN),
        (Command.ABORT_AGAIN, Holder.STACK_CHANGE, Found.IN_FLIGHT, Verdict.REFUSE_STACK_CHANGE),
        (Command.ABORT, Holder.PUBLISHING, Found.NO_RECORD, Verdict.REQUEST_ABORT),
        (Command.ABORT, Holder.NONE, Found.NOT_DEPLOYED, Verdict.NOTHING_TO_DO),
        (Command.ABORT, Holder.STALE, Found.ENDED_ON_BLUE, Verdict.NOTHING_IN_FLIGHT),
        (Command.PROMOTE, Holder.NONE, Found.NOT_DEPLOYED, Verdict.FIRST_DEPLOY),
        (Command.PROMOTE, Holder.OURS, Found.NOT_DEPLOYED, Verdict.START),  # as no record, under our lease
        (Command.PROMOTE_RESUME, Holder.NONE, Found.NOT_DEPLOYED, Verdict.NOT_DEPLOYED),
        (Command.ABORT_TO, Holder.PUBLISHING, Found.IN_FLIGHT, Verdict.REFUSE_WHILE_DRIVEN),
        (Command.ABORT_TO, Holder.NONE, Found.NOT_DEPLOYED, Verdict.REQUIRE_DEPLOYED),
        (Command.UP, Holder.NONE, Found.NOT_DEPLOYED, Verdict.PROCEED_UNLEASED),
        (Command.UP, Holder.OURS, Found.PAUSED, Verdict.REFUSE_INTERRUPTED),
        (Command.RESUME_PROMOTION, Holder.STACK_CHANGE, Found.PAUSED, Verdict.CONTINUE),
    ],
)
def test_command_rows(command: Command, held: Holder, seen: Found, expected: Verdict) -> None:
    assert COMMANDS[(command, held, seen)] is expected


@pytest.mark.parametrize(
    ("seen", "paused_one", "expected"),
    [
        (Found.PAUSED, True, Verdict.RESUME),
        (Found.PAUSED, False, Verdict.NO_LONGER_PAUSED),
        (Found.IN_FLIGHT, True, Verdict.NO_LONGER_PAUSED),  # it went on before our lease
        (Found.ENDED_ON_BLUE, True, Verdict.NOTHING_INTERRUPTED),  # nothing in flight is said first
    ],
)
def test_the_paused_one_is_checked_only_under_the_lease_after_nothing_interrupted(
    seen: Found, paused_one: bool, expected: Verdict
) -> None:
    assert RESUME_PAUSED[(seen, paused_one)] is expected


@pytest.mark.parametrize(
    ("held", "seen", "asked", "expected"),
    [
        (Waiting.ASKED, Found.ROLLING_BACK, True, Verdict.KEEP_WAITING),
        (Waiting.ANOTHER, Found.IN_FLIGHT, True, Verdict.FOLLOW),  # a resume took it over
        (Waiting.ANOTHER, Found.IN_FLIGHT, False, Verdict.KEEP_WAITING),  # another promotion: not followed
        (Waiting.NONE, Found.PAUSED, False, Verdict.ROLL_BACK),
        (Waiting.STALE, Found.NO_RECORD, False, Verdict.CLEAR_STALE),
        (Waiting.NONE, Found.PROMOTED, True, Verdict.PROMOTED_FIRST),
        (Waiting.NONE, Found.ENDED_ON_BLUE, True, Verdict.REPORT_END),
        (Waiting.NONE, Found.ENDED_ON_BLUE, False, Verdict.NOTHING_IN_FLIGHT),
    ],
)
def test_abort_waits(held: Waiting, seen: Found, asked: bool, expected: Verdict) -> None:
    assert ABORT_WAIT[(held, seen, asked)] is expected
    assert ABORT_GAVE_UP[Found.ROLLING_BACK] is Verdict.STILL_ROLLING_BACK


@pytest.mark.parametrize(
    ("held", "seen", "paused_one", "expected"),
    [
        (Waiting.ANOTHER, Found.PAUSED, True, Verdict.KEEP_WAITING),
        (Waiting.STALE, Found.PAUSED, True, Verdict.RESUME),  # its driver died while paused
        (Waiting.ANOTHER, Found.IN_FLIGHT, True, Verdict.WENT_ON),
        (Waiting.NONE, Found.ROLLING_BACK, True, Verdict.DID_NOT_GO_ON),
        (Waiting.NONE, Found.PAUSED, False, Verdict.NO_LONGER_CURRENT),
    ],
)
def test_resume_promotion_waits(held: Waiting, seen: Found, paused_one: bool, expected: Verdict) -> None:
    assert RESUME_WAIT[(held, seen, paused_one)] is expected


def test_live_at_a_new_promotions_start_and_the_endings() -> None:
    assert START_LIVE[(Reading.MOVING, False, True)] is Verdict.WAIT_SETTLED
    assert START_LIVE[(Reading.MOVING, True, False)] is Verdict.REFUSE_SPLIT  # still moving after the wait
    assert START_LIVE[(Reading.WHOLE, True, True)] is Verdict.NOTHING_TO_PROMOTE
    assert ENDINGS[(Phase.ROLLED_BACK, Outcome.VOID)] is Ending.GATE_FAILED
    assert ENDINGS[(Phase.FAILED, Outcome.INTERRUPTED)] is Ending.CANCELLED
    assert ENDINGS[(Phase.ABORTED, Outcome.INTERRUPTED)] is Ending.ABORTED  # the phase first


def test_unsplit_asks_where_the_record_ends_only_of_a_split_live_alias() -> None:
    asked: list[str] = []

    def where() -> Ends:
        asked.append("versions")
        return Ends.PUBLISHED

    assert ask(UNSPLIT, (Reading.WHOLE,), Ends, where) is Verdict.NOTHING_IN_FLIGHT and asked == []
    assert ask(UNSPLIT, (Reading.SPLIT,), Ends, where) is Verdict.UNSPLIT and asked == ["versions"]
    assert ends(None, []) is Ends.NO_RECORD
    assert ends(record(Phase.PROMOTED), ["2"]) is Ends.PUBLISHED  # green
    assert ends(record(Phase.ABORTED), ["2"]) is Ends.GONE  # blue, v1, is not published
