"""The lease's `kind` (issue 26), pure: what holds the lease is read back from its body, an
older body without it reads as before (a promotion's), and only a stack change is one."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from orchestrator import faults, formats, lease
from orchestrator.lease import parse_lease

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
