"""One exception hierarchy; each error carries the fix and the exit code the CLI returns.

    EdgeshipError (1)                      message + fix; the CLI prints both, or --json
    ├── ConfigError, UsageError (2)
    │   ├── NotDeployedError               the environment's stack has no deployment yet
    │   └── FormatError                    a record or lease this edgeship cannot read (newer format)
    ├── ToolchainError (3)
    ├── StackLockedError (4)
    ├── PromotionLockedError (4)           another run holds the promotion lease
    │   ├── InterruptedPromotion           a dead driver left a promotion in flight
    │   └── LeaseLostError                 this run was deposed: it must not touch `live`
    │       └── FencedError                the record's ETag moved under us
    ├── EngineError (5), RefusedError (6)
    ├── GateFailedError (7)
    ├── RollbackIncompleteError (8)        live may be split; the record says rolling_back
    ├── AbortedError (9)
    ├── Cancelled (130)
    └── InjectedFault (1)                  a fault point armed with `raise` (tests)
Module-local subclasses (TrafficError, LoadTestError) keep exit code 1.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable across releases: scripts and CI branch on them."""

    OK = 0
    ERROR = 1  # unexpected failure; a bug report is welcome
    USAGE = 2  # bad command line or invalid edgeship.toml
    TOOLCHAIN = 3  # Pulumi CLI or another required tool is missing
    LOCKED = 4  # stack or promotion held by someone else
    ENGINE = 5  # the Pulumi engine reported a failed update
    REFUSED = 6  # a safety check said no (wrong account, prod destroy, no confirmation)
    GATE_FAILED = 7  # a promotion gate failed and traffic was rolled back
    ROLLBACK_INCOMPLETE = 8  # a rollback could not finish: live may be split, the record says so
    ABORTED = 9  # an operator aborted the promotion (`orchestrator abort`); live is back on blue
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; the operation was cancelled cleanly


EXIT_CODE_HELP = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error",
    ExitCode.USAGE: "bad usage or invalid configuration",
    ExitCode.TOOLCHAIN: "Pulumi CLI (or another tool) missing: run `make install`",
    ExitCode.LOCKED: "stack or promotion locked by another run",
    ExitCode.ENGINE: "the Pulumi engine reported a failed update",
    ExitCode.REFUSED: "refused by a safety check",
    ExitCode.GATE_FAILED: "promotion gate failed; traffic rolled back",
    ExitCode.ROLLBACK_INCOMPLETE: "rollback incomplete: live may be split; `orchestrator abort` finishes it",
    ExitCode.ABORTED: "promotion aborted by an operator; traffic rolled back",
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
    promotions. Exit 2: the fix is to run another version, never to guess (orchestrator/formats.py)."""


class ToolchainError(EdgeshipError):
    """A required tool (the Pulumi CLI) is missing or the wrong version."""

    exit_code = ExitCode.TOOLCHAIN


class StackLockedError(EdgeshipError):
    """Another update holds the stack's lock."""

    exit_code = ExitCode.LOCKED


class PromotionLockedError(EdgeshipError):
    """Another promotion is running on this environment."""

    exit_code = ExitCode.LOCKED


class InterruptedPromotion(PromotionLockedError):
    """A previous promotion stopped half-way (crash, kill -9) and needs a decision."""


class LeaseLostError(PromotionLockedError):
    """This run's promotion lease was taken over: it must not touch `live` again."""


class FencedError(LeaseLostError):
    """The promotion record changed since we read it: another holder owns the promotion now."""


class RollbackIncompleteError(EdgeshipError):
    """Putting `live` back on blue did not finish; the record stays `rolling_back`."""

    exit_code = ExitCode.ROLLBACK_INCOMPLETE


class AbortedError(EdgeshipError):
    """An operator aborted the promotion; traffic went back to the blue version."""

    exit_code = ExitCode.ABORTED


class InjectedFault(EdgeshipError):
    """Raised by a fault point armed with `raise` (orchestrator/faults.py); tests only."""


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
