"""Green's latencies against blue's, knowing their noise: did green regress? Pure, plain Python.

The old relative check failed green when `green p95 > blue p95 x 1.5`: two nearest-rank point
estimates, each with its own noise, compared by a fixed factor. At millisecond scale on a busy
machine the p95 moves by several ms between two runs of the same version (scheduler noise, a
cold sandbox), so a factor of 1.5 on 7 ms failed identical models (issue 25). Here green has
regressed only when two things hold:

1. **The evidence says green is slower**: a one-sided Mann-Whitney U test that green's latencies
   are stochastically larger than blue's, or a one-sided test that more of green's requests
   than blue's lie above blue's p95 (a regression confined to the tail, which a location test
   barely sees), rejects; each at `alpha / 2` (Bonferroni), reported as one p-value. It uses every sample (ranks, not a
   tail estimate), needs no distributional assumption, and is what Netflix's Kayenta judge uses
   for canary metrics. The normal approximation with the tie correction is exact enough at the
   sample sizes a gate judges (>= tens per side) and keeps it O(n log n) and dependency-free.

2. **The regression matters**: the p95 shift (green - blue) must exceed `floor_ms` even at the
   low end of its interval (a one-sided 90 % lower bound: EFFECT_CONFIDENCE). The interval comes
   from the distribution-free standard error of each sample quantile (the spread of the order
   statistics around rank n*q, whose rank has a binomial law: x_(l)..x_(u) with
   l, u = nq -/+ 1.96 sqrt(nq(1-q)) covers the p95 with ~95 %; SE ~ (x_u - x_l) / (2 x 1.96));
   the two SEs are combined as independent samples, and the lower bound is
   effect - z(0.90) x SE. Unlike a bootstrap it is deterministic (no seed, reproducible) and
   costs one sort, so the bench can judge thousands of gates.

What this means for a user, at the defaults (floor = max(regression_floor_ms 10 ms,
regression_share 0.05 x p95 budget) = 12.5 ms at a 250 ms budget; gates that run until green
has answered 1000 requests). Figures: docs/performance.md, "Minimum detectable effect", on
latencies recorded from real local gates, at a 10 % and a 50 % step:

- **Not a failure**: identical versions fail at most `alpha` of gates (the test), none in the
  bench; a green slower by half the floor (6 ms) 1-2 %. At exactly the floor about 1 gate in
  5 fails (17-22 %): the bound covers sampling noise, and on a busy machine two processes of the
  same version also drift apart by a few ms (scheduler stalls on one side), which no interval
  over the samples can see. The floor is where failing starts, not a promise at the floor.
- **Caught**: 1.5 x the floor (19 ms) in 70-77 % of gates, 2 x the floor (25 ms) in 95-99 %,
  3 x in every gate. In general a shift of floor + 2.9 standard errors is caught
  in 95 % of gates; the standard error shrinks with green's requests (min_green_requests) and
  grows with the service's tail. For a smaller detectable shift: a smaller floor or more
  green requests per gate.

Why these two numbers (measured in bench/gate_errors.py, "The decision rule", on gates sized
as the product runs them): the previous rule (a 95 % bound over a 25 ms floor) never failed
identical versions, but passed about half of the gates of a +100 % slowdown of a ~30 ms p95
service (a 25-40 ms shift: that rule needs ~3x its floor to catch a shift reliably). A point
estimate over 25 ms, or two thresholds (point > 25 ms, 95 % bound > 12.5 ms), passed ~17 % of
them: whatever the confidence, a shift near the floor is a coin toss. Halving the floor (5 %
of the budget, 12.5 ms at 250 ms: still above the few-ms shifts of scheduler noise that failed
identical models in issue 25) fixes most of it; the 90 % bound instead of 95 % keeps that row
at 2 % rather than 3.5 % at a 50 % step (where blue too has only ~1000 requests), for ~1 %
more fails at half the floor and ~5 % more at the floor. Identical versions still never
failed in the bench: the test bounds them at alpha (a bound at 99 % too would only cost power).

`within_noise`: the point estimate of the shift exceeds the floor but the evidence (the test or
the interval's low end) does not support it: never a failure, said so.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

QUANTILE = 95.0  # the compared quantile (the SLO's p95)
MIN_SAMPLES = 30  # fewer successful requests on either side: no comparison (regressed = None)
EFFECT_CONFIDENCE = 0.90  # one-sided level of the effect's lower bound (the floor's test)
_QUANTILE_COVERAGE_Z = NormalDist().inv_cdf(0.975)  # order-statistic interval used for the SE


@dataclass(frozen=True)
class Comparison:
    """Green against blue. `regressed` None: not enough samples to say."""

    regressed: bool | None
    p_value: float  # one-sided Mann-Whitney: green stochastically larger than blue
    effect_ms: float  # green p95 - blue p95 (point estimate)
    effect_low_ms: float  # the effect's interval: a one-sided EFFECT_CONFIDENCE lower bound...
    effect_high_ms: (
        float  # ...and the symmetric upper bound (together an 80 % interval: each bound one-sided 90 %)
    )
    blue_p95_ms: float
    green_p95_ms: float
    within_noise: bool  # the point estimate exceeds the floor, the evidence does not
    floor_ms: float
    alpha: float
    blue_n: int
    green_n: int

    def describe(self) -> str:
        """One line: both p95s side by side, the shift with its interval, the p-value, the verdict."""
        if self.regressed is None:
            return (
                f"green vs blue: not compared ({self.green_n} green and {self.blue_n} blue successful "
                f"requests; at least {MIN_SAMPLES} each needed)"
            )
        level = f"{2 * EFFECT_CONFIDENCE - 1:.0%}"
        figures = (
            f"green p95 {self.green_p95_ms:.1f} ms vs blue p95 {self.blue_p95_ms:.1f} ms: shift "
            f"{self.effect_ms:+.1f} ms ({level} interval {self.effect_low_ms:+.1f} .. {self.effect_high_ms:+.1f} ms), "
            f"Mann-Whitney p = {self.p_value:.2g} (n = {self.green_n} / {self.blue_n})"
        )
        if self.regressed:
            return (
                f"{figures}: green is slower (p < alpha {self.alpha:g}) by more than the "
                f"{self.floor_ms:g} ms floor even at the interval's low end"
            )
        if self.within_noise:
            why = (
                f"the test does not reject (p >= alpha {self.alpha:g})"
                if self.p_value >= self.alpha
                else f"the interval's low end is within the {self.floor_ms:g} ms floor"
            )
            return f"{figures}: within noise, not a regression: the shift exceeds the floor but {why}"
        return f"{figures}: no regression beyond the {self.floor_ms:g} ms floor"

    def to_dict(self) -> dict[str, Any]:
        """For reports (report.json, report.md, report.html)."""
        return {
            **{k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()},
            "text": self.describe(),
        }


def quantile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank q-th percentile (0..100) of sorted samples, as the gate reports it; 0 if empty."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


def quantile_se(sorted_ms: Sequence[float], q: float) -> float:
    """Distribution-free standard error of the sample q-quantile, from the order statistics
    around its rank (their rank has a binomial law), clipped to the sample's ends."""
    n = len(sorted_ms)
    p = q / 100
    half = _QUANTILE_COVERAGE_Z * math.sqrt(n * p * (1 - p))
    low = min(n, max(1, math.floor(n * p - half)))
    high = min(n, max(1, math.ceil(n * p + half)))
    return (sorted_ms[high - 1] - sorted_ms[low - 1]) / (2 * _QUANTILE_COVERAGE_Z)


