"""How often does a gate's judge get it wrong? False fails on identical versions, false passes
on seeded regressions, for the old judge and the new one, side by side.

    python bench/gate_errors.py --record     # real local promotions -> bench/data/gate_latencies.json
    python bench/gate_errors.py              # simulate thousands of gates -> docs/performance.md
    python bench/gate_errors.py --judge standin   # the bench's own stand-in for orchestrator/compare.py

(1) `--record` runs real canary promotions of an identical model on the local environment
    (moto + local edge + Locust, as a user would), once on a quiet machine and once with one
    busy-loop process per core, and keeps every gate's per-version latencies and errors from
    the statistics files loadtests/locustfile.py writes (reports/local/<id>/*.stats.json).
(2) The simulation draws each gate's blue and green samples from those recordings (sizes as
    a canary step sees them: 10 % and 50 % of a gate's requests), injects scheduler noise
    (a per-gate slowdown of both sides, and stalls that delay every request in a short
    window, of one side or both, as a busy machine does), seeds a regression in green or
    not, and asks each judge for a verdict. A/A: any fail is a false fail; A/B: any pass is
    a false pass. Rates carry 95 % Wilson intervals; the seed is fixed.

The old judge is kept here, verbatim in logic, as `old_judge` (orchestrator/gate.py before
issue 25: absolute SLOs plus `green p95 > blue p95 x relative_p95_factor`). The new judge is
`orchestrator.gate.judge_stats` on the raw samples, which uses `orchestrator.compare.compare`;
until that module exists (`--judge auto` falls back), `standin_compare` below plays it.
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
    regression_share: float = 0.1  # ...max(floor, share x p95_ms)
    alpha: float = 0.01

    @property
    def floor_ms(self) -> float:
        return max(self.regression_floor_ms, self.regression_share * self.p95_ms)


def nearest_rank(sorted_ms: Sequence[float], q: float) -> float:
    """q-th percentile, nearest rank, as orchestrator/gate.py reports it; 0.0 when empty."""
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


def standin_compare(
    blue_ms: Sequence[float], green_ms: Sequence[float], *, floor_ms: float, alpha: float
) -> bool | None:
    """STAND-IN for orchestrator.compare.compare (`--judge standin`, or `auto` before it exists):
    regressed when the p95 shift's one-sided (1 - alpha) lower bound exceeds floor_ms, the
    bound from the order statistics' distribution-free standard error of each p95. Only
    `regressed` is returned: that is all the bench reads."""
    blue, green = sorted(blue_ms), sorted(green_ms)
    if len(blue) < 30 or len(green) < 30:
        return None

    def se(xs: list[float]) -> float:
        n, p = len(xs), 0.95
        half = 1.96 * math.sqrt(n * p * (1 - p))
        lo, hi = max(0, math.floor(n * p - half) - 1), min(n - 1, math.ceil(n * p + half) - 1)
        return (xs[hi] - xs[lo]) / (2 * 1.96)

    z = _normal_quantile(1 - alpha)
    effect = nearest_rank(green, 95) - nearest_rank(blue, 95)
    return effect - z * math.hypot(se(blue), se(green)) > floor_ms


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def standin_new_judge(
    blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
) -> str:
    """The new judge's rules as the issue fixes them (absolute SLOs as before; VOID when blue
    fails the gate's own load; the relative check by comparison with a floor), on the stand-in."""
    blue_n = len(blue_ms) + blue_errors
    if blue_n >= slo.min_samples and blue_errors / blue_n > slo.max_error_ratio:
        return "void"
    green_n = len(green_ms) + green_errors
    if green_n == 0 or green_n < slo.min_samples:
        return "inconclusive"
    green_sorted = sorted(green_ms)
    fail = False
    if green_sorted:
        fail |= nearest_rank(green_sorted, 95) > slo.p95_ms
        fail |= nearest_rank(green_sorted, 99) > slo.p99_ms
    fail |= green_errors / green_n > slo.max_error_ratio
    if len(blue_ms) >= slo.min_samples:
        fail |= bool(standin_compare(blue_ms, green_ms, floor_ms=slo.floor_ms, alpha=slo.alpha))
    return "fail" if fail else "pass"


