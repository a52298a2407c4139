"""The fences without local clocks, as pure decisions: the lease read from S3 right before an
alias write (`lease.unconfirmed`; a read that failed: `lease.after_failed_read`; ours but
expired by the wall clock: renewed once, `Heartbeat.confirm`), the clock local lease deadlines run on (`lease.lease_clock`,
`Heartbeat.valid`), and the RevisionId a forward write of live names (`traffic.fence_for`), and a fenced write
refused because its own lost-answer attempt landed (`traffic.own_write_landed`).
The same decisions against a real moto server: tests/test_fences.py."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.exceptions import EndpointConnectionError

from orchestrator.base.errors import (
    EdgeshipError,
    LeaseLostError,
    LeaseUnconfirmedError,
    RollbackIncompleteError,
)
from orchestrator.config.settings import Environment
from orchestrator.release.lease import (
    Heartbeat,
    Lease,
    LeaseStore,
    after_failed_read,
    lease_clock,
    unconfirmed,
)
from orchestrator.release.machine import PromotionRecord
from orchestrator.release.operations import stop_outcome
from orchestrator.release.plan import make_plan
from orchestrator.release.record import parse_record
from orchestrator.release.traffic import AliasState, Fence, fence_for, own_write_landed

NOW = 1_800_000_000.0
OURS = Lease("me@laptop:1", "laptop", 1, NOW + 40, "token-a", "p1", "n1", "boot")


@pytest.mark.parametrize(
    ("found", "said", "ours"),
    [
        (OURS, None, True),  # ours, 40 s of a 30 s lease left: write
        (replace(OURS, nonce="n2", expires_at=NOW + 10.5), None, True),  # renewed since (new nonce), a third left
        (None, "it was removed", False),
        (replace(OURS, token="token-b", holder="ci-run-7", host="runner"), "it was taken over by ci-run-7 (host runner", False),
        # ours, but the wall clock leaves less than the third a write needs (the local deadline's
        # margin): not lost, one renewal decides
        (replace(OURS, expires_at=NOW + 10), "only 10.0s of it are left by this machine's clock (a write needs a third of the 30s lease)", True),
        (replace(OURS, expires_at=NOW), "it expired 0s ago by this machine's clock", True),  # expiry is inclusive
        (replace(OURS, expires_at=NOW - 600), "it expired 600s ago by this machine's clock (was the clock stepped forward", True),
    ],
    ids=["ours", "ours-renewed", "removed", "taken-over", "ours-under-a-third", "ours-at-expiry", "ours-expired"],
)  # fmt: skip
def test_the_lease_read_in_s3_must_carry_our_token_and_a_third_of_its_time(
    found: Lease | None, said: str | None, ours: bool
) -> None:
    verdict = unconfirmed(found, "token-a", now=NOW, lease_s=30.0)
    if said is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.why.startswith(said) and verdict.ours == ours


@pytest.mark.parametrize(
    ("rollback", "valid", "tries", "spare_s", "read_s", "then"),
    [
        (True, True, 1, 30.0, 0.1, "write"),  # putting live on blue while nobody else may take the lease
        (True, True, 1, 0.5, 12.0, "write"),  # however slow the read: the local third still holds
        (True, False, 1, 30.0, 0.1, "renew"),  # the local third ran out: renewed at once, or exit 8
        (False, True, 1, 30.0, 0.1, "retry"),
        (False, True, 2, 30.0, 0.1, "retry"),
        (False, True, 3, 30.0, 0.1, "refuse"),  # still unconfirmed: not forward (the promotion rolls back)
        (False, False, 2, 30.0, 0.1, "renew"),
        # A read that timed out after 7 s (connect timeouts, 2 attempts) with 20 s spare: one more
        # like it plus the rollback's record write and lease read would not fit: refused now, so
        # that the rollback still has its third (review P2-1: before, a 3rd try used it up and the
        # driver stopped with live split)
        (False, True, 1, 20.0, 7.0, "refuse"),
        (False, True, 1, 23.0, 7.0, "retry"),  # 3 x 7 s + the pause fit in 23 s
        (False, True, 1, 4.0, 1.0, "retry"),  # the bound is the slowness, not a fixed count of seconds
        (False, True, 1, 3.9, 1.0, "refuse"),
    ],
    ids=["rollback", "rollback-slow", "rollback-not-valid", "forward-1st", "forward-2nd", "forward-3rd",
         "forward-not-valid", "forward-slow-refused", "forward-slow-room", "forward-1s-room", "forward-1s-short"],
)  # fmt: skip
def test_a_failed_lease_read_stops_forward_writes_only(
    rollback: bool, valid: bool, tries: int, spare_s: float, read_s: float, then: str
) -> None:
    got = after_failed_read(rollback=rollback, valid=valid, tries=tries, spare_s=spare_s, read_s=read_s)
    assert got == then


class _Confirming(LeaseStore):
    """A stand-in lease store: `read` returns `found`; `renew` does what `renewal` says."""

    def __init__(self, found: Lease, renewal: str) -> None:
        super().__init__(None, "b", "dev")
        self.found, self.renewal, self.renewals = found, renewal, 0

    def read(self) -> tuple[Lease | None, str | None]:
        return self.found, '"e1"'

    def renew(
        self, mine: Lease, etag: str, lease_s: float, promotion: str | None = None, nonce: str | None = None
    ) -> tuple[Lease, str]:
        self.renewals += 1
        if self.renewal == "lands":
            self.found = replace(mine, expires_at=time.time() + lease_s, nonce="n9")
            return self.found, '"e2"'
        if self.renewal == "taken":
            raise LeaseLostError("this run lost the promotion lease of 'dev' to ci-run-7", fix="see status")
        raise EndpointConnectionError(endpoint_url="https://s3.example")


@pytest.mark.parametrize(
    ("renewal", "returned", "lost", "renewals"),
    [
        ("lands", None, False, 1),  # nobody took it meanwhile (the renewal is If-Match on our ETag): write
        ("taken", LeaseLostError, True, 1),  # another holder now: exit 12, `lost` kept
        # unknown, tried again (review: one 503 must not stop a promotion) then given up: not
        # someone else's as far as we know, so `lost` stays unset (the driver exits 8)
        ("unreachable", "it expired 5s ago by this machine's clock", False, 3),
    ],
)  # fmt: skip
def test_a_lease_ours_but_expired_by_the_wall_clock_is_renewed_once(
    renewal: str, returned: Any, lost: bool, renewals: int
) -> None:
    """A forward wall-clock step (NTP after a VM booted, a paused VM) larger than a third of
    the lease since the last renewal: `valid()` on CLOCK_BOOTTIME still holds, S3's expiry has
    passed by the wall clock. The lease is still ours: one renewal that gets an answer says
    whether it stays so."""
    mine = replace(OURS, expires_at=time.time() + 30)
    store = _Confirming(replace(mine, expires_at=time.time() - 5), renewal)
    beat = Heartbeat(store, mine, '"e1"', 30.0, abort_check=lambda _: False, clock=lambda: 0.0)
    if returned is LeaseLostError:
        with pytest.raises(LeaseLostError, match="to ci-run-7"):
            beat.confirm()
    elif returned is None:
        assert beat.confirm() is None and beat.etag == '"e2"' and beat.valid()
    else:
        why = beat.confirm()
        assert why is not None and why.startswith(returned)
        assert why.endswith("and renewing it failed (EndpointConnectionError: Could not connect to the "
                            'endpoint URL: "https://s3.example")')  # fmt: skip
    assert store.renewals == renewals and (beat.lost is not None) == lost


def test_a_lease_confirmed_in_s3_is_not_renewed() -> None:
    store = _Confirming(replace(OURS, expires_at=time.time() + 30), "taken")
    beat = Heartbeat(store, OURS, '"e1"', 30.0, abort_check=lambda _: False, clock=lambda: 0.0)
    assert beat.confirm() is None and store.renewals == 0 and beat.lost is None


def test_the_local_deadline_counts_from_before_the_take() -> None:
    """The lease's S3 expiry was fixed by `lease.me`, before the take's PUT (seconds with
    retries): the local deadline starts there too, never later than S3's."""
    clock = [100.0]
    store = cast(LeaseStore, None)
    beat = Heartbeat(
        store, OURS, "etag", 30.0, abort_check=lambda _: False, clock=lambda: clock[0], taken_at=88.0
    )
    clock[0] = 107.9  # 19.9 s after the take began
    assert beat.valid()
    clock[0] = 108.1  # two thirds gone since the take began (only 8.1 s since the heartbeat was made)
    assert not beat.valid()


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
        OneRead(None, "b", "dev").confirm("token-a", 30.0)
    assert reads == [1] and lost.value.exit_code == 12


