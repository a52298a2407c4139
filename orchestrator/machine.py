"""The promotion state machine, as data: phases, what each does, where each outcome leads.

Pure: no I/O, no clock. The driver (orchestrator/driver.py) writes the record saying what
it is about to do *before* doing it, runs the phase's act, then asks `advance` for the
next record. Any command that finds a record knows from it alone what was happening.

    planned ─> pre_traffic ─> shifting(i) ─> baking(i) ─> gating(i) ─┬─> shifting(i+1) ...
                                                                     ├─> paused(i) ─> shifting(i+1) ...
                                                                     └─> promoting ─> promoted
    any in-flight phase ── failed gate, error, signal, abort ──> rolling_back ─> rolled_back
                                                                               | aborted | failed
`rolling_back` is sticky: it only leaves on a completed rollback, and every later
command finishes it before doing anything else.

The tables are the policy, read top to bottom: PHASES (what each phase runs, whether a stop
request ends it, where a resume restarts it, which way it is headed), TRANSITIONS (every
successor: a phase or family, an outcome, a guard -> an edge), RETARGET (`abort --to`), and
the driver's own decisions (AFTER_WRITE_FAILURE, S3_AWAY, STOP_PRIORITY,
FIX_AFTER_FAILED_WRITE). The functions below them only look rows up; tests/test_machine.py
checks the tables are total, tests/test_machine_oracle.py that they say what the code said
before it became tables.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

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


# -- the phases: what each runs, and which way it is headed ------------------------------------


class Act(StrEnum):
    """What the driver runs in a phase: one entry each in driver.py's `_ACTS`."""

    PREPARE_CANDIDATE = "prepare_candidate"
    GATE_CANDIDATE = "gate_candidate"
    SHIFT = "shift"
    BAKE = "bake"
    GATE_EDGE = "gate_edge"
    HOLD = "hold"
    PROMOTE = "promote"
    PUT_ON_BLUE = "put_on_blue"


class Family(StrEnum):
    """Which way a phase is headed. The rollback edges, `retarget` and the driver's tables are
    the same for every phase of a family, so they are keyed by it."""

    FORWARD = "forward"  # in flight towards green: nothing settled, both ways out are open
    BACK = "back"  # in flight back to blue: sticky, finished by whoever comes next
    DONE_GREEN = "done_green"  # ended with live on green alone
    DONE_BLUE = "done_blue"  # ended with live on blue alone


@dataclass(frozen=True)
class PhaseRow:
    """One phase: its family, its act (None: an end, nothing runs), the plan's hooks that run
    after the act when it is done ("pre-traffic", "step"), whether a stop request (a signal, an
    operator's abort) ends it, where `promote --resume` restarts it (None: nothing to resume),
    and what the act does, in words."""

    family: Family
    act: Act | None
    hooks: str | None
    stoppable: bool
    resume_at: Phase | None
    does: str


