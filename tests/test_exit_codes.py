"""One meaning per exit code (the fix after a failed record write, named for its phase, is
machine.FIX_AFTER_FAILED_WRITE: tests/test_machine.py). Pure."""

from __future__ import annotations

import pytest

from orchestrator.base import errors
from orchestrator.base.errors import (
    EXIT_CODE_HELP,
    ExitCode,
    FencedError,
    InterruptedPromotion,
    LeaseLostError,
    PromotionLockedError,
    StackLockedError,
)

# Every error class and the code the CLI exits with for it.
CODES = [
    (errors.EdgeshipError, ExitCode.ERROR),
    (errors.ConfigError, ExitCode.USAGE),
    (errors.UsageError, ExitCode.USAGE),
    (errors.NotDeployedError, ExitCode.USAGE),
    (errors.FormatError, ExitCode.USAGE),
    (errors.ToolchainError, ExitCode.TOOLCHAIN),
    (PromotionLockedError, 4),  # another run holds the lease: the commonest, kept on 4
    (errors.EngineError, ExitCode.ENGINE),
    (errors.RefusedError, ExitCode.REFUSED),
    (errors.GateFailedError, ExitCode.GATE_FAILED),
    (errors.RollbackIncompleteError, ExitCode.ROLLBACK_INCOMPLETE),
    (errors.LeaseUnconfirmedError, 8),  # the lease could not be renewed before an alias write: stopped as is
    (errors.LeaseUnreadError, ExitCode.ERROR),  # inside a promotion: an error that rolls it back
    (errors.AbortedError, ExitCode.ABORTED),
    (StackLockedError, 10),
    (InterruptedPromotion, 11),
    (LeaseLostError, 12),
    (FencedError, 12),  # deposed too: another holder wrote the record
    (errors.Cancelled, ExitCode.INTERRUPTED),
    (errors.InjectedFault, ExitCode.ERROR),
]


@pytest.mark.parametrize(("cls", "code"), CODES, ids=[c.__name__ for c, _ in CODES])
def test_each_error_exits_with_its_code(cls: type[errors.EdgeshipError], code: int) -> None:
    error = cls("what went wrong", fix="what to do")
    assert (error.exit_code, error.to_dict()["exit_code"]) == (code, code)


def test_every_error_class_is_in_the_table() -> None:
    def subclasses(cls: type) -> set[type]:
        return {cls} | {s for sub in cls.__subclasses__() for s in subclasses(sub)}

    declared = {c for c in subclasses(errors.EdgeshipError) if c.__module__ == errors.__name__}
    assert declared == {cls for cls, _ in CODES}


def test_the_four_locked_situations_have_four_codes() -> None:
    """Held by another, interrupted, deposed, stack locked: each needs another action."""
    situations = [PromotionLockedError, InterruptedPromotion, LeaseLostError, StackLockedError]
    assert len({cls.exit_code for cls in situations}) == 4
    assert ExitCode.LOCKED is ExitCode.LEASE_HELD  # the former name, for code that imports it


def test_every_code_has_one_help_line_and_codes_are_distinct() -> None:
    assert set(EXIT_CODE_HELP) == set(ExitCode)
    # one meaning per code: the only alias is the former name of LEASE_HELD
    aliases = {name for name, code in ExitCode.__members__.items() if code.name != name}
    assert aliases == {"LOCKED"}


def test_an_aws_error_no_layer_handled_is_exit_1_with_a_fix_and_anything_else_a_traceback() -> None:
    # S3 unreachable while `promote` looked (tests/test_network_faults.py's read cases): before,
    # a Python traceback and, under --json, nothing on stdout.
    from botocore.exceptions import ClientError, EndpointConnectionError

    from orchestrator.cli.base import aws_failure

    unreachable = aws_failure(EndpointConnectionError(endpoint_url="https://s3.example/lock.json"))
    assert unreachable is not None and unreachable.to_dict() == {
        "error": "EdgeshipError",
        "message": 'an AWS call failed: EndpointConnectionError: Could not connect to the endpoint URL: "https://s3.example/lock.json"',
        "fix": "check that AWS (or the local emulator) answers; `orchestrator status` shows whether anything "
        "was left in flight; then run the command again",
        "exit_code": 1,
    }
    refused = aws_failure(ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"))
    assert refused is not None and refused.message.startswith("an AWS call failed: ClientError: ")
    assert "AccessDenied" in refused.message
    assert aws_failure(ValueError("a bug")) is None
