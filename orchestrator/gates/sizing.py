"""How long a gate's load runs: sized by green's requests, not only by seconds.

A gate's error rates depend on how many of green's requests it judges (bench/gate_errors.py,
docs/performance.md "Gate error rates": with ~200 of green's requests (a 2000-request gate at
a 10 % canary step) +2 % errors pass 16 % of gates, +100 % on local latencies 27 %, and
identical versions fail 1.6 %; with about 1000 every target is met). So a gate's load runs at least `load.duration_s` and on until green
has answered `load.min_green_requests`, never past `load.max_duration_s` (Locust's
--run-time then). A gate that reaches max_duration_s short of requests is judged on what it
has, and says so (`shortfall`): never a silent pass.

Green's requests are what the gate charges to green (sequential.Counts: its answers, its
failures, unattributed failures and requests in flight past the p99 budget), pooled with an
extension's first attempt; seconds are the current attempt's, so an extension runs at least
duration_s of its own, as before.

Pure: counts in, decisions and texts out.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config.settings import LoadSettings


@dataclass(frozen=True)
class Sizing:
    """A gate's bounds: at least `duration_s`, on until `min_green_requests`, at most `max_duration_s`."""

    duration_s: float
    min_green_requests: int = 0
    max_duration_s: float = 0.0  # below duration_s (e.g. 0): duration_s is the most

    @staticmethod
    def of(load: LoadSettings) -> Sizing:
        return Sizing(load.duration_s, load.min_green_requests, load.max_duration_s)

    @property
    def run_time_s(self) -> float:
        """Locust's --run-time: max_duration_s when green's requests may hold the load on,
        else duration_s (nothing can: the load ends as it always did)."""
        if self.min_green_requests <= 0:
            return self.duration_s
        return max(self.duration_s, self.max_duration_s)

    def enough(self, green_requests: int, elapsed_s: float) -> bool:
        """May the load end now, as far as its size goes? (A sequential gate may end sooner.)

        Never with min_green_requests = 0: Locust's own --run-time (duration_s) ends those
        gates, exactly as before gates were sized (a SIGUSR1 while Locust is already stopping
        its users at --run-time raced its shutdown, and made every such gate look stopped early)."""
        if self.min_green_requests <= 0:
            return False
        return elapsed_s >= self.duration_s and green_requests >= self.min_green_requests

    def short(self, green_requests: int) -> bool:
        """Fewer of green's requests than the gate's error rates need."""
        return green_requests < self.min_green_requests

    def shortfall(self, green_requests: int) -> str | None:
        """The caveat of a gate that ended with too few of green's requests, or None."""
        if not self.short(green_requests):
            return None
        return (
            f"green answered {green_requests} of the {self.min_green_requests} requests the gate's "
            "error rates need; raise load.users or load.max_duration_s"
        )

    def ended(self, green_requests: int, elapsed_s: float, first_due: int | None) -> str:
        """Why the load ended when its size ended it (no early decision): `first_due` is green's
        requests at the first look past duration_s (None: no look got there)."""
        if first_due is not None and first_due >= self.min_green_requests:
            return "ran its full duration_s"
        return (
            f"ran on past duration_s to {elapsed_s:.1f}s until green had {green_requests} of "
            f"min_green_requests={self.min_green_requests}"
        )


def describe(load: LoadSettings) -> str:
    """A gate's load in words (the gate's progress line, the dry run)."""
    text = f"{load.users} users x {load.duration_s:g}s"
    if load.min_green_requests > 0:
        text += (
            f", on until green answered {load.min_green_requests} requests (at most {load.max_duration_s:g}s)"
        )
    if load.sequential:
        text += f"; sequential (may end early after {load.min_duration_s:g}s)"
    return text
