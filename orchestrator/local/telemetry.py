"""The local edge's CloudWatch metrics, published as AWS Lambda publishes them.

Per alias and executed version: `Invocations` (throttled requests are not invocations),
`Errors` (unhandled exceptions and crashed sandboxes), `Throttles` and `Duration` (handler
time), in namespace AWS/Lambda with the dimensions Lambda uses for calls through a weighted
alias, so the promotion driver reads real-traffic metrics with the code it uses on AWS.

Duration goes out as one statistic set (count, sum, min, max) per interval, not as raw
values: the emulator serves no percentiles anyway, and it stores one object per value
(a long session would slow every query down).

`record` only counts (it sits on the request path); `flush` turns the counts into
MetricData and sends them in one `put_metric_data` call, keeping them for the next flush
when the emulator does not answer.

Lambda's metrics reach CloudWatch a minute or more after the invocations. With `delay_s`
the edge does the same: each interval's counts keep the timestamp of when they happened,
and are sent only once they are `delay_s` old, so a bake here has to wait for its
datapoints as it does on AWS (`traffic.metric_delay_s`; watch.decide).
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

NAMESPACE = "AWS/Lambda"
MAX_ITEMS_PER_CALL = 1000  # PutMetricData's limit on MetricData items
MAX_AGE_S = 300.0  # unsent data older than this is dropped: nobody bakes on it any more

Key = tuple[str, str]  # (alias, executed version)


@dataclass
class Counts:
    """What one alias and version did in one interval."""

    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    timed: int = 0  # invocations with a Duration (a crashed sandbox has none)
    duration_sum: float = 0.0
    duration_min: float = float("inf")
    duration_max: float = 0.0

    def add_duration(self, ms: float) -> None:
        """One invocation's handler time."""
        self.timed += 1
        self.duration_sum += ms
        self.duration_min = min(self.duration_min, ms)
        self.duration_max = max(self.duration_max, ms)


@dataclass(frozen=True)
class Batch:
    """The counts of one interval, stamped with when it closed."""

    at: datetime.datetime
    counts: dict[Key, Counts]


def dimensions(function: str, alias: str, version: str) -> list[dict[str, str]]:
    """The dimension set Lambda publishes for an invocation through a (weighted) alias."""
    return [
        {"Name": "FunctionName", "Value": function},
        {"Name": "Resource", "Value": f"{function}:{alias}"},
        {"Name": "ExecutedVersion", "Value": version},
    ]


def metric_data(function: str, batch: Batch) -> list[dict[str, Any]]:
    """The MetricData items for one batch (pure: no I/O)."""
    items: list[dict[str, Any]] = []
    for (alias, version), counts in sorted(batch.counts.items()):
        base = {"Dimensions": dimensions(function, alias, version), "Timestamp": batch.at}
        if counts.invocations:
            items.append({**base, "MetricName": "Invocations", "Unit": "Count", "Value": counts.invocations})
            # zeros too, so a query for errors finds the series (and reads 0, not "no data")
            items.append({**base, "MetricName": "Errors", "Unit": "Count", "Value": counts.errors})
        if counts.invocations or counts.throttles:
            items.append({**base, "MetricName": "Throttles", "Unit": "Count", "Value": counts.throttles})
        if counts.timed:
            stats = {"SampleCount": float(counts.timed), "Sum": round(counts.duration_sum, 3),
                     "Minimum": round(counts.duration_min, 3), "Maximum": round(counts.duration_max, 3)}  # fmt: skip
            items.append({**base, "MetricName": "Duration", "Unit": "Milliseconds", "StatisticValues": stats})
    return items


def calls(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """MetricData split into the fewest put_metric_data calls AWS accepts."""
    return [items[i : i + MAX_ITEMS_PER_CALL] for i in range(0, len(items), MAX_ITEMS_PER_CALL)]


def recent(batches: Iterable[Batch], now: datetime.datetime, max_age_s: float = MAX_AGE_S) -> list[Batch]:
    """The batches young enough to still be worth sending."""
    oldest = now - datetime.timedelta(seconds=max_age_s)
    return [b for b in batches if b.at >= oldest]


def due(batches: Iterable[Batch], now: datetime.datetime, delay_s: float) -> tuple[list[Batch], list[Batch]]:
    """(the batches old enough to be published, the ones still held back) after `delay_s`."""
    cut = now - datetime.timedelta(seconds=delay_s)
    ready: list[Batch] = []
    held: list[Batch] = []
    for batch in batches:
        (ready if batch.at <= cut else held).append(batch)
    return ready, held


class Telemetry:
    """Thread-safe counts of the edge's invocations, flushed to CloudWatch."""

    def __init__(
        self, cloudwatch: Any, function: str, *, clock: Callable[[], float] = time.time, delay_s: float = 0.0
    ) -> None:
        self.cloudwatch, self.function, self.clock = cloudwatch, function, clock
        self.delay_s = delay_s  # how long after an interval its datapoints become visible
        self._lock = threading.Lock()
        self._current: dict[Key, Counts] = {}
        self._flush_lock = threading.Lock()  # one flush at a time keeps `_pending` consistent
        self._pending: list[Batch] = []

    def record(
        self, alias: str, version: str, *, duration_ms: float | None, error: bool, throttled: bool
    ) -> None:
        """Count one request that reached Lambda (a throttle is not an invocation)."""
        with self._lock:
            counts = self._current.get((alias, version))
            if counts is None:
                counts = self._current[(alias, version)] = Counts()
            if throttled:
                counts.throttles += 1
                return
            counts.invocations += 1
            counts.errors += error
            if duration_ms is not None:
                counts.add_duration(duration_ms)

    def flush(self) -> int:
        """Send everything due (at least `delay_s` old) and not yet sent; the number of
        MetricData items sent.

        On failure the data stays for the next flush (up to MAX_AGE_S past its due time) and
        the error propagates.
        """
        with self._flush_lock:
            with self._lock:
                current, self._current = self._current, {}
            now = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
            if current:
                self._pending.append(Batch(now, current))
            self._pending = recent(self._pending, now, MAX_AGE_S + self.delay_s)
            ready, held = due(self._pending, now, self.delay_s)
            items = [item for batch in ready for item in metric_data(self.function, batch)]
            for call in calls(items):
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=call)
            # A failure half-way through a split flush resends the first calls next time; a split
            # needs more than 1000 items, which a local run does not reach.
            self._pending = held
            return len(items)

    def run_forever(self, interval_s: float = 1.0) -> None:
        """Flush every interval_s, as Lambda's metrics arrive continuously."""
        while True:
            time.sleep(interval_s)
            try:
                self.flush()
            except Exception as exc:  # the emulator may be restarting; the data waits for the next flush
                print(
                    json.dumps(
                        {"ts": round(time.time(), 3), "event": "metrics_flush_failed", "error": str(exc)}
                    ),
                    file=sys.stderr,
                )
