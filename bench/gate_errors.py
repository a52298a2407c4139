"""How often does a gate's judge get it wrong? False fails on identical versions, false passes
on seeded regressions, for the old judge and the product's, side by side.

    python bench/gate_errors.py --record     # real local promotions -> bench/data/gate_latencies.json
    python bench/gate_errors.py              # simulate thousands of gates -> docs/performance.md

(1) `--record` runs real canary promotions of an identical model on the local environment
    (moto + local edge + Locust, as a user would), once on a quiet machine and once with one
    busy-loop process per core, and keeps every gate's per-version latencies and errors from
    the statistics files loadtests/locustfile.py writes (reports/local/<id>/*.stats.json).
(2) The simulation draws each gate's blue and green samples from those recordings, sized as
    the product runs a gate (`--requests` by duration_s, and on until green has answered
    `[load] min_green_requests`; blue gets the rest of the step's traffic), injects scheduler
    noise (a per-gate slowdown of both sides, and stalls that delay every request in a short
    window, of one side or both, as a busy machine does), seeds a regression in green or not,
    and asks each judge for a verdict. A/A: any fail is a false fail; A/B: any pass is a false
    pass. Rates carry 95 % Wilson intervals; the seed is fixed.
(3) Tables: the product's gates (the acceptance); fixed 2000-request gates (why gates are
    sized by green's requests); candidate decision rules for the comparison side by side (why
    compare.py's rule); the share of gates failed against a constant shift in multiples of
    the floor (the minimum detectable effect).

The old judge is kept here, verbatim in logic, as `old_judge` (orchestrator/gates/judge.py before
issue 25: absolute SLOs plus `green p95 > blue p95 x relative_p95_factor`). The new judge is
the product's: `orchestrator.gates.judge.judge_stats` on the raw samples, which calls
`orchestrator.gates.compare.compare`.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data" / "gate_latencies.json"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

KEEP_PER_CONDITION = 4000  # latencies kept per recorded condition: enough to resample, small in git
KEEP_PER_VERSION = 600  # and per version of each gate both versions answered


# ---------------------------------------------------------------------------------------------
# (1) Recording real local gates
# ---------------------------------------------------------------------------------------------


def _hog(stop_at: float) -> None:
    """Busy loop until stop_at: one core's worth of scheduler pressure."""
    x = 0
    while time.time() < stop_at:
        x = (x * 31 + 7) % 1000003


