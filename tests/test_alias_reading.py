"""How an alias state reads (whole, split, moving) and what a read-back after a move means,
with and without provisioned concurrency: pure functions, table-tested."""

from __future__ import annotations

import pytest

from orchestrator.release.traffic import (
    AliasReading,
    AliasState,
    Provisioned,
    Reading,
    Settle,
    judge_move,
    read_alias,
)

WHOLE_1 = AliasState("1", {})
MOVING_1_TO_2 = AliasState("2", {"1": 1.0})  # what Lambda shows while v2's PC allocates
MOVING_2_TO_1 = AliasState("1", {"2": 1.0})
CANARY = AliasState("1", {"2": 0.2})
READY = Provisioned("READY", 2, 2)
BUSY = Provisioned("IN_PROGRESS", 2, 0)
FAILED = Provisioned("FAILED", 2, 0, "FUNCTION_ERROR_INIT_FAILURE")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (WHOLE_1, AliasReading(Reading.WHOLE, "1")),
        (AliasState("1", {"2": 0.0}), AliasReading(Reading.WHOLE, "1")),  # a zero weight is no split
        (CANARY, AliasReading(Reading.SPLIT, "1")),
        (AliasState("1", {"2": 0.9999}), AliasReading(Reading.SPLIT, "1")),
        (MOVING_1_TO_2, AliasReading(Reading.MOVING, "2", serving="1")),
        (AliasState("2", {"1": 1}), AliasReading(Reading.MOVING, "2", serving="1")),  # an int from JSON
        (AliasState("2", {"1": 0.5, "3": 0.5}), AliasReading(Reading.SPLIT, "2")),
        (AliasState("2", {"2": 1.0}), AliasReading(Reading.SPLIT, "2")),  # not a move to itself
    ],
    ids=["whole", "zero-weight", "canary", "almost-all", "moving", "moving-int", "three-way", "self"],
)
def test_read_alias(state: AliasState, expected: AliasReading) -> None:
    assert read_alias(state) == expected


def test_a_moving_alias_is_described_as_moving_and_its_shares_are_the_real_ones() -> None:
    assert MOVING_1_TO_2.describe() == (
        "live is moving to v2 (Lambda keeps v1 at 100% until v2's provisioned concurrency is ready)"
    )
    assert MOVING_1_TO_2.share_of("2") == 0 and MOVING_1_TO_2.share_of("1") == 1
    assert not MOVING_1_TO_2.whole


@pytest.mark.parametrize(
    ("asked", "seen", "pc", "expected"),
    [
        # no provisioned concurrency: the alias read back is the whole check
        (AliasState("2", {}), AliasState("2", {}), None, Settle.DONE),
        (CANARY, CANARY, None, Settle.DONE),
        (CANARY, AliasState("1", {"2": 0.2000001}), None, Settle.DONE),
        (AliasState("1", {"2": 0.5}), CANARY, None, Settle.ELSEWHERE),
        (AliasState("2", {}), WHOLE_1, None, Settle.ELSEWHERE),
        (AliasState("2", {}), MOVING_1_TO_2, None, Settle.ELSEWHERE),  # nothing will clear it
        # promote (a whole move) with PC: Lambda holds the requests on v1 until v2 is warm
        (AliasState("2", {}), MOVING_1_TO_2, BUSY, Settle.WAIT),
        (AliasState("2", {}), MOVING_1_TO_2, READY, Settle.WAIT),  # READY read before the alias cleared
        (AliasState("2", {}), MOVING_1_TO_2, FAILED, Settle.FAILED),
        (AliasState("2", {}), AliasState("2", {}), BUSY, Settle.WAIT),
        (AliasState("2", {}), AliasState("2", {}), READY, Settle.DONE),
        (AliasState("2", {}), AliasState("2", {}), FAILED, Settle.COLD),
        # rollback from a finished promotion with PC
        (AliasState("1", {}), MOVING_2_TO_1, BUSY, Settle.WAIT),
        (AliasState("1", {}), WHOLE_1, READY, Settle.DONE),
        (AliasState("1", {}), MOVING_1_TO_2, BUSY, Settle.ELSEWHERE),  # moving the other way
        # shifting (weights only) with PC: requests move at once, the PC is split again
        (CANARY, CANARY, BUSY, Settle.WAIT),
        (CANARY, CANARY, READY, Settle.DONE),
        (CANARY, CANARY, FAILED, Settle.COLD),
        (CANARY, MOVING_1_TO_2, BUSY, Settle.ELSEWHERE),
        # a look before a new promotion: wherever it is moving to
        (None, MOVING_1_TO_2, BUSY, Settle.WAIT),
        (None, MOVING_1_TO_2, FAILED, Settle.FAILED),
        (None, AliasState("2", {}), READY, Settle.DONE),
        (None, CANARY, None, Settle.DONE),
    ],
)
def test_judge_move(
    asked: AliasState | None, seen: AliasState, pc: Provisioned | None, expected: Settle
) -> None:
    assert judge_move(asked, seen, pc).settle == expected


