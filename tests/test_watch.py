"""What a bake watches, judged: green's Lambda metrics and the SLO alarms. Pure, table-tested."""

from __future__ import annotations

import pytest

from orchestrator.settings import SloSettings
from orchestrator.watch import Check, VersionMetrics, breach, judge_alarms, judge_metrics

SLO = SloSettings(p95_ms=100, p99_ms=200, max_error_ratio=0.05, min_samples=20)


def verdicts(m: VersionMetrics) -> dict[str, Check]:
    return {c.name.split()[0]: c.verdict for c in judge_metrics(m, SLO)}


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        # no traffic to green yet: nothing judged, nothing breached
        (VersionMetrics(), {"Errors": Check.NOT_JUDGED, "Throttles": Check.NOT_JUDGED, "Duration": Check.NOT_JUDGED}),
        # healthy: 1 error in 100 is under 5 %, p99 under 200 ms
        (VersionMetrics(100, 1, 0, 150.0), {"Errors": Check.OK, "Throttles": Check.OK, "Duration": Check.OK}),
        # 10 errors in 50: a breach
        (VersionMetrics(50, 10, 0, 50.0), {"Errors": Check.BREACH, "Throttles": Check.OK, "Duration": Check.OK}),
        # 2 errors in 3: above the ratio but below MIN_FAILURES, so not judged yet
        (VersionMetrics(3, 2, 0, 50.0), {"Errors": Check.NOT_JUDGED, "Throttles": Check.OK, "Duration": Check.NOT_JUDGED}),
        # throttled requests are not invocations: 5 throttles + 20 invocations is 20 %
        (VersionMetrics(20, 0, 5, 50.0), {"Errors": Check.OK, "Throttles": Check.BREACH, "Duration": Check.OK}),
        # p99 over the limit with enough invocations
        (VersionMetrics(100, 0, 0, 250.0), {"Errors": Check.OK, "Throttles": Check.OK, "Duration": Check.BREACH}),
        # the same p99 from fewer than min_samples invocations: one slow cold start proves nothing
        (VersionMetrics(10, 0, 0, 250.0), {"Errors": Check.OK, "Throttles": Check.OK, "Duration": Check.NOT_JUDGED}),
    ],
)  # fmt: skip
def test_metric_rules(metrics: VersionMetrics, expected: dict[str, Check]) -> None:
    assert verdicts(metrics) == expected


def test_without_percentiles_the_average_is_held_to_p95() -> None:
    average = VersionMetrics(100, 0, 0, 150.0, duration_stat="Average")
    check = judge_metrics(average, SLO)[2]
    assert (check.name, check.verdict, check.limit) == ("Duration Average", Check.BREACH, 100)
    assert "Average against p95_ms" in check.detail
    # the same figure as a p99 is within its 200 ms limit
    assert judge_metrics(VersionMetrics(100, 0, 0, 150.0), SLO)[2].verdict == Check.OK


def test_error_breach_names_what_it_counted() -> None:
    check = judge_metrics(VersionMetrics(50, 10, 0, 50.0), SLO)[0]
    assert check.detail == "10 function errors in 50 (20.00%; limit 5.00%)"
    assert check.value == 0.2


@pytest.mark.parametrize(
    ("states", "expected", "first_breach"),
    [
        ({}, [], None),
        ({"p-5xx": "OK", "p-lat": "INSUFFICIENT_DATA"}, [Check.OK, Check.OK], None),
        ({"p-5xx": "ALARM", "p-lat": "OK"}, [Check.BREACH, Check.OK], "alarm p-5xx"),
        ({"typo": None}, [Check.BREACH], "alarm typo"),  # a misnamed alarm must not switch the watch off
    ],
)
def test_alarm_rules(states: dict[str, str | None], expected: list[Check], first_breach: str | None) -> None:
    checks = judge_alarms(states)
    assert [c.verdict for c in checks] == expected
    found = breach(checks)
    assert (found.name if found else None) == first_breach


@pytest.mark.parametrize(
    ("metrics", "alarms", "expected"),
    [
        (VersionMetrics(), {}, Check.NOT_JUDGED),  # a bake with no traffic judged nothing: say so
        (VersionMetrics(), {"p-5xx": "OK"}, Check.OK),  # the alarm was judged
        (VersionMetrics(100, 0, 0, 50.0), {}, Check.OK),
        (VersionMetrics(100, 0, 0, 50.0), {"p-5xx": "ALARM"}, Check.BREACH),
    ],
)
def test_one_looks_verdict(metrics: VersionMetrics, alarms: dict[str, str | None], expected: Check) -> None:
    from orchestrator.watch import verdict

    assert verdict(judge_metrics(metrics, SLO) + judge_alarms(alarms)) == expected
