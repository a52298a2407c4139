"""Oracles for the command table (issue 28, step E6): what each command does with each
situation, as release.py and machine.verb decided it before machine.COMMANDS and its sibling
tables did, copied here verbatim (only renamed: `found.verb(c)` -> `old_look_verb(found, c)`,
`machine.verb` -> `old_verb`, `found.stack_change_running` -> `old_stack_change_running(found)`;
`Verb` here is the old enum), and checked equal to the code of today.

Both run as methods of a Release whose I/O is replaced by fakes that log (the looks, record
reads and writes, the lease, the driver, live and the published versions are scripted by a
`World`): the old methods in `OldRelease`, today's in `NewRelease`. Equal logs and equal
results (or equal errors: type, message, fix) in every scenario: no behaviour changed.
Scenarios: every look (not deployed; no lease, a stale one, a live one of each kind and token;
no record, a record of each phase, of this promotion or another) for the first look of each
command, crossed with every look or read under the lease; the `_start` live-alias facts x every
ending (phase x cause); and, for the wait loops of `abort` and `resume-promotion`, generated
sequences of looks (hypothesis).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.base import faults
from orchestrator.base.errors import (
    AbortedError,
    Cancelled,
    EdgeshipError,
    GateFailedError,
    InterruptedPromotion,
    LeaseLostError,
    NotDeployedError,
    PromotionLockedError,
    RefusedError,
    RollbackIncompleteError,
    UsageError,
)
from orchestrator.base.processes import alive, signals_deferred, sigterm_as_interrupt
from orchestrator.base.progress import ProgressEvent
from orchestrator.build.artifacts import model_example
from orchestrator.config.settings import Environment, TrafficSettings
from orchestrator.release import lease, machine
from orchestrator.release import operations as release_module
from orchestrator.release.lease import Lease
from orchestrator.release.machine import Outcome, Phase, PromotionRecord
from orchestrator.release.operations import (
    Confirm,
    GreenModel,
    Holding,
    Look,
    PromoteOptions,
    Recovered,
    Release,
    gate_fix,
    stop_outcome,
)
from orchestrator.release.plan import check_pause_at, make_plan, weights
from orchestrator.release.report import PromotionReport
from orchestrator.release.traffic import AliasState, Reading, read_alias

# --- the fakes: a Release whose I/O is scripted and logged ------------------------------------------


@dataclass
class World:
    """What the environment answers, in order; the last answer of a list is repeated."""

    looks: list[Look]
    reads: list[PromotionRecord | None] = field(default_factory=list)  # none: the last look's record
    live: AliasState = field(default_factory=lambda: AliasState("1", {}))
    settled: AliasState = field(default_factory=lambda: AliasState("1", {}))
    published: tuple[str, ...] = ("1", "2", "3")
    green: str = "3"  # the version a publish makes
    end: tuple[Phase, Outcome | None] = (Phase.PROMOTED, None)  # where the driver ends a record
    outputs: bool = True  # require_deployed passes: a stack with outputs (its bucket gone)
    take_refused: bool = False  # a stack change's take finds the lease held
    kept: bool = True  # a stack change's lease was its own to the end
    log: list[Any] = field(default_factory=list)
    last: Look | None = None
    clock: float = 0.0

    def next_look(self) -> Look:
        self.last = self.looks.pop(0) if len(self.looks) > 1 else self.looks[0]
        self.log.append(("look", _look_key(self.last)))
        return self.last

    def next_read(self) -> tuple[PromotionRecord | None, str | None]:
        if self.reads:
            record = self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]
        else:
            record = self.last.record if self.last else None
        self.log.append(("read", _record_key(record)))
        return record, "etag-read"


def _record_key(record: PromotionRecord | None) -> Any:
    return None if record is None else record.to_dict()


def _look_key(found: Look) -> Any:
    held = found.lease
    lease_key = None if held is None else (held.token, held.promotion, held.kind)
    return (found.deployed, _record_key(found.record), lease_key, found.lease_live)


class FakeRecords:
    def __init__(self, world: World) -> None:
        self.world = world
        self.writes = 0

    def read(self) -> tuple[PromotionRecord | None, str | None]:
        return self.world.next_read()

    def write(self, record: PromotionRecord, etag: str | None) -> str:
        self.writes += 1
        self.world.log.append(("write", record.to_dict(), etag))
        return f"etag-{self.writes}"

    def request_abort(self, by: str, promotion: str | None, token: str) -> None:
        self.world.log.append(("request_abort", promotion, token))

    def request_continue(self, by: str, promotion: str) -> None:
        self.world.log.append(("request_continue", promotion))


class FakeLeases:
    def __init__(self, world: World) -> None:
        self.world = world

    def take(self, mine: Lease, pid_alive: Any = None) -> tuple[Lease, str]:
        self.world.log.append(("take", mine.kind))
        if self.world.take_refused:
            raise PromotionLockedError("held", fix="wait")
        return mine, "lease-etag"


class FakeHeartbeat:
    def __init__(self, world: World, *args: Any, **kwargs: Any) -> None:
        self.world = world
        self.lease = replace(lease.me(30), holder="me")
        self.max_quiet_s = 0.0

    def __enter__(self) -> FakeHeartbeat:
        self.world.log.append("heartbeat")
        return self

    def attach(self, promotion: str) -> None:
        self.world.log.append(("attach", promotion))

    @contextmanager
    def patient(self) -> Iterator[None]:
        yield


class FakeLatch:
    rolls_back = False

    @contextmanager
    def raising(self) -> Iterator[None]:
        yield

    def raise_if_received(self) -> None:
        pass


class FakeTraffic:
    world: World

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def state(self, name: str = "live") -> AliasState:
        return self.world.live

    def versions(self) -> list[str]:
        return list(self.world.published)


@dataclass
class FakePublished:
    green: str
    model: Path | None = None


class FakeTarget:
    function_name = "fn"

    def __init__(self, world: World) -> None:
        self.world = world

    def check_ready(self) -> None:
        self.world.log.append("check_ready")

    def require_deployed(self) -> None:
        self.world.log.append("require_deployed")
        if not self.world.outputs:
            raise NotDeployedError("no stack", fix="orchestrator up")

    def publish(self, function_dir: Any, model: Any, reporter: Any) -> FakePublished:
        self.world.log.append("publish")
        return FakePublished(self.world.green)

    def lambda_client(self) -> None:
        return None


class FakeDriver:
    def __init__(self, target: Any, records: FakeRecords, *args: Any, **kwargs: Any) -> None:
        self.world = records.world

    def run(self, record: PromotionRecord, etag: str) -> PromotionRecord:
        self.world.log.append(("drive", record.to_dict(), etag))
        phase, cause = self.world.end
        return replace(record, phase=phase, cause=cause, reason=f"ended {phase}")


ENV = Environment(
    "dev", "us-east-1", "123456789012", traffic=TrafficSettings(schedule="linear", linear_steps=3)
)


class FakeIO:
    """Release's I/O, scripted by a World and logged. First in the MRO: it wins over Release's."""

    world: World

    def __init__(self, world: World) -> None:
        self.world = world
        self.target = FakeTarget(world)  # type: ignore[assignment]
        self.env = ENV
        self.reporter = None  # type: ignore[assignment]
        self.reports_root = Path("/nonexistent-reports")
        self.say = lambda event: world.log.append(("say", event))  # type: ignore[assignment]
        self._contract_view = None
        self._metadata = {}
        self.__dict__["records"] = FakeRecords(world)
        self.__dict__["leases"] = FakeLeases(world)

    def look(self) -> Look:
        return self.world.next_look()

    @contextmanager
    def _holding(self, kind: str = "promotion") -> Iterator[Holding]:
        self.world.log.append(("hold", kind))
        yield Holding(FakeHeartbeat(self.world), FakeLatch())  # type: ignore[arg-type]
        self.world.log.append(("release", kind))

    def _traffic(self) -> FakeTraffic:
        return FakeTraffic()

    def _live(self) -> AliasState:
        return self.world.live

    def _live_or_none(self) -> AliasState | None:
        return self.world.live

    def _live_view(self) -> dict[str, Any]:
        return {"live": self.world.live.version}

    def _settled_live(self, holding: Holding) -> AliasState:
        self.world.log.append("settle")
        return self.world.settled

    def _green_model(self, options: PromoteOptions) -> GreenModel:
        self.world.log.append("green_model")
        return GreenModel({}, {"name": "m"})

    def _contract(
        self, options: PromoteOptions, green: GreenModel, live_version: str
    ) -> tuple[None, dict[str, Any]]:
        self.world.log.append(("contract", live_version))
        return None, {"contract": live_version}

    def _first_deploy(self, options: PromoteOptions, confirm: Any) -> PromotionReport:
        self.world.log.append("first_deploy")
        return PromotionReport("none", "dev", None, self.world.green, "-", "deployed")

    def _back_on_blue(self, holding: Holding, record: PromotionRecord) -> None:
        self.world.log.append(("back_on_blue", record.blue))

    def _put_live(self, holding: Holding, version: str, promotion: str | None) -> None:
        self.world.log.append(("put_live", version, promotion))

    def _prune(self, record: PromotionRecord) -> dict[str, Any]:
        self.world.log.append(("prune", record.id))
        return {"pruned": record.id}

    def _write(self, report: PromotionReport, record: PromotionRecord, directory: Path) -> None:
        self.world.log.append(("report", report.to_dict(), record.id))

    def _give_back(self, heartbeat: Any) -> bool:
        self.world.log.append("give_back")
        return self.world.kept

    def _drop_if_ours(self, mine: Lease) -> None:
        self.world.log.append("drop_if_ours")


class NewRelease(FakeIO, Release):
    """Today's Release, its I/O faked."""