# A gate is re-run from its shift on resume (an idempotent re-apply of the recorded weights), a
# pause keeps holding (only a person ends it), a rollback is finished. Stops are honoured in
# every phase but rolling_back: a rollback always finishes first (a signal there is only said).
PHASES: dict[Phase, PhaseRow] = {
    # phase:            PhaseRow(family,            act,                   hooks,         stop?, resume_at, does)
    Phase.PLANNED:      PhaseRow(Family.FORWARD,    Act.PREPARE_CANDIDATE, None,          True,  Phase.PLANNED,
                                 "point the candidate alias at green and health-check it"),
    Phase.PRE_TRAFFIC:  PhaseRow(Family.FORWARD,    Act.GATE_CANDIDATE,    "pre-traffic", True,  Phase.PLANNED,
                                 "load-test green alone through the candidate route, then the pre-traffic hooks"),
    Phase.SHIFTING:     PhaseRow(Family.FORWARD,    Act.SHIFT,             None,          True,  Phase.SHIFTING,
                                 "set live to the step's weights (RevisionId-fenced) and read it back"),
    Phase.BAKING:       PhaseRow(Family.FORWARD,    Act.BAKE,              None,          True,  Phase.SHIFTING,
                                 "wait bake_s, watching green's Lambda metrics, the SLO alarms, abort and signals"),
    Phase.GATING:       PhaseRow(Family.FORWARD,    Act.GATE_EDGE,         "step",        True,  Phase.SHIFTING,
                                 "load-test the edge, judge green on its own requests, then the step's hooks"),
    Phase.PAUSED:       PhaseRow(Family.FORWARD,    Act.HOLD,              None,          True,  Phase.PAUSED,
                                 "hold live at the step's weight, watching as a bake does, until `resume-promotion`"),
    Phase.PROMOTING:    PhaseRow(Family.FORWARD,    Act.PROMOTE,           None,          True,  Phase.PROMOTING,
                                 "set live to green alone, read it back, invalidate the edge's cache"),
    Phase.ROLLING_BACK: PhaseRow(Family.BACK,       Act.PUT_ON_BLUE,       None,          False, Phase.ROLLING_BACK,
                                 "set live to blue alone and read it back (always, whatever the record says)"),
    Phase.PROMOTED:     PhaseRow(Family.DONE_GREEN, None,                  None,          False, None, "nothing: ended"),
    Phase.ROLLED_BACK:  PhaseRow(Family.DONE_BLUE,  None,                  None,          False, None, "nothing: ended"),
    Phase.ABORTED:      PhaseRow(Family.DONE_BLUE,  None,                  None,          False, None, "nothing: ended"),
    Phase.FAILED:       PhaseRow(Family.DONE_BLUE,  None,                  None,          False, None, "nothing: ended"),
}  # fmt: skip


def family(phase: Phase) -> Family:
    """Which way `phase` is headed (PHASES)."""
    return PHASES[phase].family


TERMINAL = frozenset(p for p in Phase if family(p) in (Family.DONE_GREEN, Family.DONE_BLUE))

# Where `promote --resume` restarts each phase in flight (PHASES' resume_at column).
RESUME_AT: dict[Phase, Phase] = {p: row.resume_at for p, row in PHASES.items() if row.resume_at is not None}


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


# -- where each outcome leads --------------------------------------------------------------


class When(StrEnum):
    """A guard on an edge, read from the record (`holds`). A phase's edges for one outcome are
    tried in table order and the first whose guard holds is taken."""

    ANY = "any"
    PAUSE_HERE = "pause here"  # the plan's pause_at is this step's weight
    MORE_STEPS = "more steps"  # the plan has a step after this one
    LAST_STEP = "last step"  # this step is the plan's last
    MOVED = "moved"  # step >= 0: live has had (or may have had) green's weights
    NOT_MOVED = "not moved"  # step -1: green never received live traffic


class StepChange(StrEnum):
    """What an edge does to the record's step."""

    KEEP = "keep"
    FIRST = "first"  # 0: the plan's first step
    NEXT = "next"  # one more


@dataclass(frozen=True)
class Recorded:
    """A value the record holds (its `then`, `cause` or `phase`), `otherwise` when it holds none."""

    name: Literal["then", "cause", "phase"]
    otherwise: Phase | Outcome | None = None

    def of(self, record: PromotionRecord) -> Any:
        return getattr(record, self.name) or self.otherwise


STAY = None  # an edge to nowhere: the record is left as it is (the driver stops, exit 8)


@dataclass(frozen=True)
class Edge:
    """Where the record goes: `to` a phase, a value it holds (Recorded) or nowhere (STAY), its
    step changed by `step`. With `then`, the edge begins a rollback that will end in `then`, and
    records the outcome as its `cause` and the reason given. `note` is the log line: {weight}
    (the step's, before the edge), {reason} (as given), {why} (the reason, else the outcome)."""

    to: Phase | Recorded | None
    step: StepChange = StepChange.KEEP
    then: Phase | None = None
    note: str = ""


