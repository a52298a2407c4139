"""The promotion state machine, as data: phases, what each does, where each outcome leads.

Pure: no I/O, no clock. The driver (orchestrator/release/driver.py) writes the record saying what
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
FIX_AFTER_FAILED_WRITE), then what each command does with what it finds (COMMANDS, and the
tables beside it for the waits, live's alias and the endings). The functions below them only
look rows up; tests/test_machine.py checks the tables are total, tests/test_machine_oracle.py
and tests/test_commands_oracle.py that they say what the code said before it became tables,
and tests/test_machine_doc.py that docs/architecture.md shows them as they are and that no
module outside this one compares a phase, a holder or a situation to decide.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, TypeVar

from orchestrator.base.formats import known
from orchestrator.release.plan import Plan, plan_from_dict
from orchestrator.release.traffic import Reading

KeyT = TypeVar("KeyT")
CellT = TypeVar("CellT")


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
        """Parse the JSON form; fields a newer edgeship added are ignored (orchestrator/base/formats.py,
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
#
# A command looks (the lease, then the record), classifies what it saw (`holder`, `found`) and
# asks COMMANDS; once it holds the lease it reads again and asks the row of Holder.OURS. Where a
# decision needs one more fact (the promotion asked about, live's alias, the version asked), a
# table of its own below says it. operations.py only carries the verdicts out; their refusal texts
# stay there, keyed by verdict (and, for REFUSE_RUNNING, by the holder).


class Command(StrEnum):
    """A command as the tables know it: the CLI's command, with the options that change it."""

    PROMOTE = "promote"
    PROMOTE_RESUME = "promote --resume"  # also `resume-promotion` driving a paused one on here
    PROMOTE_ROLLBACK = "promote --rollback"
    ROLLBACK = "rollback"
    ABORT = "abort"
    ABORT_AGAIN = "abort (second look)"  # the look again after a stack change's lease (LOOK_AGAIN)
    ABORT_TO = "abort --to"
    RESUME_PROMOTION = "resume-promotion"
    UP = "up"  # and every stack change: `rotate-origin-secret`, `destroy`


class Holder(StrEnum):
    """The lease, as a look finds it."""

    NONE = "none"
    STALE = "stale"  # expired, or its process is dead on this machine: anyone may take it
    OURS = "ours"  # this command took it: the look under the lease, before acting
    PROMOTION = "promotion"  # live, naming a recorded promotion: a driver (promoting, resuming, rolling back)
    PUBLISHING = "publishing"  # live, no promotion yet: a promotion publishing (or an older edgeship's `up`)
    STACK_CHANGE = "stack change"  # live: an `up` or `rotate-origin-secret`


class Found(StrEnum):
    """The environment and its promotion record, as a look finds them."""

    NOT_DEPLOYED = "not deployed"  # no stack outputs or no bucket: no record, no lease
    NO_RECORD = "no record"
    PROMOTED = "promoted"  # ended, live on green
    ENDED_ON_BLUE = "ended on blue"  # rolled_back, aborted, failed
    IN_FLIGHT = "in flight"  # planned ... promoting, but paused
    PAUSED = "paused"
    ROLLING_BACK = "rolling back"


# Which Found each phase is: the record's family, with a pause told apart (only it can be resumed
# by `resume-promotion`).
FOUND_IN: dict[Phase, Found] = {
    **{p: Found.IN_FLIGHT for p in Phase if family(p) is Family.FORWARD},
    Phase.PAUSED: Found.PAUSED,
    Phase.ROLLING_BACK: Found.ROLLING_BACK,
    Phase.PROMOTED: Found.PROMOTED,
    **{p: Found.ENDED_ON_BLUE for p in Phase if family(p) is Family.DONE_BLUE},
}


def found(deployed: bool, record: PromotionRecord | None) -> Found:
    """What a look found, from whether the stack is deployed and its record. Pure."""
    if not deployed:
        return Found.NOT_DEPLOYED
    return Found.NO_RECORD if record is None else FOUND_IN[record.phase]


def holder(*, present: bool, live: bool, stack_change: bool, promotion: str | None) -> Holder:
    """What a look found of the lease (not ours): absent, stale, or live and held by what. Pure."""
    if not present:
        return Holder.NONE
    if not live:
        return Holder.STALE
    if stack_change:
        return Holder.STACK_CHANGE
    return Holder.PUBLISHING if promotion is None else Holder.PROMOTION


class Verdict(StrEnum):
    """What a command does next. Refusals name their exit code."""

    # before the lease: go on
    START = "start"  # take the lease, look again; under it: publish and promote
    FINISH_THEN_START = "finish_then_start"  # an interrupted rollback first (rolling_back is sticky)
    RESUME = "resume"  # take the lease, look again; under it: go on from the recorded phase
    ROLL_BACK = "roll_back"  # take the lease (kind rollback), read the record again: its Holder.OURS row
    PROCEED = "proceed"  # a stack change: go ahead (under its lease)
    PROCEED_UNLEASED = "proceed_unleased"  # a stack change on no stack: no bucket, so no lease to take
    FIRST_DEPLOY = "first_deploy"  # promote on no stack: an `up`, asked for as `up` asks
    REQUEST_ABORT = "request_abort"  # write the abort request, wait for the driver or its lease (ABORT_WAIT)
    LOOK_AGAIN = "look_again"  # a stack change's lease: it may have just ended, a promotion taken it
    CONTINUE = "continue"  # give the paused driver the go-ahead; wait until it goes on (RESUME_WAIT)
    MOVE_TO = "move_to"  # `abort --to`: the version checked, take the lease; under it: ABORT_TO_HELD
    REQUIRE_DEPLOYED = "require_deployed"  # NotDeployedError; outputs but no bucket: as NO_RECORD
    NOTHING_TO_DO = "nothing_to_do"  # exit 0: abort on no stack
    NOTHING_IN_FLIGHT = "nothing_in_flight"  # exit 0: abort, nothing in flight; a split live: UNSPLIT
    # under the lease, the record read again (Holder.OURS)
    TAKE_OVER_ROLL_BACK = "take_over_roll_back"  # take the record over, begin a rollback, drive it
    TAKE_OVER_FINISH = "take_over_finish"  # take over a rollback in flight and drive it to its end
    REPUT_BLUE = "reput_blue"  # ended on blue: put live on blue again (idempotent), report the recorded end
    # refusals
    REFUSE_RUNNING = "refuse_running"  # exit 4, naming the holder
    REFUSE_STACK_CHANGE = "refuse_stack_change"  # exit 4: abort: a stack change runs, nothing to abort
    REFUSE_WHILE_DRIVEN = "refuse_while_driven"  # exit 4: `abort --to` acts once no driver runs
    REFUSE_INTERRUPTED = "refuse_interrupted"  # exit 11: --resume or --rollback (or abort)
    NOTHING_INTERRUPTED = "nothing_interrupted"  # exit 2: --resume/--rollback with nothing to act on
    NOT_DEPLOYED = "not_deployed"  # exit 2 (NotDeployedError): --resume/--rollback with no stack
    NOTHING_TO_ROLL_BACK = "nothing_to_roll_back"  # exit 2: rollback with no record
    RECORD_GONE = "record_gone"  # exit 2: no record under the lease
    FINISHED_PROMOTED = "finished_promoted"  # exit 1: it ended promoted before abort / --rollback got it
    NOT_PAUSED = "not_paused"  # exit 2: resume-promotion with no promotion paused
    NO_LONGER_PAUSED = "no_longer_paused"  # exit 2: the paused promotion went on or ended before our lease
    # what a wait finds (ABORT_WAIT, RESUME_WAIT) and where it gives up
    KEEP_WAITING = "keep_waiting"
    FOLLOW = "follow"  # a resume took the promotion asked over: ask its new driver
    CLEAR_STALE = "clear_stale"  # take and give back a dead driver's lease, then read as no lease
    PROMOTED_FIRST = "promoted_first"  # exit 1: it ended promoted before it saw the abort
    REPORT_END = "report_end"  # exit 0: the promotion asked ended on blue: say how
    WENT_ON = "went_on"  # exit 0
    DID_NOT_GO_ON = "did_not_go_on"  # exit 1: a breach or an abort ended the pause first
    NO_LONGER_CURRENT = "no_longer_current"  # exit 1: another promotion's record, or none
    STILL_ROLLING_BACK = "still_rolling_back"  # exit 4: the driver acted, not done within the wait
    NO_ANSWER = "no_answer"  # exit 4: the driver did not act within the wait
    # live's alias (START_LIVE, UNSPLIT) and the record under `abort --to`'s lease (ABORT_TO_HELD)
    WAIT_SETTLED = "wait_settled"  # Lambda is finishing a move: wait for it (a stop cancels)
    REFUSE_SPLIT = "refuse_split"  # exit 1 (start) / 5 (abort): split with nothing in flight
    NOTHING_TO_PROMOTE = "nothing_to_promote"  # exit 0: green is what live serves
    PROMOTE = "promote"  # write the record, drive it
    UNSPLIT = "unsplit"  # under the abort lease, the record read again: UNSPLIT_HELD
    PUT_LIVE = "put_live"  # move live, write nothing: the record already says it is there
    RETARGET = "retarget"  # record a rollback to the version asked (machine.retarget), drive it
    STARTED_MEANWHILE = "started_meanwhile"  # exit 4: a promotion started while abort looked at live


# Sets of cells, for writing rows. A Found or Holder alone stands for itself.
ANY_HOLDER = frozenset(Holder)
LOOKED = ANY_HOLDER - {Holder.OURS}  # a look before taking the lease
FREE = frozenset({Holder.NONE, Holder.STALE})
FREE_OR_OURS = FREE | {Holder.OURS}
LIVE = frozenset({Holder.PROMOTION, Holder.PUBLISHING, Holder.STACK_CHANGE})
ANY_FOUND = frozenset(Found)
DEPLOYED = ANY_FOUND - {Found.NOT_DEPLOYED}
INTERRUPTED = frozenset({Found.IN_FLIGHT, Found.PAUSED, Found.ROLLING_BACK})  # in flight, its driver gone
ENDED = frozenset({Found.PROMOTED, Found.ENDED_ON_BLUE})
IDLE = ENDED | {Found.NO_RECORD}  # nothing in flight
# Under our own lease a stack gone (no bucket) reads as no record: nothing can have been recorded
NOTHING = frozenset({Found.NOT_DEPLOYED, Found.NO_RECORD})

C = Command
V = Verdict
RECOVERING = frozenset({C.PROMOTE_ROLLBACK, C.ABORT, C.ABORT_AGAIN})  # `_recover` for all but `rollback`
ABORTS = frozenset({C.ABORT, C.ABORT_AGAIN})

# Every (command, holder, found) has exactly one row (tests/test_machine.py). Read a command's rows
# top to bottom: before the lease (LOOKED, FREE, LIVE), then under it (OURS).
# (command or commands, holder or holders, found or founds, verdict)
_COMMAND_ROWS: tuple[tuple[Any, ...], ...] = (
    # command               holder        found            verdict
    (C.PROMOTE,             LOOKED,       Found.NOT_DEPLOYED, V.FIRST_DEPLOY),  # nothing live to gate against
    (C.PROMOTE,             LIVE,         DEPLOYED,        V.REFUSE_RUNNING),
    (C.PROMOTE,             FREE_OR_OURS, IDLE,            V.START),
    (C.PROMOTE,             Holder.OURS,  Found.NOT_DEPLOYED, V.START),
    (C.PROMOTE,             FREE_OR_OURS, {Found.IN_FLIGHT, Found.PAUSED}, V.REFUSE_INTERRUPTED),
    (C.PROMOTE,             FREE_OR_OURS, Found.ROLLING_BACK, V.FINISH_THEN_START),

    (C.PROMOTE_RESUME,      LOOKED,       Found.NOT_DEPLOYED, V.NOT_DEPLOYED),
    (C.PROMOTE_RESUME,      LIVE,         DEPLOYED,        V.REFUSE_RUNNING),
    (C.PROMOTE_RESUME,      FREE_OR_OURS, INTERRUPTED,     V.RESUME),  # with a paused id, under the lease: RESUME_PAUSED
    (C.PROMOTE_RESUME,      FREE_OR_OURS, IDLE,            V.NOTHING_INTERRUPTED),
    (C.PROMOTE_RESUME,      Holder.OURS,  Found.NOT_DEPLOYED, V.NOTHING_INTERRUPTED),

    (C.PROMOTE_ROLLBACK,    LOOKED,       Found.NOT_DEPLOYED, V.NOT_DEPLOYED),
    (C.PROMOTE_ROLLBACK,    LIVE,         DEPLOYED,        V.REFUSE_RUNNING),
    (C.PROMOTE_ROLLBACK,    FREE,         INTERRUPTED,     V.ROLL_BACK),
    (C.PROMOTE_ROLLBACK,    FREE,         IDLE,            V.NOTHING_INTERRUPTED),

    # rollback: "nothing recorded" before any lease is looked at (a running `up` with no record too)
    (C.ROLLBACK,            LOOKED,       Found.NOT_DEPLOYED, V.REQUIRE_DEPLOYED),
    (C.ROLLBACK,            LOOKED,       Found.NO_RECORD, V.NOTHING_TO_ROLL_BACK),
    (C.ROLLBACK,            LIVE,         DEPLOYED - {Found.NO_RECORD}, V.REFUSE_RUNNING),
    (C.ROLLBACK,            FREE,         DEPLOYED - {Found.NO_RECORD}, V.ROLL_BACK),  # the last promotion's blue too
    (C.ROLLBACK,            Holder.OURS,  {Found.IN_FLIGHT, Found.PAUSED, Found.PROMOTED}, V.TAKE_OVER_ROLL_BACK),

    # abort: a stack change's lease is looked at twice (it may have ended, and a promotion started)
    (ABORTS,                LOOKED,       Found.NOT_DEPLOYED, V.NOTHING_TO_DO),
    (C.ABORT,               Holder.STACK_CHANGE, DEPLOYED, V.LOOK_AGAIN),
    (C.ABORT_AGAIN,         Holder.STACK_CHANGE, DEPLOYED, V.REFUSE_STACK_CHANGE),  # it reads no abort request
    (ABORTS,                {Holder.PROMOTION, Holder.PUBLISHING}, DEPLOYED, V.REQUEST_ABORT),
    (ABORTS,                FREE,         INTERRUPTED,     V.ROLL_BACK),
    (ABORTS,                FREE,         IDLE,            V.NOTHING_IN_FLIGHT),

    # under the rollback lease (`_recover`): only `rollback` undoes a promotion that ended promoted
    (RECOVERING | {C.ROLLBACK}, Holder.OURS, NOTHING,      V.RECORD_GONE),
    (RECOVERING,            Holder.OURS,  {Found.IN_FLIGHT, Found.PAUSED}, V.TAKE_OVER_ROLL_BACK),
    (RECOVERING | {C.ROLLBACK}, Holder.OURS, Found.ROLLING_BACK, V.TAKE_OVER_FINISH),
    (RECOVERING,            Holder.OURS,  Found.PROMOTED,  V.FINISHED_PROMOTED),
    (RECOVERING | {C.ROLLBACK}, Holder.OURS, Found.ENDED_ON_BLUE, V.REPUT_BLUE),

    (C.ABORT_TO,            LOOKED,       Found.NOT_DEPLOYED, V.REQUIRE_DEPLOYED),
    (C.ABORT_TO,            LIVE,         DEPLOYED,        V.REFUSE_WHILE_DRIVEN),
    (C.ABORT_TO,            FREE_OR_OURS, DEPLOYED,        V.MOVE_TO),  # under the lease: ABORT_TO_HELD
    (C.ABORT_TO,            Holder.OURS,  Found.NOT_DEPLOYED, V.MOVE_TO),

    # resume-promotion: only a pause; its driver gone, this machine drives it on (`promote --resume`)
    (C.RESUME_PROMOTION,    ANY_HOLDER,   ANY_FOUND - {Found.PAUSED}, V.NOT_PAUSED),
    (C.RESUME_PROMOTION,    LIVE,         Found.PAUSED,    V.CONTINUE),
    (C.RESUME_PROMOTION,    FREE_OR_OURS, Found.PAUSED,    V.RESUME),

    # up, rotate-origin-secret, destroy: not while a promotion owns the function
    (C.UP,                  LOOKED,       Found.NOT_DEPLOYED, V.PROCEED_UNLEASED),
    (C.UP,                  LIVE,         DEPLOYED,        V.REFUSE_RUNNING),
    (C.UP,                  FREE_OR_OURS, IDLE,            V.PROCEED),
    (C.UP,                  Holder.OURS,  Found.NOT_DEPLOYED, V.PROCEED),
    (C.UP,                  FREE_OR_OURS, INTERRUPTED,     V.REFUSE_INTERRUPTED),
)  # fmt: skip


def _cells(*keys: Any) -> list[tuple[Any, ...]]:
    """The cells a row's keys cover: each a set, or one value standing for itself."""
    return list(itertools.product(*(list(k) if isinstance(k, frozenset | set) else [k] for k in keys)))


class Table(dict[KeyT, CellT]):
    """A decision table: its cells (a dict), and the rows they were written as, which
    docs/architecture.md shows (orchestrator/release/machine_doc.py renders them)."""

    rows: tuple[tuple[Any, ...], ...] = ()


def _table(rows: tuple[tuple[Any, ...], ...]) -> Table[Any, Any]:
    """Rows of (key sets..., verdict) expanded into cells; a cell two rows cover is an error."""
    table: Table[Any, Any] = Table()
    table.rows = rows
    for *keys, verdict in rows:
        for cell in _cells(*keys):
            key = cell if len(cell) > 1 else cell[0]
            if key in table:
                raise ValueError(f"two rows for {key}: {table[key]} and {verdict}")
            table[key] = verdict
    return table


COMMANDS: Table[tuple[Command, Holder, Found], Verdict] = _table(_COMMAND_ROWS)

# `promote --resume` of the paused promotion `resume-promotion` named, under the lease: by what the
# look found and whether it is that promotion. Nothing in flight is said first, as for --resume.
RESUME_PAUSED: Table[tuple[Found, bool], Verdict] = _table((
    # found                                  the paused one?  verdict
    (NOTHING | ENDED,                        {True, False},   V.NOTHING_INTERRUPTED),
    (Found.PAUSED,                           True,            V.RESUME),
    (Found.PAUSED,                           False,           V.NO_LONGER_PAUSED),
    ({Found.IN_FLIGHT, Found.ROLLING_BACK},  {True, False},   V.NO_LONGER_PAUSED),
))  # fmt: skip


class Waiting(StrEnum):
    """The lease, as a wait loop finds it, against the lease it waits on."""

    NONE = "none"
    STALE = "stale"
    ASKED = "asked"  # live: the very lease (token) the command asked
    ANOTHER = "another"  # live: another acquisition (a take-over, or another run)


def waiting(*, present: bool, live: bool, token: str | None, asked: str | None) -> Waiting:
    """What a wait loop found of the lease, against the token it asked (None: any). Pure."""
    if not present:
        return Waiting.NONE
    if not live:
        return Waiting.STALE
    return Waiting.ASKED if asked is not None and token == asked else Waiting.ANOTHER


ALIVE = frozenset({Waiting.ASKED, Waiting.ANOTHER})
EITHER = frozenset({True, False})

# `abort`, waiting for the driver it asked: by the lease, the record, and whether the record is
# the promotion asked (the lease's). A stale lease with nothing in flight is cleared, then read
# as no lease. Another promotion's driver is not followed: it is not the one asked.
ABORT_WAIT: Table[tuple[Waiting, Found, bool], Verdict] = _table((
    # lease            found                  the one asked?  verdict
    (Waiting.ASKED,    ANY_FOUND,             EITHER,         V.KEEP_WAITING),
    (Waiting.ANOTHER,  INTERRUPTED,           True,           V.FOLLOW),
    (Waiting.ANOTHER,  INTERRUPTED,           False,          V.KEEP_WAITING),
    (Waiting.ANOTHER,  NOTHING | ENDED,       EITHER,         V.KEEP_WAITING),
    (FREE_WAITS := frozenset({Waiting.NONE, Waiting.STALE}), INTERRUPTED, EITHER, V.ROLL_BACK),  # its driver is gone
    (Waiting.STALE,    NOTHING | ENDED,       EITHER,         V.CLEAR_STALE),  # died before recording
    (Waiting.NONE,     Found.PROMOTED,        True,           V.PROMOTED_FIRST),
    (Waiting.NONE,     Found.ENDED_ON_BLUE,   True,           V.REPORT_END),
    (Waiting.NONE,     NOTHING,               True,           V.NOTHING_IN_FLIGHT),  # (no record is never the one asked)
    (Waiting.NONE,     NOTHING | ENDED,       False,          V.NOTHING_IN_FLIGHT),
))  # fmt: skip

# `abort`'s wait ran out: by what the last look found (whichever promotion).
ABORT_GAVE_UP: Table[Found, Verdict] = _table((
    (Found.ROLLING_BACK,                     V.STILL_ROLLING_BACK),  # it acted: not done yet
    (ANY_FOUND - {Found.ROLLING_BACK},       V.NO_ANSWER),
))  # fmt: skip

# `resume-promotion`, waiting for the paused driver to go on: by the lease (any live one is a
# driver at work), the record, and whether it is the paused promotion.
RESUME_WAIT: Table[tuple[Waiting, Found, bool], Verdict] = _table((
    # lease            found                                      the paused one?  verdict
    (frozenset(Waiting), ANY_FOUND,                               False,           V.NO_LONGER_CURRENT),
    (frozenset(Waiting), NOTHING,                                 True,            V.NO_LONGER_CURRENT),
    (frozenset(Waiting), {Found.IN_FLIGHT, Found.PROMOTED},       True,            V.WENT_ON),
    (frozenset(Waiting), {Found.ROLLING_BACK, Found.ENDED_ON_BLUE}, True,          V.DID_NOT_GO_ON),
    (ALIVE,            Found.PAUSED,                              True,            V.KEEP_WAITING),
    (FREE_WAITS,       Found.PAUSED,                              True,            V.RESUME),  # died while paused
))  # fmt: skip

# A new promotion, under the lease and green published: by how live reads, whether Lambda's
# move was waited for already, and whether live serves green.
START_LIVE: Table[tuple[Reading, bool, bool], Verdict] = _table((
    # live             waited?   on green?  verdict
    (Reading.MOVING,   False,    EITHER,    V.WAIT_SETTLED),
    (Reading.MOVING,   True,     EITHER,    V.REFUSE_SPLIT),  # still not whole
    (Reading.SPLIT,    EITHER,   EITHER,    V.REFUSE_SPLIT),
    (Reading.WHOLE,    EITHER,   True,      V.NOTHING_TO_PROMOTE),
    (Reading.WHOLE,    EITHER,   False,     V.PROMOTE),
))  # fmt: skip


class Ends(StrEnum):
    """Where the last record says live ends (`ends_on`), against the published versions."""

    NO_RECORD = "no record"
    PUBLISHED = "published"
    GONE = "not published"


def ends_on(record: PromotionRecord) -> str:
    """The version a finished promotion left live on: green if it ended promoted, else blue."""
    return record.green if family(record.phase) is Family.DONE_GREEN else record.blue


def ends(record: PromotionRecord | None, published: list[str]) -> Ends:
    """Where the last record ends, as UNSPLIT reads it. Pure."""
    if record is None:
        return Ends.NO_RECORD
    return Ends.PUBLISHED if ends_on(record) in published else Ends.GONE


# `abort` with nothing in flight: a split live alias is put on the version the last record ended
# on (the record is the intent; live should agree), else refused with the fix (`--to`). Where
# the live alias is not split, where the record ends is not asked (no Lambda call).
UNSPLIT: Table[tuple[Reading, Ends], Verdict] = _table((
    ({Reading.WHOLE, Reading.MOVING}, frozenset(Ends),            V.NOTHING_IN_FLIGHT),
    (Reading.SPLIT,                   {Ends.NO_RECORD, Ends.GONE}, V.REFUSE_SPLIT),
    (Reading.SPLIT,                   Ends.PUBLISHED,              V.UNSPLIT),
))  # fmt: skip

# ...and under the abort lease, the record read again: still that ended promotion, or not.
UNSPLIT_HELD: Table[tuple[Found, bool], Verdict] = _table((
    (ENDED,                           True,    V.PUT_LIVE),
    (ENDED,                           False,   V.STARTED_MEANWHILE),
    (NOTHING | INTERRUPTED,           EITHER,  V.STARTED_MEANWHILE),
))  # fmt: skip

# `abort --to VERSION` under its lease: by the record and whether it already ends on VERSION.
ABORT_TO_HELD: Table[tuple[Found, bool], Verdict] = _table((
    (NOTHING,                         EITHER,  V.PUT_LIVE),  # no record to close
    (ENDED,                           True,    V.PUT_LIVE),  # the record already says live is there
    (ENDED,                           False,   V.RETARGET),
    (INTERRUPTED,                     EITHER,  V.RETARGET),
))  # fmt: skip


class Ending(StrEnum):
    """How a driven promotion's command ends, from its final record (`_drive`)."""

    PROMOTED = "promoted"  # exit 0, the report; old versions pruned under the lease
    ABORTED = "aborted"  # exit 9 (AbortedError)
    CANCELLED = "cancelled"  # exit 130 (Cancelled): a signal
    GATE_FAILED = "gate_failed"  # exit 7 (GateFailedError): a gate, the health check, or a void gate
    STOPPED = "stopped"  # exit 1: an error rolled it back


_NOT_ENDED_BY_NAME = frozenset(Phase) - {Phase.PROMOTED, Phase.ABORTED}
_CAUSES = frozenset({None, *Outcome})

ENDINGS: Table[tuple[Phase, Outcome | None], Ending] = _table((
    # final phase          cause                                                ending
    (Phase.PROMOTED,       _CAUSES,                                             Ending.PROMOTED),
    (Phase.ABORTED,        _CAUSES,                                             Ending.ABORTED),
    (_NOT_ENDED_BY_NAME,   Outcome.INTERRUPTED,                                 Ending.CANCELLED),
    (_NOT_ENDED_BY_NAME,   {Outcome.FAILED, Outcome.VOID},                      Ending.GATE_FAILED),
    (_NOT_ENDED_BY_NAME,   {None, Outcome.DONE, Outcome.ERROR, Outcome.ABORT},  Ending.STOPPED),
))  # fmt: skip


def left_blue(record: PromotionRecord) -> bool:
    """Whether live ever had green's weights (a shift in the record's log): a rolled-back
    promotion's message says live is "back" on blue, else "still"."""
    return any(t.phase == Phase.SHIFTING for t in record.transitions)


def ending(record: PromotionRecord) -> Ending:
    """How the command that drove `record` to its end ends (ENDINGS)."""
    return ENDINGS[(record.phase, record.cause)]


def ask(table: Mapping[tuple[Any, ...], Verdict], known: tuple[Any, ...], last: Iterable[Any],
        fact: Callable[[], Any]) -> Verdict:  # fmt: skip
    """The cell of `table` for `known` and a last key, `fact`, asked only when the row's verdict
    depends on it (a Lambda call not made where it would change nothing)."""
    verdicts = {table[(*known, value)] for value in last}
    if len(verdicts) == 1:
        return verdicts.pop()
    return table[(*known, fact())]


# -- coarse views, derived: `status` and the record format tests -------------------------------


class Situation(StrEnum):
    """An environment as `status` shows it."""

    IDLE = "idle"  # nothing in flight (no record, or a finished one); the lease is free or stale
    RUNNING = "running"  # a live lease: some driver is publishing or promoting right now
    INTERRUPTED = "interrupted"  # a record in flight and no live lease: its driver is gone


def situation(record: PromotionRecord | None, lease_live: bool) -> Situation:
    """Classify what a command found, coarsely. Pure."""
    if lease_live:
        return Situation.RUNNING
    if record is not None and record.in_flight:
        return Situation.INTERRUPTED
    return Situation.IDLE


def verb(command: str, record: PromotionRecord | None, lease_live: bool) -> Verdict:
    """What `command` does on a deployed environment with `record`, before the lease: its row
    of COMMANDS, a live lease read as a promotion's."""
    held = Holder.PROMOTION if lease_live else Holder.NONE
    return COMMANDS[(Command(command), held, found(True, record))]