# The names the old methods use, as release.py had them
Heartbeat: Any = None  # set per run to a FakeHeartbeat factory
Traffic: Any = FakeTraffic
Driver: Any = FakeDriver


# --- the oracle: machine.py's command table and release.py's decisions as they were (commit 505b271) ---


class OldSituation(StrEnum):
    """An environment as a command finds it."""

    IDLE = "idle"  # nothing in flight (no record, or a finished one); the lease is free or stale
    RUNNING = "running"  # a live lease: some driver is publishing or promoting right now
    INTERRUPTED = "interrupted"  # a record in flight and no live lease: its driver is gone


def old_situation(record: PromotionRecord | None, lease_live: bool) -> OldSituation:
    """Classify what a command found. Pure."""
    if lease_live:
        return OldSituation.RUNNING
    if record is not None and record.in_flight:
        return OldSituation.INTERRUPTED
    return OldSituation.IDLE


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


OLD_COMMANDS: dict[tuple[str, OldSituation], Verb] = {
    ("promote", OldSituation.IDLE): Verb.START,
    ("promote", OldSituation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote", OldSituation.INTERRUPTED): Verb.REFUSE_INTERRUPTED,  # FINISH_THEN_START if rolling_back
    ("promote --resume", OldSituation.IDLE): Verb.NOTHING_INTERRUPTED,
    ("promote --resume", OldSituation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote --resume", OldSituation.INTERRUPTED): Verb.RESUME,
    ("promote --rollback", OldSituation.IDLE): Verb.NOTHING_INTERRUPTED,
    ("promote --rollback", OldSituation.RUNNING): Verb.REFUSE_RUNNING,
    ("promote --rollback", OldSituation.INTERRUPTED): Verb.ROLL_BACK,
    ("rollback", OldSituation.IDLE): Verb.ROLL_BACK,  # the last promotion's blue
    ("rollback", OldSituation.RUNNING): Verb.REFUSE_RUNNING,
    ("rollback", OldSituation.INTERRUPTED): Verb.ROLL_BACK,
    ("abort", OldSituation.IDLE): Verb.NOTHING_TO_DO,
    ("abort", OldSituation.RUNNING): Verb.REQUEST_ABORT,
    ("abort", OldSituation.INTERRUPTED): Verb.ROLL_BACK,
    ("up", OldSituation.IDLE): Verb.PROCEED,
    ("up", OldSituation.RUNNING): Verb.REFUSE_RUNNING,
    ("up", OldSituation.INTERRUPTED): Verb.REFUSE_INTERRUPTED,
    # Only for a promotion in `paused` (any other phase: NOT_PAUSED). Interrupted while
    # paused: this machine takes over and drives it on.
    ("resume-promotion", OldSituation.IDLE): Verb.NOT_PAUSED,
    ("resume-promotion", OldSituation.RUNNING): Verb.CONTINUE,
    ("resume-promotion", OldSituation.INTERRUPTED): Verb.RESUME,
}


def old_verb(command: str, record: PromotionRecord | None, lease_live: bool) -> Verb:
    """What `command` should do on an environment in this state. Pure."""
    found = old_situation(record, lease_live)
    chosen = OLD_COMMANDS[(command, found)]
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


def old_look_verb(found: Look, command: str) -> Verb:  # Look.verb, as it was
    return old_verb(command, found.record, found.lease_live)


def old_stack_change_running(found: Look) -> bool:  # Look.stack_change_running, as it was
    return found.lease_live and found.lease is not None and found.lease.stack_change


class OldRelease(FakeIO, Release):
    """Release's deciding methods as they were, its I/O faked as NewRelease's."""

    def guard_stack_change(self, command: str) -> None:
        """`up` and `destroy` must not change the function while a promotion owns the environment."""
        found = self.look()
        self._refuse(found, old_look_verb(found, "up"), command)

    @contextmanager
    def holding_for_stack_change(self, command: str) -> Iterator[None]:
        """Hold the environment's lease while `command` (`up`, `rotate-origin-secret`)
        changes the stack, so that no promotion starts while it moves
        `candidate` and publishes, and none runs when it starts (each side gets exit 4 naming
        the other). Renewed by the heartbeat, released at the end, also on failure, Ctrl-C
        or SIGTERM (an interrupt for the whole hold, not only the engine's part: CI cancels
        with SIGTERM, which would otherwise end the process with the lease held); a killed
        run's lease expires, or is stale at once on its own machine. No SignalLatch: Ctrl-C
        must reach the engine's cancel (stacks.py). A command that ends with the lease no
        longer its own (taken over while renewals failed) says so: LeaseLostError, exit 12.
        An environment never deployed has no bucket, so no lease: nothing promotes there."""
        with sigterm_as_interrupt():
            found = self.look()
            self._refuse(found, old_look_verb(found, "up"), command)
            if not found.deployed:
                yield
                return
            lease_s = self.env.traffic.lease_s
            clock = lease.lease_clock()
            taken_at = clock()  # the lease's expiry counts from here (lease.me), not from the take's answer
            mine = lease.me(lease_s, kind=command)
            heartbeat: Heartbeat | None = None
            refused = False  # the take found the lease held: nothing of ours to give back
            kept = True
            try:
                # Taken inside the try: an interrupt during the take (its write may have
                # landed) or right after it is cleaned up below, by our token.
                try:
                    held, etag = self.leases.take(mine, pid_alive=alive)
                except PromotionLockedError:
                    refused = True
                    raise
                heartbeat = Heartbeat(
                    self.leases,
                    held,
                    etag,
                    lease_s,
                    abort_check=lambda _lease: False,
                    clock=clock,
                    taken_at=taken_at,
                )
                # The main thread waits on the engine, which has its own timeouts, not on a loop
                # of ours that could hang: never stop renewing for want of beats (a driver's guard).
                heartbeat.max_quiet_s = float("inf")
                heartbeat.__enter__()
                faults.point("stack-change-after-lease")
                # Ours now: a promotion found in flight (its driver gone since our look) wins.
                again = self.look()
                self._refuse(again, old_verb("up", again.record, lease_live=False), command)
                yield
            finally:
                # Done, failed or interrupted: the lease back if still ours. A signal now (CI's
                # SIGTERM after its SIGINT) waits until it is back, then interrupts: raised inside
                # the DELETE it would leave the lease held until it expires.
                with signals_deferred():
                    if heartbeat is not None:
                        kept = self._give_back(heartbeat)
                    elif not refused:  # interrupted in or right after the take: ours if it has our token
                        self._drop_if_ours(mine)
            # reached only when the command finished (an exception goes on from the `finally`)
            if not kept:
                raise self._lost_under(command)

    def promote(self, options: PromoteOptions, confirm: Confirm | None = None) -> PromotionReport:
        """Run a promotion to its end (promoted, or rolled back with a reason), or resume one.

        On an environment with no stack yet there is nothing live to gate a new version
        against: the promotion is a first deploy, an `up`, asked for as `up` asks (`confirm`,
        given the preview; None: go ahead, as `up --yes`)."""
        command = (
            "promote --resume" if options.resume else "promote --rollback" if options.rollback else "promote"
        )
        kind = options.schedule or self.env.traffic.schedule  # a wrong pause fails before any publish
        check_pause_at(weights(self.env.traffic, kind), kind, options.pause_at)
        # A new version's model, checked before the lease and anything published (exit 2);
        # a resumed or rolled-back promotion publishes nothing.
        green = None if options.resume or options.rollback else self._green_model(options)
        self.target.check_ready()  # before the lease, the publish and the package
        found = self.look()
        if not found.deployed:
            if options.resume or options.rollback:  # nothing can have been interrupted
                raise NotDeployedError(
                    f"environment {self.env.name!r} has no stack yet: no promotion to resume or roll back",
                    fix=f"`orchestrator promote --env {self.env.name}` deploys a first version",
                )
            return self._first_deploy(options, confirm)
        chosen = old_look_verb(found, command)
        self._refuse(found, chosen, command)
        if chosen == Verb.ROLL_BACK:
            return self._recover("promote --rollback", "rolled back by `promote --rollback`").report
        with self._holding() as holding:
            # The lease is ours now: what was decided on must still hold (another machine may
            # have finished, resumed or started a promotion between our look and our take).
            again = self.look()
            chosen = old_verb(command, again.record, lease_live=False)
            self._refuse(again, chosen, command)
            if chosen == Verb.RESUME:
                record, etag = again.record, again.record_etag  # read with the lease held
                assert record is not None
                if options.paused_id is not None and (
                    record.id != options.paused_id or record.phase != Phase.PAUSED
                ):
                    raise UsageError(
                        f"promotion {options.paused_id} is no longer paused: {record.id} is {record.phase}",
                        fix=f"see `orchestrator status --env {self.env.name}`",
                    )
                recorded = record.the_plan()
                # Only for the "config changed" notice: the recorded pause needs no re-validation.
                today = replace(make_plan(self.env, record.blue, record.green, example=recorded.example),
                                pause_at=recorded.pause_at)  # fmt: skip
                if record.plan_hash != machine.snapshot_hash(today.to_snapshot()):
                    self.say(ProgressEvent("diagnostic", f"edgeship.toml changed since promotion {record.id} started; "
                                           "resuming with the recorded steps, SLOs and load"))  # fmt: skip
                record = machine.resume(record, now=time.time(), by=holding.heartbeat.lease.holder)
                etag = self.records.write(record, etag)  # this write fences out the old driver
                return self._drive(
                    holding, record, etag, announce=f"resuming promotion {record.id} at {record.phase}"
                )
            if chosen == Verb.FINISH_THEN_START:
                self._finish_interrupted_rollback(holding)
            assert green is not None  # a new promotion (resume and rollback returned above)
            return self._start(holding, options, green)

    def _start(self, holding: Holding, options: PromoteOptions, green: GreenModel) -> PromotionReport:
        faults.point("after-lease")
        # Green's contract against what live serves now that the lease is held: a refusal
        # (exit 2) leaves no version published and live and candidate untouched.
        decision, self._contract_view = self._contract(
            options, green, Traffic(self.target.lambda_client(), self.target.function_name).state().version
        )
        schedule = decision.schedule if decision and decision.schedule else options.schedule
        if decision and decision.say:
            self.say(ProgressEvent("step", decision.say))
        try:
            # Ctrl-C/SIGTERM cancel a publish (an `up`) cleanly; renewed however long it takes
            with holding.latch.raising(), holding.heartbeat.patient():
                published = self.target.publish(options.function_dir, options.model, self.reporter)
            faults.point("after-publish")
            holding.latch.raise_if_received()  # before a record exists, a signal needs no rollback
        except KeyboardInterrupt:
            raise Cancelled(
                "interrupted while publishing; live was not touched", fix="run `orchestrator promote` again"
            ) from None
        # Blue is what live serves now that the lease is held, not what it served before publish.
        live = Traffic(self.target.lambda_client(), self.target.function_name).state()
        if read_alias(live).kind == Reading.MOVING:  # Lambda is finishing a move: wait for it
            live = self._settled_live(holding)
        if not live.whole:
            raise EdgeshipError(
                f"live is split ({live.describe()}) but no promotion is in flight",
                fix=f"`orchestrator rollback --env {self.env.name}` puts it back on one version",
            )
        if live.version == published.green:
            self.say(
                ProgressEvent(
                    "step", f"v{published.green}: no change since the live version; nothing to promote"
                )
            )
            return PromotionReport("none", self.env.name, live.version, published.green, "-", "nothing_to_do",
                                   "no change since the live version")  # fmt: skip
        example = model_example(published.model) if published.model else ()
        plan = make_plan(self.env, live.version, published.green, schedule, example, options.pause_at)
        record = PromotionRecord.new(plan, holding.heartbeat.lease.holder, time.time())
        _, etag = self.records.read()
        etag = self.records.write(record, etag)
        return self._drive(holding, record, etag,
                           announce=f"promotion {record.id}: v{plan.blue} -> v{plan.green}, {plan.schedule} {plan.steps}")  # fmt: skip

    def rollback(self) -> dict[str, Any]:
        """Put live back on blue: an interrupted promotion's, else the last promotion's."""
        found = self.look()
        if not found.deployed:
            self.target.require_deployed()
        if found.record is None:
            raise UsageError(f"no promotion recorded for {self.env.name!r}; nothing to roll back",
                             fix="see `orchestrator status`")  # fmt: skip
        self._refuse(found, old_look_verb(found, "rollback"), "rollback")
        return self._recover("rollback", "rolled back by `orchestrator rollback`").result

    def abort(self, wait_s: float | None = None) -> dict[str, Any]:
        """Stop a promotion from any machine: ask its driver, or finish the job if it is gone."""
        found = self.look()
        if old_stack_change_running(found):
            # Refused below: look once more first. The `up` may have ended since, and a
            # promotion taken the lease: that one is to be stopped, not an `up` waited for.
            found = self.look()
        chosen = old_look_verb(found, "abort") if found.deployed else Verb.NOTHING_TO_DO
        if chosen == Verb.NOTHING_TO_DO:
            return self._nothing_to_abort(found)
        if chosen == Verb.ROLL_BACK:
            return self._recover("abort", "aborted by `orchestrator abort`").result
        assert found.lease is not None
        held = found.lease
        if held.stack_change:  # it never reads abort requests, and has no promotion to roll back
            raise PromotionLockedError(
                f"`{held.kind}` is running on {self.env.name!r} ({held.describe()}): "
                "wait for it; nothing to abort",
                fix=f"`orchestrator status --env {self.env.name}` shows when its lease is gone",
            )
        me = lease.me(self.env.traffic.lease_s).holder
        self.records.request_abort(me, held.promotion, held.token)
        self.say(ProgressEvent("step", f"abort requested; waiting for {held.describe()}"))
        deadline = time.monotonic() + (wait_s if wait_s is not None else self.env.traffic.lease_s + 30)
        now = found
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.look()
            if now.lease_live:
                if (
                    now.lease and now.lease.token != held.token and now.record and now.record.in_flight
                    and held.promotion is not None and now.record.id == held.promotion
                ):  # fmt: skip
                    held = now.lease  # a resume took over the same promotion: the request is for it now
                    self.records.request_abort(me, now.record.id, held.token)
                # (another holder driving another promotion is not followed: it is not the one asked)
                continue  # the driver, or whoever took over from it, is at work
            if now.record and now.record.in_flight:  # its driver is gone mid-promotion: finish the job
                return self._recover("abort", "aborted by `orchestrator abort`").result
            if now.lease is not None:  # it died before recording a promotion: clear its stale lease
                with self._holding("abort"):
                    pass
            ours = now.record is not None and now.record.id == held.promotion
            if ours and now.record and now.record.phase == Phase.PROMOTED:
                raise EdgeshipError(
                    f"promotion {now.record.id} finished (promoted) before it saw the abort; live is on v{now.record.green}",
                    fix=f"`orchestrator rollback --env {self.env.name}` puts live back on v{now.record.blue}",
                )
            return {"env": self.env.name, "outcome": str(now.record.phase) if ours and now.record else "nothing_in_flight",
                    "promotion": held.promotion, **self._live_view()}  # fmt: skip
        if now.record is not None and now.record.phase == Phase.ROLLING_BACK:  # it acted: not done yet
            raise PromotionLockedError(
                f"the driver of {self.env.name!r} is rolling back promotion {now.record.id} to "
                f"v{now.record.blue} and had not finished within the wait: {held.describe()}",
                fix=f"see `orchestrator status --env {self.env.name}`; run `orchestrator abort` again to wait on",
            )
        raise PromotionLockedError(
            f"the driver of {self.env.name!r} did not act on the abort within the wait: {held.describe()}",
            fix="run `orchestrator abort` again; once its lease expires, abort finishes the rollback itself",
        )

    def _nothing_to_abort(self, found: Look) -> dict[str, Any]:
        """`abort` with nothing in flight. A split live alias is not ignored: live is put on the
        version the last record ended on (the record is the intent; live should agree), under
        the lease; without a record naming a published version, refused with the fix."""
        result = {"env": self.env.name, "outcome": "nothing_to_abort", **self._live_view()}
        live = self._live() if found.deployed else None
        if live is None or read_alias(live).kind != Reading.SPLIT:
            return result
        record = found.record
        published = self._traffic().versions()
        ends_on = None if record is None else record.green if record.phase == Phase.PROMOTED else record.blue
        if record is None or ends_on not in published:
            last = (
                f" (the last one, {record.id}, ended {record.phase} on v{ends_on}, which is not published)"
                if record
                else ""
            )
            raise RefusedError(
                f"{live.describe()} but no promotion of {self.env.name!r} is in flight{last}",
                fix=f"`orchestrator abort --env {self.env.name} --to VERSION` puts live on one version "
                f"(published: {', '.join(published) or 'none'})",
            )
        assert ends_on is not None
        with self._holding("abort") as holding:
            again, _ = self.records.read()
            if again is None or again.id != record.id or again.in_flight:
                raise PromotionLockedError(
                    f"a promotion of {self.env.name!r} started while `abort` looked at the split live alias",
                    fix=f"see `orchestrator status --env {self.env.name}`; run `orchestrator abort` again",
                )
            self.say(ProgressEvent("step", f"{live.describe()} with nothing in flight: putting it on v{ends_on}, "
                                   f"where promotion {record.id} ended ({record.phase})"))  # fmt: skip
            self._put_live(holding, ends_on, record.id)
        return {"env": self.env.name, "outcome": "unsplit", "promotion": record.id,
                "was": live.describe(), **self._live_view()}  # fmt: skip

    def resume_promotion(self, wait_s: float | None = None) -> dict[str, Any]:
        """Let a paused promotion go on: tell its driver, or drive it on here if it is gone."""
        found = self.look()
        chosen = old_look_verb(found, "resume-promotion") if found.deployed else Verb.NOT_PAUSED
        record = found.record
        if chosen == Verb.NOT_PAUSED or record is None:
            where = f"promotion {record.id} is {record.phase}" if record else "no promotion is recorded"
            raise UsageError(f"nothing is paused in {self.env.name!r}: {where}",
                             fix="`orchestrator promote --pause-at WEIGHT` holds a promotion at a step")  # fmt: skip
        me = lease.me(self.env.traffic.lease_s).holder
        self.records.request_continue(me, record.id)
        if chosen == Verb.RESUME:  # paused and its driver gone: this machine drives it on
            return self.promote(PromoteOptions(resume=True, paused_id=record.id)).to_dict()
        self.say(ProgressEvent("step", f"go-ahead given to promotion {record.id}; waiting for its driver"))
        deadline = time.monotonic() + (wait_s if wait_s is not None else self.env.traffic.lease_s + 30)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.look()
            if now.record is None or now.record.id != record.id or now.record.phase != Phase.PAUSED:
                return self._went_on(record.id, now.record)
            if not now.lease_live:  # its driver died while paused: finish the job here
                return self.promote(PromoteOptions(resume=True, paused_id=record.id)).to_dict()
        raise PromotionLockedError(
            f"the driver of promotion {record.id} did not go on within the wait",
            fix="run `orchestrator resume-promotion` again; `orchestrator status` shows its lease",
        )

    def _went_on(self, paused: str, now: PromotionRecord | None) -> dict[str, Any]:
        """What resume-promotion reports once the pause ended: it went on, or it did not."""
        if now is None or now.id != paused:
            raise EdgeshipError(f"promotion {paused} is no longer the current one",
                                fix=f"see `orchestrator status --env {self.env.name}`")  # fmt: skip
        if now.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED):
            raise EdgeshipError(
                f"promotion {paused} did not go on: it is {now.phase} ({now.reason or 'see its report'})",
                fix=f"see `orchestrator status --env {self.env.name}`",
            )
        return {"env": self.env.name, "promotion": paused, "outcome": "resumed", "phase": str(now.phase),
                **self._live_view()}  # fmt: skip

    def _recover(self, command: str, reason: str) -> Recovered:
        """Take the lease and put live on the recorded blue. Only `rollback` undoes a finished
        promotion; for `abort` and `promote --rollback` one that ended meanwhile is left alone."""
        with self._holding("rollback") as holding:
            record, etag = self.records.read()
            if record is None:
                raise UsageError(
                    f"no promotion recorded for {self.env.name!r}", fix="see `orchestrator status`"
                )
            by = holding.heartbeat.lease.holder
            if not record.in_flight and not (command == "rollback" and record.phase == Phase.PROMOTED):
                if record.phase == Phase.PROMOTED:  # it ended promoted since this command looked
                    raise EdgeshipError(
                        f"promotion {record.id} finished (promoted) before `{command}` could stop it; "
                        f"live is on v{record.green}",
                        fix=f"`orchestrator rollback --env {self.env.name}` puts live back on v{record.blue}",
                    )
                self._require_blue(record)  # ended on blue: make sure live agrees (idempotent)
                self._back_on_blue(holding, record)
                report = self._report(record)
                report.outcome, report.reason = str(record.phase), record.reason
                return Recovered(report, self._result(record))
            # Before any intent is written: a `rolling_back` record whose blue no longer exists
            # could never be finished (it is sticky), and would wedge every later command.
            self._require_blue(record)
            record = machine.take_over(
                record, now=time.time(), by=by, note=f"taken over to roll back: {reason}"
            )
            if record.phase != Phase.ROLLING_BACK:
                record = machine.advance(record, Outcome.ABORT, now=time.time(), by=by, reason=reason)
            etag = self.records.write(record, etag)
            report, final = self._run(
                holding, record, etag, announce=f"rolling back promotion {record.id} to v{record.blue}"
            )
            return Recovered(report, self._result(final))

    def abort_to(self, version: str) -> dict[str, Any]:
        """`abort --to VERSION`: live on `version` at 100 %, the last promotion closed there.

        The way out when the recorded blue no longer exists: the record is retargeted
        (machine.retarget: `rolling_back` to `version`, written before live moves, so any
        machine can finish it after a crash), then driven to its end as a rollback is."""
        found = self.look()
        if not found.deployed:
            self.target.require_deployed()
        env = self.env.name
        if found.lease_live:
            assert found.lease is not None
            raise PromotionLockedError(
                f"a promotion of {env!r} is running: {found.lease.describe()}",
                fix=f"`orchestrator abort --env {env}` (without --to) asks its driver to roll back; "
                "--to acts once no driver runs",
            )
        published = self._traffic().versions()
        if version not in published:
            raise UsageError(
                f"v{version} is not a published version of {self.target.function_name}",
                fix=f"name one of: {', '.join(published) or 'none (run `orchestrator up`)'}",
            )
        note = f"live put on v{version} by `orchestrator abort --to {version}`"
        with self._holding("abort") as holding:
            record, etag = self.records.read()
            ends_on = None if record is None or record.in_flight else (
                record.green if record.phase == Phase.PROMOTED else record.blue
            )  # fmt: skip
            if record is None or ends_on == version:  # the record already says live is there
                self._put_live(holding, version, record.id if record else None)
                return {"env": env, "outcome": str(record.phase) if record else "moved",
                        **({"promotion": record.id} if record else {}), **self._live_view()}  # fmt: skip
            record = machine.retarget(record, version, now=time.time(), by=holding.heartbeat.lease.holder,
                                      note=note)  # fmt: skip
            etag = self.records.write(record, etag)
            _, final = self._run(holding, record, etag, announce=f"promotion {record.id}: {note}")
            return self._result(final)

    def _finish_interrupted_rollback(self, holding: Holding) -> None:
        record, etag = self.records.read()
        assert record is not None and record.phase == Phase.ROLLING_BACK
        self._require_blue(record)
        record = machine.take_over(record, now=time.time(), by=holding.heartbeat.lease.holder,
                                   note="finishing an interrupted rollback before a new promotion")  # fmt: skip
        etag = self.records.write(record, etag)
        self._run(holding, record, etag, announce=f"finishing the interrupted rollback of {record.id} first")

    # -- driving ------------------------------------------------------------------------------------

    def _drive(self, holding: Holding, record: PromotionRecord, etag: str, announce: str) -> PromotionReport:
        """Run a promotion (new or resumed) and turn its end into a report or an error."""
        report, final = self._run(holding, record, etag, announce)
        live = self._live_or_none()
        back = live is not None and live.whole and live.version == final.blue
        seen = "live could not be read back" if live is None else live.describe()
        moved = any(t.phase == Phase.SHIFTING for t in final.transitions)  # else it never left blue
        said = f"live is {'back' if moved else 'still'} on v{final.blue} at 100%"
        where = f"{said if back else seen} (report: {report.directory}/report.html)"
        if final.phase == Phase.PROMOTED:
            return report
        if final.phase == Phase.ABORTED:
            raise AbortedError(f"promotion {final.id} aborted: {final.reason}; {where}",
                               fix="see `orchestrator status`; promote again when ready")  # fmt: skip
        if final.cause == Outcome.INTERRUPTED:
            raise Cancelled(
                f"promotion {final.id} {final.reason}; {where}", fix="run `orchestrator promote` again"
            )
        if final.cause in (Outcome.FAILED, Outcome.VOID):
            raise GateFailedError(f"{final.reason}; {where}", fix=gate_fix(final.cause))
        raise EdgeshipError(f"promotion {final.id} stopped: {final.reason}; {where}",
                            fix="fix the cause and promote again")  # fmt: skip

    def _run(
        self, holding: Holding, record: PromotionRecord, etag: str, announce: str
    ) -> tuple[PromotionReport, PromotionRecord]:
        holding.heartbeat.attach(record.id)
        report = self._report(record)
        directory = self.reports_root / self.env.name / record.id
        self.say(ProgressEvent("step", announce))
        holding.latch.rolls_back = True  # a record is written: a stop rolls back
        driver = Driver(
            self.target, self.records, holding.heartbeat, holding.latch, self.reporter, report, directory,
            locust_html=self.env.reports.locust_html,
        )  # fmt: skip
        try:
            final = driver.run(record, etag)
        except (RollbackIncompleteError, LeaseLostError) as exc:
            # the report says which stop it was: deposed (another holder finishes the job), the
            # lease unconfirmable (stopped where it was, nothing tried), or a rollback that did
            # not complete (review P3-3: a deposed driver wrote none, a lease stop was labelled
            # a rollback)
            report.outcome, report.reason = stop_outcome(exc), exc.message
            self._write(report, record, directory)
            raise
        report.outcome, report.reason = str(final.phase), final.reason
        if final.phase == Phase.PROMOTED:  # still under the lease: no `up` publishes meanwhile
            report.pruned = self._prune(final)
        self._write(report, final, directory)
        status = "done" if final.phase == Phase.PROMOTED else "failed"
        live = self._live_or_none()
        seen = live.describe() if live else "live could not be read back"
        self.say(ProgressEvent("step", f"{final.phase.replace('_', ' ')}: {seen}", status=status))
        return report, final

    def _refuse(self, found: Look, chosen: Verb, command: str) -> None:
        env = self.env.name
        if chosen == Verb.REFUSE_RUNNING:
            held = found.lease
            assert held is not None
            if held.stack_change:
                raise PromotionLockedError(
                    f"`{held.kind}` is running on {env!r}: {held.describe()}",
                    fix=f"wait for it to finish and run `{command}` again; `orchestrator status --env {env}` names it",
                )
            if held.promotion is None:  # a promotion before its record exists, or an older `up`
                raise PromotionLockedError(
                    f"another run is running on {env!r} (an `up`, or a promotion publishing): {held.describe()}",
                    fix=f"wait for it to finish and run `{command}` again; `orchestrator status --env {env}` names it",
                )
            raise PromotionLockedError(
                f"a promotion of {env!r} is running ({held.promotion}): {held.describe()}",
                fix=f"wait for it, or stop it from any machine with `orchestrator abort --env {env}`",
            )
        if chosen == Verb.REFUSE_INTERRUPTED:
            record = found.record
            assert record is not None
            raise InterruptedPromotion(
                f"promotion {record.id} of {env!r} was interrupted in {record.phase} at {record.weight}% "
                f"(v{record.blue} -> v{record.green}; its driver {record.holder} is gone)",
                fix=f"`orchestrator promote --env {env} --resume` to continue, `--rollback` or `orchestrator abort` to undo",
            )
        if chosen == Verb.NOTHING_INTERRUPTED:
            raise UsageError(
                f"`{command}` acts on an interrupted promotion, and {env!r} has none"
                + (f" (the last one, {found.record.id}, ended {found.record.phase})" if found.record else ""),
                fix=f"run `orchestrator promote --env {env}` for a new promotion; nothing was published",
            )


# --- running one command twice: the old methods and today's ------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, PromotionReport):
        return value.to_dict()
    if isinstance(value, Recovered):
        return value.report.to_dict(), value.result
    return value


def run(cls: type[FakeIO], world: World, act: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """What `act` did on a fresh `cls` in `world`: its result or error, and the log."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: 1000.0)
        mp.setattr(uuid, "uuid4", lambda: uuid.UUID(int=7))  # the id of a new record
        mp.setattr(time, "monotonic", lambda: world.clock)
        mp.setattr(time, "sleep", lambda s: setattr(world, "clock", world.clock + s))
        mp.setattr(faults, "point", lambda name: world.log.append(("fault", name)))
        heartbeat = lambda *args, **kwargs: FakeHeartbeat(world)  # noqa: E731
        mp.setattr(release_module, "Heartbeat", heartbeat)
        mp.setitem(globals(), "Heartbeat", heartbeat)
        mp.setattr(release_module, "Driver", FakeDriver)
        mp.setattr(release_module, "Traffic", FakeTraffic)
        mp.setattr(FakeTraffic, "world", world, raising=False)
        rel = cls(world)
        try:
            out: Any = ("returned", _plain(act(rel)))
        except Exception as exc:
            out = ("raised", type(exc).__name__, str(exc), getattr(exc, "fix", None))
    return out, world.log


def same(act: Callable[[Any], Any], **world: Any) -> tuple[Any, list[Any]]:
    """Run `act` on the old and today's methods in equal worlds; assert they did the same."""

    def make() -> World:  # the lists are consumed: a copy each
        return World(**{k: list(v) if isinstance(v, list) else v for k, v in world.items()})

    old = run(OldRelease, make(), act)
    new = run(NewRelease, make(), act)
    assert new == old
    return old


# --- the situations ------------------------------------------------------------------------------------

PLAN = make_plan(ENV, "1", "2").to_snapshot()


def rec(phase: Phase, pid: str = "p1", blue: str = "1") -> PromotionRecord:
    step = -1 if phase in (Phase.PLANNED, Phase.PRE_TRAFFIC) else 1
    then = Phase.ROLLED_BACK if phase == Phase.ROLLING_BACK else None
    cause = Outcome.FAILED if phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK) else None
    return PromotionRecord(pid, "dev", blue, "2", PLAN, "h", phase=phase, step=step, then=then, cause=cause,
                           holder="ci").log(1.0, "ci", "planned")  # fmt: skip


RECORDS: list[PromotionRecord | None] = [
    None,
    *(rec(p) for p in Phase),
    *(rec(p, "p0") for p in (Phase.PAUSED, Phase.SHIFTING, Phase.PROMOTED, Phase.ROLLED_BACK)),
    *(rec(p, blue="7") for p in (Phase.SHIFTING, Phase.ROLLING_BACK, Phase.ROLLED_BACK)),  # blue unpublished
]


def held(token: str, promotion: str | None, kind: str) -> Lease:
    return Lease("other@vm:1", "vm", 1, 530.0, token, promotion, kind=kind)


LEASES: list[tuple[Lease | None, bool]] = [
    (None, False),
    (held("t1", "p1", "promotion"), False),  # stale
    (held("t1", "p1", "promotion"), True),
    (held("t2", "p1", "promotion"), True),  # the same promotion under another acquisition
    (held("t1", None, "promotion"), True),  # publishing: no record yet
    (held("t3", "p0", "promotion"), True),  # another promotion
    (held("t4", None, "up"), True),
    (held("t4", None, "up"), False),  # a dead `up`'s lease
    (held("t6", None, "rotate-origin-secret"), True),
    (held("t5", "p1", "rollback"), True),
    (held("t7", "p1", ""), True),  # an older edgeship's lease
]


def look(record: PromotionRecord | None, held_: Lease | None = None, live: bool = False) -> Look:
    return Look(True, record, "etag-look" if record else None, held_, live, 500.0)


NOT_DEPLOYED = Look(deployed=False)
LOOKS: list[Look] = [NOT_DEPLOYED, *(look(r, h, live) for h, live in LEASES for r in RECORDS)]
FREE = [x for x in LOOKS if not x.lease_live]
STACK_CHANGING = [x for x in LOOKS if x.lease_live and x.lease is not None and x.lease.stack_change]
# One record of each kind, under every lease: the second looks, where the first decided little
FEW: list[Look] = [
    NOT_DEPLOYED,
    *(
        look(r, h, live)
        for h, live in LEASES
        for r in RECORDS
        if r is None
        or (
            r.blue == "1"
            and r.phase
            in (Phase.PLANNED, Phase.PAUSED, Phase.ROLLING_BACK, Phase.PROMOTED, Phase.ROLLED_BACK)
        )
    ),
]
# What a look under our own lease may find: any record; a lease there is ours, or one that is not
UNDER: list[Look] = [
    NOT_DEPLOYED,
    *(look(r) for r in RECORDS),
    *(look(r, LEASES[2][0], True) for r in RECORDS[:4]),
]

LIVES = [
    AliasState("1", {}),  # whole on blue
    AliasState("3", {}),  # whole on the version just published
    AliasState("2", {"1": 0.2}),  # split
    AliasState("3", {"1": 1.0}),  # moving to 3
    AliasState("1", {"3": 1.0}),  # moving to 1
]
ENDINGS = [(p, c) for p in Phase for c in (None, *Outcome)]
PROMOTES = [
    PromoteOptions(),
    PromoteOptions(resume=True),
    PromoteOptions(rollback=True),
    PromoteOptions(resume=True, paused_id="p1"),
    PromoteOptions(resume=True, paused_id="p0"),
]


# --- the cells ----------------------------------------------------------------------------------------
# (each act names what it uses as a default argument: it runs within its loop's iteration)


@pytest.mark.parametrize("command", ["up", "destroy", "rotate-origin-secret"])
def test_the_stack_change_guard_is_the_old_one_for_every_look(command: str) -> None:
    for found in LOOKS:
        same(lambda rel: rel.guard_stack_change(command), looks=[found])


def _hold_for_stack_change(rel: Any) -> str:
    with rel.holding_for_stack_change("up"):
        rel.world.log.append("stack changed")
    return "done"


def test_the_stack_changes_lease_is_taken_as_before_for_every_look_and_look_under_it() -> None:
    for found, again in itertools.product(LOOKS, UNDER):
        same(_hold_for_stack_change, looks=[found, again])
    for found, refused, kept in itertools.product(FREE[:30], (False, True), (False, True)):
        same(_hold_for_stack_change, looks=[found], take_refused=refused, kept=kept)


@pytest.mark.parametrize(
    "options", PROMOTES, ids=lambda o: f"resume={o.resume},rollback={o.rollback},id={o.paused_id}"
)
def test_promote_decides_as_before_for_every_look_and_look_under_the_lease(options: PromoteOptions) -> None:
    for found in LOOKS:
        for again in UNDER if not found.lease_live and found.deployed else [found]:
            same(lambda rel: rel.promote(options), looks=[found, again])


def test_promote_rollback_recovers_as_before_for_every_look_and_read_under_the_lease() -> None:
    ends = [(Phase.ROLLED_BACK, Outcome.ABORT), (Phase.ABORTED, None)]
    for found, read, end in itertools.product(FREE, RECORDS, ends):
        same(lambda rel: rel.promote(PromoteOptions(rollback=True)), looks=[found], reads=[read], end=end)


def test_a_new_promotion_reads_live_and_ends_as_before_in_every_cell() -> None:
    idle = look(rec(Phase.PROMOTED, "p0"))
    for live, settled, end in itertools.product(LIVES, LIVES, ENDINGS):
        same(lambda rel: rel.promote(PromoteOptions()), looks=[idle], live=live, settled=settled, end=end)


def test_a_resumed_promotion_ends_as_before_in_every_cell() -> None:
    for phase, end in itertools.product((Phase.SHIFTING, Phase.PAUSED, Phase.PLANNED), ENDINGS):
        same(lambda rel: rel.promote(PromoteOptions(resume=True)), looks=[look(rec(phase))], end=end)


def test_rollback_decides_as_before_for_every_look_and_read_under_the_lease() -> None:
    end = (Phase.ROLLED_BACK, Outcome.ABORT)
    for found, read in itertools.product(LOOKS, RECORDS):
        for outputs in (True, False) if not found.deployed else (True,):
            same(lambda rel: rel.rollback(), looks=[found], reads=[read], outputs=outputs, end=end)


def test_abort_decides_as_before_for_every_look_and_second_look() -> None:
    for found in LOOKS:
        for again in FEW if found in STACK_CHANGING else [found]:
            same(lambda rel: rel.abort(0), looks=[found, again])


def test_abort_with_nothing_in_flight_unsplits_as_before_in_every_cell() -> None:
    idle = [x for x in FREE if x.record is None or not x.record.in_flight]
    for found, live, published, read in itertools.product(idle, LIVES, [("1", "2", "3"), ("3",)], RECORDS):
        same(lambda rel: rel.abort(0), looks=[found], reads=[read], live=live, published=published)


def test_abort_to_decides_as_before_in_every_cell() -> None:
    # the first look decides before the lease, the read under it after: each crossed with the other's few
    for found, version in itertools.product(LOOKS, ("1", "9")):
        for outputs in (True, False) if not found.deployed else (True,):
            same(lambda rel, v=version: rel.abort_to(v), looks=[found], outputs=outputs)
    for found, read, version in itertools.product(
        [NOT_DEPLOYED, look(None), look(None, *LEASES[1])], RECORDS, ("1", "2", "9")
    ):
        same(lambda rel, v=version: rel.abort_to(v), looks=[found], reads=[read])


def test_resume_promotion_decides_as_before_for_every_look_and_look_under_the_lease() -> None:
    for found in LOOKS:
        for again in UNDER if not found.lease_live and found.deployed else [found]:
            same(lambda rel: rel.resume_promotion(0), looks=[found, found, again])


# --- the wait loops: generated sequences of looks ---------------------------------------------------

looks_st = st.sampled_from(LOOKS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sampled_from([x for x in LOOKS if x.lease_live]),
    then=st.lists(looks_st, min_size=1, max_size=5),
    reads=st.lists(st.sampled_from(RECORDS), max_size=2),
    live=st.sampled_from(LIVES),
    waits=st.integers(0, 5),
)
def test_abort_waits_as_before(
    first: Look, then: list[Look], reads: list[Any], live: AliasState, waits: int
) -> None:
    same(lambda rel: rel.abort(0.5 * waits), looks=[first, first, *then], reads=list(reads), live=live)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sampled_from([x for x in LOOKS if x.record is not None and x.record.phase == Phase.PAUSED]),
    then=st.lists(looks_st, min_size=1, max_size=5),
    waits=st.integers(0, 5),
    end=st.sampled_from(ENDINGS),
)
def test_resume_promotion_waits_as_before(first: Look, then: list[Look], waits: int, end: Any) -> None:
    same(lambda rel: rel.resume_promotion(0.5 * waits), looks=[first, *then], end=end)
