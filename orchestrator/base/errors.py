"""One exception hierarchy; each error carries the fix and the exit code the CLI returns.

    EdgeshipError (1)                      message + fix; the CLI prints both, or --json
    ├── ConfigError, UsageError (2)
    │   ├── NotDeployedError               the environment's stack has no deployment yet
    │   └── FormatError                    a record or lease this edgeship cannot read (newer format)
    ├── ToolchainError (3)
    ├── PromotionLockedError (4)           another run holds the promotion lease
    │   ├── InterruptedPromotion (11)      a dead driver left a promotion in flight
    │   └── LeaseLostError (12)            this run was deposed: it must not touch `live`
    │       └── FencedError (12)           the record's ETag moved under us
    ├── StackLockedError (10)              another update holds the Pulumi stack's lock
    ├── EngineError (5), RefusedError (6)
    ├── GateFailedError (7)
    ├── RollbackIncompleteError (8)        live may be split; the record says rolling_back
    ├── AbortedError (9)
    ├── Cancelled (130)
    └── InjectedFault (1)                  a fault point armed with `raise` (tests)
Module-local subclasses (TrafficError, LoadTestError) keep exit code 1.

One meaning per code: a script branches on the code alone. InterruptedPromotion and
LeaseLostError stay PromotionLockedError's subclasses (code that catches "another run owns
the promotion" catches them too) but carry their own codes: each needs another action.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable across releases: scripts and CI branch on them."""

    OK = 0
    ERROR = 1  # unexpected failure; a bug report is welcome
    USAGE = 2  # bad command line or invalid edgeship.toml
    TOOLCHAIN = 3  # Pulumi CLI or another required tool is missing
    # 4 stays the commonest case, another run holding the promotion lease (a second promote,
    # an `up` or `rollback` during a promotion), so scripts that wait and retry on 4 stay right;
    # the cases that retrying never fixes got their own codes (10-12).
    LEASE_HELD = 4  # another run holds the environment's promotion lease: wait, or `abort` it
    LOCKED = 4  # LEASE_HELD's former name (an alias: same member), kept for code that imports it
    ENGINE = 5  # the Pulumi engine reported a failed update
    REFUSED = 6  # a safety check said no (wrong account, prod destroy, no confirmation)
    GATE_FAILED = 7  # a promotion gate failed and traffic was rolled back
    ROLLBACK_INCOMPLETE = 8  # a rollback could not finish: live may be split, the record says so
    ABORTED = 9  # an operator aborted the promotion (`orchestrator abort`); live is back on blue
    STACK_LOCKED = 10  # another update holds the Pulumi stack's lock (or a killed one left it)
    PROMOTION_INTERRUPTED = 11  # a promotion stopped half-way: `promote --resume`, `--rollback` or `abort`
    DEPOSED = 12  # this run lost the promotion lease while running and stopped; the new holder goes on
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; the operation was cancelled cleanly


EXIT_CODE_HELP = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error",
    ExitCode.USAGE: "bad usage or invalid configuration",
    ExitCode.TOOLCHAIN: "Pulumi CLI (or another tool) missing: run `make install`",
    ExitCode.LEASE_HELD: "another run holds the environment's promotion lease",
    ExitCode.ENGINE: "the Pulumi engine reported a failed update",
    ExitCode.REFUSED: "refused by a safety check",
    ExitCode.GATE_FAILED: "promotion gate failed; traffic rolled back",
    ExitCode.ROLLBACK_INCOMPLETE: "rollback incomplete, a record write failed, or the lease could not be renewed or confirmed: live may be split; the fix says what to run",
    ExitCode.ABORTED: "promotion aborted by an operator; traffic rolled back",
    ExitCode.STACK_LOCKED: "the stack is locked by another update: wait, or `orchestrator unlock`",
    ExitCode.PROMOTION_INTERRUPTED: "a promotion was interrupted: `promote --resume`, `--rollback` or `abort`",
    ExitCode.DEPOSED: "this run lost the promotion lease and stopped; the new holder goes on",
    ExitCode.INTERRUPTED: "interrupted; cancelled cleanly",
}


