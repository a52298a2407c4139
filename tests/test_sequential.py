"""Sequential gates (orchestrator/gates/sequential.py): decisions per look, and their error rates
under continuous monitoring, simulated."""

from __future__ import annotations

import dataclasses
import math

import pytest

from orchestrator.config.settings import SloSettings
from orchestrator.gates.sequential import Counts, Decision, Monitor, Policy, check, decide, samples_to_pass
from orchestrator.gates.sizing import Sizing

SLO = SloSettings(p95_ms=250, p99_ms=500, max_error_ratio=0.01, min_samples=100)
POLICY = Policy(min_duration_s=5, alpha=0.01, beta=0.05)


@pytest.mark.parametrize(
    ("counts", "elapsed", "expected"),
    [
        # A healthy green: nothing bad in enough requests passes early.
        (Counts(500, 0, 500, 0, 0), 6.0, Decision.PASS),
        # ...but not before min_duration_s, nor with fewer than min_samples.
        (Counts(500, 0, 500, 0, 0), 4.9, Decision.CONTINUE),
        (Counts(99, 40, 59, 0, 0), 6.0, Decision.CONTINUE),
        # Too few requests to show a 1 % bound (p99, errors) is met.
        (Counts(200, 0, 200, 0, 0), 6.0, Decision.CONTINUE),
        # Errors far above 1 %: early FAIL.
        (Counts(200, 20, 180, 0, 0), 6.0, Decision.FAIL),
        # A quarter of the requests over the p95 budget: FAIL.
        (Counts(200, 0, 200, 50, 0), 6.0, Decision.FAIL),
        # Exactly at a bound stays undecided: 5 % over p95 in 400.
        (Counts(400, 0, 400, 20, 0), 6.0, Decision.CONTINUE),
        # p99 clearly broken though p95 is fine.
        (Counts(300, 0, 300, 12, 12), 6.0, Decision.FAIL),
    ],
)
def test_decide_table(counts: Counts, elapsed: float, expected: Decision) -> None:
    assert decide(counts, elapsed, SLO, POLICY).decision == expected


def test_zero_error_budget_fails_on_one_error_and_never_passes_early() -> None:
    strict = dataclasses.replace(SLO, max_error_ratio=0.0)
    assert decide(Counts(10_000, 0, 10_000, 0, 0), 60, strict, POLICY).decision == Decision.CONTINUE
    assert decide(Counts(200, 1, 199, 0, 0), 6, strict, POLICY).decision == Decision.FAIL
    assert samples_to_pass(strict, POLICY) is None


def test_check_statistics_move_the_right_way() -> None:
    # More good requests: more evidence the share is below the bound, less that it is above.
    assert check("p99", 0, 400, 0.01).log_pass > check("p99", 0, 200, 0.01).log_pass
    assert check("p99", 10, 200, 0.01).log_fail > check("p99", 2, 200, 0.01).log_fail
    assert check("p99", 1, 200, 0.01).log_pass < check("p99", 0, 200, 0.01).log_pass


def test_samples_to_pass_is_the_least_that_passes() -> None:
    n = samples_to_pass(SLO, POLICY)
    assert n is not None
    assert decide(Counts(n, 0, n, 0, 0), 10, SLO, POLICY).decision == Decision.PASS
    assert decide(Counts(n - 1, 0, n - 1, 0, 0), 10, SLO, POLICY).decision == Decision.CONTINUE


def test_monitor_pools_with_an_earlier_attempt_and_records_each_look() -> None:
    from orchestrator.gates.judge import LoadStats

    prior = LoadStats(6.0, {"2": [20.0] * 300}, {"2": 0})
    monitor = Monitor("2", SLO, POLICY, prior=prior)
    first = monitor.feed({"elapsed_s": 1.0, "versions": {"2": {"latencies_ms": [20.0] * 50, "errors": 0}}})
    assert first.decision == Decision.CONTINUE and first.samples == 350
    last = monitor.feed({"elapsed_s": 2.0, "versions": {"2": {"latencies_ms": [20.0] * 200, "errors": 0}}})
    assert last.decision == Decision.PASS and last.elapsed_s == 8.0
    assert monitor.decided is last
    assert [e["samples"] for e in monitor.evidence()] == [350, 500]