@pytest.mark.parametrize(
    ("asked", "found", "ours"),
    [
        (AliasState("1", {"2": 0.1}), AliasState("1", {"2": 0.1}, "r2"), True),  # the canary step landed
        (AliasState("2", {}), AliasState("2", {}, "r3"), True),  # green at 100 % landed
        (AliasState("1", {"2": 0.1}), AliasState("1", {"2": 0.10000001}, "r2"), True),  # Lambda's float
        (AliasState("1", {"2": 0.1}), AliasState("1", {}, "r2"), False),  # someone put it back on blue
        (AliasState("1", {"2": 0.1}), AliasState("1", {"2": 0.5}, "r2"), False),  # another weight
        (AliasState("2", {}), AliasState("3", {}, "r3"), False),  # another version
        (AliasState("1", {"2": 0.1}), AliasState("1", {"3": 0.1}, "r2"), False),  # another green
        (AliasState("1", {}), AliasState("1", {"2": 0.0}, "r2"), True),  # a zero weight is no weight
        # green at 100 % landed on a function with provisioned concurrency: Lambda holds every
        # request on blue until green is warm (moving), as `settle` then waits for
        (AliasState("2", {}), AliasState("2", {"1": 1.0}, "r3"), True),
        (AliasState("2", {}), AliasState("2", {"1": 0.5}, "r3"), False),  # split, not moving
    ],
    ids=["canary", "whole", "float", "rolled-back", "other-weight", "other-version", "other-green", "zero",
         "moving", "split-not-moving"],
)  # fmt: skip
def test_a_refused_fenced_write_is_ours_only_when_live_reads_exactly_as_asked(
    asked: AliasState, found: AliasState, ours: bool
) -> None:
    # review P2-2: a lost UpdateAlias answer, retried by botocore with the old RevisionId, is
    # refused as PreconditionFailed although our write landed; that must not roll back
    assert own_write_landed(asked, found) is ours


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (LeaseLostError("lost the promotion lease to b@m"), "deposed"),
        (LeaseUnconfirmedError("the promotion lease could not be renewed"), "stopped_lease_unconfirmed"),
        (RollbackIncompleteError("live could not be put back on v1"), "rollback_incomplete"),
    ],
    ids=["deposed", "unconfirmed", "rollback-incomplete"],
)
def test_a_stopped_driver_s_report_says_which_stop(exc: EdgeshipError, outcome: str) -> None:
    # review P3-3: a deposed driver wrote no report, a lease stop was labelled a rollback
    assert stop_outcome(exc) == outcome