class EdgeshipError(Exception):
    """Base of every error the CLI reports without a traceback.

    `message` says what went wrong, `fix` what the user can do about it.
    """

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def to_dict(self) -> dict[str, object]:
        """The error as the `--json` output reports it."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "fix": self.fix,
            "exit_code": int(self.exit_code),
        }


class ConfigError(EdgeshipError):
    """The environment file is missing, malformed or invalid.

    Where it is known, the error also says where: the file, the line, the table the key is
    written in and the key, for `--json` output and editors' or CI's annotations.
    """

    exit_code = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        file: str | None = None,
        line: int | None = None,
        table: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.file, self.line, self.table, self.key = file, line, table, key

    def to_dict(self) -> dict[str, object]:
        """As every error, plus where the mistake is (the fields known)."""
        where = {"file": self.file, "line": self.line, "table": self.table, "key": self.key}
        return {**super().to_dict(), **{k: v for k, v in where.items() if v is not None}}


class UsageError(EdgeshipError):
    """The command does not apply to the environment as it is (e.g. --resume with nothing to resume)."""

    exit_code = ExitCode.USAGE


class NotDeployedError(UsageError):
    """The environment's stack was never deployed (or was destroyed): nothing to act on yet."""


class FormatError(UsageError):
    """A promotion record, lease or request this edgeship cannot read: a newer edgeship wrote it
    (a newer format, a phase it does not know), or it has a shape from before crash-safe
    promotions. Exit 2: the fix is to run another version, never to guess (orchestrator/base/formats.py)."""


class ToolchainError(EdgeshipError):
    """A required tool (the Pulumi CLI) is missing or the wrong version."""

    exit_code = ExitCode.TOOLCHAIN


class StackLockedError(EdgeshipError):
    """Another update holds the stack's lock (Pulumi's, not the promotion lease)."""

    exit_code = ExitCode.STACK_LOCKED


class PromotionLockedError(EdgeshipError):
    """Another run (a promotion, an `up`, a rollback) holds this environment's promotion lease."""

    exit_code = ExitCode.LEASE_HELD


class InterruptedPromotion(PromotionLockedError):
    """A previous promotion stopped half-way (crash, kill -9) and needs a decision."""

    exit_code = ExitCode.PROMOTION_INTERRUPTED


class LeaseLostError(PromotionLockedError):
    """This run's promotion lease was taken over: it must not touch `live` again."""

    exit_code = ExitCode.DEPOSED


class FencedError(LeaseLostError):
    """The promotion record changed since we read it: another holder owns the promotion now."""


class RollbackIncompleteError(EdgeshipError):
    """Putting `live` back on blue did not finish; the record stays `rolling_back`."""

    exit_code = ExitCode.ROLLBACK_INCOMPLETE


class LeaseUnconfirmedError(RollbackIncompleteError):
    """The lease could not be renewed before an alias write (nor, when S3 showed it ours but
    short by the wall clock, renewed then): this run may not touch `live` again (not even to
    roll back: another machine may hold the lease by now); it stops where it is."""


class LeaseUnreadError(EdgeshipError):
    """The lease could not be read to confirm it before moving `live` forward: live was not
    moved; inside a promotion this is an error that rolls it back."""


class AbortedError(EdgeshipError):
    """An operator aborted the promotion; traffic went back to the blue version."""

    exit_code = ExitCode.ABORTED


class InjectedFault(EdgeshipError):
    """Raised by a fault point armed with `raise` (orchestrator/base/faults.py); tests only."""


class EngineError(EdgeshipError):
    """The Pulumi engine reported a failure."""

    exit_code = ExitCode.ENGINE


class RefusedError(EdgeshipError):
    """A safety check refused the operation."""

    exit_code = ExitCode.REFUSED


class GateFailedError(EdgeshipError):
    """A promotion gate failed; traffic went back to the blue version."""

    exit_code = ExitCode.GATE_FAILED


class Cancelled(EdgeshipError):
    """The user interrupted the operation; it was cancelled cleanly."""

    exit_code = ExitCode.INTERRUPTED