Judge = Callable[[list[float], int, list[float], int, Slo], str]


def slo_only_judge(
    blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
) -> str:
    """The absolute SLOs alone (the old judge without its relative check): what neither judge's
    comparison is responsible for."""
    return old_judge(blue_ms, blue_errors, green_ms, green_errors, replace(slo, relative_p95_factor=0.0))


def real_new_judge() -> Judge | None:
    """orchestrator.gate.judge_stats on the raw samples (it calls orchestrator.compare.compare),
    or None while that module is not merged."""
    try:
        import orchestrator.compare  # noqa: F401  (only to learn whether the new judge exists)
    except ImportError:
        return None
    from orchestrator import gate
    from orchestrator.settings import SloSettings

    def judge(
        blue_ms: list[float], blue_errors: int, green_ms: list[float], green_errors: int, slo: Slo
    ) -> str:
        fields: dict[str, Any] = {  # the new fields exist once the judge's branch is merged
            "p95_ms": slo.p95_ms, "p99_ms": slo.p99_ms, "max_error_ratio": slo.max_error_ratio, "min_rps": 0,
            "min_samples": slo.min_samples, "relative_p95_factor": slo.relative_p95_factor,
            "regression_floor_ms": slo.regression_floor_ms, "regression_share": slo.regression_share,
            "alpha": slo.alpha,
        }  # fmt: skip
        settings = SloSettings(**fields)
        stats = gate.LoadStats(30.0, {"1": blue_ms, "2": green_ms}, {"1": blue_errors, "2": green_errors})
        return str(gate.judge_stats(stats, "1", "2", settings, 1.0).verdict)

    return judge


def new_judge(which: str) -> tuple[Judge, str]:
    """The new judge to measure and its name: "real", "standin" or "auto" (real if merged)."""
    if which in ("real", "auto"):
        real = real_new_judge()
        if real is not None:
            return real, "`orchestrator.gate.judge_stats` (it calls `orchestrator.compare.compare`)"
        if which == "real":
            raise SystemExit(
                "orchestrator/compare.py is not there: merge the judge's branch, or --judge standin"
            )
    return standin_new_judge, "STAND-IN (bench/gate_errors.py standin_compare)"


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
    tail_share: float = 0.0  # this share of green's requests...
    tail_scale: tuple[float, float] = (5.0, 10.0)  # ...x U(a, b)
    green_extra_errors: float = 0.0  # green fails this share of its requests on top of blue's rate


Source = tuple[Sequence[float], Sequence[float]]  # two identical versions' latencies from one gate


@dataclass(frozen=True)
class Gate:
    blue_ms: list[float]
    blue_errors: int
    green_ms: list[float]
    green_errors: int


