"""The lease's `kind` (issue 26), pure: what holds the lease is read back from its body, an
older body without it reads as before (a promotion's), and only a stack change is one. And the
decisions of a stack change's give-back and of abort's refusal of it (second review: P1-B,
P2-D, P3-1)."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from orchestrator.base import faults, formats
from orchestrator.base.processes import signals_deferred
from orchestrator.release import lease
from orchestrator.release.lease import parse_lease
from orchestrator.release.machine import Command, Verdict
from orchestrator.release.operations import Look

DATA = Path(__file__).parent / "data" / "records"
AT = "s3://bucket/promotions/staging/lock.json"


@pytest.mark.parametrize(
    ("kind", "stack_change"),
    [
        ("up", True),
        ("rotate-origin-secret", True),
        ("promotion", False),
        ("rollback", False),
        ("abort", False),
    ],
)
def test_a_lease_says_what_holds_it(kind: str, stack_change: bool) -> None:
    written = json.dumps(formats.stamp(asdict(lease.me(30, kind=kind)))).encode()
    read = parse_lease(written, "staging", AT)
    assert (read.kind, read.stack_change) == (kind, stack_change)


def test_a_lease_written_before_kinds_reads_as_a_promotions() -> None:
    read = parse_lease((DATA / "format2-lease.json").read_bytes(), "staging", AT)
    assert (read.kind, read.stack_change) == ("", False)
    assert lease.me(30).kind == "promotion"


def test_the_stack_change_fault_point_exists() -> None:
    assert faults.parse("stack-change-after-lease=sigterm") == {"stack-change-after-lease": ("sigterm", "")}


# -- giving the lease back (review P1-B): a DELETE whose answer was lost is not a lost lease ------


@pytest.mark.parametrize(
    ("released", "lost", "valid", "given_back"),
    [
        (lease.Released.RELEASED, False, True, True),
        (lease.Released.RELEASED, False, False, True),  # deleted by our token: ours to the end
        # gone, while ours had a third left: nobody could take it, so the DELETE that landed was
        # ours (botocore's retry of it met no object)
        (lease.Released.ABSENT, False, True, True),
        (lease.Released.ABSENT, False, False, False),  # it ran out: someone may have taken it since
        (lease.Released.OTHER, False, True, False),  # another acquisition's: a take-over
        (lease.Released.OTHER, False, False, False),
        (lease.Released.RELEASED, True, True, False),  # deposed while it ran: exit 12 as before
        (lease.Released.ABSENT, True, True, False),
    ],
)
def test_what_a_release_found_says_whether_the_lease_was_ours_to_the_end(
    released: lease.Released, lost: bool, valid: bool, given_back: bool
) -> None:
    assert lease.given_back(released, lost=lost, valid=valid) is given_back


# -- abort's refusal of a stack change (review P3-1) ----------------------------------------------


def _look(kind: str, live: bool) -> Look:
    return Look(deployed=True, lease=replace(lease.me(30), kind=kind), lease_live=live)


@pytest.mark.parametrize(
    ("look", "refused"),
    [
        (_look("up", True), True),
        (_look("rotate-origin-secret", True), True),
        (_look("up", False), False),  # a dead `up`'s stale lease: abort clears it, nothing to refuse
        (_look("promotion", True), False),
        (_look("", True), False),  # an older edgeship's lease: a promotion's
        (Look(deployed=True), False),
    ],
)
def test_abort_refuses_only_a_live_stack_changes_lease(look: Look, refused: bool) -> None:
    # looked at twice: the first look looks again, the second refuses
    first, second = look.verdict(Command.ABORT), look.verdict(Command.ABORT_AGAIN)
    assert (first is Verdict.LOOK_AGAIN, second is Verdict.REFUSE_STACK_CHANGE) == (refused, refused)


# -- signals while the lease is given back (review P2-D) -----------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_give_back_waits_for_it_then_interrupts(sig: signal.Signals) -> None:
    before = signal.getsignal(signal.SIGTERM)
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), sig)
        time.sleep(0.05)  # the handler runs here: without the deferral, KeyboardInterrupt
        done.append("given back")
    assert done == ["given back"]
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers of before are back


def test_without_a_signal_the_give_back_just_runs() -> None:
    done: list[str] = []
    with signals_deferred():
        done.append("given back")
    assert done == ["given back"]
