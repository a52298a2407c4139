"""Sequential gates: decide pass / fail / continue from a live snapshot, valid at every look.

A gate looks at Locust's statistics every second. Judging each look with the fixed-sample
rule would fail a healthy green far more often than its error rate says (each look is
another chance for noise to cross the line), so each absolute SLO is a binomial statement
tested with an always-valid mixture likelihood ratio (a mixture SPRT):

- errors: the share of green's requests that failed vs `max_error_ratio`;
- p95: the share of green's successful requests slower than `p95_ms` vs 5 % (a p95 at or
  under the budget means at most 5 % of the requests above it), p99 the same vs 1 %.

For one SLO with bound p0 and k "bad" requests out of n, the statistic is
    M_n = sum_j w_j * (q_j / p0)^k * ((1 - q_j) / (1 - p0))^(n - k)
over a few alternatives q_j with weights summing to 1. With every q_j above p0 it is a
nonnegative supermartingale whenever the true share is at most p0 (the SLO holds), so by
Ville's inequality it ever reaches 1/alpha with probability at most alpha, however often
and however long one looks: that is an early FAIL. With every q_j below p0 the same holds
when the share is at least p0 (the SLO is broken): reaching 1/beta is an early PASS.

Early FAIL: any SLO clearly violated, each tested at alpha / 3 (Bonferroni over the three,
so a green within every SLO is failed early with probability at most alpha). Early PASS:
every SLO clearly met at beta (an intersection: no correction needed). Both only after
`min_duration_s` and `min_samples` of green's requests, so the fixed judge that then reads
the same data has enough to judge.

The relative check (green vs blue) is not sequential, but it holds an early PASS back:
stopping early also shortens the sample the comparison is judged on, and a comparison on
few of green's requests misses real regressions (bench/gate_errors.py: at ~200 green requests
+2 % errors passed 16 % of gates and +100 % on local latencies 27 %; at ~1000, at most 2 %). So with blue in the gate and the relative
check on, a look passes early only when the comparison on the data so far is clear: not
regressed, and the p95 shift's upper bound below the floor (`compare.py`). Otherwise the
load goes on (to `duration_s`, or past it while green's requests are short). That only ever
delays a PASS.

An early PASS also waits until green has answered `load.min_green_requests` (sizing.py): the
comparison's error rates depend on green's n, and the fixed judge reads the same data. An
early FAIL does not wait: the always-valid test holds at any n. Without an early decision the
load ends when its size says so (`Decision.ENOUGH`): duration_s and min_green_requests, or
Locust's --run-time at max_duration_s. The same Monitor sizes fixed-length gates (no looks
decide there; only their size ends them).

The gate's verdict is then `gate.judge_stats` on everything measured. An early FAIL stands
(an SLO was clearly broken at alpha under continuous looks: the driver never lets the judge
on the truncated data promote over it); where the judge fails an early PASS, the judge
wins. The report says which.

Snapshots leave out requests still in flight below the p99 budget, and stalls make
latencies correlated (the test assumes independent requests): both are why the fixed judge,
on everything measured, still decides a PASS.

Pure: snapshots in, decisions out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from orchestrator.config.settings import SloSettings
from orchestrator.gates.judge import LoadStats, regression_floor_ms
from orchestrator.gates.sizing import Sizing

# The false-PASS bound of an early pass (per SLO): a green whose true exceedance share sits at
# the budget is passed early with at most this probability. The fixed judge on a point
# estimate passes such a green about half the time, so this is far stricter than today.
BETA = 0.05
# The false-FAIL bound over all three SLOs when slo.alpha is not configured.
DEFAULT_ALPHA = 0.01
# Alternatives of the mixtures, as multiples of the bound p0 (equal weights).
PASS_ALTERNATIVES = (0.0, 0.25, 0.5, 0.75)
FAIL_ALTERNATIVES = (1.5, 2.0, 4.0, 10.0, 30.0)
FAIL_CAP = 0.95  # an alternative share above which nothing is gained


class Decision(StrEnum):
    """What a look decides."""

    PASS = "pass"
    FAIL = "fail"
    CONTINUE = "continue"
    # No early decision, but the load has its size (sizing.py: duration_s and green's
    # min_green_requests): it ends, and the judge decides.
    ENOUGH = "enough"


@dataclass(frozen=True)
class Check:
    """One SLO at one look: k bad of n against bound p0, and both log-statistics."""

    name: str  # "errors" | "p95" | "p99"
    bad: int
    total: int
    bound: float
    log_pass: float  # log M for "the share is below the bound"; >= log(1/beta) passes
    log_fail: float  # log M for "the share is above the bound"; >= log(3/alpha) fails


@dataclass(frozen=True)
class Look:
    """One look: when, how many of green's requests, the checks, and the decision."""

    elapsed_s: float
    samples: int
    decision: Decision
    checks: list[Check]
    reason: str
    pass_at: float  # the boundaries, in the checks' log units
    fail_at: float

    def to_dict(self) -> dict[str, Any]:
        """For reports (compact: the statistics rounded)."""
        return {
            "elapsed_s": round(self.elapsed_s, 2),
            "samples": self.samples,
            "decision": str(self.decision),
            "reason": self.reason,
            "pass_at": round(self.pass_at, 3),
            "fail_at": round(self.fail_at, 3),
            "checks": [
                {**asdict(c), "log_pass": _finite(c.log_pass), "log_fail": _finite(c.log_fail)}
                for c in self.checks
            ],
        }


