"""Judges a load test, per version: pass, fail, inconclusive or void. Pure functions only.

Lambda's weighted alias routing is probabilistic, so at a 10 % canary most requests
hit blue. A gate that reads the aggregate mostly measures blue; this one attributes
every request to the version that answered (the function's `x-function-version`
header) and judges green on green's own requests.

Green against blue (the relative check) is orchestrator/gates/compare.py's test on both versions'
raw latencies: a regression must be both significant and larger than a floor tied to the
budget; one within noise is never a failure. Blue is the control: a blue that fails the gate's
own load beyond the error budget makes the gate VOID (the load is wrong, e.g. a model contract
change), never a pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.config.settings import SloSettings
from orchestrator.gates.compare import Comparison, compare


class Verdict(StrEnum):
    """Outcome of one gate."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    # Blue, the control, failed this gate's own load beyond the error budget: the load is wrong
    # (e.g. green changed the model's input), so nothing about green can pass. Rolls back as FAIL.
    VOID = "void"


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
class LoadStats:
    """What one load test (or several, pooled) saw, as loadtests/locustfile.py writes it.

    Latencies are of successful requests only: a fast error must not make green look fast.
    """

    duration_s: float
    latencies_ms: dict[str, list[float]]  # version -> latencies of its successful requests
    errors: dict[str, int]  # version -> failed requests it answered
    unattributed_failures: int = 0  # failed with no version header (timeouts, 5xx from the edge...)
    in_flight: int = 0  # still waiting for an answer when the test stopped: timeouts
    generator_lag_ms: list[float] = field(default_factory=list)  # how late the load generator ran

    @staticmethod
    def read(data: dict[str, Any]) -> LoadStats:
        """Parse the statistics file."""
        versions = data.get("versions", {})
        unattributed = data.get("unattributed", 0)
        failures = unattributed.get("failures", 0) if isinstance(unattributed, dict) else unattributed
        return LoadStats(
            float(data.get("duration_s") or 0.0),
            {v: [float(x) for x in e.get("latencies_ms", [])] for v, e in versions.items()},
            {v: int(e.get("errors", 0)) for v, e in versions.items()},
            int(failures),
            int(data.get("in_flight", 0)),
            [float(x) for x in data.get("generator_lag_ms", [])],
        )

    def pooled(self, other: LoadStats) -> LoadStats:
        """This run and another as one sample (a gate's extension adds to its first attempt)."""
        versions = set(self.latencies_ms) | set(other.latencies_ms) | set(self.errors) | set(other.errors)
        return LoadStats(
            self.duration_s + other.duration_s,
            {v: self.latencies_ms.get(v, []) + other.latencies_ms.get(v, []) for v in versions},
            {v: self.errors.get(v, 0) + other.errors.get(v, 0) for v in versions},
            self.unattributed_failures + other.unattributed_failures,
            self.in_flight + other.in_flight,
            self.generator_lag_ms + other.generator_lag_ms,
        )

    def answered(self, version: str) -> int:
        """Requests `version` answered, successful or not."""
        return len(self.latencies_ms.get(version, [])) + self.errors.get(version, 0)


@dataclass(frozen=True)
class GateResult:
    """The verdict on green, with every reason, every skipped check and the numbers behind it."""

    verdict: Verdict
    reasons: list[str]
    green: VersionStats | None
    blue: VersionStats | None
    unattributed: int = 0
    others: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)  # what the numbers carry besides the service
    comparison: Comparison | None = None  # green's latencies against blue's (None: not compared)

    def to_dict(self) -> dict[str, Any]:
        """For reports."""
        return {
            "verdict": str(self.verdict),
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "reasons": self.reasons,
            "skipped": self.skipped,
            "caveats": self.caveats,
            "green": self.green.to_dict() if self.green else None,
            "blue": self.blue.to_dict() if self.blue else None,
            "unattributed": self.unattributed,
            "others": self.others,
        }


