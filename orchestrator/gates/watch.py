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
  breach too (a typo must not switch the watch off). An alarm that is OK says nothing about
  green (it may watch something else, or have no data yet): it never makes a look `ok`.

When a bake ends (`decide`): Lambda's metrics reach CloudWatch late (on AWS a minute or
more, at 60 s resolution), so a bake is over only when green's datapoints cover its window
(the newest one's period reaches the window's end) or when the longest delay the cloud
allows for has passed since the window's end (then every datapoint of the window is in).
Until then it waits, still failing at once on a breach. Green counts as judged only when its
Errors check was (Throttles and Duration can add breaches, never an `ok`). Past that bound, a
bake that judged no metric of green fails as not judged (or, with `traffic.unjudged_bake = "extend"`, goes on
watching until green's traffic is judged, up to `traffic.max_extend_s`): it is never `ok`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from orchestrator.config.settings import SloSettings

MIN_FAILURES = 3
ERRORS = "Errors"  # the check that decides whether green was judged at all


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
    kind: str = "metric"  # "metric": of green's own invocations; "alarm": a named CloudWatch alarm

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def judge_metrics(m: VersionMetrics, slo: SloSettings) -> list[MetricCheck]:
    """The metric checks of one look at green's Lambda metrics."""
    return [
        _ratio(ERRORS, m.errors, m.invocations, slo.max_error_ratio, "function errors"),
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
                                      "no CloudWatch alarm has this name (check slo.alarms)", "alarm"))  # fmt: skip
        elif state == "ALARM":
            checks.append(MetricCheck(f"alarm {name}", Check.BREACH, state, "OK", "in ALARM", "alarm"))
        else:
            checks.append(MetricCheck(f"alarm {name}", Check.OK, state, "OK", state, "alarm"))
    return checks


def judged(checks: list[MetricCheck]) -> bool:
    """True when green's Errors check was judged (ok or breach): only it says whether green's
    invocations succeed. Throttles and Duration can only add breaches (two invocations that both
    failed are not judged by Errors, yet their Throttles read ok); alarms do not count either:
    an OK alarm is no evidence about green."""
    return any(c.kind == "metric" and c.name == ERRORS and c.verdict != Check.NOT_JUDGED for c in checks)


def verdict(checks: list[MetricCheck]) -> Check:
    """One look's verdict: a breach if any; ok only if green's Errors were judged; else not judged."""
    if breach(checks) is not None:
        return Check.BREACH
    return Check.OK if judged(checks) else Check.NOT_JUDGED


def breach(checks: list[MetricCheck]) -> MetricCheck | None:
    """The first breached check, or None."""
    return next((c for c in checks if c.verdict == Check.BREACH), None)


# -- when a bake ends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How a cloud's Lambda metrics arrive, and how often a bake looks at them."""

    look_s: float  # between looks (AWS: CloudWatch's resolution; polling faster learns nothing)
    resolution_s: float  # the period of one datapoint (AWS: 60 s; the local edge: 1 s)
    delay_s: float  # how late a datapoint may become visible after its period ends
    slack_s: float = 0.0  # a busy machine's margin (the local edge flushes from a thread)

    @property
    def wait_s(self) -> float:
        """How long past a window's end its last datapoint may still arrive: the bound."""
        return self.resolution_s + self.delay_s + self.slack_s


def covered(newest: float | None, end: float, resolution_s: float) -> bool:
    """Green's datapoints reach the window's end: the newest one's period (it starts at
    `newest`, epoch seconds) ends at or after `end`."""
    return newest is not None and newest + resolution_s >= end


class Action(StrEnum):
    """What the driver does after a look at a bake."""

    WAIT = "wait"  # look again at `look_at`
    PASS = "pass"  # the bake is over and green was judged over its window
    FAIL = "fail"  # a breach, or nothing of green judged by the bound
    BLIND = "blind"  # CloudWatch could not be read when the bake had to end


