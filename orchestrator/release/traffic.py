"""Moves the `live` alias between two published versions. One boto3 call per move, then
the alias read back until it is where it was asked to be.

Lambda validates little here in some emulators (moto accepts any weight), so every
move is checked before it is sent.

Provisioned concurrency (PC) on `live` makes a move take time, and Lambda shows it in the
alias. From Lambda's API reference (GetProvisionedConcurrencyConfig): `Status` is
IN_PROGRESS | READY | FAILED, `StatusReason` says why an allocation failed, and
`AllocatedProvisionedConcurrentExecutions` "fluctuates" while a weighted alias splits it
across versions. Not in the reference, but reproduced against AWS by Terraform's provider
(hashicorp/terraform-provider-aws#48116 waits up to 15 minutes for it after UpdateAlias):
- an alias whose FunctionVersion changes keeps every request on the version it served,
  shown as FunctionVersion = new with AdditionalVersionWeights {old: 1.0}, until the new
  version's PC is READY; then the weights clear. When the allocation FAILS they stay
  (users report the alias held on the old version after a failed init).
- a change of weights alone moves requests at once; the PC is then split again.
So a move is done when the alias reads as asked *and* its PC (if any) is READY: `settle`
reads both until then, within a bound. Without a PC configuration on the alias (one Get
answers ProvisionedConcurrencyConfigNotFoundException) the alias read back is the whole check.
How an alias state reads (whole, split, moving) and what a read-back means are pure
functions (`read_alias`, `judge_move`), table-tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from orchestrator.base.errors import EdgeshipError

LIVE, CANDIDATE = "live", "candidate"
Guard = Callable[[], None] | None
# How long a move may wait for Lambda to allocate provisioned concurrency. AWS takes a
# few minutes per allocation (more for large amounts); a FAILED allocation ends the wait
# at once, so this only bounds an allocation that never ends.
SETTLE_S = 900.0
SETTLE_POLL_S = 1.0  # the default; each cloud has its own (clouds.py settle_poll_s)
READY, IN_PROGRESS, FAILED = "READY", "IN_PROGRESS", "FAILED"
UNREADABLE = "UNREADABLE"  # ours, not Lambda's: this role may not read the PC (AccessDenied)
# Error codes of a read that may well succeed when tried again (Lambda's throttling, and what
# AWS's other front doors answer when busy).
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "ThrottledException", "RequestThrottled", "ServiceException", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalFailure", "InternalServerError", "RequestTimeout",
    "RequestTimeoutException",
})  # fmt: skip
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
PC_PERMISSION = "lambda:GetProvisionedConcurrencyConfig"


def error_code(exc: BaseException) -> str:
    """The API's error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def transient(exc: BaseException) -> bool:
    """True for a read error worth trying again: throttling, a busy service, or a connection
    or read timeout (botocore's ConnectionError and HTTPClientError families)."""
    if error_code(exc) in TRANSIENT_CODES:
        return True
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, BotoConnectionError | HTTPClientError)


class TrafficError(EdgeshipError):
    """A traffic move was invalid or the Lambda API refused it."""


@dataclass(frozen=True)
class AliasState:
    """Where an alias points: its version and any extra weighted versions."""

    version: str
    weights: dict[str, float]
    revision: str = field(
        default="", compare=False
    )  # Lambda's RevisionId: an update naming it fails if the alias moved since
    note: str = field(default="", compare=False)  # said as a diagnostic by whoever asked for this state

    def describe(self) -> str:
        """'live is on v1 at 100%', 'live is on v1 + v2 20%', or 'live is moving to v2 (...)'."""
        reading = read_alias(self)
        if reading.kind == Reading.MOVING:
            return (
                f"live is moving to v{self.version} (Lambda keeps v{reading.serving} at 100% until "
                f"v{self.version}'s provisioned concurrency is ready)"
            )
        extra = ", ".join(f"v{v} {w:.0%}" for v, w in self.weights.items() if w)
        return f"live is on v{self.version}" + (f" + {extra}" if extra else " at 100%")

    @property
    def whole(self) -> bool:
        """True when one version takes 100 % (no routing config)."""
        return not any(self.weights.values())

    def share_of(self, version: str) -> float:
        """The fraction of requests `version` receives through this alias."""
        extra = sum(self.weights.values())
        if version == self.version:
            return 1.0 - extra
        return self.weights.get(version, 0.0)


