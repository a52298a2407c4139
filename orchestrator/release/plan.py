"""Schedule -> steps: what a promotion will do, decided without any I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.base.errors import ConfigError, UsageError
from orchestrator.base.formats import known
from orchestrator.config.settings import (
    EXTEND_BAKES,
    SCHEDULES,
    Environment,
    Hook,
    LoadSettings,
    SloSettings,
    TrafficSettings,
)


def weights(traffic: TrafficSettings, schedule: str | None = None) -> list[int]:
    """Green's share of traffic (percent) at each step; the last step is always 100."""
    kind = schedule or traffic.schedule
    if kind == "canary":
        return [traffic.canary_weight, 100]
    if kind == "linear":
        n = traffic.linear_steps
        return [round(100 * (i + 1) / n) for i in range(n)]
    if kind == "all-at-once":
        return [100]
    if kind == "explicit":
        steps = list(traffic.weights)
        return steps if steps and steps[-1] == 100 else [*steps, 100]
    raise ConfigError(f"unknown schedule {kind!r}", fix=f"use one of {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class Plan:
    """A promotion of one environment from blue to green."""

    env: str
    blue: str
    green: str
    schedule: str
    steps: list[int]
    bake_s: float
    slo: SloSettings
    load: LoadSettings
    # One input row of green's model (its metadata's example): the gates' payloads are
    # built from it, so a model with other features is load-tested with its own shape.
    example: tuple[float, ...] = ()
    hooks: tuple[Hook, ...] = ()
    # Hold the promotion after the gate at this weight until `orchestrator resume-promotion`.
    pause_at: int | None = None
    # How late green's metrics may arrive (None in records older than it: the environment's),
    # and what a bake does when it judged nothing of green by then (watch.decide).
    metric_delay_s: float | None = None
    unjudged_bake: str = "fail"
    max_extend_s: float | None = None  # None: EXTEND_BAKES x bake_s (see extend_cap_s)

    @property
    def extend_cap_s(self) -> float:
        """How long an extending bake may go on past its bound before it fails as not judged."""
        return self.max_extend_s if self.max_extend_s is not None else EXTEND_BAKES * self.bake_s

    @property
    def gates(self) -> int:
        """Load tests the plan runs: one pre-traffic, then one per step."""
        return 1 + len(self.steps)

    @property
    def expected_duration_s(self) -> float:
        """Time spent baking and load-testing if every gate passes at the first try, each gate
        running its size: duration_s, or on until green's min_green_requests at the dry run's
        estimate (gate_durations' `sized_s`); no early decision."""
        return sum(g["sized_s"] for g in self.gate_durations()) + len(self.steps) * self.bake_s

    @property
    def worst_duration_s(self) -> float:
        """Like expected_duration_s with every gate at its longest (first tries)."""
        return sum(g["worst_s"] for g in self.gate_durations()) + len(self.steps) * self.bake_s

    def gate_durations(self) -> list[dict[str, Any]]:
        """Each gate's green requests and load time, at an assumed HEALTHY_REQUEST_MS a request.

        Each user sends back to back, and green gets its weight's share (all of it alone,
        pre-traffic): `green_rps`. Per gate: green's requests in duration_s; the seconds to
        min_green_requests; `sized_s`, the load's length without an early decision (duration_s,
        or on to min_green_requests plus LOOK_LAG_S for the look that sees it, at most
        max_duration_s); `healthy_s`, with load.sequential the estimate for a healthy green (it
        must answer `sequential.samples_to_pass` requests, and min_green_requests, without a bad
        one; never under min_duration_s), else sized_s; `worst_s`, Locust's --run-time (an
        extension not counted); `short`: green cannot reach min_green_requests within
        max_duration_s at the estimate. An estimate, not a promise: a slower service or a
        loaded generator sends fewer requests.
        """
        from orchestrator.gates import sequential
        from orchestrator.gates.sizing import Sizing

        load = self.load
        sizing = Sizing.of(load)
        need = sequential.samples_to_pass(self.slo, sequential.Policy(min_duration_s=load.min_duration_s))
        rows = []
        for name, weight in [("pre-traffic", 100), *((f"step {i + 1}", w) for i, w in enumerate(self.steps))]:
            rps = load.users * 1000 / HEALTHY_REQUEST_MS * weight / 100
            to_min = load.min_green_requests / rps
            worst = sizing.run_time_s
            sized = load.duration_s if to_min <= load.duration_s else min(worst, to_min + LOOK_LAG_S)
            healthy = sized
            if load.sequential and need is not None:
                early = max(load.min_duration_s, max(need, load.min_green_requests) / rps) + LOOK_LAG_S
                healthy = min(sized, early)
            rows.append(
                {
                    "gate": name,
                    "weight": weight,
                    "green_rps": round(rps, 1),
                    "green_requests_at_duration": round(rps * load.duration_s),
                    "min_green_requests_s": round(to_min, 1),
                    "sized_s": round(sized, 1),
                    "healthy_s": round(healthy, 1),
                    "worst_s": worst,
                    "short": to_min > worst,
                }
            )
        return rows

    @property
    def expected_healthy_duration_s(self) -> float:
        """Like expected_duration_s, with each gate's healthy-green estimate (gate_durations)."""
        return sum(g["healthy_s"] for g in self.gate_durations()) + len(self.steps) * self.bake_s

    def to_dict(self) -> dict[str, Any]:
        """The plan as `promote --dry-run --json` prints it."""
        return {
            **asdict(self),
            "gates": self.gates,
            "expected_duration_s": self.expected_duration_s,
            "gate_durations": self.gate_durations(),
            "expected_healthy_duration_s": self.expected_healthy_duration_s,
            "worst_duration_s": self.worst_duration_s,
            "healthy_request_ms": HEALTHY_REQUEST_MS,
        }

    def to_snapshot(self) -> dict[str, Any]:
        """What a promotion record keeps: resume runs this, not today's edgeship.toml (JSON-shaped)."""
        return {
            **asdict(self),
            "slo": {**asdict(self.slo), "alarms": list(self.slo.alarms)},
            "example": list(self.example),
            "hooks": [asdict(h) for h in self.hooks],
        }


# The dry run's estimates (Plan.gate_durations): what one request is assumed to take end to
# end, and how long after the evidence suffices a look sees it (snapshots every second; a
# master's view lags by the workers' report interval, 3 s).
HEALTHY_REQUEST_MS = 50.0
LOOK_LAG_S = 1.5


def plan_from_dict(snapshot: dict[str, Any]) -> Plan:
    """The plan a record kept (the inverse of Plan.to_snapshot)."""
    slo = snapshot["slo"]  # fields a newer edgeship added are ignored (`known`)
    return Plan(
        **{
            **known(Plan, snapshot),
            "steps": [int(s) for s in snapshot["steps"]],
            "slo": SloSettings(**{**known(SloSettings, slo), "alarms": tuple(slo.get("alarms", ()))}),
            # A plan recorded before sequential gates existed ran fixed-length gates, and one
            # recorded before gates were sized by green's requests ran duration_s: a resume
            # runs the recorded plan, not today's defaults.
            "load": LoadSettings(
                **{
                    "sequential": False,
                    "min_green_requests": 0,
                    "max_duration_s": snapshot["load"]["duration_s"],
                    **known(LoadSettings, snapshot["load"]),
                }
            ),
            "example": tuple(float(v) for v in snapshot.get("example", ())),
            "hooks": tuple(Hook(**known(Hook, h)) for h in snapshot.get("hooks", ())),
        }
    )


def check_pause_at(steps: list[int], kind: str, pause_at: int | None) -> None:
    """A pause must be at a step's weight before the last (the last one is the promotion)."""
    if pause_at is not None and pause_at not in steps[:-1]:
        raise UsageError(
            f"--pause-at {pause_at}: the {kind} schedule has no step at {pause_at}% before the last",
            fix=f"pause at one of: {', '.join(str(s) for s in steps[:-1]) or '(none: the schedule has one step)'}",
        )


def make_plan(
    env: Environment,
    blue: str,
    green: str,
    schedule: str | None = None,
    example: tuple[float, ...] = (),
    pause_at: int | None = None,
) -> Plan:
    """The plan for promoting `green` over `blue` in `env`."""
    kind = schedule or env.traffic.schedule
    steps = weights(env.traffic, kind)
    check_pause_at(steps, kind, pause_at)
    return Plan(
        env=env.name,
        blue=blue,
        green=green,
        schedule=kind,
        steps=steps,
        bake_s=env.traffic.bake_s,
        slo=env.slo,
        load=env.load,
        example=example,
        hooks=env.traffic.hooks,
        pause_at=pause_at,
        metric_delay_s=env.metric_delay_s,
        unjudged_bake=env.traffic.unjudged_bake,
        max_extend_s=env.traffic.max_extend_s,
    )
