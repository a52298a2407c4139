"""The fences without local clocks, as pure decisions: the lease read from S3 right before an
alias write (`lease.unconfirmed`), the clock local lease deadlines run on (`lease.lease_clock`,
`Heartbeat.valid`), and the RevisionId a forward write of live names (`traffic.fence_for`).
The same decisions against a real moto server: tests/test_fences.py."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator.errors import LeaseLostError
from orchestrator.lease import Heartbeat, Lease, LeaseStore, lease_clock, unconfirmed
from orchestrator.machine import PromotionRecord
from orchestrator.plan import make_plan
from orchestrator.record import parse_record
from orchestrator.settings import Environment
from orchestrator.traffic import Fence, fence_for

NOW = 1_800_000_000.0
OURS = Lease("me@laptop:1", "laptop", 1, NOW + 40, "token-a", "p1", "n1", "boot")


@pytest.mark.parametrize(
    ("found", "said"),
    [
        (OURS, None),  # ours, 40 s left: write
        (replace(OURS, nonce="n2", expires_at=NOW + 0.5), None),  # renewed since (new nonce), still ours
        (None, "it was removed"),
        (replace(OURS, token="token-b", holder="ci-run-7", host="runner"), "it was taken over by ci-run-7 (host runner"),
        (replace(OURS, expires_at=NOW), "it expired 0s ago by this machine's clock"),  # expiry is inclusive
        (replace(OURS, expires_at=NOW - 600), "it expired 600s ago by this machine's clock (was the machine suspended"),
    ],
    ids=["ours", "ours-renewed", "removed", "taken-over", "at-expiry", "expired-while-suspended"],
)  # fmt: skip
def test_the_lease_read_in_s3_must_carry_our_token_and_not_have_expired(
    found: Lease | None, said: str | None
) -> None:
    why = unconfirmed(found, "token-a", now=NOW)
    if said is None:
        assert why is None
    else:
        assert why is not None and why.startswith(said)


def test_lease_deadlines_run_on_boottime_where_there_is_one() -> None:
    calls: list[int] = []

    def gettime(clock_id: int) -> float:
        calls.append(clock_id)
        return 42.0

    linux = SimpleNamespace(CLOCK_BOOTTIME=7, clock_gettime=gettime, monotonic=lambda: 1.0)
    assert lease_clock(linux)() == 42.0 and calls == [7]
    elsewhere = SimpleNamespace(monotonic=lambda: 1.0)  # no CLOCK_BOOTTIME (macOS, Windows)
    assert lease_clock(elsewhere)() == 1.0
    if hasattr(time, "CLOCK_BOOTTIME"):  # this machine: the real helper reads CLOCK_BOOTTIME
        seen: list[int] = []
        real = SimpleNamespace(
            CLOCK_BOOTTIME=time.CLOCK_BOOTTIME,
            clock_gettime=lambda c: seen.append(c) or time.clock_gettime(c),
            monotonic=time.monotonic,
        )
        lease_clock(real)()
        assert seen == [time.CLOCK_BOOTTIME]


def test_a_heartbeat_judges_its_local_deadline_on_the_clock_it_is_given() -> None:
    """A suspend shows on CLOCK_BOOTTIME: once the lease's time (less a third) has passed on
    it, the driver no longer believes it holds the lease, whatever monotonic says."""
    clock = [100.0]
    store = cast(LeaseStore, None)  # valid() never touches the store; nothing is started
    beat = Heartbeat(store, OURS, "etag", 30.0, abort_check=lambda _: False, clock=lambda: clock[0])
    assert beat.valid()
    clock[0] += 19.9  # less than two thirds of the lease: still valid
    assert beat.valid()
    clock[0] += 0.2  # asleep past two thirds of it
    assert not beat.valid()


@pytest.mark.parametrize(
    ("recorded", "current", "own", "fence"),
    [
        # no alias write recorded (a fresh promotion, or a record of an older edgeship): the read
        ("", "r1", False, Fence("r1")),
        ("", "r1", True, Fence("r1")),
        # this driver's own last write, and live as it left it: fenced on it
        ("r2", "r2", True, Fence("r2")),
        # moved by someone else since this driver's write: refused before any call
        ("r2", "r3", True, Fence("r2", refused="live was changed by someone else since this run last wrote it "
                                   "(its RevisionId is r3, this run's write left r2)")),
        # an emulator that returns no RevisionId: the recorded one is sent (Lambda would check it)
        ("r2", "", True, Fence("r2")),
        # a resumed promotion: live as the record says -> fenced on it
        ("r2", "r2", False, Fence("r2")),
        # a resumed promotion whose driver died between an alias write and the record write
        ("r2", "r3", False, Fence("r3", note="live changed since the promotion's last recorded alias write "
                                     "(RevisionId r2, now r3): the previous driver's unrecorded last write, "
                                     "or someone else's; fenced on r3")),
    ],
    ids=["fresh", "fresh-own", "own", "own-moved", "own-no-revision", "resumed", "resumed-moved"],
)  # fmt: skip
def test_a_forward_write_of_live_is_fenced_on_the_recorded_revision(
    recorded: str, current: str, own: bool, fence: Fence
) -> None:
    assert fence_for(recorded, current, own=own) == fence


def _record(**data: Any) -> PromotionRecord:
    plan = make_plan(Environment("fencerules", "us-east-1", "123456789012"), "1", "2")
    record = PromotionRecord.new(plan, "driver-a", NOW)
    body = {**record.to_dict(), "format": 2, "edgeship": "0.0.0", **data}
    return parse_record(body, "the record", "s3://b/k")


def test_the_record_keeps_lives_revision_and_an_older_record_reads_without_it() -> None:
    assert _record(live_revision="r9").live_revision == "r9"
    body = _record().to_dict()
    del body["live_revision"]  # as edgeship before the fence wrote it
    assert parse_record({**body, "format": 2}, "the record", "s3://b/k").live_revision == ""


def test_the_lease_module_confirms_with_one_read() -> None:
    """LeaseStore.confirm reads once (GetObject) and raises LeaseLostError (exit 12) for a lease
    not ours; counted on a stand-in store's read, the S3 part is tests/test_fences.py."""
    reads: list[int] = []

    class OneRead(LeaseStore):
        def read(self) -> tuple[Lease | None, str | None]:
            reads.append(1)
            return replace(OURS, token="token-b", expires_at=time.time() + 30), '"e"'

    with pytest.raises(LeaseLostError, match="taken over by me@laptop:1") as lost:
        OneRead(None, "b", "dev").confirm("token-a")
    assert reads == [1] and lost.value.exit_code == 12