def tail_share_greater(blue_ms: Sequence[float], green_ms: Sequence[float], q: float = QUANTILE) -> float:
    """One-sided p-value that more of green's requests than blue's lie above blue's q-th
    percentile: a two-proportion z-test (pooled variance). A location test (Mann-Whitney)
    barely sees a regression confined to the tail (8 % of requests x3: the p95 doubles while
    the median stays); this test is aimed at exactly what the p95 SLO reads. 1.0 when both
    shares are 0 or 1."""
    threshold = quantile(sorted(blue_ms), q)
    n_b, n_g = len(blue_ms), len(green_ms)
    over_b = sum(1 for x in blue_ms if x > threshold)
    over_g = sum(1 for x in green_ms if x > threshold)
    pooled = (over_b + over_g) / (n_b + n_g)
    variance = pooled * (1 - pooled) * (1 / n_b + 1 / n_g)
    if variance <= 0:
        return 1.0
    z = (over_g / n_g - over_b / n_b) / math.sqrt(variance)
    return 1 - NormalDist().cdf(z)


def mann_whitney_greater(blue_ms: Sequence[float], green_ms: Sequence[float]) -> float:
    """One-sided p-value that green is stochastically larger than blue: Mann-Whitney U, normal
    approximation with the tie correction and a continuity correction. 1.0 when every value is
    tied (no evidence either way).

    U counts, over every (blue, green) pair, 1 when green is larger and 1/2 when tied: with blue
    sorted, two bisections per green value give it (O(n log n), no pooled sort: a gate at a
    10 % step judges ~10000 latencies, and the bench thousands of such gates)."""
    n_b, n_g = len(blue_ms), len(green_ms)
    blue = sorted(blue_ms)
    u_green = 0.0
    for x in green_ms:
        below, upto = bisect_left(blue, x), bisect_right(blue, x)
        u_green += below + (upto - below) / 2
    ties = sum(t**3 - t for t in Counter([*blue_ms, *green_ms]).values() if t > 1)
    n = n_b + n_g
    mean = n_b * n_g / 2
    variance = n_b * n_g / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0
    z = (u_green - mean - 0.5) / math.sqrt(variance)
    return 1 - NormalDist().cdf(z)


