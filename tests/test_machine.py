"""The promotion state machine, the command table, lease staleness and the fault grammar:
pure decisions, table-tested without any I/O."""

from __future__ import annotations

import pytest

from orchestrator import faults, lease
from orchestrator.errors import ConfigError, InjectedFault
from orchestrator.machine import (
    RESUME_AT,
    TERMINAL,
    Outcome,
    Phase,
    PromotionRecord,
    Verb,
    advance,
    resume,
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
    from dataclasses import replace

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


def test_every_phase_with_an_action_has_both_fault_points() -> None:
    from orchestrator.machine import ACTIONS

    for phase in ACTIONS:
        name = phase.replace("_", "-")
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
    from dataclasses import replace

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
