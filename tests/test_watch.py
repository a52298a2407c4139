"""What a bake watches, judged: green's Lambda metrics and the SLO alarms. Pure, table-tested."""

from __future__ import annotations

import pytest

from orchestrator.config.settings import SloSettings
from orchestrator.gates.watch import (
    Action,
    Check,
    Decision,
    Timing,
    VersionMetrics,
    breach,
    covered,
    decide,
    judge_alarms,
    judge_metrics,
)

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
        # an OK alarm is no evidence about green: a look that judged no metric of green is
        # never ok (on AWS every early look of a bake is like this: the metrics arrive late)
        (VersionMetrics(), {"p-5xx": "OK"}, Check.NOT_JUDGED),
        (VersionMetrics(), {"p-5xx": "OK", "p-lat": "OK"}, Check.NOT_JUDGED),
        (VersionMetrics(), {"p-5xx": "ALARM"}, Check.BREACH),  # but an alarm in ALARM still fails
        (VersionMetrics(100, 0, 0, 50.0), {}, Check.OK),
        (VersionMetrics(2, 2, 0, 50.0), {}, Check.NOT_JUDGED),  # Throttles ok, Errors not judged: not ok
        (VersionMetrics(100, 0, 0, 50.0), {"p-5xx": "ALARM"}, Check.BREACH),
    ],
)
def test_one_looks_verdict(metrics: VersionMetrics, alarms: dict[str, str | None], expected: Check) -> None:
    from orchestrator.gates.watch import verdict

    assert verdict(judge_metrics(metrics, SLO) + judge_alarms(alarms)) == expected


# -- when a bake ends: green's late datapoints, the bound, and what a blind bake does ------------

AWS = Timing(look_s=60, resolution_s=60, delay_s=120)  # wait_s: 180 s past the window's end
LOCAL = Timing(look_s=2, resolution_s=1, delay_s=4, slack_s=5)  # wait_s: 10 s
END = 1_000_020.0  # the bake window's end (epoch seconds); 1_000_020 is 20 s into a minute
MINUTE = 1_000_020.0 - 20  # the start of the minute holding END

HEALTHY = VersionMetrics(100, 0, 0, 50.0)  # green judged: Errors, Throttles and Duration ok
NOTHING = VersionMetrics()  # no datapoint of green at all
OK_ALARM = {"p-5xx": "OK"}


def checks(metrics: VersionMetrics, alarms: dict[str, str | None] | None = None) -> list:  # type: ignore[type-arg]
    return judge_metrics(metrics, SLO) + judge_alarms(alarms or {})


@pytest.mark.parametrize(
    ("newest", "end", "resolution", "expected"),
    [
        (None, END, 60, False),  # no datapoint of green
        (MINUTE, END, 60, True),  # the minute holding the end is in
        (MINUTE - 60, END, 60, False),  # only the minute before: the last 20 s are not
        (MINUTE - 60, MINUTE, 60, True),  # a window ending on the minute: the minute before covers it
        (END - 1, END, 1, True),  # locally, per second
        (END - 2, END, 1, False),
    ],
)  # fmt: skip
def test_covered(newest: float | None, end: float, resolution: float, expected: bool) -> None:
    assert covered(newest, end, resolution) is expected


@pytest.mark.parametrize(
    ("case", "metrics", "alarms", "now", "newest", "unjudged", "action", "verdict", "stage"),
    [
        # the window is open: bake on (even with everything judged and ok)
        ("baking", HEALTHY, {}, END - 30, None, "fail", Action.WAIT, Check.OK, "baking"),
        ("baking, nothing yet", NOTHING, OK_ALARM, END - 30, None, "fail", Action.WAIT, Check.NOT_JUDGED, "baking"),
        # a breach at any look fails at once: in the window, waiting, or extending
        ("breach in the window", VersionMetrics(50, 10, 0, 50.0), {}, END - 30, None, "fail", Action.FAIL, Check.BREACH, ""),
        ("breach while waiting", VersionMetrics(50, 10, 0, 50.0), {}, END + 60, None, "fail", Action.FAIL, Check.BREACH, ""),
        ("alarm while waiting", NOTHING, {"p-5xx": "ALARM"}, END + 60, None, "fail", Action.FAIL, Check.BREACH, ""),
        ("breach past the bound", VersionMetrics(50, 10, 0, 50.0), {}, END + 500, MINUTE, "extend", Action.FAIL, Check.BREACH, ""),
        # the window closed; green's datapoints cover it and were judged: pass
        ("covered", HEALTHY, {}, END + 90, MINUTE, "fail", Action.PASS, Check.OK, ""),
        # judged, but the newest datapoint is a minute short of the end: wait for the rest
        ("not covered yet", HEALTHY, {}, END + 90, MINUTE - 60, "fail", Action.WAIT, Check.OK, "waiting"),
        # ... up to the bound: then every datapoint is in, green's traffic just ended earlier
        ("judged at the bound", HEALTHY, {}, END + 180, MINUTE - 60, "fail", Action.PASS, Check.OK, ""),
        # nothing of green judged, the alarm OK: wait for the late metrics, never pass
        ("blind, waiting", NOTHING, OK_ALARM, END + 1, None, "fail", Action.WAIT, Check.NOT_JUDGED, "waiting"),
        ("blind, waiting, late", NOTHING, OK_ALARM, END + 179, None, "fail", Action.WAIT, Check.NOT_JUDGED, "waiting"),
        # ... and at the bound: fail as not judged, or bake on when configured so
        ("blind at the bound", NOTHING, OK_ALARM, END + 180, None, "fail", Action.FAIL, Check.NOT_JUDGED, ""),
        ("blind at the bound, no alarms", NOTHING, {}, END + 180, None, "fail", Action.FAIL, Check.NOT_JUDGED, ""),
        ("blind, extending", NOTHING, OK_ALARM, END + 180, None, "extend", Action.WAIT, Check.NOT_JUDGED, "extending"),
        ("extended until judged", HEALTHY, OK_ALARM, END + 900, END + 800, "extend", Action.PASS, Check.OK, ""),
        # a datapoint that covers the window but judges nothing (2 errors in 3 is below the
        # failure floor; throttles judged) is still judged: green had traffic and it was looked at
        ("few invocations", VersionMetrics(3, 0, 0, None), {}, END + 90, MINUTE, "fail", Action.PASS, Check.OK, ""),
        # green failing 100 %: 2 errors in 2 is below the failure floor, so Errors is not judged;
        # Throttles reads ok (0 in 2) but only Errors judges green: never a pass, a fail at the bound
        ("all failing, few", VersionMetrics(2, 2, 0, None), {}, END + 90, MINUTE, "fail", Action.WAIT, Check.NOT_JUDGED, "waiting"),
        ("all failing, few, bound", VersionMetrics(2, 2, 0, None), {}, END + 180, MINUTE, "fail", Action.FAIL, Check.NOT_JUDGED, ""),
    ],
)  # fmt: skip
def test_decide_on_aws(
    case: str, metrics: VersionMetrics, alarms: dict[str, str | None], now: float, newest: float | None,
    unjudged: str, action: Action, verdict: Check, stage: str,
) -> None:  # fmt: skip
    got = decide(checks(metrics, alarms), now=now, end=END, newest=newest, timing=AWS, unjudged=unjudged)
    assert (got.action, got.verdict, got.stage) == (action, verdict, stage), got.reason