def compare(
    blue_ms: Sequence[float], green_ms: Sequence[float], *, floor_ms: float, alpha: float
) -> Comparison:
    """Has green regressed against blue? Latencies of successful requests, in ms, any order.

    Regressed: the one-sided test rejects at `alpha` AND the p95 shift's one-sided
    EFFECT_CONFIDENCE (90 %) lower bound exceeds `floor_ms`. None: fewer than MIN_SAMPLES on either side.
    """
    blue, green = sorted(blue_ms), sorted(green_ms)
    blue_p95, green_p95 = quantile(blue, QUANTILE), quantile(green, QUANTILE)
    effect = green_p95 - blue_p95
    if len(blue) < MIN_SAMPLES or len(green) < MIN_SAMPLES:
        return Comparison(
            None,
            1.0,
            effect,
            effect,
            effect,
            blue_p95,
            green_p95,
            False,
            floor_ms,
            alpha,
            len(blue),
            len(green),
        )
    # Slower as a whole (ranks) or in the tail (the share above blue's p95): either at
    # alpha / 2, so identical versions are failed with probability at most alpha.
    p_value = min(1.0, 2 * min(mann_whitney_greater(blue, green), tail_share_greater(blue, green)))
    se = math.hypot(quantile_se(blue, QUANTILE), quantile_se(green, QUANTILE))
    margin = NormalDist().inv_cdf(EFFECT_CONFIDENCE) * se
    low, high = effect - margin, effect + margin
    regressed = p_value < alpha and low > floor_ms
    within_noise = not regressed and effect > floor_ms
    return Comparison(
        regressed,
        p_value,
        effect,
        low,
        high,
        blue_p95,
        green_p95,
        within_noise,
        floor_ms,
        alpha,
        len(blue),
        len(green),
    )