class Reading(StrEnum):
    """How an alias state reads."""

    WHOLE = "whole"  # one version takes every request
    SPLIT = "split"  # FunctionVersion and weighted others share them
    MOVING = "moving"  # Lambda's transitional routing: FunctionVersion is the new version,
    # {old: 1.0} keeps every request on the old one until the new one's PC is ready


@dataclass(frozen=True)
class AliasReading:
    kind: Reading
    version: str  # the alias's FunctionVersion (for MOVING: the version it moves to)
    serving: str = ""  # MOVING: the version that takes every request meanwhile


def read_alias(state: AliasState) -> AliasReading:
    """Whole, split, or moving to FunctionVersion; pure."""
    weights = {v: w for v, w in state.weights.items() if w}
    if not weights:
        return AliasReading(Reading.WHOLE, state.version)
    if len(weights) == 1:
        ((old, weight),) = weights.items()
        if old != state.version and weight >= 1.0 - 1e-9:
            return AliasReading(Reading.MOVING, state.version, old)
    return AliasReading(Reading.SPLIT, state.version)


@dataclass(frozen=True)
class Provisioned:
    """An alias's provisioned concurrency, as GetProvisionedConcurrencyConfig answers."""

    status: str  # IN_PROGRESS | READY | FAILED
    requested: int = 0
    allocated: int = 0
    reason: str = ""  # StatusReason: why an allocation failed

    def describe(self) -> str:
        if self.status == UNREADABLE:
            return f"provisioned concurrency (not readable: {self.reason})"
        why = f": {self.reason}" if self.reason else ""
        return f"provisioned concurrency {self.status} ({self.allocated} of {self.requested} allocated){why}"


class Settle(StrEnum):
    """What a read-back after a move means."""

    DONE = "done"  # where asked, and the PC (if any) is READY
    WAIT = "wait"  # Lambda is still allocating: read again
    COLD = "cold"  # where asked, but the PC allocation FAILED: on-demand sandboxes serve it
    FAILED = "failed"  # the PC allocation FAILED and Lambda holds the requests on the old version
    ELSEWHERE = "elsewhere"  # neither where asked nor on its way there


@dataclass(frozen=True)
class MoveVerdict:
    settle: Settle
    why: str
    note: str = ""  # with DONE: something worth a diagnostic (a rollback done before its PC is READY)


def judge_move(
    asked: AliasState | None, seen: AliasState, pc: Provisioned | None, *, rollback: bool = False
) -> MoveVerdict:
    """What the alias read back (`seen`, with its PC) says of a move to `asked`; pure.
    `asked=None` means "wherever it is moving to" (a look before a new promotion).

    A `rollback` is done once every request is on blue: the alias reads whole on it, whatever
    its PC (rolling back from a canary is a change of weights; Lambda then re-allocates the PC
    while blue already serves everything). It waits only while Lambda holds the requests on
    green (moving to blue)."""
    reading = read_alias(seen)
    if asked is None:
        asked = AliasState(seen.version, {} if reading.kind == Reading.MOVING else seen.weights)
    want = {v: w for v, w in asked.weights.items() if w}
    got = {v: w for v, w in seen.weights.items() if w}
    there = (
        seen.version == asked.version
        and want.keys() == got.keys()
        and all(abs(got[v] - w) <= 1e-6 for v, w in want.items())
    )
    if there and rollback and not want and pc is not None and pc.status == IN_PROGRESS:
        return MoveVerdict(
            Settle.DONE, seen.describe(),
            f"{seen.describe()}: rolled back, while its {pc.describe()} (on-demand sandboxes "
            "serve what it does not cover until it is READY)",
        )  # fmt: skip
    if there:
        if pc is None or pc.status in (READY, UNREADABLE):  # unreadable: the alias alone judges
            return MoveVerdict(Settle.DONE, seen.describe())
        if pc.status == FAILED:
            return MoveVerdict(Settle.COLD, f"{seen.describe()}, but its {pc.describe()}")
        return MoveVerdict(Settle.WAIT, f"{seen.describe()}; waiting for its {pc.describe()}")
    moving_there = reading.kind == Reading.MOVING and reading.version == asked.version and not want
    if moving_there and pc is None:  # weights like Lambda's, but no allocation to end them
        return MoveVerdict(
            Settle.ELSEWHERE,
            f"live is on v{asked.version} with v{reading.serving} weighted at 100%, and no provisioned "
            "concurrency on it whose allocation would clear that",
        )
    if moving_there and pc is not None:
        if pc.status == FAILED:
            return MoveVerdict(
                Settle.FAILED,
                f"Lambda could not allocate provisioned concurrency to v{asked.version} and keeps "
                f"every request of live on v{reading.serving}: {pc.describe()}",
            )
        return MoveVerdict(Settle.WAIT, f"{seen.describe()}; waiting for its {pc.describe()}")
    return MoveVerdict(
        Settle.ELSEWHERE,
        f"{seen.describe()} where it was asked to be {asked.describe().removeprefix('live is ')}",
    )