@dataclass(frozen=True)
class Rule:
    """One row of TRANSITIONS: a phase (or every phase of a family) whose act ended with one of
    `outcomes`, and `when` holds -> `edge`."""

    source: Phase | Family
    outcomes: frozenset[Outcome]
    when: When
    edge: Edge


DONE = frozenset({Outcome.DONE})
ABORT = frozenset({Outcome.ABORT})  # an operator asked
FAILURE = frozenset({Outcome.FAILED, Outcome.VOID, Outcome.ERROR, Outcome.INTERRUPTED})
NOT_DONE = ABORT | FAILURE

# Every successor. A phase without an edge for an outcome has ended: `advance` refuses it
# (ValueError), as it refuses every outcome of an ended promotion but `rollback` of a promoted one.
TRANSITIONS: tuple[Rule, ...] = (
    # forward: a done act moves on (at the pause weight the pause comes before the last-step test)
    Rule(Phase.PLANNED,      DONE,     When.ANY,        Edge(Phase.PRE_TRAFFIC)),
    Rule(Phase.PRE_TRAFFIC,  DONE,     When.ANY,        Edge(Phase.SHIFTING, StepChange.FIRST)),
    Rule(Phase.SHIFTING,     DONE,     When.ANY,        Edge(Phase.BAKING)),
    Rule(Phase.BAKING,       DONE,     When.ANY,        Edge(Phase.GATING)),
    Rule(Phase.GATING,       DONE,     When.PAUSE_HERE, Edge(Phase.PAUSED, note="holding at {weight}%")),
    Rule(Phase.GATING,       DONE,     When.MORE_STEPS, Edge(Phase.SHIFTING, StepChange.NEXT)),
    Rule(Phase.GATING,       DONE,     When.LAST_STEP,  Edge(Phase.PROMOTING)),
    Rule(Phase.PAUSED,       DONE,     When.MORE_STEPS, Edge(Phase.SHIFTING, StepChange.NEXT)),
    Rule(Phase.PAUSED,       DONE,     When.LAST_STEP,  Edge(Phase.PROMOTING)),
    Rule(Phase.PROMOTING,    DONE,     When.ANY,        Edge(Phase.PROMOTED)),
    # anything else in flight rolls back, the record keeping its step (where green was) and how
    # the rollback will end: aborted when an operator asked, failed when green never had traffic
    Rule(Family.FORWARD,     ABORT,    When.ANY,        Edge(Phase.ROLLING_BACK, then=Phase.ABORTED, note="{why}")),
    Rule(Family.FORWARD,     FAILURE,  When.MOVED,      Edge(Phase.ROLLING_BACK, then=Phase.ROLLED_BACK, note="{why}")),
    Rule(Family.FORWARD,     FAILURE,  When.NOT_MOVED,  Edge(Phase.ROLLING_BACK, then=Phase.FAILED, note="{why}")),
    # sticky: only a completed rollback leaves it, for the end recorded when it began
    Rule(Phase.ROLLING_BACK, DONE,     When.ANY,        Edge(Recorded("then", Phase.ROLLED_BACK),
                                                             note="live on blue, read back")),
    Rule(Phase.ROLLING_BACK, NOT_DONE, When.ANY,        Edge(STAY)),
    # `rollback` of the last promotion
    Rule(Phase.PROMOTED,     ABORT,    When.ANY,        Edge(Phase.ROLLING_BACK, then=Phase.ROLLED_BACK,
                                                             note="{reason}")),
)  # fmt: skip


def rules(phase: Phase, outcome: Outcome) -> tuple[Rule, ...]:
    """The rows of TRANSITIONS for `phase` (or its family) and `outcome`, in table order."""
    # `is`: a phase and a family are both strings, and must never be taken for one another
    return tuple(
        r for r in TRANSITIONS if (r.source is phase or r.source is family(phase)) and outcome in r.outcomes
    )