@contextmanager
def cpu_hog(processes: int, max_s: float) -> Iterator[None]:
    """`processes` busy-loop processes (ended on exit, or by themselves after max_s)."""
    procs = [
        multiprocessing.Process(target=_hog, args=(time.time() + max_s,), daemon=True)
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def _promote_once(root: Path, name: str, gate_s: int, users: int) -> list[dict[str, Any]]:
    """One promotion of an identical model (10, 25, 50, 75, 100 %); every step gate's stats file
    (the pre-traffic gate calls the candidate route, not the edge: left out)."""
    from _report import SAMPLE_MODEL, local_project

    from orchestrator.demo import model_version

    # No relative check and a generous budget: every step must run, whatever the noise, so
    # that the recording is not cut short by the very judge it is meant to measure.
    settings = (
        '[environments.local.traffic]\nschedule = "explicit"\nweights = [10, 25, 50, 75, 100]\nbake_s = 0\n'
        f"[environments.local.load]\nusers = {users}\nspawn_rate = {users}\nduration_s = {gate_s}\n"
        "min_green_requests = 0\n"  # gates of gate_s seconds, as recorded
        "[environments.local.slo]\nrelative_p95_factor = 0\np95_ms = 5000\np99_ms = 10000\n"
        "max_error_ratio = 0.5\nmin_rps = 0\n"
    )
    with local_project(root, name, settings) as cli:
        subprocess.run([*cli, "up", "--yes", "--env", "local"], check=True, capture_output=True)
        v2 = model_version(SAMPLE_MODEL, "2", root / "v2.tar.gz")
        out = subprocess.run(
            [*cli, "promote", "--env", "local", "--model", str(v2), "--json"], capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit(
                f"promotion failed (exit {out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}"
            )
        files = sorted((root / "reports" / "local").glob("*/step-*.stats.json"))
        return [json.loads(f.read_text()) for f in files]


def record(gate_s: int, users: int) -> dict[str, Any]:
    """Quiet and busy recordings of real local gates of an identical model."""
    conditions: dict[str, Any] = {}
    cores = os.cpu_count() or 1
    for condition, hogs in (("quiet", 0), ("busy", cores)):
        with tempfile.TemporaryDirectory() as tmp, cpu_hog(hogs, max_s=600):
            started = time.monotonic()
            gates = _promote_once(Path(tmp), f"rec{condition}", gate_s, users)
            took = time.monotonic() - started
        latencies: list[float] = []
        errors = answered = requests = 0
        per_gate = []
        for g in gates:
            versions = g.get("versions", {})
            n = sum(len(e.get("latencies_ms", [])) + int(e.get("errors", 0)) for e in versions.values())
            per_gate.append(n)
            for e in versions.values():
                latencies += [float(x) for x in e.get("latencies_ms", [])]
                errors += int(e.get("errors", 0))
                answered += len(e.get("latencies_ms", [])) + int(e.get("errors", 0))
            requests += n
        rng = random.Random(25)
        kept = rng.sample(latencies, min(KEEP_PER_CONDITION, len(latencies)))
        # Both versions of one gate: how far two identical versions drift apart in one run
        # (each has its own process behind the local edge, scheduled as the machine sees fit).
        pairs = [
            [
                [round(x, 2) for x in rng.sample(lat, min(KEEP_PER_VERSION, len(lat)))]
                for lat in (g["versions"][v]["latencies_ms"] for v in sorted(g["versions"]))
            ]
            for g in gates
            if len(g.get("versions", {})) == 2 and all(e.get("latencies_ms") for e in g["versions"].values())
        ]
        conditions[condition] = {
            "busy_loop_processes": hogs,
            "gates": len(gates),
            "requests_per_gate": per_gate,
            "gate_s": gate_s,
            "users": users,
            "recorded_latencies": len(latencies),
            "errors": errors,
            "answered": answered,
            "wall_s": round(took, 1),
            "latencies_ms": [round(x, 2) for x in kept],
            "pairs": pairs,
        }
        print(
            f"{condition}: {len(gates)} gates, {requests} requests, {errors} errors, {took:.0f} s", flush=True
        )
    return {
        "how": (
            "python bench/gate_errors.py --record: a promotion (explicit weights 10/25/50/75/100, "
            f"{users} Locust users x {gate_s} s per gate, bake 0) of an identical model on the local "
            "environment per condition; 'busy' with one busy-loop process per core. Latencies of "
            "successful requests: both versions of each step gate (pairs), and a pooled subset."
        ),
        "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": cores,
        "conditions": conditions,
    }


# ---------------------------------------------------------------------------------------------
# (2) The judges
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slo:
    """The gate's thresholds as the simulation judges them (the project's defaults)."""

    p95_ms: float = 250.0
    p99_ms: float = 500.0
    max_error_ratio: float = 0.01
    min_samples: int = 100
    relative_p95_factor: float = 1.5  # the old judge's relative check
    regression_floor_ms: float = 10.0  # the new judge's practical-significance floor...
    regression_share: float = 0.05  # ...max(floor, share x p95_ms) (SloSettings' defaults)
    alpha: float = 0.01

    @property
    def floor_ms(self) -> float:
        return max(self.regression_floor_ms, self.regression_share * self.p95_ms)


def nearest_rank(sorted_ms: Sequence[float], q: float) -> float:
    """q-th percentile, nearest rank, as orchestrator/gates/judge.py reports it; 0.0 when empty."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


def old_judge(
    blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
) -> str:
    """The OLD judge, a faithful copy of orchestrator/gate.judge before issue 25 (min_rps left
    out: the simulation has no clock). "pass", "fail" or "inconclusive"."""
    green_n = len(green_ms) + green_errors
    if green_n == 0 or green_n < slo.min_samples:
        return "inconclusive"
    green_sorted = sorted(green_ms)
    fail = False
    if green_sorted:  # percentiles exist only over successful requests
        fail |= nearest_rank(green_sorted, 95) > slo.p95_ms
        fail |= nearest_rank(green_sorted, 99) > slo.p99_ms
    fail |= green_errors / green_n > slo.max_error_ratio
    if slo.relative_p95_factor and len(blue_ms) >= slo.min_samples:
        fail |= nearest_rank(green_sorted, 95) > nearest_rank(sorted(blue_ms), 95) * slo.relative_p95_factor
    return "fail" if fail else "pass"


Judge = Callable[[list[float], int, list[float], int, Slo], str]


def slo_only_judge(
    blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
) -> str:
    """The absolute SLOs alone (the old judge without its relative check): what neither judge's
    comparison is responsible for."""
    return old_judge(blue_ms, blue_errors, green_ms, green_errors, replace(slo, relative_p95_factor=0.0))


def _settings(slo: Slo, **overrides: Any) -> Any:
    from orchestrator.config.settings import SloSettings

    fields: dict[str, Any] = {
        "p95_ms": slo.p95_ms, "p99_ms": slo.p99_ms, "max_error_ratio": slo.max_error_ratio, "min_rps": 0,
        "min_samples": slo.min_samples, "relative_p95_factor": slo.relative_p95_factor,
        "regression_floor_ms": slo.regression_floor_ms, "regression_share": slo.regression_share,
        "alpha": slo.alpha,
    }  # fmt: skip
    return SloSettings(**{**fields, **overrides})


def product_judge(
    blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
) -> str:
    """THE NEW JUDGE: orchestrator.gates.judge.judge_stats on the raw samples, as a gate calls it (it
    compares green with blue through orchestrator.gates.compare.compare)."""
    from orchestrator.gates import judge as gate

    stats = gate.LoadStats(30.0, {"1": blue_ms, "2": green_ms}, {"1": blue_errors, "2": green_errors})
    return str(gate.judge_stats(stats, "1", "2", _settings(slo), 1.0).verdict)


# ---- Candidate decision rules for the comparison (the floor vs power trade) -----------------
# Each takes compare()'s figures (p-value, p95 shift, its one-sided 95 % lower bound) and the
# floor, and says "regressed". The bench measures them side by side; compare.py holds the one
# chosen (its docstring says why).

Rule = Callable[[Any, float, float], bool]


def _bound(c: Any, level: float) -> float:
    """The p95 shift's one-sided `level` lower bound, from compare()'s figures (its bound is at
    compare.EFFECT_CONFIDENCE: the SE is recovered from it, so a rule's level is its own)."""
    from statistics import NormalDist

    from orchestrator.gates.compare import EFFECT_CONFIDENCE

    se = (c.effect_ms - c.effect_low_ms) / NormalDist().inv_cdf(EFFECT_CONFIDENCE)
    return float(c.effect_ms - NormalDist().inv_cdf(level) * se)


def bound_rule(level: float) -> Rule:
    """Regressed: p < alpha AND the shift's one-sided `level` lower bound > floor."""

    def rule(c: Any, floor: float, alpha: float) -> bool:
        return bool(c.p_value < alpha and _bound(c, level) > floor)

    return rule


def _rule_point(c: Any, floor: float, alpha: float) -> bool:
    return bool(c.p_value < alpha and c.effect_ms > floor)


def _rule_two_thresholds(c: Any, floor: float, alpha: float) -> bool:
    return bool(c.p_value < alpha and c.effect_ms > floor and _bound(c, 0.95) > floor / 2)


RULES: dict[str, tuple[str, Rule, float]] = {  # name: (what it says, rule, regression_share)
    "95 % bound > 25 ms": (
        "p < alpha AND the shift's one-sided 95 % lower bound > floor, share 0.1 (floor 25 ms): the previous rule",
        bound_rule(0.95), 0.1,
    ),
    "point > 25 ms": ("p < alpha AND the shift's point estimate > floor, share 0.1 (25 ms)", _rule_point, 0.1),
    "two thresholds 25 / 12.5 ms": (
        "p < alpha AND point estimate > floor (25 ms) AND 95 % lower bound > floor / 2 (12.5 ms)",
        _rule_two_thresholds, 0.1,
    ),
    "95 % bound > 12.5 ms": ("the previous rule with share 0.05 (floor 12.5 ms)", bound_rule(0.95), 0.05),
    "90 % bound > 12.5 ms": (
        "p < alpha AND the shift's one-sided 90 % lower bound > floor, share 0.05 (12.5 ms): the product's rule",
        bound_rule(0.90), 0.05,
    ),
}  # fmt: skip
PRODUCT_RULE = "90 % bound > 12.5 ms"  # compare.compare's rule with SloSettings' defaults (a test checks)


class _ComparisonCache:
    """compare() once per simulated gate, however many rules read it (the same list objects)."""

    def __init__(self) -> None:
        self.key: tuple[object, object] | None = None
        self.value: Any = None

    def get(self, blue_ms: list[float], green_ms: list[float], alpha: float) -> Any:
        if self.key is None or self.key[0] is not blue_ms or self.key[1] is not green_ms:
            from orchestrator.gates.compare import compare

            self.key, self.value = (blue_ms, green_ms), compare(blue_ms, green_ms, floor_ms=0.0, alpha=alpha)
        return self.value


_CACHE = _ComparisonCache()


def rule_judge(rule: Rule, share: float) -> Judge:
    """The product's judge with its comparison replaced by `rule`: judge_stats without the
    relative check (absolute SLOs, VOID, inconclusive, as the product) and then the rule."""
    from orchestrator.gates import judge as gate

    def judge(
        blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
    ) -> str:
        stats = gate.LoadStats(30.0, {"1": blue_ms, "2": green_ms}, {"1": blue_errors, "2": green_errors})
        verdict = str(gate.judge_stats(stats, "1", "2", _settings(slo, relative_p95_factor=0), 1.0).verdict)
        if verdict != "pass" or len(blue_ms) < slo.min_samples:
            return verdict
        c = _CACHE.get(blue_ms, green_ms, slo.alpha)
        if c.regressed is None:
            return verdict
        floor = max(slo.regression_floor_ms, share * slo.p95_ms)
        return "fail" if rule(c, floor, slo.alpha) else "pass"

    return judge


# ---------------------------------------------------------------------------------------------
# (3) Simulated gates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """Scheduler noise injected per gate, on top of what the recordings carry.

    slowdown_sigma: both sides slowed by exp(N(0, sigma)) (a busier or quieter machine for the
    whole gate). stall_p: chance of a stall in a gate; it lasts stall_window of the gate's time
    and delays each request inside by U(0, stall_ms); stall_one_side_p: chance it hits one side
    only (a version's own process descheduled), else both (the machine).
    """

    slowdown_sigma: float = 0.15
    stall_p: float = 0.3
    stall_window: tuple[float, float] = (0.02, 0.08)
    stall_ms: tuple[float, float] = (10.0, 40.0)
    stall_one_side_p: float = 0.5


NO_NOISE = Noise(slowdown_sigma=0.0, stall_p=0.0)


@dataclass(frozen=True)
class Scenario:
    """What green is, against blue. `regression` False: identical versions (A/A)."""

    name: str
    regression: bool
    model_ms: float = 0.0  # a model's own compute time, added to every recorded latency
    green_scale: float = 1.0  # green's latencies x this
    green_shift_ms: float = 0.0  # green's latencies + this (a constant shift: every quantile moves by it)
    tail_share: float = 0.0  # this share of green's requests...
    tail_scale: tuple[float, float] = (5.0, 10.0)  # ...x U(a, b)
    green_extra_errors: float = 0.0  # green fails this share of its requests on top of blue's rate
    condition: str | None = None  # only the gates recorded under this condition ("quiet", "busy")


@dataclass(frozen=True)
class Source:
    """One recorded gate: its two identical versions' latencies, and the machine's condition."""

    condition: str
    first: Any  # numpy arrays, ms
    second: Any


def _min_green_default() -> int:
    """LoadSettings.min_green_requests' default once it exists (the gate's sizing), else 1000."""
    from orchestrator.config.settings import LoadSettings

    return int(getattr(LoadSettings(), "min_green_requests", 1000))


@dataclass(frozen=True)
class Sizing:
    """How many requests a simulated gate sees: `requests` by duration_s, and on until green has
    answered `min_green` (the product's min_green_requests; 0: a fixed-length gate)."""

    requests: int
    min_green: int = 0

    def text(self, share: float) -> str:
        green = max(round(self.requests * share), self.min_green)
        return f"green ~{green}, blue ~{round(green / share * (1 - share))}"


@dataclass(frozen=True)
class Gate:
    blue_ms: list[float]
    blue_errors: int
    green_ms: list[float]
    green_errors: int


def simulate_gate(
    rng: Any, sources: Sequence[Source], error_rate: float, sizing: Sizing, share: float,
    scenario: Scenario, noise: Noise,
) -> Gate:  # fmt: skip
    """One gate: each request green with probability `share`, `sizing.requests` of them and on
    until green has sizing.min_green (as the product runs a gate); latencies resampled from one
    recorded gate's two versions, which of them plays blue drawn at random (identical models:
    the labels are arbitrary, and the drift between the two is the run's own noise)."""
    import numpy as np

    pick = [s for s in sources if scenario.condition in (None, s.condition)]
    src = pick[int(rng.integers(len(pick)))]
    blue_pool, green_pool = (src.first, src.second) if rng.random() < 0.5 else (src.second, src.first)
    slowdown = math.exp(rng.normal(0.0, noise.slowdown_sigma)) if noise.slowdown_sigma else 1.0
    green = rng.random(sizing.requests) < share
    while int(green.sum()) < sizing.min_green:  # the gate runs on until green has min_green
        missing = sizing.min_green - int(green.sum())
        green = np.concatenate([green, rng.random(int(missing / share * 1.2) + 16) < share])
        reached = int(np.searchsorted(np.cumsum(green), sizing.min_green)) + 1
        if reached <= len(green):
            green = green[: max(sizing.requests, reached)]
    n = len(green)
    ms = np.empty(n)
    ms[~green] = blue_pool[rng.integers(len(blue_pool), size=int((~green).sum()))]
    ms[green] = green_pool[rng.integers(len(green_pool), size=int(green.sum()))]
    ms += scenario.model_ms
    ms[green] = ms[green] * scenario.green_scale + scenario.green_shift_ms
    if scenario.tail_share:
        hit = green & (rng.random(n) < scenario.tail_share)
        ms[hit] *= rng.uniform(*scenario.tail_scale, size=int(hit.sum()))
    ms *= slowdown
    if noise.stall_p and rng.random() < noise.stall_p:
        width = rng.uniform(*noise.stall_window)
        start = rng.uniform(0.0, 1.0 - width)
        side = ("b", "g")[int(rng.integers(2))] if rng.random() < noise.stall_one_side_p else "*"
        stall_ms = rng.uniform(*noise.stall_ms)
        position = np.arange(n) / n
        hit = (position >= start) & (position < start + width)
        if side != "*":
            hit &= green if side == "g" else ~green
        ms[hit] += rng.uniform(0.0, stall_ms, size=int(hit.sum()))
    failed = rng.random(n) < np.where(green, error_rate + scenario.green_extra_errors, error_rate)
    return Gate(
        ms[~green & ~failed].tolist(),
        int((~green & failed).sum()),
        ms[green & ~failed].tolist(),
        int((green & failed).sum()),
    )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a rate k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """How often a judge got a scenario wrong: a fail (or void) on A/A, a pass on A/B."""

    wrong: int
    inconclusive: int
    gates: int

    @property
    def rate(self) -> float:
        return self.wrong / self.gates if self.gates else 0.0

    def text(self) -> str:
        low, high = wilson(self.wrong, self.gates)
        return f"{self.rate:.1%} [{low:.1%}, {high:.1%}]"


def wrong(verdict: str, scenario: Scenario) -> bool:
    """A false fail (identical versions judged fail or void) or a false pass (a regression passed)."""
    return verdict == "pass" if scenario.regression else verdict in ("fail", "void")


def run_scenario(
    judges: dict[str, Judge], scenario: Scenario, *, gates: int, seed: int, sources: Sequence[Source],
    error_rate: float, sizing: Sizing, share: float, noise: Noise, slo: Slo,
) -> dict[str, Rate]:  # fmt: skip
    """Every judge on the same `gates` simulated gates."""
    import numpy as np

    rng = np.random.default_rng(seed)
    counts = {name: [0, 0] for name in judges}
    for _ in range(gates):
        g = simulate_gate(rng, sources, error_rate, sizing, share, scenario, noise)
        for name, judge in judges.items():
            verdict = judge(g.blue_ms, g.blue_errors, g.green_ms, g.green_errors, slo)
            counts[name][0] += wrong(verdict, scenario)
            counts[name][1] += verdict == "inconclusive"
    return {name: Rate(w, i, gates) for name, (w, i) in counts.items()}


MODEL_MS = 60.0  # a model's compute time: a p95 near 70 ms, so +50 % clears the 25 ms floor

SCENARIOS = (
    Scenario("A/A, local latencies as recorded", regression=False),
    Scenario("A/A, busy recordings only", regression=False, condition="busy"),
    Scenario(f"A/A, + {MODEL_MS:g} ms model time", regression=False, model_ms=MODEL_MS),
    Scenario("+50 % latency (p95 x 1.5)", regression=True, model_ms=MODEL_MS, green_scale=1.5),
    Scenario("+100 % latency (x 2)", regression=True, model_ms=MODEL_MS, green_scale=2.0),
    Scenario("heavy tail (8 % of green x 5-10)", regression=True, model_ms=MODEL_MS, tail_share=0.08),
    Scenario("+2 % errors", regression=True, model_ms=MODEL_MS, green_extra_errors=0.02),
    Scenario("+3 % errors", regression=True, model_ms=MODEL_MS, green_extra_errors=0.03),
    Scenario("+100 % latency, local latencies as recorded", regression=True, green_scale=2.0),
)
SHARES = (0.10, 0.50)  # a canary step and a half step


def load_recordings(path: Path = DATA) -> tuple[list[Source], float, dict[str, Any]]:
    """The recorded gates (both versions' latencies; the pooled subset twice where a condition
    kept no pairs) and the recorded error rate."""
    import numpy as np

    data = json.loads(path.read_text())
    conditions = data["conditions"]
    sources: list[Source] = []
    for name, c in conditions.items():
        pairs = c.get("pairs") or [[c["latencies_ms"], c["latencies_ms"]]]
        sources += [Source(name, np.array(a, dtype=float), np.array(b, dtype=float)) for a, b in pairs]
    answered = sum(c["answered"] for c in conditions.values())
    errors = sum(c["errors"] for c in conditions.values())
    return sources, errors / answered if answered else 0.0, data


TARGET_FALSE_FAIL, TARGET_FALSE_PASS = 0.01, 0.05  # issue 25's acceptance, for the new judge


def target(scenario: Scenario) -> float:
    return TARGET_FALSE_PASS if scenario.regression else TARGET_FALSE_FAIL


def table(
    judges: dict[str, Judge], sources: Sequence[Source], error_rate: float, *, gates: int, sizing: Sizing,
    seed: int, noise: Noise, slo: Slo,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Every scenario at a 10 % and a 50 % step: the table's rows and the rows the new judge missed."""
    rows, missed = [], []
    for i, scenario in enumerate(SCENARIOS):
        for share in SHARES:
            rates = run_scenario(
                judges, scenario, gates=gates, seed=seed + 100 * i + int(share * 100), sources=sources,
                error_rate=error_rate, sizing=sizing, share=share, noise=noise, slo=slo,
            )  # fmt: skip
            ok = rates["new"].rate <= target(scenario)  # the point estimate; the interval is beside it
            if not ok:
                missed.append(f"{scenario.name} at {share:.0%} ({rates['new'].rate:.1%})")
            kind = "false pass" if scenario.regression else "false fail"
            rows.append(
                f"| {scenario.name} | {share:.0%} | {kind} | {rates['old'].text()} | {rates['slo'].text()} | "
                f"{rates['new'].text()} | {target(scenario):.0%}: {'met' if ok else 'MISSED'} |"
            )
            print(rows[-1], flush=True)
    return rows, missed


HEAD = """| scenario | green share | error | old judge | absolute SLOs alone | new judge | target (new) |
|---|---:|---|---:|---:|---:|---|"""


def rules_table(
    sources: Sequence[Source], error_rate: float, *, gates: int, sizing: Sizing, seed: int, noise: Noise,
    slo: Slo,
) -> tuple[list[str], dict[str, list[str]]]:  # fmt: skip
    """The candidate decision rules side by side on the same gates (as the product runs them):
    each row's rates, and per rule the rows it missed."""
    judges = {name: rule_judge(rule, share) for name, (_, rule, share) in RULES.items()}
    rows: list[str] = []
    missed: dict[str, list[str]] = {name: [] for name in RULES}
    for i, scenario in enumerate(SCENARIOS):
        for share in SHARES:
            rates = run_scenario(
                judges, scenario, gates=gates, seed=seed + 7 + 100 * i + int(share * 100), sources=sources,
                error_rate=error_rate, sizing=sizing, share=share, noise=noise, slo=slo,
            )  # fmt: skip
            cells = []
            for name, rate in rates.items():
                ok = rate.rate <= target(scenario)
                cells.append(f"{rate.rate:.1%}" if ok else f"**{rate.rate:.1%}**")
                if not ok:
                    missed[name].append(f"{scenario.name} at {share:.0%}")
            kind = "false pass" if scenario.regression else "false fail"
            rows.append(f"| {scenario.name} | {share:.0%} | {kind} | {' | '.join(cells)} |")
            print(rows[-1], flush=True)
    return rows, missed


POWER_MULTIPLES = (0.5, 1.0, 1.5, 2.0, 3.0)
POWER_RULES = ("95 % bound > 25 ms", "95 % bound > 12.5 ms", "90 % bound > 12.5 ms")  # columns, per step


def power_table(
    sources: Sequence[Source], error_rate: float, *, gates: int, sizing: Sizing, seed: int, noise: Noise,
    slo: Slo,
) -> list[str]:  # fmt: skip
    """How often a green slower by a constant k x floor fails the gate (as the product runs it,
    at a 10 % and a 50 % step), k in POWER_MULTIPLES: the minimum detectable effect of each rule
    in POWER_RULES (one of them the product's). A constant shift moves every quantile by the
    same ms whatever the model time, so the recorded latencies are used as they are."""
    floor = slo.floor_ms
    judges = {name: rule_judge(RULES[name][1], RULES[name][2]) for name in POWER_RULES}
    rows = []
    for k in POWER_MULTIPLES:
        cells = []
        for share in SHARES:
            scenario = Scenario(f"+{k:g} x floor", regression=True, green_shift_ms=k * floor)
            rates = run_scenario(
                judges, scenario, gates=gates, seed=seed + int(k * 10) + int(share * 100), sources=sources,
                error_rate=error_rate, sizing=sizing, share=share, noise=noise, slo=slo,
            )  # fmt: skip
            cells += [f"{1 - rates[name].rate:.1%}" for name in POWER_RULES]
        rows.append(f"| {k:g} x floor = {k * floor:g} ms | {' | '.join(cells)} |")
        print(rows[-1], flush=True)
    return rows


def simulate(
    gates: int, seed: int, requests: int, noise: Noise, fixed_gates: int, rule_gates: int, power_gates: int
) -> tuple[str, bool]:
    """The tables (as the product runs gates; fixed 2000-request gates; the candidate rules; the
    power line); the docs section and whether the new judge met the targets in the first."""
    sources, error_rate, data = load_recordings()
    judges: dict[str, Judge] = {"old": old_judge, "slo": slo_only_judge, "new": product_judge}
    slo = Slo()
    min_green = _min_green_default()
    product, fixed = Sizing(requests, min_green), Sizing(requests, 0)
    started = time.monotonic()
    rows, missed = table(
        judges, sources, error_rate, gates=gates, sizing=product, seed=seed, noise=noise, slo=slo
    )
    met = not missed
    fixed_text = rules_text = power_text = ""
    if fixed_gates:
        fixed_rows, fixed_missed = table(
            judges, sources, error_rate, gates=fixed_gates, sizing=fixed, seed=seed, noise=noise, slo=slo
        )
        fixed_outcome = "met" if not fixed_missed else "MISSED: " + "; ".join(fixed_missed)
        fixed_text = f"""

**Why gates are sized by green's requests**: the same with fixed-length gates of {requests} requests
(green ~{requests // 10} at a 10 % step, the gates before `min_green_requests`), {fixed_gates} gates per row.
Targets (new judge): **{fixed_outcome}**.

{HEAD}
{chr(10).join(fixed_rows)}"""
    if rule_gates:
        rule_rows, rule_missed = rules_table(
            sources, error_rate, gates=rule_gates, sizing=product, seed=seed, noise=noise, slo=slo
        )
        legend = "\n".join(
            f"  - *{name}*: {what}; missed: {'; '.join(rule_missed[name]) or 'none'}"
            for name, (what, _, _) in RULES.items()
        )
        rule_head = " | ".join(RULES)
        rules_text = f"""

**The decision rule (the floor vs power trade)**: candidate rules for the comparison, on the same
simulated gates as the product runs them ({rule_gates} per row, other seeds than the first table);
the product's absolute SLOs, VOID and inconclusive verdicts in every column. In bold: over the
target. The product uses the rule named in `orchestrator/gates/compare.py`'s docstring.
{legend}

| scenario | green share | error | {rule_head} |
|---|---:|---|{"---:|" * len(RULES)}
{chr(10).join(rule_rows)}"""
    if power_gates:
        power_rows = power_table(
            sources, error_rate, gates=power_gates, sizing=product, seed=seed, noise=noise, slo=slo
        )
        power_text = f"""

**Minimum detectable effect**: share of gates that FAIL a green slower than blue by a constant
(every request + k x the {slo.floor_ms:g} ms floor of the defaults), at a 10 % and a 50 % step as the product runs
gates ({power_gates} gates per cell), for the previous rule, the same with the smaller floor, and the product's
({PRODUCT_RULE}). Below the floor a fail is what the floor is there to prevent; above it, a pass
is a false pass. The shift is on top of the bench's noise: the drift between two identical
versions of one recorded gate and one-sided stalls move the measured shift too.

| green slower by | {" | ".join(f"{name} ({share:.0%})" for share in SHARES for name in POWER_RULES)} |
|---|{"---:|" * (len(SHARES) * len(POWER_RULES))}
{chr(10).join(power_rows)}"""
    took = time.monotonic() - started
    conditions = data["conditions"]
    recorded = "; ".join(
        f"{name} ({c['busy_loop_processes']} busy-loop processes): {c['recorded_latencies']} latencies "
        f"from {c['gates']} gates, p50 {nearest_rank(sorted(c['latencies_ms']), 50):.1f} ms, "
        f"p95 {nearest_rank(sorted(c['latencies_ms']), 95):.1f} ms, p99 {nearest_rank(sorted(c['latencies_ms']), 99):.1f} ms"
        for name, c in conditions.items()
    )
    p95_recorded = nearest_rank(sorted(x for c in conditions.values() for x in c["latencies_ms"]), 95)
    drift = sorted(
        max(nearest_rank(sorted(s.first), 95), nearest_rank(sorted(s.second), 95))
        / max(1e-9, min(nearest_rank(sorted(s.first), 95), nearest_rank(sorted(s.second), 95)))
        for s in sources
    )
    outcome = "met" if met else "MISSED: " + "; ".join(missed)
    body = f"""## Gate error rates (`bench/gate_errors.py`)

How often each judge is wrong: **false fail** = identical versions (A/A) judged fail (or void);
**false pass** = a seeded regression judged pass. 95 % Wilson intervals in brackets; inconclusive
verdicts (too few samples) count as neither.

**As the product runs gates** (`[load] min_green_requests = {min_green}`): a gate answers {requests} requests by
`duration_s` and runs on until green has answered {min_green} (at a 10 % step {product.text(0.10)}; at 50 %
{product.text(0.50)}). {gates} simulated gates per row (seed {seed}), green's share of the requests as at a
canary step (10 %) and a half step (50 %).

{HEAD}
{chr(10).join(rows)}{fixed_text}{rules_text}{power_text}

- Acceptance (issue 25), for the new judge: false fail on identical versions <= {TARGET_FALSE_FAIL:.0%},
  false pass on seeded regressions <= {TARGET_FALSE_PASS:.0%} (point estimates), in the first table (as the
  product runs gates): **{outcome}**.
- Not simulated: a sequential gate's early stop. Each simulated gate judges green at exactly its
  size; the product's sequential gate may stop at the first look past min_green_requests where
  the comparison is already clear (an early PASS), which is optional stopping on the comparison.
  Its effect on these false-pass rates is not measured here (expected small for shifts of 1.5x
  the floor and more, which the early PASS's upper-bound condition rules out).
- **Old judge**: `old_judge` in the bench, a faithful copy of orchestrator/gates/judge.py before issue 25:
  absolute SLOs (p95 {slo.p95_ms:g} ms, p99 {slo.p99_ms:g} ms, errors {slo.max_error_ratio:.0%}) plus
  `green p95 > blue p95 x {slo.relative_p95_factor:g}`.
- **Absolute SLOs alone** (no comparison with blue; the old judge with `relative_p95_factor = 0`):
  what either judge's absolute checks contribute by themselves. The errors rows are judged by
  the absolute error budget in every judge: only green's sample size helps them.
- **New judge**: `orchestrator.gates.judge.judge_stats` on the raw samples (it calls
  `orchestrator.gates.compare.compare`); the same absolute SLOs, VOID when blue fails the load, and
  green against blue with the floor max({slo.regression_floor_ms:g} ms, {slo.regression_share:g} x p95 budget) = {slo.floor_ms:g} ms
  at alpha {slo.alpha:g}.
- **Latencies** resampled from real local gates of an identical model ({data["how"]} Recorded
  {data["recorded"]} on {data["cores"]} cores shared with other work; {recorded}; error rate
  {error_rate:.3%}). Each simulated gate draws one recorded gate and takes blue's and green's
  latencies from its two versions (which one plays blue at random), so the drift between two
  identical versions in one run is in the data: their p95s differed by x{drift[0]:.2f} to
  x{drift[-1]:.2f} (the slower over the faster) across the {len(drift)} recorded gates.
- **Injected scheduler noise** per gate: both sides slowed by exp(N(0, {noise.slowdown_sigma:g})); with
  probability {noise.stall_p:g} a stall over {noise.stall_window[0]:.0%}-{noise.stall_window[1]:.0%} of the gate delays each
  request in it by U(0, {noise.stall_ms[0]:g}-{noise.stall_ms[1]:g} ms), on one side only half of the time.
- **Regressions** are seeded in green on top of a {MODEL_MS:g} ms model time (every latency + {MODEL_MS:g} ms:
  blue's p95 near {MODEL_MS + p95_recorded:.0f} ms, so +50 % is a shift of about {(MODEL_MS + p95_recorded) / 2:.0f} ms, beyond the
  {slo.floor_ms:g} ms floor); the last rows seed +100 % on the local latencies as recorded (p95 near
  {p95_recorded:.0f} ms: a shift of about {p95_recorded:.0f} ms, close to the floor).
- Run: `python bench/gate_errors.py` ({took:.0f} s here); `--gates N --requests N --fixed-gates N
  --rule-gates N --power-gates N` (0 leaves a table out); re-record with `--record` (two local
  promotions, about 6 minutes)."""  # fmt: skip
    return body, met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--record", action="store_true", help="record real local gates first")
    parser.add_argument("--gate-s", type=int, default=12, help="seconds per recorded gate")
    parser.add_argument("--users", type=int, default=10, help="Locust users per recorded gate")
    parser.add_argument(
        "--gates", type=int, default=2000, help="simulated gates per row (as the product runs)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests a gate answers by duration_s")
    parser.add_argument(
        "--fixed-gates", type=int, default=500, help="gates per row, fixed-length table (0: none)"
    )
    parser.add_argument(
        "--rule-gates", type=int, default=1000, help="gates per row, candidate rules (0: none)"
    )
    parser.add_argument("--power-gates", type=int, default=500, help="gates per cell, power table (0: none)")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md")
    args = parser.parse_args(argv)
    if args.record:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(json.dumps(record(args.gate_s, args.users), separators=(",", ":")) + "\n")
        print(f"wrote {DATA.relative_to(REPO)}")
    body, met = simulate(
        args.gates, args.seed, args.requests, Noise(), args.fixed_gates, args.rule_gates, args.power_gates
    )
    if not args.no_docs:
        from _report import write_section

        write_section("gate-errors", body)
    print(body)
    return 0 if met else 1  # the first table: the product's gates


if __name__ == "__main__":
    raise SystemExit(main())
