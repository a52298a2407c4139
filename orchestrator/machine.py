"""The promotion state machine, as data: phases, what each does, where each outcome leads.

Pure: no I/O, no clock. The driver (orchestrator/driver.py) writes the record saying what
it is about to do *before* doing it, runs the phase's action, then asks `advance` for the
next record. Any command that finds a record knows from it alone what was happening.

    planned ─> pre_traffic ─> shifting(i) ─> baking(i) ─> gating(i) ─┬─> shifting(i+1) ...
                                                                     ├─> paused(i) ─> shifting(i+1) ...
                                                                     └─> promoting ─> promoted
    any in-flight phase ── failed gate, error, signal, abort ──> rolling_back ─> rolled_back
                                                                               | aborted | failed
`rolling_back` is sticky: it only leaves on a completed rollback, and every later
command finishes it before doing anything else.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from orchestrator.formats import known
from orchestrator.plan import Plan, plan_from_dict


class Phase(StrEnum):
    """Where a promotion is. Persisted in the record; the names are part of the format."""

    PLANNED = "planned"  # green published and recorded; candidate alias next
    PRE_TRAFFIC = "pre_traffic"  # green alone behind the candidate route, gated
    SHIFTING = "shifting"  # live is being set to the step's weights
    BAKING = "baking"  # live at the step's weights, waiting bake_s
    GATING = "gating"  # load test of the edge, green judged per version, then the step's hooks
    PAUSED = "paused"  # held at the step's weight (--pause-at) until `resume-promotion`
    PROMOTING = "promoting"  # live is being set to green alone
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"  # live is being put back on blue alone
    ROLLED_BACK = "rolled_back"  # back on blue after a failure, an error or a signal
    ABORTED = "aborted"  # back on blue because an operator asked
    FAILED = "failed"  # stopped before green received any live traffic


TERMINAL = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})


class Outcome(StrEnum):
    """What happened to a phase's action (or what stopped it)."""

    DONE = "done"  # the action finished; for a gate: it passed
    FAILED = "failed"  # a gate or the health check said no
    # A gate was void: blue (the control) failed the gate's own load, so the load (or live),
    # not green, is suspect. Rolled back as FAILED; kept apart so the message can say so.
    VOID = "void"
    ERROR = "error"  # an exception: the API refused, the edge went away...
    INTERRUPTED = "interrupted"  # SIGINT or SIGTERM
    ABORT = "abort"  # an operator asked: `abort`, `rollback`, `promote --rollback`


# What the driver runs in each phase that has an action (one method each in driver.py).
ACTIONS: dict[Phase, str] = {
    Phase.PLANNED: "point the candidate alias at green and health-check it",
    Phase.PRE_TRAFFIC: "load-test green alone through the candidate route",
    Phase.SHIFTING: "set live to the step's weights (RevisionId-fenced) and read it back",
    Phase.BAKING: "wait bake_s, watching green's Lambda metrics, the SLO alarms, abort and signals",
    Phase.GATING: "load-test the edge, judge green on its own requests, run the step's hooks",
    Phase.PAUSED: "hold live at the step's weight, watching as a bake does, until `resume-promotion`",
    Phase.PROMOTING: "set live to green alone and read it back",
    Phase.ROLLING_BACK: "set live to blue alone and read it back (always, whatever the record says)",
}

# Where DONE leads. GATING and PAUSED are special-cased: the pause (after the gate at the
# plan's pause_at weight), the next step, or PROMOTING after the last.
FORWARD: dict[Phase, Phase] = {
    Phase.PLANNED: Phase.PRE_TRAFFIC,
    Phase.PRE_TRAFFIC: Phase.SHIFTING,
    Phase.SHIFTING: Phase.BAKING,
    Phase.BAKING: Phase.GATING,
    Phase.GATING: Phase.SHIFTING,
    Phase.PAUSED: Phase.SHIFTING,
    Phase.PROMOTING: Phase.PROMOTED,
}

# Where `promote --resume` restarts each phase: a gate is re-run from its shift (an
# idempotent re-apply of the recorded weights), a pause keeps holding (only a person ends
# it), a rollback is finished.
RESUME_AT: dict[Phase, Phase] = {
    Phase.PLANNED: Phase.PLANNED,
    Phase.PRE_TRAFFIC: Phase.PLANNED,
    Phase.SHIFTING: Phase.SHIFTING,
    Phase.BAKING: Phase.SHIFTING,
    Phase.GATING: Phase.SHIFTING,
    Phase.PAUSED: Phase.PAUSED,
    Phase.PROMOTING: Phase.PROMOTING,
    Phase.ROLLING_BACK: Phase.ROLLING_BACK,
}


@dataclass(frozen=True)
class Transition:
    """One line of the record's log."""

    seq: int
    at: float
    phase: str
    step: int
    by: str
    note: str = ""