def simulate_gate(
    rng: random.Random, sources: Sequence[Source], error_rate: float, requests: int, share: float,
    scenario: Scenario, noise: Noise,
) -> Gate:  # fmt: skip
    """One gate: `requests` requests, each green with probability `share`, latencies resampled
    from one recorded gate's two versions, which of them plays blue drawn at random (identical
    models: the labels are arbitrary, and the drift between the two is the run's own noise)."""
    first, second = sources[rng.randrange(len(sources))]
    pools = {"b": first, "g": second} if rng.random() < 0.5 else {"b": second, "g": first}
    slowdown = math.exp(rng.gauss(0.0, noise.slowdown_sigma)) if noise.slowdown_sigma else 1.0
    stall: tuple[float, float, float, str] | None = None
    if noise.stall_p and rng.random() < noise.stall_p:
        width = rng.uniform(*noise.stall_window)
        start = rng.uniform(0.0, 1.0 - width)
        side = rng.choice("bg") if rng.random() < noise.stall_one_side_p else "*"
        stall = (start, start + width, rng.uniform(*noise.stall_ms), side)
    out: dict[str, list[float]] = {"b": [], "g": []}
    errors = {"b": 0, "g": 0}
    for i in range(requests):
        side = "g" if rng.random() < share else "b"
        fail_p = error_rate + (scenario.green_extra_errors if side == "g" else 0.0)
        if fail_p and rng.random() < fail_p:
            errors[side] += 1
            continue
        pool = pools[side]
        ms = pool[rng.randrange(len(pool))] + scenario.model_ms
        if side == "g":
            ms *= scenario.green_scale
            if scenario.tail_share and rng.random() < scenario.tail_share:
                ms *= rng.uniform(*scenario.tail_scale)
        ms *= slowdown
        if stall and stall[0] <= i / requests < stall[1] and stall[3] in ("*", side):
            ms += rng.uniform(0.0, stall[2])
        out[side].append(ms)
    return Gate(out["b"], errors["b"], out["g"], errors["g"])


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
    error_rate: float, requests: int, share: float, noise: Noise, slo: Slo,
) -> dict[str, Rate]:  # fmt: skip
    """Every judge on the same `gates` simulated gates."""
    rng = random.Random(seed)
    counts = {name: [0, 0] for name in judges}
    for _ in range(gates):
        g = simulate_gate(rng, sources, error_rate, requests, share, scenario, noise)
        for name, judge in judges.items():
            verdict = judge(g.blue_ms, g.blue_errors, g.green_ms, g.green_errors, slo)
            counts[name][0] += wrong(verdict, scenario)
            counts[name][1] += verdict == "inconclusive"
    return {name: Rate(w, i, gates) for name, (w, i) in counts.items()}


MODEL_MS = 60.0  # a model's compute time: a p95 near 70 ms, so +50 % clears the 25 ms floor

SCENARIOS = (
    Scenario("A/A, local latencies as recorded", regression=False),
    Scenario(f"A/A, + {MODEL_MS:g} ms model time", regression=False, model_ms=MODEL_MS),
    Scenario("+50 % latency (p95 x 1.5)", regression=True, model_ms=MODEL_MS, green_scale=1.5),
    Scenario("+100 % latency (x 2)", regression=True, model_ms=MODEL_MS, green_scale=2.0),
    Scenario("heavy tail (8 % of green x 5-10)", regression=True, model_ms=MODEL_MS, tail_share=0.08),
    Scenario("+2 % errors", regression=True, model_ms=MODEL_MS, green_extra_errors=0.02),
    Scenario("+3 % errors", regression=True, model_ms=MODEL_MS, green_extra_errors=0.03),
    Scenario("+100 % latency, local latencies as recorded", regression=True, green_scale=2.0),
)


def load_recordings(path: Path = DATA) -> tuple[list[Source], float, dict[str, Any]]:
    """The recorded gates (both versions' latencies; the pooled subset twice where a condition
    kept no pairs) and the recorded error rate."""
    data = json.loads(path.read_text())
    conditions = data["conditions"]
    sources: list[Source] = []
    for c in conditions.values():
        pairs = c.get("pairs") or [[c["latencies_ms"], c["latencies_ms"]]]
        sources += [(a, b) for a, b in pairs]
    answered = sum(c["answered"] for c in conditions.values())
    errors = sum(c["errors"] for c in conditions.values())
    return sources, errors / answered if answered else 0.0, data


TARGET_FALSE_FAIL, TARGET_FALSE_PASS = 0.01, 0.05  # issue 25's acceptance, for the new judge


