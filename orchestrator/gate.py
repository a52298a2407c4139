"""Judges a load test, per version: pass, fail or inconclusive. Pure functions only.

Lambda's weighted alias routing is probabilistic, so at a 10 % canary most requests
hit blue. A gate that reads the aggregate mostly measures blue; this one attributes
every request to the version that answered (the function's `x-function-version`
header) and judges green on green's own requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.settings import SloSettings


class Verdict(StrEnum):
    """Outcome of one gate."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class VersionStats:
    """What one version did during a load test."""

    version: str
    samples: int
    errors: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def error_ratio(self) -> float:
        """Failed requests over all requests (0 with no requests)."""
        return self.errors / self.samples if self.samples else 0.0

    @property
    def rps(self) -> float:
        """Requests per second this version answered."""
        return self.samples / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """For reports."""
        return {**asdict(self), "error_ratio": round(self.error_ratio, 5), "rps": round(self.rps, 2)}


@dataclass(frozen=True)
class GateResult:
    """The verdict on green, with every reason and the numbers behind it."""

    verdict: Verdict
    reasons: list[str]
    green: VersionStats | None
    blue: VersionStats | None
    unattributed: int = 0
    others: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """For reports."""
        return {
            "verdict": str(self.verdict),
            "reasons": self.reasons,
            "green": self.green.to_dict() if self.green else None,
            "blue": self.blue.to_dict() if self.blue else None,
            "unattributed": self.unattributed,
        }


def percentile(sorted_ms: list[float], q: float) -> float:
    """q-th percentile (0..100) of already-sorted samples, nearest-rank; 0.0 when empty."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))  # ceil without floats drifting
    return sorted_ms[int(rank) - 1]


def summarize(version: str, latencies_ms: list[float], errors: int, duration_s: float) -> VersionStats:
    """Per-version statistics from raw samples (errors are counted within the samples)."""
    ordered = sorted(latencies_ms)
    return VersionStats(
        version=version,
        samples=len(ordered),
        errors=errors,
        duration_s=duration_s,
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
    )


def judge(
    green: VersionStats | None,
    blue: VersionStats | None,
    slo: SloSettings,
    *,
    green_share: float = 1.0,
) -> GateResult:
    """Decide on green.

    Absolute thresholds: p95, p99, error ratio, and a minimum rps scaled to green's
    share of traffic. Relative: green p95 at most blue p95 x factor when blue has
    enough samples to compare against. Too few green samples is never a pass, but it
    can be a fail: a version too slow to answer min_samples requests has shown enough.
    """
    if green is None or green.samples == 0:
        return GateResult(Verdict.INCONCLUSIVE, ["green answered 0 requests"], green, blue)
    reasons = []
    if green.p95_ms > slo.p95_ms:
        reasons.append(f"green p95 {green.p95_ms:.1f} ms > {slo.p95_ms:g} ms")
    if green.p99_ms > slo.p99_ms:
        reasons.append(f"green p99 {green.p99_ms:.1f} ms > {slo.p99_ms:g} ms")
    if green.error_ratio > slo.max_error_ratio:
        reasons.append(f"green error ratio {green.error_ratio:.2%} > {slo.max_error_ratio:.2%}")
    if slo.relative_p95_factor and blue is not None and blue.samples >= slo.min_samples:
        limit = blue.p95_ms * slo.relative_p95_factor
        if green.p95_ms > limit:
            reasons.append(
                f"green p95 {green.p95_ms:.1f} ms > blue p95 {blue.p95_ms:.1f} ms x {slo.relative_p95_factor:g}"
            )
    if green.samples < slo.min_samples:
        few = f"green answered {green.samples} requests, fewer than min_samples={slo.min_samples}"
        if reasons:
            return GateResult(Verdict.FAIL, [*reasons, f"(on {green.samples} samples)"], green, blue)
        return GateResult(Verdict.INCONCLUSIVE, [few], green, blue)
    min_rps = slo.min_rps * green_share
    if green.rps < min_rps:
        reasons.append(f"green {green.rps:.2f} rps < {min_rps:.2f} rps (min_rps x {green_share:.0%} share)")
    verdict = Verdict.FAIL if reasons else Verdict.PASS
    return GateResult(verdict, reasons or ["all thresholds met"], green, blue)


def from_stats_file(
    data: dict[str, Any], blue: str, green: str, slo: SloSettings, green_share: float
) -> GateResult:
    """Judge the per-version statistics file that loadtests/locustfile.py writes."""
    duration = float(data.get("duration_s") or 0.0)
    versions = data.get("versions", {})

    def stats(version: str) -> VersionStats | None:
        entry = versions.get(version)
        if not entry:
            return None
        return summarize(version, entry["latencies_ms"], int(entry["errors"]), duration)

    result = judge(stats(green), stats(blue), slo, green_share=green_share)
    others = {v: len(e["latencies_ms"]) for v, e in versions.items() if v not in (blue, green)}
    unattributed = int(data.get("unattributed", 0))
    total = unattributed + sum(len(e["latencies_ms"]) for e in versions.values())
    verdict, reasons = result.verdict, result.reasons
    # Requests no version answered (edge down, connection refused) are failures too.
    if total and unattributed / total > slo.max_error_ratio:
        verdict = Verdict.FAIL
        reasons = [f"{unattributed} of {total} requests got no answer from any version", *reasons]
    return GateResult(verdict, reasons, result.green, result.blue, unattributed, others)