@dataclass(frozen=True)
class Settled:
    """The end of a read-back: the alias as last read, what it meant, and whether the
    wait was cut short by the caller (`should_stop`)."""

    state: AliasState
    verdict: MoveVerdict
    stopped: bool = False


def routing_for(blue: str, green: str, percent: int) -> tuple[str, dict[str, float]]:
    """(FunctionVersion, AdditionalVersionWeights) for green at `percent`; pure and validated."""
    for name, value in (("blue", blue), ("green", green)):
        if not value.isdigit():
            raise TrafficError(
                f"{name} version {value!r} is not a published version number", fix="publish a version first"
            )
    if blue == green:
        raise TrafficError(f"blue and green are the same version ({blue})", fix="deploy a new version first")
    if not 0 <= percent <= 100:
        raise TrafficError(f"weight {percent}% is outside 0..100", fix="use a weight between 0 and 100")
    if percent == 100:
        return green, {}
    if percent == 0:
        return blue, {}
    return blue, {green: round(percent / 100, 4)}


@dataclass(frozen=True)
class Fence:
    """How a driver's next write of `live` is fenced (`fence_for`)."""

    revision: str  # the RevisionId the update names ("": none; Lambda then checks nothing)
    refused: str = ""  # why not to write at all: live moved since this driver's own last write
    note: str = ""  # said as a diagnostic: the fence fell back to the revision just read


def fence_for(recorded: str, current: str, *, own: bool) -> Fence:
    """The fence of a forward write of `live`; pure. `recorded`: live's RevisionId after the
    promotion's last alias write, as its record keeps it ("" before the first, or in a record
    an older edgeship wrote); `current`: the RevisionId read just now; `own`: this driver made
    that recorded write (same process, so nothing it did is missing from the record).

    Its own write recorded: the update names that revision, so Lambda refuses it if anything
    moved live since, however long ago (a fence read in the same action only catches a change
    between its read and its write); a read that already differs is refused here, before any
    call (emulators that do not enforce RevisionId see it too). A resumed promotion's recorded
    revision may be behind for an innocent reason: its driver died between an alias write and
    the record write that kept its revision; then the fence is the revision just read, said.
    Rollbacks are not fenced: putting live on blue must win (the lease read guards them)."""
    if not recorded:
        return Fence(current)
    if own:
        if current and current != recorded:
            return Fence(
                recorded,
                refused=f"live was changed by someone else since this run last wrote it (its RevisionId "
                f"is {current}, this run's write left {recorded})",
            )
        return Fence(recorded)
    if current == recorded:
        return Fence(recorded)
    return Fence(
        current,
        note=f"live changed since the promotion's last recorded alias write (RevisionId {recorded}, now "
        f"{current or 'unknown'}): the previous driver's unrecorded last write, or someone else's; "
        + (f"fenced on {current}" if current else "unfenced (live's RevisionId could not be read)"),
    )


PRECONDITION_FAILED = "PreconditionFailedException"  # Lambda's answer to a stale RevisionId


def own_write_landed(asked: AliasState, found: AliasState) -> bool:
    """Whether an alias read back after a fenced update was refused (PreconditionFailed) shows
    the update itself: the same version and the same weights (Lambda keeps them to 4 places,
    as routing_for rounds them); pure. Then the refusal met our own write, whose answer was
    lost (on AWS botocore retries an UpdateAlias that timed out, naming the RevisionId the
    first attempt already moved on). Anything else is a change by someone else: refused."""
    if found.version != asked.version:
        return False
    if not any(asked.weights.values()) and read_alias(found).kind == Reading.MOVING:
        return True  # a whole move that Lambda holds on the old version until green's PC is ready
    moved = {v: round(w, 4) for v, w in found.weights.items() if w}
    wanted = {v: round(w, 4) for v, w in asked.weights.items() if w}
    return moved == wanted


