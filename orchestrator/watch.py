"""What a bake watches while real users are on green, judged. Pure: no I/O, no clock.

The load-test gate sees only the requests it sends. Through every bake (and a pause) the
driver also reads what Lambda itself counted for green behind `live` (CloudWatch
`AWS/Lambda`, dimensions FunctionName + Resource=function:live + ExecutedVersion=green)
and the environment's own CloudWatch alarms; this module decides whether that is a breach.
A breach ends the bake at once and rolls back, as CodeDeploy does on an alarm.

Rules, one per check (each reported per step, judged or not, with its reason):
- Errors: function errors / invocations > slo.max_error_ratio, once at least MIN_FAILURES
  errors were counted (two errors in three invocations is a reason to look, not to roll back).
- Throttles: throttles / (invocations + throttles) against the same ratio and floor; Lambda
  does not count a throttled request as an invocation.
- Duration: with percentiles (AWS), p99 <= slo.p99_ms; without (the emulator answers only
  Sum/Average/Maximum), Average <= slo.p95_ms. Judged from slo.min_samples invocations on,
  as the gate's percentiles are. Lambda's Duration is handler time only, so this is a lower
  bound of what users see; the gate measures the rest.
- Alarms: any named alarm in ALARM is a breach; a named alarm that does not exist is a
  breach too (a typo must not switch the watch off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from orchestrator.settings import SloSettings

MIN_FAILURES = 3


class Check(StrEnum):
    """A metric check's verdict."""

    OK = "ok"
    BREACH = "breach"
    NOT_JUDGED = "not_judged"  # too little traffic yet, or nothing to read


@dataclass(frozen=True)
class VersionMetrics:
    """What CloudWatch counted for one version behind the alias since the step began."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    duration_ms: float | None = None  # the statistic named by duration_stat
    duration_stat: str = "p99"  # "p99" on AWS, "Average" where percentiles are not served


@dataclass(frozen=True)
class MetricCheck:
    """One check of one look: what was read, against what limit, and the verdict."""

    name: str  # "Errors", "Throttles", "Duration p99", "alarm prod-5xx"
    verdict: Check
    value: float | str | None
    limit: float | str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def judge_metrics(m: VersionMetrics, slo: SloSettings) -> list[MetricCheck]:
    """The metric checks of one look at green's Lambda metrics."""
    return [
        _ratio("Errors", m.errors, m.invocations, slo.max_error_ratio, "function errors"),
        _ratio(
            "Throttles", m.throttles, m.invocations + m.throttles, slo.max_error_ratio, "throttled requests"
        ),
        _duration(m, slo),
    ]


def _ratio(name: str, bad: float, total: float, limit: float, what: str) -> MetricCheck:
    if total <= 0:
        return MetricCheck(name, Check.NOT_JUDGED, None, limit, "no invocations of green through live yet")
    ratio = bad / total
    text = f"{bad:g} {what} in {total:g} ({ratio:.2%}; limit {limit:.2%})"
    if ratio <= limit:
        return MetricCheck(name, Check.OK, round(ratio, 6), limit, text)
    if bad < MIN_FAILURES:
        return MetricCheck(
            name, Check.NOT_JUDGED, round(ratio, 6), limit, f"{text}: fewer than {MIN_FAILURES}"
        )
    return MetricCheck(name, Check.BREACH, round(ratio, 6), limit, text)


def _duration(m: VersionMetrics, slo: SloSettings) -> MetricCheck:
    percentile = m.duration_stat != "Average"
    name = f"Duration {m.duration_stat}"
    limit = slo.p99_ms if percentile else slo.p95_ms
    if m.duration_ms is None:
        return MetricCheck(name, Check.NOT_JUDGED, None, limit, "no Duration datapoints for green yet")
    if m.invocations < slo.min_samples:
        return MetricCheck(
            name, Check.NOT_JUDGED, round(m.duration_ms, 3), limit,
            f"{m.invocations:g} invocations, fewer than slo.min_samples ({slo.min_samples})",
        )  # fmt: skip
    verdict = Check.OK if m.duration_ms <= limit else Check.BREACH
    how = "" if percentile else " (the emulator serves no percentiles: Average against p95_ms)"
    text = f"{m.duration_ms:.1f} ms (limit {limit:g} ms){how}"
    return MetricCheck(name, verdict, round(m.duration_ms, 3), limit, text)


def judge_alarms(states: dict[str, str | None]) -> list[MetricCheck]:
    """One check per named alarm; states maps a name to StateValue, None when it does not exist."""
    checks = []
    for name, state in sorted(states.items()):
        if state is None:
            checks.append(MetricCheck(f"alarm {name}", Check.BREACH, "missing", "OK",
                                      "no CloudWatch alarm has this name (check slo.alarms)"))  # fmt: skip
        elif state == "ALARM":
            checks.append(MetricCheck(f"alarm {name}", Check.BREACH, state, "OK", "in ALARM"))
        else:
            checks.append(MetricCheck(f"alarm {name}", Check.OK, state, "OK", state))
    return checks


def verdict(checks: list[MetricCheck]) -> Check:
    """One look's verdict: a breach if any; ok if anything was judged; else not judged."""
    if breach(checks) is not None:
        return Check.BREACH
    return Check.OK if any(c.verdict == Check.OK for c in checks) else Check.NOT_JUDGED


def breach(checks: list[MetricCheck]) -> MetricCheck | None:
    """The first breached check, or None."""
    return next((c for c in checks if c.verdict == Check.BREACH), None)