def percentile(sorted_ms: list[float], q: float) -> float:
    """q-th percentile (0..100) of already-sorted samples, nearest-rank; 0.0 when empty."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))  # ceil without floats drifting
    return sorted_ms[int(rank) - 1]


def summarize(version: str, ok_latencies_ms: list[float], errors: int, duration_s: float) -> VersionStats:
    """Per-version statistics: samples = successes + errors; percentiles over the successes."""
    ordered = sorted(ok_latencies_ms)
    return VersionStats(
        version=version,
        samples=len(ordered) + errors,
        errors=errors,
        duration_s=duration_s,
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
    )


def regression_floor_ms(slo: SloSettings) -> float:
    """The smallest green p95 regression worth a rollback: a few ms, or a share of the budget."""
    return max(slo.regression_floor_ms, slo.regression_share * slo.p95_ms)


def void_reason(blue: VersionStats | None, slo: SloSettings) -> str | None:
    """Why the gate is void (blue, the control, failed the gate's own load), or None."""
    if blue is None or blue.samples < slo.min_samples or blue.error_ratio <= slo.max_error_ratio:
        return None
    return (
        f"blue failed {blue.errors} of {blue.samples} of this gate's requests: the load is wrong "
        "(e.g. a model contract change), not only green"
    )


def judge(
    green: VersionStats | None,
    blue: VersionStats | None,
    slo: SloSettings,
    *,
    green_share: float = 1.0,
    latencies: tuple[list[float], list[float]] | None = None,
) -> GateResult:
    """Decide on green from its own statistics (failures nobody answered already charged to it).

    Fewer than min_samples requests is inconclusive, never a verdict: one slow request in
    forty is the nearest-rank p99, and must not fail a healthy version on its own. The
    extension pools its samples with the first attempt (see `judge_stats`).

    `latencies` = (blue's, green's successful latencies in ms): the relative check is then
    compare.compare on them (the new judge; `judge_stats` always passes them). Without them only
    the percentiles are known and the relative check is the old judge, green p95 > blue p95 x
    slo.relative_p95_factor, kept for callers with percentiles only (and the bench's baseline).
    A blue beyond the error budget (>= min_samples) makes the gate VOID whatever green did.
    """
    skipped = []
    if not slo.relative_p95_factor:
        skipped.append("relative p95: disabled (slo.relative_p95_factor = 0)")
    elif blue is None:
        skipped.append("relative p95: blue answered no requests in this gate")
    elif blue.samples - blue.errors < slo.min_samples:
        skipped.append(
            f"relative p95: blue answered {blue.samples - blue.errors} successful requests, "
            f"fewer than min_samples={slo.min_samples}"
        )
    if not slo.min_rps:
        skipped.append("min rps: disabled (slo.min_rps = 0)")
    void = void_reason(blue, slo)
    if green is None or green.samples == 0:
        if void:
            return GateResult(Verdict.VOID, [void, "green answered 0 requests"], green, blue, skipped=skipped)
        return GateResult(Verdict.INCONCLUSIVE, ["green answered 0 requests"], green, blue, skipped=skipped)
    if green.samples < slo.min_samples:
        few = f"green answered {green.samples} requests, fewer than min_samples={slo.min_samples}"
        if void:
            return GateResult(Verdict.VOID, [void, few], green, blue, skipped=skipped)
        return GateResult(Verdict.INCONCLUSIVE, [few], green, blue, skipped=skipped)
    reasons = []
    caveats = []
    comparison = None
    if green.samples > green.errors:  # percentiles exist only over successful requests
        if green.p95_ms > slo.p95_ms:
            reasons.append(f"green p95 {green.p95_ms:.1f} ms > {slo.p95_ms:g} ms")
        if green.p99_ms > slo.p99_ms:
            reasons.append(f"green p99 {green.p99_ms:.1f} ms > {slo.p99_ms:g} ms")
    if green.error_ratio > slo.max_error_ratio:
        reasons.append(f"green error ratio {green.error_ratio:.2%} > {slo.max_error_ratio:.2%}")
    if slo.relative_p95_factor and blue is not None and blue.samples - blue.errors >= slo.min_samples:
        if latencies is not None:
            comparison = compare(
                latencies[0], latencies[1], floor_ms=regression_floor_ms(slo), alpha=slo.alpha
            )
            if comparison.regressed:
                reasons.append(f"green regressed against blue: {comparison.describe()}")
            elif comparison.within_noise:
                caveats.append(f"relative: not a failure, {comparison.describe()}")
            elif comparison.regressed is None:
                skipped.append(f"relative p95: {comparison.describe()}")
        elif green.p95_ms > blue.p95_ms * slo.relative_p95_factor:  # the old judge: point estimates
            reasons.append(
                f"green p95 {green.p95_ms:.1f} ms > blue p95 {blue.p95_ms:.1f} ms x {slo.relative_p95_factor:g}"
            )
    min_rps = slo.min_rps * green_share
    if slo.min_rps and green.rps < min_rps:
        reasons.append(f"green {green.rps:.2f} rps < {min_rps:.2f} rps (min_rps x {green_share:.0%} share)")
    if void:
        return GateResult(Verdict.VOID, [void, *reasons], green, blue, skipped=skipped, caveats=caveats,
                          comparison=comparison)  # fmt: skip
    verdict = Verdict.FAIL if reasons else Verdict.PASS
    return GateResult(
        verdict,
        reasons or ["all thresholds met"],
        green,
        blue,
        skipped=skipped,
        caveats=caveats,
        comparison=comparison,
    )


# The load generator's own delay (p95) past this share of the p95 budget is named with the verdict.
GENERATOR_LAG_SHARE = 0.1


def generator_caveats(lag_ms: list[float], slo: SloSettings) -> list[str]:
    """What the load generator's own delay means for this gate's latencies.

    Every answer waits for the generator to get to it, so its delay is in every latency the
    gate measured, green's and blue's alike. The verdict stands (a gate failed on a late
    generator still rolls back: safe, and the reason says to look here); the caveat says
    how much of the budget the generator took, and what to change.
    """
    if not lag_ms or slo.p95_ms <= 0:
        return []
    late = percentile(sorted(lag_ms), 95)
    if late <= slo.p95_ms * GENERATOR_LAG_SHARE:
        return []
    return [
        f"the load generator ran late (its own delay p95 {late:.1f} ms, {late / slo.p95_ms:.0%} of the "
        f"p95 budget) and that delay is in every latency it measured: lower load.users, or run "
        f"load.workers on cores the service does not use"
    ]


def factor_caveats(slo: SloSettings) -> list[str]:
    """Say so when a configuration sets relative_p95_factor to a value that reads like a threshold.

    Judged on raw latencies (`judge_stats`) the factor only switches the comparison on or off:
    a user who set 2 to loosen the check (or 1.2 to tighten it) would otherwise believe it did.
    0 (off) and the default (on, as shipped) need no word."""
    if slo.relative_p95_factor in (0, SloSettings().relative_p95_factor):
        return []
    return [
        f"slo.relative_p95_factor = {slo.relative_p95_factor:g} only switches the comparison with blue on "
        f"(any value but 0 does): it is not a threshold; what counts as a regression is set by "
        f"regression_floor_ms / regression_share (floor now {regression_floor_ms(slo):g} ms) and alpha ({slo.alpha:g})"
    ]


def judge_stats(stats: LoadStats, blue: str, green: str, slo: SloSettings, green_share: float) -> GateResult:
    """Judge a load test per version, charging green with every failure no version answered.

    At a 10 % canary a green that times out or crashes in init sends back no version
    header; judged against all traffic, blue's successes would dilute those failures.
    Requests still in flight when the test stopped are timeouts, and charged the same way.
    """
    charged = stats.unattributed_failures + stats.in_flight
    green_stats = None
    if stats.answered(green) or charged:
        green_stats = summarize(
            green, stats.latencies_ms.get(green, []), stats.errors.get(green, 0) + charged, stats.duration_s
        )
    blue_stats = None
    if blue and stats.answered(blue):
        blue_stats = summarize(
            blue, stats.latencies_ms.get(blue, []), stats.errors.get(blue, 0), stats.duration_s
        )
    latencies = (stats.latencies_ms.get(blue, []), stats.latencies_ms.get(green, [])) if blue else None
    result = judge(green_stats, blue_stats, slo, green_share=green_share, latencies=latencies)
    reasons, verdict = list(result.reasons), result.verdict
    if charged:
        reasons.append(
            f"{stats.unattributed_failures} requests got no answer from any version and {stats.in_flight} "
            "were still in flight at the end: counted as green's failures"
        )
    others = {
        v: stats.answered(v) for v in stats.latencies_ms if v not in (blue, green) and stats.answered(v)
    }
    if others:
        # Traffic reached a version that is neither blue nor green: the alias is not what we set.
        verdict = Verdict.FAIL
        named = ", ".join(f"v{v} ({n} requests)" for v, n in sorted(others.items()))
        reasons = [f"a third version answered: {named}; only v{blue or '-'} and v{green} should", *reasons]
    if verdict == Verdict.FAIL and reasons and reasons[-1] == "all thresholds met":
        reasons.remove("all thresholds met")
    # The factor's caveat only where a comparison could run (a blue in the gate: not pre-traffic).
    compared = factor_caveats(slo) if blue else []
    caveats = [*result.caveats, *compared, *generator_caveats(stats.generator_lag_ms, slo)]
    return GateResult(
        verdict,
        reasons,
        result.green,
        result.blue,
        charged,
        others,
        result.skipped,
        caveats,
        result.comparison,
    )


def from_stats_file(
    data: dict[str, Any], blue: str, green: str, slo: SloSettings, green_share: float
) -> GateResult:
    """Judge the per-version statistics file that loadtests/locustfile.py writes."""
    return judge_stats(LoadStats.read(data), blue, green, slo, green_share)