class Traffic:
    """The `live` and `candidate` aliases of one function."""

    def __init__(self, lambda_client: Any, function_name: str, *, poll_s: float = SETTLE_POLL_S) -> None:
        self.lam = lambda_client
        self.function = function_name
        self.poll_s = poll_s  # between read-backs in `settle`
        # What `settle` learned of live's provisioned concurrency: "none" (NotFound: no more
        # Gets while this object lives; `up`, which could add one, is refused while a promotion
        # runs) or "denied" (the caller's role may not read it: the alias is judged alone).
        self._pc_known = ""

    def state(self, alias: str = LIVE) -> AliasState:
        """Read an alias."""
        got = self.lam.get_alias(FunctionName=self.function, Name=alias)
        weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasState(
            got["FunctionVersion"], {str(k): float(v) for k, v in weights.items()}, got.get("RevisionId", "")
        )

    def shift(
        self, blue: str, green: str, percent: int, revision: str = "", guard: Guard = None
    ) -> AliasState:
        """Send `percent` of live traffic to green, the rest to blue; 100 finishes on green.

        With `revision`, Lambda refuses the update if the alias changed since it was read.
        """
        version, weights = routing_for(blue, green, percent)
        self._require_published(blue, green)
        return self._set(LIVE, version, weights, revision, guard)

    def rollback(self, blue: str, guard: Guard = None) -> AliasState:
        """All live traffic back to blue, in one call; unconditional, so safe to repeat."""
        if not blue.isdigit():
            raise TrafficError(f"cannot roll back to {blue!r}", fix="name a published version")
        self._require_published(blue)
        return self._set(LIVE, blue, {}, guard=guard)

    def provisioned(self, alias: str = LIVE) -> Provisioned | None:
        """The alias's provisioned concurrency, or None when it has none (one call)."""
        try:
            got = self.lam.get_provisioned_concurrency_config(FunctionName=self.function, Qualifier=alias)
        except Exception as exc:  # botocore's ClientError: only "none configured" is an answer
            if error_code(exc) == "ProvisionedConcurrencyConfigNotFoundException":
                return None
            raise
        return Provisioned(
            str(got.get("Status", "")),
            int(got.get("RequestedProvisionedConcurrentExecutions") or 0),
            int(got.get("AllocatedProvisionedConcurrentExecutions") or 0),
            str(got.get("StatusReason") or ""),
        )

    def settle(
        self,
        asked: AliasState | None,
        *,
        rollback: bool = False,
        bound_s: float = SETTLE_S,
        say: Callable[[str], None] = lambda _: None,
        diagnose: Callable[[str], None] = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
        poll_s: float | None = None,
    ) -> Settled:
        """Read `live` (and its provisioned concurrency) back until it is where `asked` said,
        or, with `asked=None`, until it no longer moves (`rollback`: see judge_move). Each new
        reason to wait is `say`d; a read that failed but may succeed again (throttled, timed
        out) is retried within the bound and `diagnose`d, as is a PC that may not be read.
        Raises TrafficError when Lambda failed to allocate, the alias is elsewhere, or the
        bound ran out; returns early, `stopped`, when `should_stop()` says so."""
        deadline = time.monotonic() + bound_s
        pause = self.poll_s if poll_s is None else poll_s
        said = ""
        while True:
            try:
                seen = self.state()
                pc = self._provisioned_for_settle(diagnose)
            except Exception as exc:  # botocore's errors: only transient ones are waited out
                if not transient(exc):
                    raise
                why = f"could not read live ({type(exc).__name__}: {exc}); reading again"
                if time.monotonic() >= deadline:
                    raise TrafficError(
                        f"{why.removesuffix('; reading again')}, still after {bound_s:g}s",
                        fix="check that Lambda answers (`orchestrator status`) and run the command again",
                    ) from exc
                if why != said:
                    diagnose(why)
                    said = why
                if should_stop():
                    raise TrafficError(why.removesuffix("; reading again"),
                                       fix="run the command again once Lambda answers") from exc  # fmt: skip
                time.sleep(pause)
                continue
            verdict = judge_move(asked, seen, pc, rollback=rollback)
            if verdict.settle in (Settle.DONE, Settle.COLD):
                return Settled(seen, verdict)
            if verdict.settle == Settle.FAILED:
                raise TrafficError(
                    verdict.why,
                    fix="fix what keeps the version from starting (its log), or lower or remove "
                    "function.provisioned_concurrency and run `orchestrator up`; then roll back or promote again",
                )
            if verdict.settle == Settle.ELSEWHERE:
                raise TrafficError(verdict.why, fix="see `orchestrator status`: something else moved live")
            if verdict.why != said:
                say(verdict.why)
                said = verdict.why
            if time.monotonic() >= deadline:
                raise TrafficError(
                    f"{verdict.why}, still after {bound_s:g}s",
                    fix="Lambda is still allocating provisioned concurrency: check "
                    f"`aws lambda get-provisioned-concurrency-config --function-name {self.function} "
                    "--qualifier live`, and run the command again once it is READY",
                )
            if should_stop():
                return Settled(seen, verdict, stopped=True)
            time.sleep(pause)

    def _provisioned_for_settle(self, diagnose: Callable[[str], None]) -> Provisioned | None:
        """live's PC for a read-back: None when there is none (remembered: no more Gets), or
        UNREADABLE when this role may not read it (said once; the alias alone judges then)."""
        if self._pc_known == "none":
            return None
        if self._pc_known != "denied":
            try:
                found = self.provisioned()
            except Exception as exc:  # botocore's ClientError: a denied read is judged without it
                if error_code(exc) not in DENIED_CODES:
                    raise
                self._pc_known = "denied"
                diagnose(
                    f"may not read live's provisioned concurrency ({error_code(exc)}): judging the alias "
                    f"alone, so a move may end before Lambda has warmed the new version; add {PC_PERMISSION} "
                    "on the function to the role that runs orchestrator"
                )
            else:
                self._pc_known = "" if found is not None else "none"
                return found
        return Provisioned(UNREADABLE, reason=f"{PC_PERMISSION} denied")

    def point_candidate(self, version: str, guard: Guard = None) -> AliasState:
        """Point `candidate` at a version for pre-traffic tests."""
        return self._set(CANDIDATE, version, {}, guard=guard)

    def versions(self) -> list[str]:
        """Published version numbers, oldest first."""
        pages = self.lam.get_paginator("list_versions_by_function").paginate(FunctionName=self.function)
        return sorted(
            (v["Version"] for p in pages for v in p["Versions"] if v["Version"] != "$LATEST"), key=int
        )

    def _require_published(self, *versions: str) -> None:
        # Some emulators accept weights for versions that do not exist; refuse them here.
        missing = sorted(set(versions) - set(self.versions()), key=int)
        if missing:
            raise TrafficError(
                f"version(s) {', '.join(missing)} of {self.function} are not published",
                fix="check `orchestrator status` for the published versions",
            )

    def _set(
        self, alias: str, version: str, weights: dict[str, float], revision: str = "", guard: Guard = None
    ) -> AliasState:
        if guard is not None:  # last check before the write: e.g. "do we still hold the lease?"
            guard()
        try:
            got = self.lam.update_alias(
                FunctionName=self.function,
                Name=alias,
                FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": weights},
                **({"RevisionId": revision} if revision else {}),
            )
        except Exception as exc:  # botocore errors carry the API's own message
            landed = self._landed(alias, AliasState(version, weights), exc) if revision else None
            if landed is not None:
                return landed
            raise TrafficError(
                f"could not point {alias} at {version} {weights or ''}: {exc}",
                fix="check that the function and version exist (`orchestrator status`)",
            ) from exc
        return AliasState(version, weights, str(got.get("RevisionId") or ""))

    def _landed(self, alias: str, asked: AliasState, exc: Exception) -> AliasState | None:
        """A fenced update refused as PreconditionFailed: when the alias reads back exactly as
        asked, the refusal met our own write (its answer was lost, botocore retried it naming
        the old RevisionId): that state, with its revision, rather than an error that would
        roll a healthy promotion back. None otherwise (the refusal stands)."""
        if error_code(exc) != PRECONDITION_FAILED:
            return None
        try:
            found = self.state(alias)
        except Exception:  # unreadable: the refusal stands, said as it was
            return None
        if not own_write_landed(asked, found):
            return None
        return replace(
            found,
            note=f"Lambda refused the fenced write of {alias} (PreconditionFailed) but {alias} already reads "
            f"as asked: this run's own write landed with its answer lost, and botocore's retry met it; "
            f"carrying on at RevisionId {found.revision}",
        )