@dataclass(frozen=True)
class PromotionRecord:
    """Everything another machine needs to finish a promotion: the truth about intent."""

    id: str
    env: str
    blue: str
    green: str
    plan: dict[str, Any]  # the plan as it was when the promotion started (resume uses it)
    plan_hash: str
    phase: Phase = Phase.PLANNED
    step: int = -1  # index into the plan's steps; -1 until the first shift
    then: Phase | None = None  # where rolling_back ends
    cause: Outcome | None = None  # what started the rollback
    holder: str = ""
    reason: str = ""
    transitions: tuple[Transition, ...] = field(default_factory=tuple)
    # live's RevisionId after this promotion's last alias write, read back: the driver that
    # made that write fences its next one on it (traffic.fence_for). "" before the first write,
    # and in records of edgeship before it (an older reader ignores it: it only loses that fence).
    live_revision: str = ""

    @staticmethod
    def new(plan: Plan, holder: str, now: float) -> PromotionRecord:
        """The record of a fresh promotion, in `planned`."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        snapshot = plan.to_snapshot()
        record = PromotionRecord(
            f"{stamp}-{uuid.uuid4().hex[:6]}", plan.env, plan.blue, plan.green, snapshot,
            snapshot_hash(snapshot), holder=holder,
        )  # fmt: skip
        return record.log(now, holder, "planned")

    @property
    def weight(self) -> int:
        """Green's share of live (percent) as last intended."""
        if self.phase in (Phase.PROMOTING, Phase.PROMOTED):
            return 100
        return int(self.plan["steps"][self.step]) if self.step >= 0 else 0

    @property
    def in_flight(self) -> bool:
        """Not finished: someone must drive it to a terminal phase."""
        return self.phase not in TERMINAL

    def the_plan(self) -> Plan:
        """The recorded plan."""
        return plan_from_dict(self.plan)

    def log(self, now: float, by: str, note: str = "") -> PromotionRecord:
        """The record with one more transition line for its current phase."""
        line = Transition(len(self.transitions) + 1, round(now, 3), str(self.phase), self.step, by, note)
        return replace(self, transitions=(*self.transitions, line))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PromotionRecord:
        """Parse the JSON form; fields a newer edgeship added are ignored (orchestrator/formats.py,
        record.parse_record refuses what must not be ignored)."""
        return PromotionRecord(
            **{
                **known(PromotionRecord, data),
                "phase": Phase(data["phase"]),
                "then": Phase(data["then"]) if data.get("then") else None,
                "cause": Outcome(data["cause"]) if data.get("cause") else None,
                "transitions": tuple(Transition(**known(Transition, t)) for t in data.get("transitions", ())),
            }
        )


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    """A short, stable hash of a plan snapshot (resume shows when the config has moved on)."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()[:12]


def advance(
    record: PromotionRecord, outcome: Outcome, *, now: float, by: str, reason: str = ""
) -> PromotionRecord:
    """The record after `record.phase`'s action ended with `outcome`. Pure."""
    phase = record.phase
    if phase == Phase.ROLLING_BACK:
        if outcome != Outcome.DONE:  # sticky: only a completed rollback leaves it
            return record
        return replace(record, phase=record.then or Phase.ROLLED_BACK).log(now, by, "live on blue, read back")
    if phase in TERMINAL:
        if phase == Phase.PROMOTED and outcome == Outcome.ABORT:  # `rollback` of the last promotion
            return replace(
                record, phase=Phase.ROLLING_BACK, then=Phase.ROLLED_BACK, cause=outcome, reason=reason
            ).log(now, by, reason)
        raise ValueError(f"promotion {record.id} already ended {phase}")
    if outcome != Outcome.DONE:
        then = end_after_rollback(record, outcome)
        return replace(record, phase=Phase.ROLLING_BACK, then=then, cause=outcome, reason=reason).log(
            now, by, reason or str(outcome)
        )
    nxt, step = FORWARD[phase], record.step
    if phase == Phase.PRE_TRAFFIC:
        step = 0
    elif phase == Phase.GATING and record.plan.get("pause_at") == record.weight:
        return replace(record, phase=Phase.PAUSED).log(now, by, f"holding at {record.weight}%")
    elif phase in (Phase.GATING, Phase.PAUSED):
        step += 1
        if step >= len(record.plan["steps"]):
            nxt, step = Phase.PROMOTING, record.step
    return replace(record, phase=nxt, step=step).log(now, by)


def end_after_rollback(record: PromotionRecord, outcome: Outcome) -> Phase:
    """How a rollback started now will be remembered."""
    if outcome == Outcome.ABORT:
        return Phase.ABORTED
    return Phase.ROLLED_BACK if record.step >= 0 else Phase.FAILED


def resume(record: PromotionRecord, *, now: float, by: str) -> PromotionRecord:
    """The record a resuming driver starts from (it has taken the lease)."""
    return replace(record, phase=RESUME_AT[record.phase], holder=by).log(
        now, by, f"resumed from {record.phase}"
    )