@dataclass(frozen=True)
class Decision:
    """A look's consequence for the bake: what to do, the bake's verdict so far, and why."""

    action: Action
    verdict: Check
    reason: str
    look_at: float | None = None  # with WAIT: when to look next (epoch seconds)
    # with WAIT: "baking" (the window is open), "waiting" (for its late datapoints, up to the
    # bound), "extending" (past the bound with nothing of green judged, unjudged_bake = "extend")
    stage: str = ""


def decide(
    checks: list[MetricCheck] | None,
    *,
    now: float,
    end: float,
    newest: float | None,
    timing: Timing,
    unjudged: str = "fail",
    max_extend_s: float | None = None,
) -> Decision:
    """The consequence of one look at a bake whose window ends at `end` (epoch seconds).

    `checks` is None when CloudWatch could not be read; `newest` is the start of green's
    newest datapoint (Invocations) at the cloud's resolution, None when none was seen.
    With `unjudged = "extend"`, a bake extends at most `max_extend_s` past the bound (None:
    no cap), then fails as not judged.
    """
    bound = end + timing.wait_s
    if checks is None:
        if now >= bound:
            return Decision(Action.BLIND, Check.NOT_JUDGED, "could not read green's metrics or the alarms")
        return Decision(Action.WAIT, Check.NOT_JUDGED, "CloudWatch could not be read; looking again",
                        _next_look(now, end, bound, timing), "baking" if now < end else "waiting")  # fmt: skip
    found = breach(checks)
    if found is not None:
        return Decision(Action.FAIL, Check.BREACH, f"{found.name}: {found.detail}")
    seen = verdict(checks)
    if now < end:
        return Decision(Action.WAIT, seen, "baking", _next_look(now, end, bound, timing), "baking")
    if covered(newest, end, timing.resolution_s) and judged(checks):
        return Decision(Action.PASS, Check.OK, "green's datapoints cover the bake")
    if now < bound:
        what = "green's datapoints do not reach the bake's end yet" if judged(checks) else (
            "no metric of green judged yet")  # fmt: skip
        return Decision(
            Action.WAIT, seen,
            f"{what}: waiting up to {timing.wait_s:g} s past it (metrics arrive up to "
            f"{timing.delay_s:g} s late, at {timing.resolution_s:g} s resolution)",
            _next_look(now, end, bound, timing), "waiting",
        )  # fmt: skip
    if judged(checks):  # every datapoint of the window is in: green's traffic simply ended earlier
        return Decision(Action.PASS, Check.OK, "green judged; its datapoints stop short of the bake's end "
                        f"and none came in the {timing.wait_s:g} s after it")  # fmt: skip
    quiet = any(c.kind == "alarm" and c.verdict == Check.OK for c in checks)
    nothing = f"no metric of green judged {timing.wait_s:g} s past the bake's end ({_what_was_seen(checks)})" + (
        "; an OK alarm says nothing about green" if quiet else "")  # fmt: skip
    extended = now - bound
    if unjudged == "extend" and (max_extend_s is None or extended < max_extend_s):
        return Decision(Action.WAIT, Check.NOT_JUDGED, f"{nothing}: baking on until green's traffic is judged "
                        '(traffic.unjudged_bake = "extend")', now + timing.look_s, "extending")  # fmt: skip
    if unjudged == "extend":
        nothing = f"{nothing}; baked on {extended:g} s past that (traffic.max_extend_s = {max_extend_s:g})"
    return Decision(Action.FAIL, Check.NOT_JUDGED, nothing)


def _next_look(now: float, end: float, bound: float, timing: Timing) -> float:
    """The regular look, or earlier when the window ends (or the bound passes) before it."""
    due = now + timing.look_s
    for moment in (end, bound):
        if now < moment < due:
            return moment
    return due


def _what_was_seen(checks: list[MetricCheck]) -> str:
    metrics = [c for c in checks if c.kind == "metric"]
    return "; ".join(f"{c.name}: {c.detail}" for c in metrics) or "nothing read"