_RULES: dict[tuple[Phase, Outcome], tuple[Rule, ...]] = {
    (phase, outcome): rules(phase, outcome) for phase in Phase for outcome in Outcome
}


def holds(when: When, record: PromotionRecord) -> bool:
    """Whether the guard `when` holds for `record`. Pure."""
    match when:
        case When.ANY:
            return True
        case When.PAUSE_HERE:
            return bool(record.plan.get("pause_at") == record.weight)
        case When.MORE_STEPS:
            return record.step + 1 < len(record.plan["steps"])
        case When.LAST_STEP:
            return record.step + 1 >= len(record.plan["steps"])
        case When.MOVED:
            return record.step >= 0
        case When.NOT_MOVED:
            return record.step < 0


class _NoteFields(dict[str, str]):
    """The fields an edge's note may name, each computed only when named: a record's weight
    is not asked of an edge that does not say it."""

    def __init__(self, record: PromotionRecord, outcome: Outcome, reason: str) -> None:
        super().__init__()
        self.record, self.outcome, self.reason = record, outcome, reason

    def __missing__(self, name: str) -> str:
        if name == "weight":
            return str(self.record.weight)
        if name == "reason":
            return self.reason
        if name == "why":
            return self.reason or str(self.outcome)
        raise KeyError(name)


def edge(record: PromotionRecord, outcome: Outcome) -> Edge | None:
    """The edge `record` follows when its phase's act ended with `outcome`; None: it has ended."""
    return next((r.edge for r in _RULES[(record.phase, outcome)] if holds(r.when, record)), None)


def advance(
    record: PromotionRecord, outcome: Outcome, *, now: float, by: str, reason: str = ""
) -> PromotionRecord:
    """The record after `record.phase`'s act ended with `outcome` (TRANSITIONS). Pure."""
    taken = edge(record, outcome)
    if taken is None:  # only an ended promotion has no edge (tests/test_machine.py: totality)
        raise ValueError(f"promotion {record.id} already ended {record.phase}")
    if taken.to is STAY:
        return record  # the very record: the driver reads `is` as "the rollback did not finish"
    note = taken.note.format_map(_NoteFields(record, outcome, reason))
    to = taken.to.of(record) if isinstance(taken.to, Recorded) else taken.to
    step = {StepChange.KEEP: record.step, StepChange.FIRST: 0, StepChange.NEXT: record.step + 1}[taken.step]
    changes: dict[str, Any] = {"phase": to, "step": step}
    if taken.then is not None:  # a rollback begins: how it will end, and why
        changes |= {"then": taken.then, "cause": outcome, "reason": reason}
    return replace(record, **changes).log(now, by, note)


def end_after_rollback(record: PromotionRecord, outcome: Outcome) -> Phase:
    """How a rollback that `outcome` (not DONE) starts now in a phase in flight will be
    remembered: the `then` of its edge in TRANSITIONS."""
    for rule in TRANSITIONS:
        if rule.source is Family.FORWARD and outcome in rule.outcomes and holds(rule.when, record):
            assert rule.edge.then is not None
            return rule.edge.then
    raise ValueError(f"{outcome} starts no rollback")


def resume(record: PromotionRecord, *, now: float, by: str) -> PromotionRecord:
    """The record a resuming driver starts from (it has taken the lease): RESUME_AT."""
    return replace(record, phase=RESUME_AT[record.phase], holder=by).log(
        now, by, f"resumed from {record.phase}"
    )