def retarget(record: PromotionRecord, version: str, *, now: float, by: str, note: str) -> PromotionRecord:
    """The record of a rollback to `version` instead of the recorded blue (`abort --to`, when
    blue no longer exists): `rolling_back` with `blue` = version, so that whoever finishes it
    (this command, or any later one after a crash) puts live on a version that exists. Where
    it ends: a rollback's recorded end; aborted for a promotion in flight; rolled_back for a
    promoted one; a finished rollback keeps its end. The log keeps the old blue. Pure."""
    if record.phase == Phase.ROLLING_BACK:
        then, cause = record.then or Phase.ABORTED, record.cause or Outcome.ABORT
    elif record.in_flight:
        then, cause = Phase.ABORTED, Outcome.ABORT
    elif record.phase == Phase.PROMOTED:
        then, cause = Phase.ROLLED_BACK, Outcome.ABORT
    else:
        then, cause = record.phase, record.cause or Outcome.ABORT
    return replace(record, blue=version, phase=Phase.ROLLING_BACK, then=then, cause=cause, reason=note).log(
        now, by, f"{note} (blue was v{record.blue})"
    )


def take_over(record: PromotionRecord, *, now: float, by: str, note: str) -> PromotionRecord:
    """The record once another holder owns it (the write also fences the old driver out)."""
    return replace(record, holder=by).log(now, by, note)


# -- what a command does with what it finds ------------------------------------------------


class Situation(StrEnum):
    """An environment as a command finds it."""

    IDLE = "idle"  # nothing in flight (no record, or a finished one); the lease is free or stale
    RUNNING = "running"  # a live lease: some driver is publishing or promoting right now
    INTERRUPTED = "interrupted"  # a record in flight and no live lease: its driver is gone


def situation(record: PromotionRecord | None, lease_live: bool) -> Situation:
    """Classify what a command found. Pure."""
    if lease_live:
        return Situation.RUNNING
    if record is not None and record.in_flight:
        return Situation.INTERRUPTED
    return Situation.IDLE


class Verb(StrEnum):
    """What a command does next."""

    START = "start"  # take the lease, publish, promote
    FINISH_THEN_START = "finish_then_start"  # an interrupted rollback first (rolling_back is sticky)
    RESUME = "resume"
    ROLL_BACK = "roll_back"
    REQUEST_ABORT = "request_abort"  # write the abort request, wait for the driver or its lease
    PROCEED = "proceed"  # not a promotion: go ahead
    REFUSE_RUNNING = "refuse_running"  # exit 4, naming the holder
    REFUSE_INTERRUPTED = "refuse_interrupted"  # exit 11: --resume or --rollback (or abort)
    NOTHING_INTERRUPTED = "nothing_interrupted"  # exit 2: --resume/--rollback with nothing to act on
    NOTHING_TO_DO = "nothing_to_do"  # exit 0: abort with nothing in flight
    CONTINUE = "continue"  # ask the driver holding a pause to go on; wait until it does
    NOT_PAUSED = "not_paused"  # exit 2: resume-promotion with no promotion paused


COMMANDS: dict[tuple[str, Situation], Verb] = {
    ("promote", Situation.IDLE): Verb.START,
    ("promote", Situation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote", Situation.INTERRUPTED): Verb.REFUSE_INTERRUPTED,  # FINISH_THEN_START if rolling_back
    ("promote --resume", Situation.IDLE): Verb.NOTHING_INTERRUPTED,
    ("promote --resume", Situation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote --resume", Situation.INTERRUPTED): Verb.RESUME,
    ("promote --rollback", Situation.IDLE): Verb.NOTHING_INTERRUPTED,
    ("promote --rollback", Situation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote --rollback", Situation.INTERRUPTED): Verb.ROLL_BACK,
    ("rollback", Situation.IDLE): Verb.ROLL_BACK,  # the last promotion's blue
    ("rollback", Situation.RUNNING): Verb.REFUSE_RUNNING,
    ("rollback", Situation.INTERRUPTED): Verb.ROLL_BACK,
    ("abort", Situation.IDLE): Verb.NOTHING_TO_DO,
    ("abort", Situation.RUNNING): Verb.REQUEST_ABORT,
    ("abort", Situation.INTERRUPTED): Verb.ROLL_BACK,
    ("up", Situation.IDLE): Verb.PROCEED,
    ("up", Situation.RUNNING): Verb.REFUSE_RUNNING,
    ("up", Situation.INTERRUPTED): Verb.REFUSE_INTERRUPTED,
    # Only for a promotion in `paused` (any other phase: NOT_PAUSED). Interrupted while
    # paused: this machine takes over and drives it on.
    ("resume-promotion", Situation.IDLE): Verb.NOT_PAUSED,
    ("resume-promotion", Situation.RUNNING): Verb.CONTINUE,
    ("resume-promotion", Situation.INTERRUPTED): Verb.RESUME,
}


def verb(command: str, record: PromotionRecord | None, lease_live: bool) -> Verb:
    """What `command` should do on an environment in this state. Pure."""
    found = situation(record, lease_live)
    chosen = COMMANDS[(command, found)]
    if command == "resume-promotion" and (record is None or record.phase != Phase.PAUSED):
        return Verb.NOT_PAUSED
    if (
        chosen == Verb.REFUSE_INTERRUPTED
        and command == "promote"
        and record
        and record.phase == Phase.ROLLING_BACK
    ):
        return Verb.FINISH_THEN_START
    return chosen