def table(
    judges: dict[str, Judge], sources: Sequence[Source], error_rate: float, *, gates: int, requests: int,
    seed: int, noise: Noise, slo: Slo,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Every scenario at a 10 % and a 50 % step: the table's rows and the rows the new judge missed."""
    rows, missed = [], []
    for i, scenario in enumerate(SCENARIOS):
        for share in (0.10, 0.50):
            rates = run_scenario(
                judges, scenario, gates=gates, seed=seed + 100 * i + int(share * 100), sources=sources,
                error_rate=error_rate, requests=requests, share=share, noise=noise, slo=slo,
            )  # fmt: skip
            target = TARGET_FALSE_PASS if scenario.regression else TARGET_FALSE_FAIL
            ok = rates["new"].rate <= target  # the point estimate; the interval is shown beside it
            if not ok:
                missed.append(f"{scenario.name} at {share:.0%} ({rates['new'].rate:.1%})")
            kind = "false pass" if scenario.regression else "false fail"
            rows.append(
                f"| {scenario.name} | {share:.0%} | {kind} | {rates['old'].text()} | "
                f"{rates['new'].text()} | {rates['slo'].text()} | {target:.0%}: {'met' if ok else 'MISSED'} |"
            )
            print(rows[-1], flush=True)
    return rows, missed


HEAD = """| scenario | green share | error | old judge | new judge | absolute SLOs alone | target (new) |
|---|---:|---|---:|---:|---:|---|"""


def simulate(
    gates: int, seed: int, requests: int, which: str, noise: Noise, long_gates: int, long_requests: int
) -> tuple[str, bool]:
    """Both tables (a short gate, and a long one unless long_gates is 0); the docs section and
    whether the new judge met the targets in the short one."""
    sources, error_rate, data = load_recordings()
    new, new_name = new_judge(which)
    judges: dict[str, Judge] = {"old": old_judge, "new": new, "slo": slo_only_judge}
    slo = Slo()
    started = time.monotonic()
    rows, missed = table(
        judges, sources, error_rate, gates=gates, requests=requests, seed=seed, noise=noise, slo=slo
    )
    met = not missed
    long_text = ""
    if long_gates:
        long_rows, long_missed = table(
            judges,
            sources,
            error_rate,
            gates=long_gates,
            requests=long_requests,
            seed=seed,
            noise=noise,
            slo=slo,
        )
        long_text = f"""

The same with longer gates: {long_gates} simulated gates per row, {long_requests} requests per gate (green
~{long_requests // 10} at a 10 % step; a 30-s gate of 10 users on the local environment answers about
15000). Targets: **{"met" if not long_missed else "MISSED: " + "; ".join(long_missed)}**.

{HEAD}
{chr(10).join(long_rows)}"""
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
        max(nearest_rank(sorted(a), 95), nearest_rank(sorted(b), 95))
        / max(1e-9, min(nearest_rank(sorted(a), 95), nearest_rank(sorted(b), 95)))
        for a, b in sources
    )
    outcome = "met" if met else "MISSED: " + "; ".join(missed)
    body = f"""## Gate error rates (`bench/gate_errors.py`)

How often each judge is wrong: **false fail** = identical versions (A/A) judged fail (or void);
**false pass** = a seeded regression judged pass. {gates} simulated gates per row (seed {seed}),
{requests} requests per gate, green's share of them as at a canary step (10 %) and a half step (50 %);
95 % Wilson intervals in brackets. Inconclusive verdicts (too few samples) count as neither.

{HEAD}
{chr(10).join(rows)}{long_text}

- **Old judge**: `old_judge` in the bench, a faithful copy of orchestrator/gate.py before issue 25:
  absolute SLOs (p95 {slo.p95_ms:g} ms, p99 {slo.p99_ms:g} ms, errors {slo.max_error_ratio:.0%}) plus
  `green p95 > blue p95 x {slo.relative_p95_factor:g}`.
- **Absolute SLOs alone** (no comparison with blue; the old judge with `relative_p95_factor = 0`):
  what either judge's absolute checks contribute by themselves. On A/A rows it is the share of
  false fails no comparison causes: the nearest-rank p99 of ~200 green samples is their 3rd
  largest, and the recordings hold real stalls of about 1 s (a few per thousand requests).
- **New judge**: {new_name}; the same absolute SLOs, VOID when blue fails the load, and green
  against blue by the comparison with floor max({slo.regression_floor_ms:g} ms, {
        slo.regression_share:g} x p95 budget)
  = {slo.floor_ms:g} ms at alpha {slo.alpha:g}.
- **Latencies** resampled from real local gates of an identical model ({data["how"]} Recorded
  {data["recorded"]} on {data["cores"]} cores shared with other work; {recorded}; error rate
  {error_rate:.3%}). Each simulated gate draws one recorded gate and takes blue's and green's
  latencies from its two versions (which one plays blue at random), so the drift between two
  identical versions in one run is in the data: their p95s differed by x{drift[0]:.2f} to
  x{drift[-1]:.2f} (the slower over the faster) across the {len(drift)} recorded gates.
- **Injected scheduler noise** per gate: both sides slowed by exp(N(0, {noise.slowdown_sigma:g})); with
  probability {noise.stall_p:g} a stall over {noise.stall_window[0]:.0%}-{
        noise.stall_window[1]:.0%} of the gate delays each
  request in it by U(0, {noise.stall_ms[0]:g}-{noise.stall_ms[1]:g} ms), on one side only half of the time.
- **Regressions** are seeded in green on top of a {MODEL_MS:g} ms model time (every latency + {MODEL_MS:g} ms:
  blue's p95 near {MODEL_MS + p95_recorded:.0f} ms, so +50 % is a shift of about {
        (MODEL_MS + p95_recorded) / 2:.0f} ms, beyond the
  {slo.floor_ms:g} ms floor); the last rows seed +100 % on the local latencies as recorded (p95 near
  {p95_recorded:.0f} ms: a shift of about {p95_recorded:.0f} ms, close to the floor).
- Acceptance (issue 25), for the new judge: false fail on identical versions <= {TARGET_FALSE_FAIL:.0%},
  false pass on seeded regressions <= {TARGET_FALSE_PASS:.0%} (point estimates), in the first table:
  **{outcome}**. Green's samples at a 10 % step are ~{requests // 10} of {requests} there; the second
  table shows how the misses shrink with a longer gate.
  The errors rows are judged by the absolute error budget in both judges.
- Run: `python bench/gate_errors.py` ({took:.0f} s here for the simulation); `--judge standin|real|auto`,
  `--gates N --requests N --long-gates N --long-requests N`; re-record with `--record` (two local promotions, about 6 minutes)."""
    return body, met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--record", action="store_true", help="record real local gates first")
    parser.add_argument("--gate-s", type=int, default=12, help="seconds per recorded gate")
    parser.add_argument("--users", type=int, default=10, help="Locust users per recorded gate")
    parser.add_argument("--gates", type=int, default=2000, help="simulated gates per scenario and share")
    parser.add_argument("--requests", type=int, default=2000, help="requests per simulated gate")
    parser.add_argument(
        "--long-gates", type=int, default=300, help="gates per row of the long table (0: none)"
    )
    parser.add_argument(
        "--long-requests", type=int, default=10000, help="requests per gate of the long table"
    )
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument(
        "--judge", choices=("auto", "real", "standin"), default="auto",
        help="new judge: orchestrator.compare (real), the bench's stand-in, or real if present (auto)",
    )  # fmt: skip
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md")
    args = parser.parse_args(argv)
    if args.record:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(json.dumps(record(args.gate_s, args.users), separators=(",", ":")) + "\n")
        print(f"wrote {DATA.relative_to(REPO)}")
    body, met = simulate(
        args.gates, args.seed, args.requests, args.judge, Noise(), args.long_gates, args.long_requests
    )
    if not args.no_docs:
        from _report import write_section

        write_section("gate-errors", body)
    print(body)
    return 0 if met else 1  # the short table: the harder case


if __name__ == "__main__":
    raise SystemExit(main())