# `abort --to`: where the retargeted rollback ends and the cause it records, by the family of
# the phase it finds.
RETARGET: dict[Family, tuple[Phase | Recorded, Outcome | Recorded]] = {
    Family.FORWARD:    (Phase.ABORTED, Outcome.ABORT),  # a promotion in flight: closed as an abort
    Family.BACK:       (Recorded("then", Phase.ABORTED), Recorded("cause", Outcome.ABORT)),  # its own end
    Family.DONE_GREEN: (Phase.ROLLED_BACK, Outcome.ABORT),  # as `rollback` of the last promotion
    Family.DONE_BLUE:  (Recorded("phase"), Recorded("cause", Outcome.ABORT)),  # a finished rollback keeps its end
}  # fmt: skip


def retarget(record: PromotionRecord, version: str, *, now: float, by: str, note: str) -> PromotionRecord:
    """The record of a rollback to `version` instead of the recorded blue (`abort --to`, when
    blue no longer exists): `rolling_back` with `blue` = version, so that whoever finishes it
    (this command, or any later one after a crash) puts live on a version that exists. Where
    it ends: RETARGET. The log keeps the old blue. Pure."""
    end, cause = RETARGET[family(record.phase)]
    then = end.of(record) if isinstance(end, Recorded) else end
    why = cause.of(record) if isinstance(cause, Recorded) else cause
    return replace(record, blue=version, phase=Phase.ROLLING_BACK, then=then, cause=why, reason=note).log(
        now, by, f"{note} (blue was v{record.blue})"
    )


def take_over(record: PromotionRecord, *, now: float, by: str, note: str) -> PromotionRecord:
    """The record once another holder owns it (the write also fences the old driver out)."""
    return replace(record, holder=by).log(now, by, note)


# -- what the driver does around an act ------------------------------------------------------


class Stop(StrEnum):
    """A request to stop, observed (never raised) between and during acts."""

    SIGNAL = "signal"  # SIGINT or SIGTERM, latched (processes.SignalLatch)
    ABORT_REQUEST = "abort_request"  # an operator's `abort`, seen by the lease heartbeat


# The outcome each stop turns the act into, asked in this order: a signal wins over an abort
# request. Only in a phase whose row is stoppable.
STOP_PRIORITY: tuple[tuple[Stop, Outcome], ...] = (
    (Stop.SIGNAL, Outcome.INTERRUPTED),
    (Stop.ABORT_REQUEST, Outcome.ABORT),
)


class Course(StrEnum):
    """What the driver does with the next record `advance` gave it."""

    RECORD = "record"  # write it, then act on it
    ROLL_BACK_UNRECORDED = "roll_back_unrecorded"  # put live on blue first, record the rollback after
    STOP = "stop"  # exit 8: the record in S3 and the fix (FIX_AFTER_FAILED_WRITE) say what to run


# The write of the next record failed: by the next record's family and whether the lease is held
# (valid, or renewed now: a write that failed slowly may have used the third that was left).
AFTER_WRITE_FAILURE: dict[tuple[Family, bool], Course] = {
    (Family.FORWARD, True):     Course.ROLL_BACK_UNRECORDED,  # live may have just moved: back to blue, not split
    (Family.BACK, True):        Course.ROLL_BACK_UNRECORDED,  # the intent to roll back itself could not be written
    (Family.FORWARD, False):    Course.STOP,  # no longer surely ours: another may drive; the record explains
    (Family.BACK, False):       Course.STOP,
    (Family.DONE_GREEN, True):  Course.STOP,  # live is whole: a finished promotion is not undone for a lost write
    (Family.DONE_GREEN, False): Course.STOP,
    (Family.DONE_BLUE, True):   Course.STOP,  # live is whole on blue
    (Family.DONE_BLUE, False):  Course.STOP,
}  # fmt: skip

