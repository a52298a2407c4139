"""compare.compare: green's latencies against blue's, a regression only when significant AND
beyond the floor. Pure, no I/O; seeded draws so every run sees the same samples."""

from __future__ import annotations

import math
import random

import pytest

from orchestrator.config.settings import SloSettings
from orchestrator.gates import judge as gate
from orchestrator.gates.compare import MIN_SAMPLES, compare, mann_whitney_greater, quantile_se

FLOOR, ALPHA = 12.5, 0.01  # the defaults at a 250 ms p95 budget: max(10 ms, 5 % x 250 ms)


def draw(rng: random.Random, n: int, median_ms: float, scale: float = 1.0) -> list[float]:
    """Latencies shaped like a local gate's: lognormal body plus an exponential scheduler tail."""
    return [
        scale
        * (
            rng.lognormvariate(math.log(median_ms), 0.35)
            + (rng.expovariate(1 / 8) if rng.random() < 0.1 else 0)
        )
        for _ in range(n)
    ]


def test_identical_distributions_never_fail_at_the_floor_and_rarely_without_it() -> None:
    at_floor = without_floor = 0
    for seed in range(200):
        rng = random.Random(seed)
        blue, green = draw(rng, 300, 3.0), draw(rng, 300, 3.0)
        at_floor += bool(compare(blue, green, floor_ms=FLOOR, alpha=ALPHA).regressed)
        without_floor += bool(compare(blue, green, floor_ms=0.0, alpha=ALPHA).regressed)
    assert at_floor == 0
    assert without_floor <= 4  # the test alone keeps close to alpha (1 %: 2 of 200 expected)


@pytest.mark.parametrize("seed", range(5))
def test_a_fifty_percent_p95_shift_is_detected(seed: int) -> None:
    rng = random.Random(seed)
    blue, green = draw(rng, 900, 60.0), draw(rng, 300, 60.0, scale=1.5)
    result = compare(blue, green, floor_ms=FLOOR, alpha=ALPHA)
    assert result.regressed is True and not result.within_noise
    assert result.p_value < ALPHA and result.effect_low_ms > FLOOR
    assert result.effect_low_ms <= result.effect_ms <= result.effect_high_ms
    assert result.green_p95_ms > 1.4 * result.blue_p95_ms
    assert "green is slower" in result.describe()


def test_the_defaults_floor_is_the_one_these_tables_use() -> None:
    assert gate.regression_floor_ms(SloSettings()) == FLOOR and SloSettings().alpha == ALPHA


# Green = a sample like blue's, every request slower by a constant (the p95 moves by it), as a
# gate at a 10 % step sees it (blue 2700, green 1000 requests; p95 near 85 ms, its SE ~3.4 ms).
# Below the floor never fails, however significant; at 20 ms the point estimate clears the
# floor but its 90 % bound does not (within noise); 2x the floor and beyond fail.
@pytest.mark.parametrize(
    ("shift_ms", "regressed", "within_noise"),
    [
        (0.0, False, False),
        (6.0, False, False),  # half the floor: p < 1e-9, still no failure
        (12.0, False, False),  # just below the floor
        (12.5, False, False),  # exactly the floor
        (20.0, False, True),  # 1.6x the floor: estimate 16.2 ms > floor, bound 11.8 ms < floor
        (25.0, True, False),  # 2x the floor: a clear regression
        (40.0, True, False),
    ],
)
def test_a_constant_shift_against_the_floor(shift_ms: float, regressed: bool, within_noise: bool) -> None:
    rng = random.Random(0)
    blue, green = draw(rng, 2700, 60.0), draw(rng, 1000, 60.0)
    result = compare(blue, [x + shift_ms for x in green], floor_ms=FLOOR, alpha=ALPHA)
    assert (result.regressed, result.within_noise) == (regressed, within_noise)
    if shift_ms >= 6.0:
        assert result.p_value < 1e-9  # the test sees every one of them: the floor decides


@pytest.mark.parametrize(("factor", "said"), [(0.0, False), (1.5, False), (2.0, True), (1.2, True)])
def test_a_relative_factor_other_than_0_or_the_default_is_said_to_be_only_a_switch(
    factor: float, said: bool
) -> None:
    rng = random.Random(1)
    stats = gate.LoadStats(30.0, {"1": draw(rng, 300, 5.0), "2": draw(rng, 300, 5.0)}, {})
    slo = SloSettings(relative_p95_factor=factor)
    result = gate.judge_stats(stats, "1", "2", slo, 0.5)
    caveat = (
        f"slo.relative_p95_factor = {factor:g} only switches the comparison with blue on (any value but 0 "
        "does): it is not a threshold; what counts as a regression is set by regression_floor_ms / "
        "regression_share (floor now 12.5 ms) and alpha (0.01)"
    )
    assert (caveat in result.caveats) is said
    assert result.verdict == gate.Verdict.PASS
    alone = gate.judge_stats(stats, "", "2", slo, 1.0)  # pre-traffic: no blue, nothing to switch
    assert caveat not in alone.caveats


