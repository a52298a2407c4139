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
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.errors import EdgeshipError

LIVE, CANDIDATE = "live", "candidate"
Guard = Callable[[], None] | None
# How long a move may wait for Lambda to allocate provisioned concurrency. AWS takes a
# few minutes per allocation (more for large amounts); a FAILED allocation ends the wait
# at once, so this only bounds an allocation that never ends.
SETTLE_S = 900.0
SETTLE_POLL_S = 1.0
READY, IN_PROGRESS, FAILED = "READY", "IN_PROGRESS", "FAILED"


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


def judge_move(asked: AliasState | None, seen: AliasState, pc: Provisioned | None) -> MoveVerdict:
    """What the alias read back (`seen`, with its PC) says of a move to `asked`; pure.
    `asked=None` means "wherever it is moving to" (a look before a new promotion)."""
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
    if there:
        if pc is None or pc.status == READY:
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


class Traffic:
    """The `live` and `candidate` aliases of one function."""

    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self.lam = lambda_client
        self.function = function_name

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
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code == "ProvisionedConcurrencyConfigNotFoundException":
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
        bound_s: float = SETTLE_S,
        say: Callable[[str], None] = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
        poll_s: float = SETTLE_POLL_S,
    ) -> Settled:
        """Read `live` (and its provisioned concurrency) back until it is where `asked` said,
        or, with `asked=None`, until it no longer moves. Each new reason to wait is `say`d.
        Raises TrafficError when Lambda failed to allocate, the alias is elsewhere, or the
        bound ran out; returns early, `stopped`, when `should_stop()` says so."""
        deadline = time.monotonic() + bound_s
        said = ""
        while True:
            seen = self.state()
            verdict = judge_move(asked, seen, self.provisioned())
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
            time.sleep(poll_s)

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
            self.lam.update_alias(
                FunctionName=self.function,
                Name=alias,
                FunctionVersion=version,
                RoutingConfig={"AdditionalVersionWeights": weights},
                **({"RevisionId": revision} if revision else {}),
            )
        except Exception as exc:  # botocore errors carry the API's own message
            raise TrafficError(
                f"could not point {alias} at {version} {weights or ''}: {exc}",
                fix="check that the function and version exist (`orchestrator status`)",
            ) from exc
        return AliasState(version, weights)