def _finite(value: float) -> float:
    """JSON has no infinity: a certain outcome (see `check`) is written as +-999."""
    return round(max(-999.0, min(999.0, value)), 3)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _log_mixture(bad: int, total: int, bound: float, alternatives: list[float]) -> float:
    """log sum_j (1/J) (q_j/p0)^bad ((1-q_j)/(1-p0))^(total-bad); -inf when no q fits."""
    good = total - bad
    terms = []
    for q in alternatives:
        if bad and q <= 0:
            terms.append(-math.inf)  # the alternative "never bad" is refuted by one bad request
            continue
        term = (bad * math.log(q / bound) if bad else 0.0) + (
            good * math.log((1 - q) / (1 - bound)) if good else 0.0
        )
        terms.append(term - math.log(len(alternatives)))
    return _logsumexp(terms) if terms else -math.inf


def check(name: str, bad: int, total: int, bound: float) -> Check:
    """Both statistics of one binomial SLO (k bad of n requests vs share `bound`)."""
    if bound <= 0:
        # Nothing may be bad: one bad request is a certain violation, and no number of good
        # ones proves the share is exactly 0 (never an early pass on this SLO).
        return Check(name, bad, total, bound, -math.inf, math.inf if bad else -math.inf)
    if bound >= 1:
        return Check(name, bad, total, bound, math.inf, -math.inf)  # nothing can violate it
    passing = [bound * m for m in PASS_ALTERNATIVES]
    failing = sorted(
        {min(FAIL_CAP, bound * m) for m in FAIL_ALTERNATIVES if bound * m < 1 and bound * m > bound}
    )
    return Check(
        name,
        bad,
        total,
        bound,
        _log_mixture(bad, total, bound, passing),
        _log_mixture(bad, total, bound, failing) if failing else -math.inf,
    )


@dataclass(frozen=True)
class Counts:
    """Green's numbers at one look: what the three SLOs read."""

    requests: int  # answered or charged to green (successes + errors)
    errors: int  # green's failures plus unattributed and in-flight-past-budget ones
    successes: int
    over_p95: int  # successes slower than p95_ms
    over_p99: int

    @staticmethod
    def of(stats: LoadStats, green: str, slo: SloSettings) -> Counts:
        """Green's counts in a snapshot, with the gate's charging rules (gate.judge_stats)."""
        ok = stats.latencies_ms.get(green, [])
        errors = stats.errors.get(green, 0) + stats.unattributed_failures + stats.in_flight
        return Counts(
            len(ok) + errors,
            errors,
            len(ok),
            sum(1 for x in ok if x > slo.p95_ms),
            sum(1 for x in ok if x > slo.p99_ms),
        )


@dataclass(frozen=True)
class Policy:
    """When a look may stop the gate, and at which error rates."""

    min_duration_s: float = 5.0
    alpha: float = DEFAULT_ALPHA  # false early FAIL of a green within every SLO (all three together)
    beta: float = BETA  # false early PASS of a green at an SLO's bound (each SLO)


def decide(counts: Counts, elapsed_s: float, slo: SloSettings, policy: Policy) -> Look:
    """Pass, fail or continue on green's counts so far (see the module's docstring)."""
    checks = [
        check("errors", counts.errors, counts.requests, slo.max_error_ratio),
        check("p95", counts.over_p95, counts.successes, 0.05),
        check("p99", counts.over_p99, counts.successes, 0.01),
    ]
    pass_at, fail_at = math.log(1 / policy.beta), math.log(len(checks) / policy.alpha)

    def look(decision: Decision, reason: str) -> Look:
        return Look(elapsed_s, counts.requests, decision, checks, reason, pass_at, fail_at)

    if elapsed_s < policy.min_duration_s:
        return look(Decision.CONTINUE, f"before min_duration_s={policy.min_duration_s:g}")
    if counts.requests < slo.min_samples:
        return look(Decision.CONTINUE, f"{counts.requests} of min_samples={slo.min_samples} requests")
    broken = [c for c in checks if c.log_fail >= fail_at]
    if broken:
        return look(Decision.FAIL, "; ".join(_said(c, "above") for c in broken))
    if all(c.log_pass >= pass_at for c in checks):
        return look(Decision.PASS, "; ".join(_said(c, "below") for c in checks))
    return look(Decision.CONTINUE, "not yet clear")


