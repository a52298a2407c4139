"""Reads what a bake watches from CloudWatch: green's Lambda metrics and the named alarms.

The same calls on AWS and on the local environment, whose edge publishes Lambda's
metrics to the emulator (orchestrator/local/telemetry.py). The verdicts are in watch.py.
"""

from __future__ import annotations

import datetime
from typing import Any

from orchestrator.gates.watch import VersionMetrics

NAMESPACE = "AWS/Lambda"
PERIOD_S = 60  # Lambda's standard resolution
ALARM_TYPES = ("MetricAlarm", "CompositeAlarm", "LogAlarm")


class LambdaMetrics:
    """Green's metrics behind one alias of one function, and the environment's alarms."""

    def __init__(
        self,
        client: Any,
        function: str,
        *,
        percentiles: bool,
        alias: str = "live",
        resolution_s: float = PERIOD_S,
    ) -> None:
        self.cw, self.function, self.alias = client, function, alias
        # The emulator fails on percentile statistics; there the Average stands in (watch.py).
        self.duration_stat = "p99" if percentiles else "Average"
        self.resolution_s = resolution_s  # the period of one datapoint (the local edge: 1 s)

    def _dimensions(self, version: str) -> list[dict[str, str]]:
        return [
            {"Name": "FunctionName", "Value": self.function},
            {"Name": "Resource", "Value": f"{self.function}:{self.alias}"},
            {"Name": "ExecutedVersion", "Value": version},
        ]

    def version(self, version: str, since: float, until: float) -> VersionMetrics:
        """What Lambda counted for `version` through the alias between two epoch times."""
        dims = self._dimensions(version)

        # One period spanning the whole window, so CloudWatch computes the percentile over all
        # of it (per-minute p99s cannot be combined). CloudWatch rounds StartTime down to the
        # minute: up to a minute before the shift is included, green's traffic of the step before.
        period = PERIOD_S * (int((until - since) // PERIOD_S) + 2)

        def query(qid: str, metric: str, stat: str) -> dict[str, Any]:
            return {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }

        got = self.cw.get_metric_data(
            MetricDataQueries=[
                query("invocations", "Invocations", "Sum"),
                query("errors", "Errors", "Sum"),
                query("throttles", "Throttles", "Sum"),
                query("duration", "Duration", self.duration_stat),
                query("samples", "Duration", "SampleCount"),
            ],
            StartTime=_utc(since),
            EndTime=_utc(since + period),
        )
        values = {r["Id"]: [float(v) for v in r.get("Values", [])] for r in got["MetricDataResults"]}
        return VersionMetrics(
            invocations=sum(values.get("invocations", [])),
            errors=sum(values.get("errors", [])),
            throttles=sum(values.get("throttles", [])),
            duration_ms=_combine(values.get("duration", []), values.get("samples", []), self.duration_stat),
            duration_stat=self.duration_stat,
        )

    def newest(self, version: str, after: float, until: float) -> float | None:
        """The start (epoch seconds) of the newest period, at the cloud's resolution, in which
        Lambda counted invocations of `version` through the alias, looking no further back
        than the period holding `after`; None when there is none yet.

        This is how a bake knows its window is covered: the data arrive late, and the one big
        period `version` asks for has no useful Timestamp. One metric over a short range: cheap.
        """
        step = int(max(1, self.resolution_s))
        start = (int(after) // step) * step  # aligned, as CloudWatch aligns datapoints to the period
        end = max(until, start + step) + step
        got = self.cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "coverage",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE, "MetricName": "Invocations",
                            "Dimensions": self._dimensions(version),
                        },
                        "Period": step,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            ],
            StartTime=_utc(start),
            EndTime=_utc(end),
        )  # fmt: skip
        seen = [
            t.timestamp()
            for r in got["MetricDataResults"]
            for t, v in zip(r.get("Timestamps", []), r.get("Values", []), strict=False)
            if float(v) > 0
        ]
        return max(seen, default=None)

    def alarms(self, names: tuple[str, ...]) -> dict[str, str | None]:
        """StateValue of each named alarm (metric, composite or log); None for one that does not exist."""
        states: dict[str, str | None] = dict.fromkeys(names)
        for chunk in (names[i : i + 100] for i in range(0, len(names), 100)):  # AlarmNames takes 100
            pages = self.cw.get_paginator("describe_alarms").paginate(
                AlarmNames=list(chunk), AlarmTypes=list(ALARM_TYPES), PaginationConfig={"PageSize": 100}
            )
            for page in pages:
                for kind in ALARM_TYPES:
                    for alarm in page.get(f"{kind}s", []):
                        states[alarm["AlarmName"]] = alarm["StateValue"]
        return states


def _combine(per_period: list[float], samples: list[float], stat: str) -> float | None:
    """One figure for the window. There is one period; should CloudWatch split it anyway,
    Averages are weighted by their samples and a percentile takes the worst period's."""
    if not per_period:
        return None
    if stat == "Average" and len(samples) == len(per_period) and sum(samples) > 0:
        return sum(v * n for v, n in zip(per_period, samples, strict=True)) / sum(samples)
    return max(per_period)


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)