# S3 did not answer the lease read before an alias write in the act (LeaseUnreadError): by the
# next record's family and whether the lease is valid on this machine's clock. A rollback then
# puts live on blue on the local deadline alone and records it after, instead of spending what
# is left of the lease's third on S3 calls that time out (a slowly failing S3 left live split).
S3_AWAY: dict[tuple[Family, bool], Course] = {
    (Family.BACK, True):        Course.ROLL_BACK_UNRECORDED,
    (Family.BACK, False):       Course.RECORD,  # not surely ours: record first (a failure: AFTER_WRITE_FAILURE)
    (Family.FORWARD, True):     Course.RECORD,
    (Family.FORWARD, False):    Course.RECORD,
    (Family.DONE_GREEN, True):  Course.RECORD,
    (Family.DONE_GREEN, False): Course.RECORD,
    (Family.DONE_BLUE, True):   Course.RECORD,
    (Family.DONE_BLUE, False):  Course.RECORD,
}  # fmt: skip


def course(table: Mapping[tuple[Family, bool], Course], nxt: Phase, lease: Callable[[], bool]) -> Course:
    """The cell of a driver table for the next record's phase. `lease` (a look at the clock or
    a renewal in S3) is asked only when the row's answer depends on it."""
    row = family(nxt)
    if table[(row, True)] == table[(row, False)]:
        return table[(row, True)]
    return table[(row, lease())]


def rolled_back_unrecorded(
    record: PromotionRecord, nxt: PromotionRecord, *, now: float, by: str, why: str
) -> PromotionRecord:
    """The record of a rollback the driver did before it could record it (Course
    ROLL_BACK_UNRECORDED, on the way from `record` to `nxt`): `nxt` when it began the rollback,
    else one begun now by an error; then ended."""
    rolling = (
        nxt if family(nxt.phase) is Family.BACK
        else advance(record, Outcome.ERROR, now=now, by=by, reason=f"error: {why}")
    )  # fmt: skip
    return advance(rolling, Outcome.DONE, now=now, by=by)


class Fix(StrEnum):
    """What to run after a stop for a failed record write (exit 8)."""

    ABORT_OR_RESUME = "abort_or_resume"
    FINISH_WITH_ABORT = "finish_with_abort"
    STATUS_THEN_RESUME = "status_then_resume"


# The record in S3 says either the phase before the failed write (it never landed) or the one
# it carried (only its answer was lost), and the act is done either way: so the fix follows from
# the phase the write carried, by its family, and from nothing else.
FIX_AFTER_FAILED_WRITE: dict[Family, Fix] = {
    Family.FORWARD: Fix.ABORT_OR_RESUME,  # the step's act is done, nothing is settled
    Family.BACK: Fix.FINISH_WITH_ABORT,  # live is on its way to blue: `abort` finishes it
    Family.DONE_BLUE: Fix.FINISH_WITH_ABORT,  # nothing to do if the record already says it ended
    # live is on green alone: `abort` would undo a promotion that succeeded, since a record
    # left at promoting is an interrupted one
    Family.DONE_GREEN: Fix.STATUS_THEN_RESUME,
}

_FIX_TEXT: dict[Fix, str] = {
    Fix.ABORT_OR_RESUME: (
        "once AWS (or the emulator) answers, `orchestrator abort --env {env}` puts live back on blue, "
        "or `orchestrator promote --env {env} --resume` goes on from the recorded step"
    ),
    Fix.FINISH_WITH_ABORT: (
        "run `orchestrator abort --env {env}` once AWS (or the emulator) answers: it finishes "
        "putting live on blue (nothing to do if the record already says the rollback ended)"
    ),
    Fix.STATUS_THEN_RESUME: (
        "live already serves green alone: the promotion succeeded, only its record may not say so. "
        "Once S3 answers, `orchestrator status --env {env}`: promoted, nothing to undo; still "
        "promoting, `orchestrator promote --env {env} --resume` records it as promoted "
        "(`orchestrator abort` would put live back on blue)"
    ),
}


def after_failed_write(env: str, written: Phase) -> str:
    """The fix for a failed record write whose body said `written`: FIX_AFTER_FAILED_WRITE."""
    return _FIX_TEXT[FIX_AFTER_FAILED_WRITE[family(written)]].format(env=env)


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