def _held_for_blue(look: Look, stats: LoadStats, blue: str, green: str, slo: SloSettings) -> Look:
    """An early PASS only when green vs blue is clearly fine on the data so far (see the
    module's docstring); else the look continues, saying why."""
    from orchestrator.gates.compare import compare

    floor = regression_floor_ms(slo)
    found = compare(
        stats.latencies_ms.get(blue, []), stats.latencies_ms.get(green, []), floor_ms=floor, alpha=slo.alpha
    )
    if found.regressed is False and found.effect_high_ms < floor:
        return replace(look, reason=f"{look.reason}; green vs blue: p95 shift below {floor:g} ms")
    return replace(
        look,
        decision=Decision.CONTINUE,
        reason=f"SLOs clearly met, green vs blue not yet clear ({found.describe()})",
    )


def _said(c: Check, side: str) -> str:
    what = {"errors": "failed", "p95": "over p95_ms", "p99": "over p99_ms"}[c.name]
    return f"{c.name}: {c.bad} of {c.total} {what}, clearly {side} {c.bound:.2%}"


@dataclass
class Monitor:
    """The looks of one gate: fed each live snapshot, says when to stop (the driver's hook).

    `prior` is what an earlier attempt of the same gate measured: an extension pools with it
    (the statistic is a running product over requests, so pooling keeps it valid). `sizing`
    (None: none) holds a PASS back until green has its min_green_requests and ends the load
    once it has its size; `sequential` False: a fixed-length gate, whose looks only size it.
    """

    green: str
    slo: SloSettings
    policy: Policy
    prior: LoadStats | None = None
    looks: list[Look] = field(default_factory=list)
    blue: str = ""  # "" (pre-traffic: green alone): no comparison holds a PASS back
    sizing: Sizing | None = None
    sequential: bool = True
    first_due: int | None = None  # green's requests at the first look past duration_s

    def feed(self, snapshot: dict[str, Any]) -> Look:
        """One look at a snapshot (loadtests/locustfile.py's live file)."""
        stats = LoadStats.read(snapshot)
        if self.prior is not None:
            stats = self.prior.pooled(stats)
        attempt_s = float(snapshot.get("elapsed_s") or snapshot.get("duration_s") or 0.0)
        elapsed = attempt_s + (self.prior.duration_s if self.prior is not None else 0.0)
        counts = Counts.of(stats, self.green, self.slo)
        if self.sequential:
            look = decide(counts, elapsed, self.slo, self.policy)
        else:
            look = Look(elapsed, counts.requests, Decision.CONTINUE, [], "fixed-length gate", 0.0, 0.0)
        sizing = self.sizing
        if look.decision == Decision.PASS and sizing is not None and sizing.short(counts.requests):
            look = replace(
                look,
                decision=Decision.CONTINUE,
                reason=f"SLOs clearly met, green has {counts.requests} of "
                f"min_green_requests={sizing.min_green_requests}",
            )
        if look.decision == Decision.PASS and self.blue and self.slo.relative_p95_factor:
            look = _held_for_blue(look, stats, self.blue, self.green, self.slo)
        if sizing is not None and attempt_s >= sizing.duration_s and self.first_due is None:
            self.first_due = counts.requests
        if (
            look.decision == Decision.CONTINUE
            and sizing is not None
            and sizing.enough(counts.requests, attempt_s)
        ):
            look = replace(
                look,
                decision=Decision.ENOUGH,
                reason=sizing.ended(counts.requests, attempt_s, self.first_due),
            )
        self.looks.append(look)
        return look

    def stops(self, snapshot: dict[str, Any]) -> bool:
        """loadrun's `on_snapshot`: look, and say whether the load may end now."""
        return self.feed(snapshot).decision != Decision.CONTINUE

    @property
    def ended(self) -> Look | None:
        """The look that ended the load (an early decision or its size), if one did."""
        last = self.looks[-1] if self.looks else None
        return last if last is not None and last.decision != Decision.CONTINUE else None

    @property
    def decided(self) -> Look | None:
        """The look that decided early (pass or fail), if one did."""
        last = self.ended
        return last if last is not None and last.decision in (Decision.PASS, Decision.FAIL) else None

    def evidence(self, keep: int = 120) -> list[dict[str, Any]]:
        """The looks for the report, thinned evenly to at most `keep` (the last always kept)."""
        looks = self.looks
        if len(looks) > keep:
            step = len(looks) / keep
            looks = [looks[int(i * step)] for i in range(keep - 1)] + [looks[-1]]
        return [lk.to_dict() for lk in looks]


def samples_to_pass(slo: SloSettings, policy: Policy) -> int | None:
    """Green's requests an early PASS needs when none of them is bad (a healthy green).

    None when no number suffices (an SLO bound of 0). The least n with every check's
    pass statistic at the boundary, at least min_samples.
    """
    bounds = (slo.max_error_ratio, 0.05, 0.01)
    if min(bounds) <= 0:
        return None
    need = math.log(1 / policy.beta) + math.log(len(PASS_ALTERNATIVES))
    # With k = 0 the q = 0 alternative dominates: (1 / (1 - p0))^n / J >= 1 / beta.
    worst = max(math.ceil(need / -math.log1p(-p0)) for p0 in bounds)
    n = worst
    while n > 1 and all(check("x", 0, n - 1, p0).log_pass >= math.log(1 / policy.beta) for p0 in bounds):
        n -= 1
    return max(n, slo.min_samples)