@pytest.mark.parametrize(
    ("seen", "pc", "expected"),
    [
        # rolled back from a canary (weights only): every request is on v1 at once, and Lambda
        # re-allocates the PC meanwhile: done, not a wait of up to 15 minutes
        (WHOLE_1, BUSY, Settle.DONE),
        (WHOLE_1, READY, Settle.DONE),
        (WHOLE_1, None, Settle.DONE),
        (WHOLE_1, FAILED, Settle.COLD),  # all on blue, on-demand: rolled back, said
        # rolled back from a finished promotion: Lambda holds the requests on v2 until v1 is warm
        (MOVING_2_TO_1, BUSY, Settle.WAIT),
        (MOVING_2_TO_1, READY, Settle.WAIT),
        (MOVING_2_TO_1, FAILED, Settle.FAILED),
        (CANARY, BUSY, Settle.ELSEWHERE),  # someone else moved it
    ],
)
def test_a_rollback_is_done_once_every_request_is_on_blue(
    seen: AliasState, pc: Provisioned | None, expected: Settle
) -> None:
    got = judge_move(AliasState("1", {}), seen, pc, rollback=True)
    assert got.settle == expected
    # only a rollback done before its PC is READY has something to say about it
    assert bool(got.note) == (seen == WHOLE_1 and pc == BUSY)
    # a forward move to the same place still waits for the PC
    if seen == WHOLE_1 and pc == BUSY:
        assert judge_move(AliasState("1", {}), seen, pc).settle == Settle.WAIT
        assert got.note == (
            "live is on v1 at 100%: rolled back, while its provisioned concurrency IN_PROGRESS (0 of 2 "
            "allocated) (on-demand sandboxes serve what it does not cover until it is READY)"
        )


def test_judge_move_says_what_it_waits_for_and_why_it_failed() -> None:
    waiting = judge_move(AliasState("2", {}), MOVING_1_TO_2, BUSY).why
    assert waiting == (
        "live is moving to v2 (Lambda keeps v1 at 100% until v2's provisioned concurrency is ready); "
        "waiting for its provisioned concurrency IN_PROGRESS (0 of 2 allocated)"
    )
    failed = judge_move(AliasState("2", {}), MOVING_1_TO_2, FAILED).why
    assert failed == (
        "Lambda could not allocate provisioned concurrency to v2 and keeps every request of live on v1: "
        "provisioned concurrency FAILED (0 of 2 allocated): FUNCTION_ERROR_INIT_FAILURE"
    )
    stuck = judge_move(AliasState("2", {}), MOVING_1_TO_2, None).why
    assert stuck == (
        "live is on v2 with v1 weighted at 100%, and no provisioned concurrency on it whose allocation "
        "would clear that"
    )
    elsewhere = judge_move(AliasState("2", {}), WHOLE_1, None).why
    assert elsewhere == "live is on v1 at 100% where it was asked to be on v2 at 100%"


def test_the_local_edge_routes_a_moving_alias_to_the_version_lambda_keeps() -> None:
    import random

    from orchestrator.local.edge import Routing

    rng = random.Random(7)
    routing = Routing(MOVING_1_TO_2.version, dict(MOVING_1_TO_2.weights), "2")
    assert {routing.pick_live(rng) for _ in range(1000)} == {"1"}
