"""Moves the `live` alias between two published versions. One boto3 call per move.

Lambda validates little here in some emulators (moto accepts any weight), so every
move is checked before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import EdgeshipError

LIVE, CANDIDATE = "live", "candidate"
Guard = Callable[[], None] | None


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
        """'live is on v1 at 100%' or 'live is on v1 + v2 20%'."""
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
