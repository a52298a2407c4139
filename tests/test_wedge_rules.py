"""The pure rules behind issue 26's no-wedge and abort fixes: a rollback retargeted to a
version that exists (`abort --to`), which abort request is for which driver (no clocks),
and when a failed record write rolls back rather than stops (machine.AFTER_WRITE_FAILURE)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.release import machine
from orchestrator.release.lease import Lease
from orchestrator.release.machine import AFTER_WRITE_FAILURE, Course, Outcome, Phase, PromotionRecord, course
from orchestrator.release.record import AbortRequest, meant_for


def _record(phase: Phase, **extra: object) -> PromotionRecord:
    plan = {"steps": [20, 100], "schedule": "canary"}
    return replace(PromotionRecord("p1", "local", "1", "2", plan, "h", step=0), phase=phase, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "then", "cause", "ends"),
    [
        (Phase.BAKING, None, None, Phase.ABORTED),  # in flight: closed as an abort
        (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Outcome.FAILED, Phase.ROLLED_BACK),  # its own end kept
        (Phase.ROLLING_BACK, None, None, Phase.ABORTED),
        (Phase.PROMOTED, None, None, Phase.ROLLED_BACK),  # as `rollback` of a promoted one
        (Phase.ABORTED, None, Outcome.ABORT, Phase.ABORTED),
    ],
)
def test_retarget_rolls_back_to_the_version_named(
    phase: Phase, then: Phase | None, cause: Outcome | None, ends: Phase
) -> None:
    record = _record(phase, then=then, cause=cause)
    got = machine.retarget(record, "3", now=10.0, by="me@vm", note="live put on v3")
    assert (got.phase, got.blue, got.then, got.green) == (Phase.ROLLING_BACK, "3", ends, "2")
    assert got.cause == (cause or Outcome.ABORT)
    assert got.transitions[-1].note == "live put on v3 (blue was v1)" and got.transitions[-1].by == "me@vm"
    done = machine.advance(got, Outcome.DONE, now=11.0, by="me@vm")
    assert (done.phase, done.blue, done.in_flight) == (ends, "3", False)


def _lease(token: str, promotion: str | None) -> Lease:
    return Lease("me", "vm", 1, 100.0, token, promotion)


@pytest.mark.parametrize(
    ("request_", "held", "honoured"),
    [
        (AbortRequest("op", 0.0, "p1", "t1"), _lease("t1", "p1"), True),
        # the requester's clock is far behind or ahead: `at` is never compared
        (AbortRequest("op", -1e9, "p1", "t1"), _lease("t1", "p1"), True),
        (AbortRequest("op", 1e12, None, "t1"), _lease("t1", "p1"), True),  # asked while it published
        (AbortRequest("op", 0.0, "p1", "t1"), _lease("t1", None), True),  # promotion not attached yet
        (AbortRequest("op", 0.0, "p1", "t1"), _lease("t2", "p1"), False),  # another holder: asked again
        (AbortRequest("op", 0.0, "p1", "t1"), _lease("t1", "p2"), False),  # the same command's next one
        (AbortRequest("op", 0.0, "p1", None), _lease("t9", "p1"), True),  # no token: the promotion named
        (AbortRequest("op", 0.0, "p1", None), _lease("t9", "p2"), False),
        (AbortRequest("op", 0.0, None, None), _lease("t9", None), False),
    ],
)
def test_an_abort_request_is_for_the_lease_and_promotion_it_names(
    request_: AbortRequest, held: Lease, honoured: bool
) -> None:
    assert meant_for(request_, held) is honoured


def test_an_abort_request_of_format_1_is_read() -> None:
    from orchestrator.base import formats

    old = {"by": "op@vm", "at": 1.0, "promotion": "p1", "token": "t1"}  # no `format`: format 1
    newer_field = {**formats.stamp(old), "reason": "a field of a newer edgeship"}
    for body in (old, newer_field):
        request = AbortRequest(**formats.known(AbortRequest, body))
        assert meant_for(request, _lease("t1", "p1"))


@pytest.mark.parametrize(
    ("phase", "held", "rolls_back"),
    [
        (Phase.BAKING, True, True),  # live has just moved: back to blue, not split
        (Phase.SHIFTING, True, True),
        (Phase.ROLLING_BACK, True, True),  # the intent to roll back itself could not be written
        (Phase.PRE_TRAFFIC, True, True),
        (Phase.BAKING, False, False),  # the lease no longer surely holds: stop, the record explains
        (Phase.PROMOTED, True, False),  # live is whole on green: a finished promotion is not undone
        (Phase.ROLLED_BACK, True, False),
    ],
)
def test_a_failed_write_rolls_back_only_under_the_lease_and_in_flight(
    phase: Phase, held: bool, rolls_back: bool
) -> None:
    got = course(AFTER_WRITE_FAILURE, phase, lambda: held)
    assert (got is Course.ROLL_BACK_UNRECORDED) is rolls_back
