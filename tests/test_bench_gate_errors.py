"""bench/gate_errors.py's machinery on a few gates: the simulation, the old rule as it was, and
the new judge (the real orchestrator.compare when merged, else the bench's stand-in)."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gate_errors.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gate_errors", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ge = _load()
SLO = ge.Slo()
# Latencies shaped like the local environment's: a few ms with a long right tail.
POOL = [round(random.Random(7).lognormvariate(1.0, 0.6) + 1.0, 2) for _ in range(3000)]


@pytest.fixture(params=["standin", "auto"])
def new(request: pytest.FixtureRequest) -> object:
    """Both new judges: the stand-in always, and the real one when orchestrator/compare.py exists."""
    judge, _name = ge.new_judge(request.param)
    return judge


def test_identical_arrays_never_fail_the_new_judge(new: object) -> None:
    rates = ge.run_scenario(
        {"new": new}, ge.Scenario("A/A", regression=False, model_ms=60.0), gates=40, seed=1,
        sources=[(POOL, POOL)], error_rate=0.0, requests=1000, share=0.5, noise=ge.NO_NOISE, slo=SLO,
    )  # fmt: skip
    assert (rates["new"].wrong, rates["new"].inconclusive) == (0, 0)
    same = sorted(POOL[:500])
    assert new(same, 0, list(same), 0, SLO) == "pass"  # type: ignore[operator]


def test_a_huge_regression_is_always_caught(new: object) -> None:
    huge = ge.Scenario("x3", regression=True, model_ms=60.0, green_scale=3.0)
    rates = ge.run_scenario(
        {"new": new, "old": ge.old_judge}, huge, gates=30, seed=2, sources=[(POOL, POOL)], error_rate=0.0,
        requests=1000, share=0.1, noise=ge.Noise(), slo=SLO,
    )  # fmt: skip
    assert (rates["new"].wrong, rates["old"].wrong) == (0, 0)


def test_one_sided_slowdown_at_millisecond_scale_fails_the_old_rule_not_the_new() -> None:
    """The issue's complaint: green's p95 x 1.6 by noise on a few-ms p95 (a shift of ~4 ms, far
    inside a 250 ms budget) fails `green p95 > blue p95 x 1.5`; the new judge's floor holds."""
    blue = sorted(POOL[:900])
    green = [x * 1.6 for x in POOL[900:1000]]
    assert ge.old_judge(blue, 0, green, 0, SLO) == "fail"
    assert ge.standin_new_judge(blue, 0, green, 0, SLO) == "pass"


def test_one_sided_stalls_make_the_old_rule_fail_identical_versions() -> None:
    """Only stalls of one side (a version's process descheduled for a few % of the gate), no
    other noise: the old rule fails identical versions now and then; the new judge never."""
    stalls = ge.Noise(slowdown_sigma=0.0, stall_p=1.0, stall_one_side_p=1.0)
    aa = ge.Scenario("A/A", regression=False)
    rates = ge.run_scenario(
        {"old": ge.old_judge, "new": ge.standin_new_judge}, aa, gates=100, seed=3,
        sources=[(POOL, POOL)], error_rate=0.0, requests=2000, share=0.1, noise=stalls, slo=SLO,
    )  # fmt: skip
    assert rates["old"].wrong > 0
    assert rates["new"].wrong == 0


def test_a_blue_failing_the_load_is_void_and_counts_as_a_false_fail() -> None:
    ok = sorted(POOL[:200])
    assert ge.standin_new_judge(ok, 50, ok, 0, SLO) == "void"
    assert ge.wrong("void", ge.Scenario("A/A", regression=False))
    assert not ge.wrong("void", ge.Scenario("B", regression=True))


def test_wilson_interval() -> None:
    assert ge.wilson(0, 2000)[0] == 0.0
    low, high = ge.wilson(20, 2000)
    assert (round(low, 4), round(high, 4)) == (0.0065, 0.0154)