def _simulate(
    p_error: float, p_over95: float, p_over99: float, slo: SloSettings, runs: int, seed: int
) -> dict[str, int]:
    """Runs of up to 1500 requests, looked at every 20 requests from min_samples on (the
    counts drawn with numpy; every look decided by `decide` itself)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 1500
    failed = rng.random((runs, n)) < p_error
    u = rng.random((runs, n))
    over99 = np.cumsum(~failed & (u < p_over99), axis=1)
    over95 = np.cumsum(~failed & (u < p_over95), axis=1)
    errors = np.cumsum(failed, axis=1)
    outcome = {"pass": 0, "fail": 0, "continue": 0}
    looks = range(slo.min_samples, n + 1, 20)
    for r in range(runs):
        decision = Decision.CONTINUE
        for i in looks:
            e = int(errors[r, i - 1])
            counts = Counts(i, e, i - e, int(over95[r, i - 1]), int(over99[r, i - 1]))
            decision = decide(counts, 10, slo, POLICY).decision
            if decision != Decision.CONTINUE:
                break
        outcome[str(decision)] += 1
    return outcome


def test_early_fail_rate_of_a_green_at_every_bound_stays_under_alpha() -> None:
    # The worst case within the SLOs: every share exactly at its bound; 2000 runs with 71
    # looks each. Fixed-sample rules looked at this often fail such a green most of the time.
    outcome = _simulate(0.01, 0.05, 0.01, SLO, runs=2000, seed=25)
    # alpha = 1 %: 20 of 2000 expected at most; allow binomial noise around it (sd ~ 4.5).
    assert outcome["fail"] <= 30, outcome


def test_early_pass_rate_of_a_green_at_one_bound_stays_under_beta() -> None:
    # p99 share at its 1 % bound (a violation in the gate's sense is anything above it):
    # an early pass here is a false pass, bounded by beta = 5 %.
    outcome = _simulate(0.0, 0.0, 0.01, SLO, runs=1000, seed=26)
    assert outcome["pass"] <= 1000 * 0.05 + 20, outcome


def test_healthy_and_broken_greens_decide_early() -> None:
    healthy = _simulate(0.0, 0.005, 0.0, SLO, runs=50, seed=1)
    assert healthy["pass"] == 50
    broken = _simulate(0.05, 0.05, 0.01, SLO, runs=50, seed=2)
    assert broken["fail"] == 50
    assert math.isfinite(check("p95", 0, 10, 0.05).log_pass)


def test_the_report_draws_a_sequential_gates_evidence_and_says_why_it_ended() -> None:
    import json

    from orchestrator.release import htmlreport

    monitor = Monitor("2", SLO, POLICY)
    for second in range(1, 8):
        snapshot = {
            "elapsed_s": float(second),
            "versions": {"2": {"latencies_ms": [20.0] * 80 * second, "errors": 0}},
        }
        if monitor.stops(snapshot):
            break
    assert monitor.decided is not None and monitor.decided.elapsed_s == 5.0
    evidence = {"stop": "ended early at 5.0s: pass", "looks": monitor.evidence()}
    json.dumps(evidence, allow_nan=False)  # infinities written as finite numbers
    step = {
        "name": "step 1",
        "weight": 20,
        "verdict": "pass",
        "reasons": [],
        "green": None,
        "blue": None,
        "sequential": evidence,
    }
    charts = htmlreport.charts({"steps": [step]})
    assert len(charts) == 4
    assert "Gate step 1: sequential evidence (ended early at 5.0s: pass)" in charts[3]
    assert charts[3].count("<polyline") == 2


def test_the_dry_run_shows_each_gates_green_requests_and_load_time() -> None:
    from orchestrator.config.settings import LoadSettings
    from orchestrator.release.plan import HEALTHY_REQUEST_MS, LOOK_LAG_S, Plan

    load = LoadSettings(
        users=10, duration_s=30, min_duration_s=5, min_green_requests=1000, max_duration_s=120
    )
    plan = Plan("e", "1", "2", "canary", [10, 100], 0, SLO, load)
    need = samples_to_pass(SLO, POLICY)
    assert need is not None and need < 1000  # min_green_requests binds an early pass
    rps = 10 * 1000 / HEALTHY_REQUEST_MS  # 200 requests/s, all to green pre-traffic
    assert rps == 200
    rows = {r["gate"]: r for r in plan.gate_durations()}
    # green alone: 6000 requests in 30 s, 1000 after 5 s; sequential: passes at 1000 (+ a look's lag)
    assert rows["pre-traffic"] == {
        "gate": "pre-traffic", "weight": 100, "green_rps": 200.0, "green_requests_at_duration": 6000,
        "min_green_requests_s": 5.0, "sized_s": 30, "healthy_s": 5 + LOOK_LAG_S, "worst_s": 120, "short": False,
    }  # fmt: skip
    # a 10 % canary: 600 in 30 s, so the load runs on to 1000 (50 s), sequential or not
    assert rows["step 1"] == {
        "gate": "step 1", "weight": 10, "green_rps": 20.0, "green_requests_at_duration": 600,
        "min_green_requests_s": 50.0, "sized_s": 50 + LOOK_LAG_S, "healthy_s": 50 + LOOK_LAG_S, "worst_s": 120,
        "short": False,
    }  # fmt: skip
    assert plan.expected_duration_s == 30 + 51.5 + 30 and plan.worst_duration_s == 360
    assert plan.expected_healthy_duration_s == 6.5 + 51.5 + 6.5
    # fixed-length gates: their size alone (duration_s, or on to min_green_requests)
    fixed = Plan("e", "1", "2", "canary", [10, 100], 0, SLO, dataclasses.replace(load, sequential=False))
    assert [r["healthy_s"] for r in fixed.gate_durations()] == [30, 51.5, 30]
    assert fixed.expected_healthy_duration_s == fixed.expected_duration_s == 111.5
    # a 5 % canary with 60 s at most cannot reach 1000 at the estimate (100 s): flagged, capped
    small = Plan("e", "1", "2", "canary", [5, 100], 0, SLO, dataclasses.replace(load, max_duration_s=60))
    step = small.gate_durations()[1]
    assert (step["min_green_requests_s"], step["sized_s"], step["short"]) == (100.0, 60, True)
    # min_green_requests = 0: gates sized by seconds alone, as before it existed
    bare = Plan("e", "1", "2", "canary", [10, 100], 0, SLO, dataclasses.replace(load, min_green_requests=0))
    assert [(r["worst_s"], r["sized_s"]) for r in bare.gate_durations()] == [(30, 30)] * 3
    assert bare.gate_durations()[1]["healthy_s"] == round(min(30, need / 20 + LOOK_LAG_S), 1)


def test_the_dry_run_text_lists_each_gate_and_warns_of_a_short_one() -> None:
    from orchestrator.cli.release import _report_text
    from orchestrator.config.settings import Environment, LoadSettings, TrafficSettings
    from orchestrator.release.plan import make_plan

    env = Environment(
        "x", "eu-west-1", "1" * 12, traffic=TrafficSettings(canary_weight=5, bake_s=0),
        load=LoadSettings(max_duration_s=60),
    )  # fmt: skip
    text = _report_text({"dry_run": True, **make_plan(env, "1", "2").to_dict()})
    assert "load 10 users x 30s, on until green answered 1000 requests (at most 60s)" in text
    assert (
        "    step 1 at 5%: ~300 green requests in 30s, 1000 after ~100s; ~60s for a healthy green, 60s at most"
        in text
    )
    assert text.count("warning:") == 1
    assert (
        "  warning: step 1 (5%): green would answer 1000 requests only after ~100s, past max_duration_s (60s): "
        "the gate would be judged short of them; raise load.users or load.max_duration_s"
    ) in text


def _green(elapsed: float, ok: int, errors: int = 0) -> dict[str, object]:
    return {"elapsed_s": elapsed, "versions": {"2": {"latencies_ms": [20.0] * ok, "errors": errors}}}


@pytest.mark.parametrize(
    ("sizing", "requests", "elapsed", "enough"),
    [
        (Sizing(30, 1000, 120), 5000, 29.9, False),  # never before duration_s
        (Sizing(30, 1000, 120), 1000, 30.0, True),
        (Sizing(30, 1000, 120), 999, 80.0, False),  # on past duration_s while green is short
        # 0: seconds alone, as before: Locust's --run-time ends the load, never a look (a stop
        # sent while Locust is already ending would race its shutdown and read as an early stop)
        (Sizing(30, 0, 120), 0, 30.0, False),
        (Sizing(30, 0, 120), 5000, 300.0, False),
    ],
)
def test_sizing_says_when_a_gates_load_is_enough(
    sizing: Sizing, requests: int, elapsed: float, enough: bool
) -> None:
    assert sizing.enough(requests, elapsed) is enough


def test_sizing_runs_locust_to_max_duration_only_when_requests_can_hold_it_on() -> None:
    assert Sizing(30, 1000, 120).run_time_s == 120
    assert Sizing(30, 0, 120).run_time_s == 30  # nothing holds the load on: today's --run-time
    assert Sizing(30, 1000, 0).run_time_s == 30  # never under duration_s
    assert Sizing(30, 1000, 120).shortfall(1000) is None
    assert Sizing(30, 1000, 120).shortfall(412) == (
        "green answered 412 of the 1000 requests the gate's error rates need; "
        "raise load.users or load.max_duration_s"
    )


# 5 % of green's requests over p95_ms: neither clearly met nor clearly broken
AT_P95_BOUND = {
    "elapsed_s": 30.0,
    "versions": {"2": {"latencies_ms": [20.0] * 475 + [300.0] * 25, "errors": 0}},
}


@pytest.mark.parametrize(
    ("sequential", "snapshot", "decision", "reason"),
    [
        # fixed-length: nothing ends the load before duration_s...
        (False, _green(10.0, 5000), Decision.CONTINUE, "fixed-length gate"),
        # ...nor after it while green is short of min_green_requests
        (False, _green(45.0, 499), Decision.CONTINUE, "fixed-length gate"),
        (
            False,
            _green(45.0, 500),
            Decision.ENOUGH,
            "ran its full duration_s",
        ),
        # sequential: a clearly met SLO set does not pass early before min_green_requests...
        (
            True,
            _green(10.0, 400),
            Decision.CONTINUE,
            "SLOs clearly met, green has 400 of min_green_requests=500",
        ),
        (True, _green(10.0, 500), Decision.PASS, "errors: 0 of 500 failed"),
        # ...a broken one fails early with fewer
        (True, _green(10.0, 150, errors=50), Decision.FAIL, "errors: 50 of 200 failed, clearly above"),
        # no decision past duration_s: the load's size ends it
        (True, AT_P95_BOUND, Decision.ENOUGH, "ran its full duration_s"),
    ],
)
def test_monitor_sizes_a_gate_by_greens_requests(
    sequential: bool, snapshot: dict[str, object], decision: Decision, reason: str
) -> None:
    monitor = Monitor("2", SLO, POLICY, sizing=Sizing(20, 500, 120), sequential=sequential)
    look = monitor.feed(snapshot)
    assert (look.decision, look.reason.startswith(reason)) == (decision, True), look.reason
    assert monitor.stops(snapshot) is (decision != Decision.CONTINUE)


def test_a_sequential_gate_sized_by_seconds_alone_is_ended_by_locust_not_by_a_look() -> None:
    monitor = Monitor("2", SLO, POLICY, sizing=Sizing(5, 0, 120), sequential=True)
    assert monitor.feed(AT_P95_BOUND).decision == Decision.CONTINUE  # past duration_s, undecided
    assert monitor.decided is None and not monitor.stops(AT_P95_BOUND)


def test_a_monitor_says_why_the_load_ended_at_its_size() -> None:
    monitor = Monitor("2", SLO, POLICY, sizing=Sizing(20, 500, 120), sequential=False)
    assert monitor.feed(_green(19.0, 900)).decision == Decision.CONTINUE
    ended = monitor.feed(_green(20.5, 1000))
    assert (ended.decision, ended.reason) == (Decision.ENOUGH, "ran its full duration_s")
    assert monitor.ended is ended and monitor.decided is None  # no early decision
    # short at duration_s: on until green has its requests, and it says so
    monitor = Monitor("2", SLO, POLICY, sizing=Sizing(20, 500, 120), sequential=False)
    assert monitor.feed(_green(20.5, 300)).decision == Decision.CONTINUE
    ended = monitor.feed(_green(34.0, 510))
    assert ended.reason == "ran on past duration_s to 34.0s until green had 510 of min_green_requests=500"


def test_an_extension_runs_duration_s_of_its_own_with_greens_requests_pooled() -> None:
    from orchestrator.gates.judge import LoadStats

    prior = LoadStats(20.0, {"2": [20.0] * 300}, {"2": 0})
    monitor = Monitor("2", SLO, POLICY, prior=prior, sizing=Sizing(20, 500, 120), sequential=False)
    assert monitor.feed(_green(5.0, 300)).decision == Decision.CONTINUE  # 600 pooled, 5 s of its own
    assert monitor.feed(_green(20.0, 200)).decision == Decision.ENOUGH  # 500 pooled


def _snapshot(elapsed: float, blue: list[float], green: list[float]) -> dict[str, object]:
    return {
        "elapsed_s": elapsed,
        "versions": {"1": {"latencies_ms": blue, "errors": 0}, "2": {"latencies_ms": green, "errors": 0}},
    }


def test_an_early_pass_waits_until_green_against_blue_is_clear() -> None:
    # Every SLO clearly met, but green's p95 is twice blue's and more than the floor (12.5 ms)
    # above it: stopping now would leave the comparison to few samples. The look goes on.
    import random

    rng = random.Random(7)
    blue = [40 + rng.expovariate(1 / 10) for _ in range(4000)]
    slow = [2 * x for x in blue[:500]]
    held = Monitor("2", SLO, POLICY, blue="1").feed(_snapshot(6.0, blue, slow))
    assert held.decision == Decision.CONTINUE
    assert held.reason.startswith("SLOs clearly met, green vs blue not yet clear (")
    # without blue (the pre-traffic gate) the SLOs alone decide
    assert Monitor("2", SLO, POLICY).feed(_snapshot(6.0, blue, slow)).decision == Decision.PASS
    # a green like blue passes early, and says why
    same = [40 + rng.expovariate(1 / 10) for _ in range(500)]
    passed = Monitor("2", SLO, POLICY, blue="1").feed(_snapshot(6.0, blue, same))
    assert passed.decision == Decision.PASS and "green vs blue: p95 shift below 12.5 ms" in passed.reason
    # the relative check turned off: no hold
    off = dataclasses.replace(SLO, relative_p95_factor=0)
    assert Monitor("2", off, POLICY, blue="1").feed(_snapshot(6.0, blue, slow)).decision == Decision.PASS


def test_a_plan_recorded_before_sequential_gates_resumes_with_fixed_gates() -> None:
    from orchestrator.config.settings import Environment
    from orchestrator.release.plan import make_plan, plan_from_dict

    snapshot = make_plan(Environment("local", "us-east-1", "123456789012"), "1", "2").to_snapshot()
    assert plan_from_dict(snapshot).load.sequential is True  # today's plans keep theirs
    older = {
        **snapshot,
        "load": {k: v for k, v in snapshot["load"].items() if k not in ("sequential", "min_duration_s")},
    }
    assert plan_from_dict(older).load.sequential is False  # "resume runs the recorded plan"


def test_a_plan_recorded_before_gates_were_sized_by_requests_resumes_sized_by_seconds() -> None:
    from orchestrator.config.settings import Environment, LoadSettings
    from orchestrator.release.plan import make_plan, plan_from_dict

    env = Environment(
        "local", "us-east-1", "123456789012", load=LoadSettings(duration_s=200, max_duration_s=300)
    )
    snapshot = make_plan(env, "1", "2").to_snapshot()
    today = plan_from_dict(snapshot).load
    assert (today.min_green_requests, today.max_duration_s) == (1000, 300)  # today's plans keep theirs
    older = {
        **snapshot,
        "load": {
            k: v for k, v in snapshot["load"].items() if k not in ("min_green_requests", "max_duration_s")
        },
    }
    load = plan_from_dict(older).load
    assert (load.min_green_requests, load.max_duration_s, load.sequential) == (0, 200, True)
    assert Sizing.of(load).run_time_s == 200  # Locust's --run-time as it was recorded
