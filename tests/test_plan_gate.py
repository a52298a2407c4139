"""Pure decisions: schedules -> steps, gate verdicts, alias routing, lock staleness."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator import gate, plan
from orchestrator.errors import ConfigError
from orchestrator.gate import Verdict, VersionStats, judge, summarize
from orchestrator.settings import Environment, SloSettings, TrafficSettings
from orchestrator.traffic import AliasState, TrafficError, routing_for

SLO = SloSettings(
    p95_ms=100, p99_ms=200, max_error_ratio=0.01, min_rps=10, min_samples=50, relative_p95_factor=1.5
)


@pytest.mark.parametrize(
    ("traffic", "schedule", "steps"),
    [
        (TrafficSettings(schedule="canary", canary_weight=10), None, [10, 100]),
        (TrafficSettings(schedule="canary", canary_weight=5), None, [5, 100]),
        (TrafficSettings(schedule="linear", linear_steps=4), None, [25, 50, 75, 100]),
        (TrafficSettings(schedule="linear", linear_steps=3), None, [33, 67, 100]),
        (TrafficSettings(schedule="all-at-once"), None, [100]),
        (TrafficSettings(schedule="explicit", weights=(5, 25, 50)), None, [5, 25, 50, 100]),
        (TrafficSettings(schedule="explicit", weights=(1, 100)), None, [1, 100]),
        (TrafficSettings(schedule="canary"), "all-at-once", [100]),
    ],
)
def test_schedule_steps(traffic: TrafficSettings, schedule: str | None, steps: list[int]) -> None:
    assert plan.weights(traffic, schedule) == steps


def test_unknown_schedule_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        plan.weights(TrafficSettings(), "yolo")


def test_plan_counts_gates_and_duration() -> None:
    env = Environment("dev", "eu-west-1", "1" * 12)
    p = plan.make_plan(env, "3", "4", "linear")
    assert p.steps == [25, 50, 75, 100] and p.gates == 5
    assert p.expected_duration_s == env.load.duration_s + 4 * (env.traffic.bake_s + env.load.duration_s)
    assert p.to_dict()["expected_duration_s"] == p.expected_duration_s


def stats(
    p95: float = 50,
    p99: float = 80,
    samples: int = 500,
    errors: int = 0,
    duration: float = 10,
    version: str = "2",
) -> VersionStats:
    return VersionStats(version, samples, errors, duration, p95 / 2, p95, p99)


@pytest.mark.parametrize(
    ("green", "blue", "share", "verdict", "reason_part"),
    [
        (stats(), stats(version="1"), 1.0, Verdict.PASS, "all thresholds met"),
        (stats(p95=150, p99=150), None, 1.0, Verdict.FAIL, "p95 150.0 ms > 100 ms"),
        (stats(p99=250), None, 1.0, Verdict.FAIL, "p99 250.0 ms > 200 ms"),
        (stats(errors=10), None, 1.0, Verdict.FAIL, "error ratio 2.00% > 1.00%"),
        (stats(samples=49), None, 1.0, Verdict.INCONCLUSIVE, "fewer than min_samples=50"),
        (None, stats(version="1"), 0.1, Verdict.INCONCLUSIVE, "green answered 0 requests"),
        # few samples never pass, but samples already over budget are a fail
        (stats(samples=12, p95=400, p99=400), None, 1.0, Verdict.FAIL, "(on 12 samples)"),
        (stats(samples=60, duration=10), None, 1.0, Verdict.FAIL, "6.00 rps < 10.00 rps"),
        # a 10 % canary only needs 10 % of min_rps
        (stats(samples=60, duration=10), None, 0.1, Verdict.PASS, "all thresholds met"),
        (stats(p95=90), stats(p95=40, version="1"), 0.5, Verdict.FAIL, "blue p95 40.0 ms x 1.5"),
        # relative check needs enough blue samples to mean anything
        (stats(p95=90), stats(p95=40, samples=10, version="1"), 0.5, Verdict.PASS, "all thresholds met"),
    ],
)
def test_judge(
    green: VersionStats | None, blue: VersionStats | None, share: float, verdict: Verdict, reason_part: str
) -> None:
    result = judge(green, blue, SLO, green_share=share)
    assert result.verdict == verdict
    assert any(reason_part in r for r in result.reasons), result.reasons


def test_relative_check_can_be_disabled() -> None:
    assert (
        judge(stats(p95=90), stats(p95=40, version="1"), replace(SLO, relative_p95_factor=0)).verdict
        == Verdict.PASS
    )


def test_summarize_percentiles_nearest_rank() -> None:
    s = summarize("2", [float(i) for i in range(1, 101)], errors=3, duration_s=4)
    assert (s.p50_ms, s.p95_ms, s.p99_ms) == (50.0, 95.0, 99.0)
    assert s.samples == 100 and s.error_ratio == 0.03 and s.rps == 25
    assert gate.percentile([], 95) == 0.0


def test_stats_file_is_judged_per_version_and_counts_unanswered() -> None:
    data = {
        "duration_s": 10,
        "unattributed": 0,
        "versions": {
            "1": {"latencies_ms": [10.0] * 900, "errors": 0},
            "2": {"latencies_ms": [500.0] * 100, "errors": 0},
        },
    }
    # the aggregate p95 would be 10 ms (mostly blue); green's own is 500 ms
    result = gate.from_stats_file(data, "1", "2", SLO, green_share=0.1)
    assert result.verdict == Verdict.FAIL and result.green and result.green.p95_ms == 500
    data["versions"]["2"]["latencies_ms"] = [14.0] * 100  # within blue x 1.5
    assert gate.from_stats_file(data, "1", "2", SLO, green_share=0.1).verdict == Verdict.PASS
    data["unattributed"] = 50
    failed = gate.from_stats_file(data, "1", "2", SLO, green_share=0.1)
    assert failed.verdict == Verdict.FAIL and "got no answer" in failed.reasons[0]


@pytest.mark.parametrize(
    ("blue", "green", "percent", "expected"),
    [
        ("1", "2", 10, ("1", {"2": 0.1})),
        ("1", "2", 50, ("1", {"2": 0.5})),
        ("1", "2", 100, ("2", {})),
        ("1", "2", 0, ("1", {})),
        ("7", "12", 33, ("7", {"12": 0.33})),
    ],
)
def test_routing_for(blue: str, green: str, percent: int, expected: tuple[str, dict[str, float]]) -> None:
    assert routing_for(blue, green, percent) == expected


@pytest.mark.parametrize(
    ("blue", "green", "percent"), [("1", "1", 10), ("$LATEST", "2", 10), ("1", "2", 101), ("1", "2", -1)]
)
def test_routing_for_rejects_bad_moves(blue: str, green: str, percent: int) -> None:
    with pytest.raises(TrafficError):
        routing_for(blue, green, percent)


def test_alias_share() -> None:
    state = AliasState("1", {"2": 0.25})
    assert state.share_of("1") == 0.75 and state.share_of("2") == 0.25 and state.share_of("3") == 0


def test_sigv4_headers_sign_for_execute_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.targets import sigv4_headers

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    headers = sigv4_headers(
        "GET", "https://abc.execute-api.eu-west-1.amazonaws.com/candidate/healthz", "eu-west-1"
    )
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth and "X-Amz-Date" in headers