def test_a_significant_shift_under_the_floor_is_not_a_regression() -> None:
    rng = random.Random(7)
    blue, green = draw(rng, 5000, 3.0), [x + 3.0 for x in draw(rng, 5000, 3.0)]
    result = compare(blue, green, floor_ms=FLOOR, alpha=ALPHA)
    assert result.p_value < 1e-6  # the test alone would fail green for 3 ms
    assert result.regressed is False and not result.within_noise
    assert result.describe().endswith("no regression beyond the 12.5 ms floor")


def test_a_shift_past_the_floor_without_evidence_is_within_noise() -> None:
    blue = [10.0] * 38 + [12.0, 13.0]
    green = [10.0] * 37 + [50.0, 60.0, 70.0]  # nearest-rank p95: 50 ms vs 10 ms, from 3 requests
    result = compare(blue, green, floor_ms=FLOOR, alpha=ALPHA)
    assert (result.regressed, result.within_noise, result.effect_ms) == (False, True, 40.0)
    assert result.p_value > ALPHA
    assert "within noise, not a regression: the shift exceeds the floor but the test does not reject" in (
        result.describe()
    )


@pytest.mark.parametrize(("n_blue", "n_green"), [(MIN_SAMPLES - 1, 500), (500, MIN_SAMPLES - 1), (0, 0)])
def test_small_samples_are_not_compared(n_blue: int, n_green: int) -> None:
    result = compare([5.0] * n_blue, [500.0] * n_green, floor_ms=FLOOR, alpha=ALPHA)
    assert result.regressed is None and not result.within_noise
    assert result.describe().startswith(f"green vs blue: not compared ({n_green} green and {n_blue} blue")


def test_heavy_ties() -> None:
    # green has more of the slower value, but both p95s are 6 ms: significant, no effect
    shifted = compare([5.0] * 200 + [6.0] * 100, [5.0] * 100 + [6.0] * 200, floor_ms=FLOOR, alpha=ALPHA)
    assert shifted.p_value < ALPHA and shifted.effect_ms == 0.0 and shifted.regressed is False
    # two constant samples 40 ms apart: no spread, the shift is exact
    apart = compare([10.0] * 100, [50.0] * 100, floor_ms=FLOOR, alpha=ALPHA)
    assert (apart.regressed, apart.effect_low_ms, apart.effect_ms, apart.effect_high_ms) == (
        True,
        40.0,
        40.0,
        40.0,
    )


def test_all_equal_values_are_no_evidence() -> None:
    result = compare([7.0] * 100, [7.0] * 100, floor_ms=0.0, alpha=ALPHA)
    assert (result.regressed, result.p_value, result.effect_ms, result.within_noise) == (
        False,
        1.0,
        0.0,
        False,
    )
    assert quantile_se([7.0] * 100, 95) == 0.0


def test_mann_whitney_matches_the_textbook_value() -> None:
    # U = 9 of 9, mean 4.5, variance 3 x 3 x 7 / 12; with continuity: z = 4 / sqrt(5.25)
    assert mann_whitney_greater([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(0.04040, abs=1e-4)
    assert mann_whitney_greater([4.0, 5.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(0.98545, abs=1e-4)


def test_the_comparison_is_deterministic_and_order_free() -> None:
    rng = random.Random(3)
    blue, green = draw(rng, 400, 20.0), draw(rng, 400, 20.0, scale=1.3)
    one = compare(blue, green, floor_ms=5.0, alpha=ALPHA)
    assert one == compare(list(reversed(blue)), sorted(green), floor_ms=5.0, alpha=ALPHA)
    assert one.to_dict()["text"] == one.describe()


def test_a_regression_confined_to_the_tail_is_caught() -> None:
    # 8 % of green's requests three times slower: the median does not move (Mann-Whitney
    # barely sees it), the p95 more than doubles, inside a 250 ms budget. The tail test does.
    caught = ranks_alone = 0
    for seed in range(40):
        rng = random.Random(seed)
        blue = [60 + rng.expovariate(1 / 10) for _ in range(1800)]
        green = [(3 if rng.random() < 0.08 else 1) * (60 + rng.expovariate(1 / 10)) for _ in range(200)]
        result = compare(blue, green, floor_ms=FLOOR, alpha=ALPHA)
        caught += bool(result.regressed)
        ranks_alone += mann_whitney_greater(blue, green) < ALPHA
    assert caught >= 28, caught  # 31 of 40 (seeded); 15 of 40 with the rank test alone
    assert ranks_alone < caught