@pytest.mark.parametrize(
    ("now", "action", "stage"),
    [
        (END + 180, Action.WAIT, "extending"),  # at the bound: bake on
        (END + 180 + 599, Action.WAIT, "extending"),
        (END + 180 + 600, Action.FAIL, ""),  # the cap past the bound: fail as not judged
    ],
)
def test_an_extending_bake_fails_at_its_cap(now: float, action: Action, stage: str) -> None:
    got = decide(checks(NOTHING, OK_ALARM), now=now, end=END, newest=None, timing=AWS, unjudged="extend",
                 max_extend_s=600)  # fmt: skip
    assert (got.action, got.verdict, got.stage) == (action, Check.NOT_JUDGED, stage), got.reason
    if action == Action.FAIL:
        assert got.reason.endswith("; baked on 600 s past that (traffic.max_extend_s = 600)"), got.reason


def test_a_bake_that_judged_no_metric_of_green_is_never_ok_whatever_the_alarms_say() -> None:
    """Every look from the bake's start to far past its bound, with only OK alarms and no
    datapoint of green: none passes, and the last one fails as not judged."""
    alarms = {"p-5xx": "OK", "p-lat": "OK", "p-4xx": "INSUFFICIENT_DATA"}
    for timing in (AWS, LOCAL):
        for now in [END - 300 + i * 0.5 for i in range(2 * 300 + 2 * 400)]:
            got = decide(checks(NOTHING, alarms), now=now, end=END, newest=None, timing=timing)
            assert got.action != Action.PASS and got.verdict == Check.NOT_JUDGED
            assert got.action == (Action.FAIL if now >= END + timing.wait_s else Action.WAIT), now
    failed = decide(checks(NOTHING, alarms), now=END + 180, end=END, newest=None, timing=AWS)
    assert failed.reason.startswith("no metric of green judged 180 s past the bake's end")
    assert "an OK alarm says nothing about green" in failed.reason
    alone = decide(checks(NOTHING), now=END + 180, end=END, newest=None, timing=AWS)
    assert alone.action == Action.FAIL and "alarm" not in alone.reason


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (END - 100, END - 40),  # in the window: every look_s
        (END - 30, END),  # the window's end comes first: look then
        (END, END + 60),  # waiting: every look_s
        (END + 150, END + 180),  # the bound comes first: look then
    ],
)
def test_the_next_look_is_at_the_window_end_and_the_bound(now: float, expected: float) -> None:
    got = decide(checks(NOTHING), now=now, end=END, newest=None, timing=AWS)
    assert got.action == Action.WAIT and got.look_at == expected


def test_a_blind_look_waits_until_the_bound_then_is_an_error() -> None:
    assert decide(None, now=END + 5, end=END, newest=None, timing=LOCAL).action == Action.WAIT
    assert decide(None, now=END - 10, end=END, newest=None, timing=LOCAL).action == Action.WAIT
    blind = decide(None, now=END + 10, end=END, newest=None, timing=Timing(2, 1, 4))
    assert blind == Decision(Action.BLIND, Check.NOT_JUDGED, "could not read green's metrics or the alarms")


def test_the_bound_is_one_period_and_the_delay_past_the_end() -> None:
    assert AWS.wait_s == 180 and LOCAL.wait_s == 10
