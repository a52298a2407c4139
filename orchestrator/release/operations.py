"""Promotion commands: promote, resume, rollback, abort, status, and the guard `up` runs.

Each command looks at the environment (the lease, then the promotion record), classifies
what it saw (machine.holder, machine.found), asks the pure command table (machine.COMMANDS,
and the tables beside it for waits, live's alias and endings) what to do, and carries the
verdict out (`match verdict:`); when it must move `live`, it takes the lease first, looks
again and asks the table's row under its own lease, then hands the record to the driver
(orchestrator/release/driver.py). No decision on a phase or a situation is made here: only what each
verdict does, and its refusal's text.

    look -> COMMANDS -> [take lease -> look again -> COMMANDS (OURS) -> publish -> write record]
         -> Driver.run -> ENDINGS
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.base import faults
from orchestrator.base.errors import (
    AbortedError,
    Cancelled,
    EdgeshipError,
    FormatError,
    GateFailedError,
    InterruptedPromotion,
    LeaseLostError,
    LeaseUnconfirmedError,
    NotDeployedError,
    PromotionLockedError,
    RefusedError,
    RollbackIncompleteError,
    UsageError,
)
from orchestrator.base.processes import SignalLatch, alive, signals_deferred, sigterm_as_interrupt
from orchestrator.base.progress import ProgressEvent, Reporter
from orchestrator.build.artifacts import model_example
from orchestrator.build.contract import Decision
from orchestrator.config.settings import Environment
from orchestrator.release import lease, machine, reports
from orchestrator.release.driver import Driver, keep_lease, require_lease, stop_requested, waiting_for_lambda
from orchestrator.release.lease import Heartbeat, Lease, LeaseStore
from orchestrator.release.machine import (
    ABORT_GAVE_UP,
    ABORT_TO_HELD,
    ABORT_WAIT,
    COMMANDS,
    RESUME_PAUSED,
    RESUME_WAIT,
    START_LIVE,
    UNSPLIT,
    UNSPLIT_HELD,
    Command,
    Ending,
    Ends,
    Found,
    Holder,
    Outcome,
    PromotionRecord,
    Verdict,
    Waiting,
)
from orchestrator.release.plan import check_pause_at, make_plan, weights
from orchestrator.release.record import RecordStore, meant_for
from orchestrator.release.report import PromotionReport, timeline, write
from orchestrator.release.traffic import AliasState, Reading, Traffic, TrafficError, read_alias
from orchestrator.stacks.engine import OperationResult
from orchestrator.stacks.targets import StackTarget

# Asks before a first deploy, given its preview (a thunk: a refusal needs none); raises
# RefusedError when the answer is no (the CLI's `up` confirmation).
Confirm = Callable[[Callable[[], OperationResult]], None]


@dataclass(frozen=True)
class PromoteOptions:
    """How to run one promotion."""

    schedule: str | None = None
    dry_run: bool = False
    resume: bool = False
    rollback: bool = False
    function_dir: Path | None = None
    model: Path | None = None
    pause_at: int | None = None  # hold after the gate at this weight until `resume-promotion`
    paused_id: str | None = None  # resume only this promotion, and only while it is paused
    allow_breaking_change: bool = False  # green may break live's model contract (then all at once)


@dataclass(frozen=True)
class GreenModel:
    """The model archive a new promotion publishes: its metadata (checked) and how results show it."""

    metadata: dict[str, Any]
    view: dict[str, Any]  # name, version, sha256, contract, path


@dataclass(frozen=True)
class Look:
    """The environment as a command finds it."""

    deployed: bool
    record: PromotionRecord | None = None
    record_etag: str | None = None
    lease: Lease | None = None
    lease_live: bool = False
    at: float = 0.0  # when lease_live was judged (status shows the lease's expiry from then)

    @property
    def holder(self) -> Holder:
        """The lease as this look found it (not ours)."""
        held = self.lease
        return machine.holder(
            present=held is not None, live=self.lease_live, stack_change=held is not None and held.stack_change,
            promotion=held.promotion if held else None,
        )  # fmt: skip

    @property
    def found(self) -> Found:
        """The stack and its record as this look found them."""
        return machine.found(self.deployed, self.record)

    def verdict(self, command: Command) -> Verdict:
        """What `command` does with what this look found, before the lease."""
        return COMMANDS[(command, self.holder, self.found)]

    def verdict_under_lease(self, command: Command) -> Verdict:
        """What `command` does with what this look found once it holds the lease itself."""
        return COMMANDS[(command, Holder.OURS, self.found)]

    def waiting(self, asked: str | None) -> Waiting:
        """The lease as a wait loop found it, against the token it asked (None: any)."""
        held = self.lease
        return machine.waiting(
            present=held is not None, live=self.lease_live, token=held.token if held else None, asked=asked
        )

    def is_record(self, promotion: str | None) -> bool:
        """Whether this look's record is the promotion `promotion` (None: none is)."""
        return self.record is not None and promotion is not None and self.record.id == promotion


@dataclass(frozen=True)
class Recovered:
    """What a rollback or abort did: the report, and the command's result."""

    report: PromotionReport
    result: dict[str, Any]


def stop_outcome(exc: EdgeshipError) -> str:
    """A driver's stop as its report's outcome (pure): `deposed` (another holder has the lease
    and finishes the job), `stopped_lease_unconfirmed` (the lease could not be confirmed:
    stopped without touching live), else `rollback_incomplete`."""
    if isinstance(exc, LeaseLostError):
        return "deposed"
    if isinstance(exc, LeaseUnconfirmedError):
        return "stopped_lease_unconfirmed"
    return "rollback_incomplete"


@dataclass
class Holding:
    """What a command has while it holds the lease."""

    heartbeat: Heartbeat
    latch: SignalLatch


class Release:
    """Promotion, recovery and status of one environment."""

    def __init__(self, target: StackTarget, env: Environment, reporter: Reporter, reports_root: Path) -> None:
        self.target, self.env, self.reporter, self.reports_root = target, env, reporter, reports_root
        self.say = reporter.event
        self._contract_view: dict[str, Any] | None = None  # green's contract against live's (_start)
        self._metadata: dict[str, dict[str, Any]] = {}  # routed versions' model metadata (status)

    # -- looking --------------------------------------------------------------------------------

    def look(self) -> Look:
        """Record, lease and whether the lease is live, from any machine.

        The lease is read before the record: a driver writes its record's end before it
        releases its lease, so a lease seen free (or stale) and a record read after it that is
        still in flight mean its driver is gone; the other order can see a record in flight
        and then the lease its driver just released on finishing (`abort` then took a
        promotion that had just ended promoted for an interrupted one)."""
        try:
            held, _ = self.leases.read()
            now = time.time()  # liveness as of the lease's read, not after the record's (a slow read)
            record, etag = self.records.read()
        except NotDeployedError:  # a stack without outputs: never deployed
            return Look(deployed=False)
        except Exception as exc:
            if _code(exc) == "NoSuchBucket":
                return Look(deployed=False)
            raise
        live = held is not None and not lease.is_stale(
            held, now=now, host=lease.host_name(), boot=lease.boot_id(), pid_alive=alive
        )
        return Look(True, record, etag, held, live, now)

    def status(self) -> dict[str, Any]:
        """Versions, weights, the promotion record and the lease, as any machine sees them. The
        lease's expiry is told as of the look that judged it live (reading the models after it
        takes a while: a lease judged live could show as expired, and one situation with it)."""
        traffic = Traffic(self.target.lambda_client(), self.target.function_name)
        live, candidate = traffic.state("live"), traffic.state("candidate")
        found = self.look()
        record, held = found.record, found.lease
        live_view = _alias_view(live)
        return {
            "env": self.env.name,
            "function": self.target.function_name,
            "live": live_view,
            "candidate": candidate.version,
            "versions": traffic.versions(),
            "models": self.models(live, candidate.version),
            "contract": self.contract_change(live.version, candidate.version),
            "promotion": _record_view(record) if record else None,
            "lock": held.describe() if held else None,
            "lease": {"holder": held.holder, "kind": held.kind or None, "host": held.host, "pid": held.pid,
                      "expires_in_s": round(held.expires_at - found.at, 1), "live": found.lease_live}
            if held else None,
            "situation": str(machine.situation(record, found.lease_live)),
            "interrupted": machine.situation(record, found.lease_live) == machine.Situation.INTERRUPTED,
        }  # fmt: skip

    def models(self, live: AliasState, candidate: str | None) -> dict[str, dict[str, Any]]:
        """The model each version live or candidate routes to serves (deployed.py), with
        its contract (features -> output) when its metadata declares one."""
        from orchestrator.build import contract
        from orchestrator.stacks import deployed

        lam, s3 = self.target.lambda_client(), self.target.s3_client()
        found: dict[str, dict[str, Any]] = {}
        for v in deployed.routed_versions(live.version, live.weights, candidate):
            info, metadata = deployed.read_version(lam, s3, self.target.function_name, v)
            found[v] = info.to_dict()
            if metadata is not None and not contract.problems(metadata):
                self._metadata[v] = metadata
        return found

    def contract_change(self, live: str, candidate: str | None) -> dict[str, Any] | None:
        """`status`: whether the candidate's model keeps the contract live's serves (after
        `models` read both); None when they are one version or either is unreadable."""
        from orchestrator.build import contract

        if (
            candidate is None
            or candidate == live
            or live not in self._metadata
            or candidate not in self._metadata
        ):
            return None
        change = contract.compare(self._metadata[live], self._metadata[candidate])
        return {"live": live, "candidate": candidate, **change.to_dict(), "text": change.describe()}

    def guard_stack_change(self, command: str) -> None:
        """`up` and `destroy` must not change the function while a promotion owns the environment."""
        found = self.look()
        match verdict := found.verdict(Command.UP):
            case Verdict.PROCEED | Verdict.PROCEED_UNLEASED:
                return
            case _:
                self._refuse(found, verdict, command)

    @contextmanager
    def holding_for_stack_change(self, command: str) -> Iterator[None]:
        """Hold the environment's lease while `command` (`up`, `rotate-origin-secret`)
        changes the stack, so that no promotion starts while it moves
        `candidate` and publishes, and none runs when it starts (each side gets exit 4 naming
        the other). Renewed by the heartbeat, released at the end, also on failure, Ctrl-C
        or SIGTERM (an interrupt for the whole hold, not only the engine's part: CI cancels
        with SIGTERM, which would otherwise end the process with the lease held); a killed
        run's lease expires, or is stale at once on its own machine. No SignalLatch: Ctrl-C
        must reach the engine's cancel (stacks/engine.py). A command that ends with the lease no
        longer its own (taken over while renewals failed) says so: LeaseLostError, exit 12.
        An environment never deployed has no bucket, so no lease: nothing promotes there."""
        with sigterm_as_interrupt():
            found = self.look()
            match verdict := found.verdict(Command.UP):
                case Verdict.PROCEED_UNLEASED:  # no stack, so no bucket: no lease to take
                    yield
                    return
                case Verdict.PROCEED:
                    pass
                case _:
                    self._refuse(found, verdict, command)
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
                if (verdict := again.verdict_under_lease(Command.UP)) is not Verdict.PROCEED:
                    self._refuse(again, verdict, command)
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

    def _give_back(self, heartbeat: Heartbeat) -> bool:
        """Stop renewing and release the lease: True when it was still this run's all along
        (a take-over always writes a new token, so a release by our token proves nobody held
        it since; a lease found gone while ours was valid was deleted by us: lease.given_back);
        False when it was lost or is another's now. S3 unreachable: said, and True only while
        the lease had not run out (nobody could have taken it; it expires)."""
        try:
            return heartbeat.release()
        except Exception as exc:
            self.say(ProgressEvent("diagnostic", f"could not release the lease ({exc}); "
                                   f"it expires in {heartbeat.lease_s:g}s"))  # fmt: skip
            return heartbeat.lost is None and heartbeat.valid()

    def _drop_if_ours(self, mine: Lease) -> None:
        """Delete the lease if it carries `mine`'s token (a take whose write landed before an
        interrupt); best effort: otherwise it expires, or is stale at once on this machine."""
        try:
            current, etag = self.leases.read()
            if current is not None and etag and current.token == mine.token:
                self.leases.release(etag, mine.token)
        except FormatError:  # a newer edgeship's lease (the take refused it): not ours
            pass
        except Exception as exc:
            self.say(ProgressEvent("diagnostic", f"could not check the lease ({exc}); if this run's take "
                                   "landed, that lease expires by itself"))  # fmt: skip

    def _lost_under(self, command: str) -> LeaseLostError:
        """`command` did its work, but the lease was not its own to the end (exit 12)."""
        env = self.env.name
        return LeaseLostError(
            f"`{command}` finished, but the lease of {env!r} was no longer its own at the end (another "
            "run took it, or it was removed, while renewals failed): a promotion may have started under it",
            fix=f"the `{command}` itself is done; see `orchestrator status --env {env}`: if a promotion "
            "runs, let it finish or `orchestrator abort` it",
        )

    def dry_run(self, options: PromoteOptions) -> dict[str, Any]:
        """The plan, from what is deployed now; changes nothing. Green's archive is checked
        and its contract compared with live's as the promotion would (exit 2 where it would)."""
        green = self._green_model(options)
        try:
            blue = Traffic(self.target.lambda_client(), self.target.function_name).state("live").version
        except Exception:  # nothing deployed yet: the plan still shows steps and gates
            blue = "none"
        decision, view = (
            (None, {"green": green.view}) if blue == "none" else self._contract(options, green, blue)
        )
        schedule = decision.schedule if decision and decision.schedule else options.schedule
        plan = make_plan(self.env, blue, "next published version", schedule, pause_at=options.pause_at)
        return {"dry_run": True, **plan.to_dict(), "contract": view}

    # -- the model contract (contract.py) -----------------------------------------------------------

    def _green_model(self, options: PromoteOptions) -> GreenModel:
        """Green's archive checked before anything is published: it exists and is a model
        pack with valid metadata (ModelPackError, exit 2, naming the fix)."""
        from orchestrator.build.artifacts import sha256_file
        from orchestrator.build.contract import contract_of
        from orchestrator.build.modelpack import read_archive

        path = options.model or self.target.settings.model
        metadata = read_archive(path)
        view = {"name": str(metadata["name"]), "version": str(metadata["version"]), "sha256": sha256_file(path),
                "contract": contract_of(metadata).describe().split(": ", 1)[1], "path": str(path)}  # fmt: skip
        return GreenModel(metadata, view)

    def _contract(
        self, options: PromoteOptions, green: GreenModel, live_version: str
    ) -> tuple[Decision | None, dict[str, Any]]:
        """Green's contract against the one live's version serves (its archive in the bucket,
        deployed.py): refused (ContractError, exit 2) when it breaks it and the user did not
        allow it; (None, view) when live's contract cannot be read (said, not refused: an
        environment whose live model predates metadata must still be promotable)."""
        from orchestrator.build import contract
        from orchestrator.stacks import deployed

        info, metadata = deployed.read_version(
            self.target.lambda_client(), self.target.s3_client(), self.target.function_name, live_version
        )
        live_view: dict[str, Any] = {"function_version": live_version, "name": info.name, "version": info.version,
                                     "sha256": info.sha256}  # fmt: skip
        view: dict[str, Any] = {"live": live_view, "green": green.view}
        wrong = contract.problems(metadata) if metadata is not None else [info.error or "no metadata"]
        if wrong:
            view["unknown"] = (
                f"live's model contract could not be read ({'; '.join(wrong)}): green's is not compared with it"
            )
            self.say(ProgressEvent("diagnostic", view["unknown"]))
            return None, view
        assert metadata is not None
        live_view["contract"] = contract.contract_of(metadata).describe().split(": ", 1)[1]
        change = contract.compare(metadata, green.metadata)
        g = green.view
        decision = contract.decide(
            change, allowed=options.allow_breaking_change, schedule=options.schedule,
            live=f"v{live_version}: {info.describe()}", green=f"{g['name']} {g['version']} (sha256 {g['sha256'][:12]})",
        )  # fmt: skip
        view.update(change.to_dict(), schedule=decision.schedule, said=decision.say)
        if decision.schedule:  # a pause needs a step before the last: all at once has none
            check_pause_at(weights(self.env.traffic, decision.schedule), decision.schedule, options.pause_at)
        return decision, view

    # -- promote ----------------------------------------------------------------------------------

    def promote(self, options: PromoteOptions, confirm: Confirm | None = None) -> PromotionReport:
        """Run a promotion to its end (promoted, or rolled back with a reason), or resume one.

        On an environment with no stack yet there is nothing live to gate a new version
        against: the promotion is a first deploy, an `up`, asked for as `up` asks (`confirm`,
        given the preview; None: go ahead, as `up --yes`)."""
        command = (
            Command.PROMOTE_RESUME if options.resume else Command.PROMOTE_ROLLBACK if options.rollback
            else Command.PROMOTE
        )  # fmt: skip
        kind = options.schedule or self.env.traffic.schedule  # a wrong pause fails before any publish
        check_pause_at(weights(self.env.traffic, kind), kind, options.pause_at)
        # A new version's model, checked before the lease and anything published (exit 2);
        # a resumed or rolled-back promotion publishes nothing.
        green = None if options.resume or options.rollback else self._green_model(options)
        self.target.check_ready()  # before the lease, the publish and the package
        found = self.look()
        match verdict := found.verdict(command):
            case Verdict.NOT_DEPLOYED:  # nothing can have been interrupted
                raise NotDeployedError(
                    f"environment {self.env.name!r} has no stack yet: no promotion to resume or roll back",
                    fix=f"`orchestrator promote --env {self.env.name}` deploys a first version",
                )
            case Verdict.FIRST_DEPLOY:
                return self._first_deploy(options, confirm)
            case Verdict.ROLL_BACK:
                return self._recover(command, "rolled back by `promote --rollback`").report
            case Verdict.START | Verdict.FINISH_THEN_START | Verdict.RESUME:
                pass  # asked again once the lease is ours
            case _:
                self._refuse(found, verdict, command)
        with self._holding() as holding:
            # The lease is ours now: what was decided on must still hold (another machine may
            # have finished, resumed or started a promotion between our look and our take).
            again = self.look()
            verdict = (
                again.verdict_under_lease(command) if options.paused_id is None
                else RESUME_PAUSED[(again.found, again.is_record(options.paused_id))]
            )  # fmt: skip
            match verdict:
                case Verdict.RESUME:
                    return self._resume(holding, again)
                case Verdict.NO_LONGER_PAUSED:
                    assert again.record is not None
                    raise UsageError(
                        f"promotion {options.paused_id} is no longer paused: {again.record.id} is {again.record.phase}",
                        fix=f"see `orchestrator status --env {self.env.name}`",
                    )
                case Verdict.FINISH_THEN_START:
                    self._finish_interrupted_rollback(holding)
                case Verdict.START:
                    pass
                case _:
                    self._refuse(again, verdict, command)
            assert green is not None  # a new promotion (resume and rollback returned above)
            return self._start(holding, options, green)

    def _resume(self, holding: Holding, again: Look) -> PromotionReport:
        """Go on with the interrupted promotion `again` found, under the lease."""
        record, etag = again.record, again.record_etag  # read with the lease held
        assert record is not None
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
        waited = False
        while (verdict := START_LIVE[(read_alias(live).kind, waited, live.version == published.green)]) \
                is Verdict.WAIT_SETTLED:  # fmt: skip
            live, waited = self._settled_live(holding), True
        match verdict:
            case Verdict.REFUSE_SPLIT:
                raise EdgeshipError(
                    f"live is split ({live.describe()}) but no promotion is in flight",
                    fix=f"`orchestrator rollback --env {self.env.name}` puts it back on one version",
                )
            case Verdict.NOTHING_TO_PROMOTE:
                self.say(
                    ProgressEvent(
                        "step", f"v{published.green}: no change since the live version; nothing to promote"
                    )
                )
                return PromotionReport("none", self.env.name, live.version, published.green, "-", "nothing_to_do",
                                       "no change since the live version")  # fmt: skip
        assert verdict is Verdict.PROMOTE, verdict
        example = model_example(published.model) if published.model else ()
        plan = make_plan(self.env, live.version, published.green, schedule, example, options.pause_at)
        record = PromotionRecord.new(plan, holding.heartbeat.lease.holder, time.time())
        _, etag = self.records.read()
        etag = self.records.write(record, etag)
        return self._drive(holding, record, etag,
                           announce=f"promotion {record.id}: v{plan.blue} -> v{plan.green}, {plan.schedule} {plan.steps}")  # fmt: skip

    def _settled_live(self, holding: Holding) -> AliasState:
        """Live once Lambda finished moving it (provisioned concurrency being allocated to the
        version it moves to); a signal or an abort cancels the wait, which changed nothing, and
        a lost lease ends it, as the driver's waits do."""
        settled = self._traffic().settle(
            None, say=lambda why: self.say(waiting_for_lambda(why)), diagnose=self._diagnose,
            should_stop=lambda: stop_requested(holding.heartbeat, holding.latch) is not None,
        )  # fmt: skip
        if settled.stopped:
            stop = stop_requested(holding.heartbeat, holding.latch)
            raise Cancelled(f"{stop.reason if stop else 'interrupted'} while live was still moving; "
                            "nothing was changed", fix="run `orchestrator promote` again")  # fmt: skip
        return settled.state

    def _first_deploy(self, options: PromoteOptions, confirm: Confirm | None) -> PromotionReport:
        """No stack yet: an `up` that says so. Nothing serves traffic, so there is no blue to
        compare with and no gate runs; the report says `deployed`, never `promoted`."""
        name = self.env.name
        self.say(ProgressEvent("step", f"{name} has no stack yet: this promote is a first deploy (an `up`): "
                               "no version is live to gate against, so no gate runs"))  # fmt: skip
        if confirm is not None:
            confirm(lambda: self.target.preview(options.function_dir, options.model))
        published = self.target.publish(options.function_dir, options.model, self.reporter)
        self.say(ProgressEvent("step", f"v{published.green} deployed: live serves it; "
                               f"the next `orchestrator promote --env {name}` is gated"))  # fmt: skip
        return PromotionReport("none", name, None, published.green, "-", "deployed",
                               "first deploy: no version was live to gate against (an `up`, not a promotion)")  # fmt: skip

    # -- recovery -----------------------------------------------------------------------------------

    def rollback(self) -> dict[str, Any]:
        """Put live back on blue: an interrupted promotion's, else the last promotion's."""
        found = self.look()
        verdict = found.verdict(Command.ROLLBACK)
        if verdict is Verdict.REQUIRE_DEPLOYED:
            self.target.require_deployed()  # a stack with outputs but no bucket: nothing recorded
            verdict = COMMANDS[(Command.ROLLBACK, found.holder, Found.NO_RECORD)]
        match verdict:
            case Verdict.NOTHING_TO_ROLL_BACK:
                raise UsageError(f"no promotion recorded for {self.env.name!r}; nothing to roll back",
                                 fix="see `orchestrator status`")  # fmt: skip
            case Verdict.ROLL_BACK:
                return self._recover(Command.ROLLBACK, "rolled back by `orchestrator rollback`").result
            case _:
                self._refuse(found, verdict, Command.ROLLBACK)

    def abort(self, wait_s: float | None = None) -> dict[str, Any]:
        """Stop a promotion from any machine: ask its driver, or finish the job if it is gone."""
        found = self.look()
        verdict = found.verdict(Command.ABORT)
        if verdict is Verdict.LOOK_AGAIN:
            # The `up` may have ended since, and a promotion taken the lease: that one is to be
            # stopped, not an `up` waited for.
            found = self.look()
            verdict = found.verdict(Command.ABORT_AGAIN)
        match verdict:
            case Verdict.NOTHING_TO_DO:
                return {"env": self.env.name, "outcome": "nothing_to_abort", **self._live_view()}
            case Verdict.NOTHING_IN_FLIGHT:
                return self._nothing_to_abort(found)
            case Verdict.ROLL_BACK:
                return self._recover(Command.ABORT, "aborted by `orchestrator abort`").result
            # it never reads abort requests, and has no promotion to roll back
            case Verdict.REFUSE_STACK_CHANGE:
                assert found.lease is not None
                raise PromotionLockedError(
                    f"`{found.lease.kind}` is running on {self.env.name!r} ({found.lease.describe()}): "
                    "wait for it; nothing to abort",
                    fix=f"`orchestrator status --env {self.env.name}` shows when its lease is gone",
                )
        assert verdict is Verdict.REQUEST_ABORT and found.lease is not None, verdict
        return self._await_abort(found.lease, found, wait_s)

    def _await_abort(self, held: Lease, found: Look, wait_s: float | None) -> dict[str, Any]:
        """Ask the driver holding `held` to roll back, and wait for it or its lease (ABORT_WAIT)."""
        me = lease.me(self.env.traffic.lease_s).holder
        self.records.request_abort(me, held.promotion, held.token)
        self.say(ProgressEvent("step", f"abort requested; waiting for {held.describe()}"))
        deadline = time.monotonic() + (wait_s if wait_s is not None else self.env.traffic.lease_s + 30)
        now = found
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.look()
            asked = now.is_record(held.promotion)
            verdict = ABORT_WAIT[(now.waiting(held.token), now.found, asked)]
            if verdict is Verdict.CLEAR_STALE:  # it died before recording a promotion: clear its stale lease
                with self._holding("abort"):
                    pass
                verdict = ABORT_WAIT[(Waiting.NONE, now.found, asked)]
            match verdict:
                case Verdict.KEEP_WAITING:
                    continue  # the driver, or whoever took over from it, is at work
                case Verdict.FOLLOW:
                    assert now.lease is not None and now.record is not None
                    held = now.lease  # a resume took over the same promotion: the request is for it now
                    self.records.request_abort(me, now.record.id, held.token)
                    continue
                case Verdict.ROLL_BACK:  # its driver is gone mid-promotion: finish the job
                    return self._recover(Command.ABORT, "aborted by `orchestrator abort`").result
                case Verdict.PROMOTED_FIRST:
                    assert now.record is not None
                    raise EdgeshipError(
                        f"promotion {now.record.id} finished (promoted) before it saw the abort; live is on v{now.record.green}",
                        fix=f"`orchestrator rollback --env {self.env.name}` puts live back on v{now.record.blue}",
                    )
                case Verdict.REPORT_END:  # it rolled back: how it ended
                    assert now.record is not None
                    return {"env": self.env.name, "outcome": str(now.record.phase), "promotion": held.promotion,
                            **self._live_view()}  # fmt: skip
                case Verdict.NOTHING_IN_FLIGHT:
                    return {"env": self.env.name, "outcome": "nothing_in_flight", "promotion": held.promotion,
                            **self._live_view()}  # fmt: skip
        match ABORT_GAVE_UP[now.found]:
            case Verdict.STILL_ROLLING_BACK:  # it acted: not done yet
                assert now.record is not None
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
        the lease; without a record naming a published version, refused with the fix (UNSPLIT)."""
        result = {"env": self.env.name, "outcome": "nothing_to_abort", **self._live_view()}
        live = self._live()
        record = found.record
        published: list[str] = []

        def ends() -> Ends:  # asked only of a split live alias
            published.extend(self._traffic().versions())
            return machine.ends(record, published)

        match machine.ask(UNSPLIT, (read_alias(live).kind,), Ends, ends):
            case Verdict.NOTHING_IN_FLIGHT:
                return result
            case Verdict.REFUSE_SPLIT:
                last = (
                    f" (the last one, {record.id}, ended {record.phase} on v{machine.ends_on(record)}, "
                    "which is not published)"
                    if record
                    else ""
                )
                raise RefusedError(
                    f"{live.describe()} but no promotion of {self.env.name!r} is in flight{last}",
                    fix=f"`orchestrator abort --env {self.env.name} --to VERSION` puts live on one version "
                    f"(published: {', '.join(published) or 'none'})",
                )
        assert record is not None
        with self._holding("abort") as holding:
            again, _ = self.records.read()
            still = again is not None and again.id == record.id
            if UNSPLIT_HELD[(machine.found(True, again), still)] is Verdict.STARTED_MEANWHILE:
                raise PromotionLockedError(
                    f"a promotion of {self.env.name!r} started while `abort` looked at the split live alias",
                    fix=f"see `orchestrator status --env {self.env.name}`; run `orchestrator abort` again",
                )
            ends_on = machine.ends_on(record)
            self.say(ProgressEvent("step", f"{live.describe()} with nothing in flight: putting it on v{ends_on}, "
                                   f"where promotion {record.id} ended ({record.phase})"))  # fmt: skip
            self._put_live(holding, ends_on, record.id)
        return {"env": self.env.name, "outcome": "unsplit", "promotion": record.id,
                "was": live.describe(), **self._live_view()}  # fmt: skip

    def resume_promotion(self, wait_s: float | None = None) -> dict[str, Any]:
        """Let a paused promotion go on: tell its driver, or drive it on here if it is gone."""
        found = self.look()
        verdict = found.verdict(Command.RESUME_PROMOTION)
        record = found.record
        if verdict is Verdict.NOT_PAUSED:
            where = f"promotion {record.id} is {record.phase}" if record else "no promotion is recorded"
            raise UsageError(f"nothing is paused in {self.env.name!r}: {where}",
                             fix="`orchestrator promote --pause-at WEIGHT` holds a promotion at a step")  # fmt: skip
        assert record is not None
        me = lease.me(self.env.traffic.lease_s).holder
        self.records.request_continue(me, record.id)
        drive_on = PromoteOptions(resume=True, paused_id=record.id)
        if verdict is Verdict.RESUME:  # paused and its driver gone: this machine drives it on
            return self.promote(drive_on).to_dict()
        assert verdict is Verdict.CONTINUE, verdict
        self.say(ProgressEvent("step", f"go-ahead given to promotion {record.id}; waiting for its driver"))
        deadline = time.monotonic() + (wait_s if wait_s is not None else self.env.traffic.lease_s + 30)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.look()
            match RESUME_WAIT[(now.waiting(None), now.found, now.is_record(record.id))]:
                case Verdict.KEEP_WAITING:
                    continue
                case Verdict.RESUME:  # its driver died while paused: finish the job here
                    return self.promote(drive_on).to_dict()
                case Verdict.NO_LONGER_CURRENT:
                    raise EdgeshipError(f"promotion {record.id} is no longer the current one",
                                        fix=f"see `orchestrator status --env {self.env.name}`")  # fmt: skip
                case Verdict.DID_NOT_GO_ON:
                    assert now.record is not None
                    raise EdgeshipError(
                        f"promotion {record.id} did not go on: it is {now.record.phase} ({now.record.reason or 'see its report'})",
                        fix=f"see `orchestrator status --env {self.env.name}`",
                    )
                case Verdict.WENT_ON:
                    assert now.record is not None
                    return {"env": self.env.name, "promotion": record.id, "outcome": "resumed",
                            "phase": str(now.record.phase), **self._live_view()}  # fmt: skip
        raise PromotionLockedError(
            f"the driver of promotion {record.id} did not go on within the wait",
            fix="run `orchestrator resume-promotion` again; `orchestrator status` shows its lease",
        )

    def _recover(self, command: Command, reason: str) -> Recovered:
        """Take the lease and put live on the recorded blue, as its row under the lease says: only
        `rollback` undoes a finished promotion; for `abort` and `promote --rollback` one that ended
        meanwhile is left alone."""
        with self._holding("rollback") as holding:
            record, etag = self.records.read()
            verdict = COMMANDS[(command, Holder.OURS, machine.found(True, record))]
            match verdict:
                case Verdict.RECORD_GONE:
                    raise UsageError(
                        f"no promotion recorded for {self.env.name!r}", fix="see `orchestrator status`"
                    )
                case Verdict.FINISHED_PROMOTED:  # it ended promoted since this command looked
                    assert record is not None
                    raise EdgeshipError(
                        f"promotion {record.id} finished (promoted) before `{command}` could stop it; "
                        f"live is on v{record.green}",
                        fix=f"`orchestrator rollback --env {self.env.name}` puts live back on v{record.blue}",
                    )
                case Verdict.REPUT_BLUE:  # ended on blue: make sure live agrees (idempotent)
                    assert record is not None
                    self._require_blue(record)
                    self._back_on_blue(holding, record)
                    report = self._report(record)
                    report.outcome, report.reason = str(record.phase), record.reason
                    return Recovered(report, self._result(record))
            assert verdict in (Verdict.TAKE_OVER_ROLL_BACK, Verdict.TAKE_OVER_FINISH), verdict
            assert record is not None
            by = holding.heartbeat.lease.holder
            # Before any intent is written: a `rolling_back` record whose blue no longer exists
            # could never be finished (it is sticky), and would wedge every later command.
            self._require_blue(record)
            record = machine.take_over(
                record, now=time.time(), by=by, note=f"taken over to roll back: {reason}"
            )
            if verdict is Verdict.TAKE_OVER_ROLL_BACK:
                record = machine.advance(record, Outcome.ABORT, now=time.time(), by=by, reason=reason)
            etag = self.records.write(record, etag)
            report, final = self._run(
                holding, record, etag, announce=f"rolling back promotion {record.id} to v{record.blue}"
            )
            return Recovered(report, self._result(final))

    def _lease_guard(self, holding: Holding, untouched: str) -> Callable[[], None]:
        """The check right before a recovery command's alias write, as the driver's rollback
        makes it (`driver.require_lease`): deposed, or the lease unrenewable, stops it there."""
        env = self.env.name
        return lambda: require_lease(
            holding.heartbeat, rollback=True, diagnose=self._diagnose,
            stopped=lambda: f"this command stopped without moving live: {untouched}",
            fix=lambda: f"run `orchestrator abort --env {env}` once S3 answers (from any machine, once the lease ran out)",
        )  # fmt: skip

    def _back_on_blue(self, holding: Holding, record: PromotionRecord) -> None:
        """Put live on a finished promotion's blue and read it back until every request is
        there (as the driver's rollback does), so the result never says rolled back while
        Lambda still serves green."""
        traffic = self._traffic()
        try:
            asked = traffic.rollback(
                record.blue, guard=self._lease_guard(holding, f"it is not back on v{record.blue}")
            )
            self.target.traffic_moved()
            traffic.settle(
                asked, rollback=True, say=lambda why: self.say(waiting_for_lambda(why)),
                diagnose=self._diagnose, should_stop=lambda: keep_lease(holding.heartbeat),
            )  # fmt: skip
        except TrafficError as exc:
            raise RollbackIncompleteError(
                f"promotion {record.id} ended {record.phase}, but live could not be put back on "
                f"v{record.blue}: {exc.message}",
                fix=exc.fix or f"run `orchestrator abort --env {self.env.name}` once Lambda answers",
            ) from exc
        finally:
            self.target.traffic_moved()  # again: any weights Lambda held back have cleared since

    def _require_blue(self, record: PromotionRecord) -> None:
        """Refuse (RefusedError, nothing written, live untouched) to roll back to a blue that is
        no longer published: a version clean-up, a replaced function. The fix names the way out
        (`abort --to VERSION`), with the version live serves now when it serves one."""
        published = self._traffic().versions()
        if record.blue in published:
            return
        live = self._live_or_none()
        env = self.env.name
        seen = "live could not be read" if live is None else live.describe()
        listed = ", ".join(f"v{v}" for v in published) or "none"
        if live is not None and live.whole and live.version in published:
            keep = f"`--to {live.version}` keeps the version live serves now"
        elif record.green in published:
            keep = f"`--to {record.green}` puts live on green"
        else:
            keep = "name one of the published versions"
        if record.in_flight:
            fix = (
                f"`orchestrator abort --env {env} --to VERSION` puts live on a published version and closes "
                f"promotion {record.id} ({keep}; published: {listed})"
            )
        else:
            fix = (
                f"promotion {record.id} has ended ({record.phase}): nothing needs finishing, and live keeps "
                f"serving what it serves; `orchestrator abort --env {env} --to VERSION` puts it on another "
                f"published version ({listed})"
            )
        raise RefusedError(
            f"cannot roll back promotion {record.id} of {env!r}: its blue, v{record.blue}, is no longer "
            f"published (deleted since it was recorded); nothing was changed ({seen})",
            fix=fix,
        )

    def abort_to(self, version: str) -> dict[str, Any]:
        """`abort --to VERSION`: live on `version` at 100 %, the last promotion closed there.

        The way out when the recorded blue no longer exists: the record is retargeted
        (machine.retarget: `rolling_back` to `version`, written before live moves, so any
        machine can finish it after a crash), then driven to its end as a rollback is."""
        found = self.look()
        verdict = found.verdict(Command.ABORT_TO)
        if verdict is Verdict.REQUIRE_DEPLOYED:
            self.target.require_deployed()  # a stack with outputs but no bucket: nothing recorded
            verdict = COMMANDS[(Command.ABORT_TO, found.holder, Found.NO_RECORD)]
        env = self.env.name
        if verdict is Verdict.REFUSE_WHILE_DRIVEN:
            assert found.lease is not None
            raise PromotionLockedError(
                f"a promotion of {env!r} is running: {found.lease.describe()}",
                fix=f"`orchestrator abort --env {env}` (without --to) asks its driver to roll back; "
                "--to acts once no driver runs",
            )
        assert verdict is Verdict.MOVE_TO, verdict
        published = self._traffic().versions()
        if version not in published:
            raise UsageError(
                f"v{version} is not a published version of {self.target.function_name}",
                fix=f"name one of: {', '.join(published) or 'none (run `orchestrator up`)'}",
            )
        note = f"live put on v{version} by `orchestrator abort --to {version}`"
        with self._holding("abort") as holding:
            record, etag = self.records.read()
            there = record is not None and machine.ends_on(record) == version  # read for an ended one only
            if ABORT_TO_HELD[(machine.found(True, record), there)] is Verdict.PUT_LIVE:
                self._put_live(holding, version, record.id if record else None)
                return {"env": env, "outcome": str(record.phase) if record else "moved",
                        **({"promotion": record.id} if record else {}), **self._live_view()}  # fmt: skip
            assert record is not None
            record = machine.retarget(record, version, now=time.time(), by=holding.heartbeat.lease.holder,
                                      note=note)  # fmt: skip
            etag = self.records.write(record, etag)
            _, final = self._run(holding, record, etag, announce=f"promotion {record.id}: {note}")
            return self._result(final)

    def _put_live(self, holding: Holding, version: str, promotion: str | None) -> None:
        """live on `version` at 100 %, read back (as `_back_on_blue`), with nothing in flight."""
        traffic = self._traffic()
        try:
            asked = traffic.rollback(version, guard=self._lease_guard(holding, f"it is not on v{version}"))
            self.target.traffic_moved()
            traffic.settle(
                asked, rollback=True, say=lambda why: self.say(waiting_for_lambda(why)),
                diagnose=self._diagnose, should_stop=lambda: keep_lease(holding.heartbeat),
            )  # fmt: skip
        except TrafficError as exc:
            after = f" (promotion {promotion} ended)" if promotion else ""
            raise RollbackIncompleteError(
                f"live could not be put on v{version}{after}: {exc.message}",
                fix=exc.fix
                or f"run `orchestrator abort --env {self.env.name} --to {version}` once Lambda answers",
            ) from exc
        finally:
            self.target.traffic_moved()

    def _finish_interrupted_rollback(self, holding: Holding) -> None:
        record, etag = self.records.read()
        # read again under the lease, after the look that said so
        assert record is not None and machine.found(True, record) is Found.ROLLING_BACK
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
        moved = machine.left_blue(final)
        said = f"live is {'back' if moved else 'still'} on v{final.blue} at 100%"
        where = f"{said if back else seen} (report: {report.directory}/report.html)"
        match machine.ending(final):
            case Ending.PROMOTED:
                return report
            case Ending.ABORTED:
                raise AbortedError(f"promotion {final.id} aborted: {final.reason}; {where}",
                                   fix="see `orchestrator status`; promote again when ready")  # fmt: skip
            case Ending.CANCELLED:
                raise Cancelled(
                    f"promotion {final.id} {final.reason}; {where}", fix="run `orchestrator promote` again"
                )
            case Ending.GATE_FAILED:
                assert final.cause is not None
                raise GateFailedError(f"{final.reason}; {where}", fix=gate_fix(final.cause))
            case Ending.STOPPED:
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
        promoted = machine.ending(final) is Ending.PROMOTED
        if promoted:  # still under the lease: no `up` publishes meanwhile
            report.pruned = self._prune(final)
        self._write(report, final, directory)
        status = "done" if promoted else "failed"
        live = self._live_or_none()
        seen = live.describe() if live else "live could not be read back"
        self.say(ProgressEvent("step", f"{final.phase.replace('_', ' ')}: {seen}", status=status))
        return report, final

    @contextmanager
    def _holding(self, kind: str = "promotion") -> Iterator[Holding]:
        """Hold the environment's lease for `kind` (Lease.kind; renewed in the background) and latch signals."""
        lease_s = self.env.traffic.lease_s
        store = self.leases
        records = self.records

        def abort_requested(current: Lease) -> bool:
            request = records.abort_request()
            return request is not None and meant_for(request, current)

        # The latch goes up before the take: a Ctrl-C between the take's PUT landing and the
        # `try` below would otherwise leave the lease held until it expires (other machines
        # wait lease_s). A signal during the take is latched, and raised once the lease is ours
        # to give back (exit 130, nothing done).
        with SignalLatch(rolls_back=False) as latch:
            clock = lease.lease_clock()
            taken_at = clock()  # the lease's expiry counts from here (lease.me), not from the take's answer
            mine = lease.me(lease_s, kind=kind)
            try:
                held, etag = store.take(mine, pid_alive=alive)
                faults.point("lease-taken")
                heartbeat = Heartbeat(
                    store, held, etag, lease_s, abort_requested, clock=clock, taken_at=taken_at
                )
            except PromotionLockedError:
                raise  # refused: another holder's, nothing of ours to drop
            except BaseException:
                # The take's PUT may have landed with its answer lost (a BotoCoreError, not the
                # 412 whose nonce check would see it), or a fault fired after it: drop the lease
                # if it carries our token, as a stack change does, rather than make every other
                # machine wait lease_s (review P3-4)
                self._drop_if_ours(mine)
                raise
            with heartbeat:
                try:
                    latch.raise_if_received()
                    yield Holding(heartbeat, latch)
                finally:
                    try:
                        heartbeat.release()
                    except Exception as exc:  # unreachable S3: the lease simply expires
                        self.say(
                            ProgressEvent(
                                "diagnostic",
                                f"could not release the lease ({exc}); it expires in {lease_s:g}s",
                            )
                        )

    # -- small helpers ------------------------------------------------------------------------------

    def _refuse(self, found: Look, verdict: Verdict, command: str) -> NoReturn:
        """The refusal `verdict` says, its text by what `found` saw (a running holder by its kind)."""
        env = self.env.name
        match verdict:
            case Verdict.REFUSE_RUNNING:
                held = found.lease
                assert held is not None
                match found.holder:
                    case Holder.STACK_CHANGE:
                        raise PromotionLockedError(
                            f"`{held.kind}` is running on {env!r}: {held.describe()}",
                            fix=f"wait for it to finish and run `{command}` again; `orchestrator status --env {env}` names it",
                        )
                    case Holder.PUBLISHING:  # a promotion before its record exists, or an older `up`
                        raise PromotionLockedError(
                            f"another run is running on {env!r} (an `up`, or a promotion publishing): {held.describe()}",
                            fix=f"wait for it to finish and run `{command}` again; `orchestrator status --env {env}` names it",
                        )
                raise PromotionLockedError(
                    f"a promotion of {env!r} is running ({held.promotion}): {held.describe()}",
                    fix=f"wait for it, or stop it from any machine with `orchestrator abort --env {env}`",
                )
            case Verdict.REFUSE_INTERRUPTED:
                record = found.record
                assert record is not None
                raise InterruptedPromotion(
                    f"promotion {record.id} of {env!r} was interrupted in {record.phase} at {record.weight}% "
                    f"(v{record.blue} -> v{record.green}; its driver {record.holder} is gone)",
                    fix=f"`orchestrator promote --env {env} --resume` to continue, `--rollback` or `orchestrator abort` to undo",
                )
            case Verdict.NOTHING_INTERRUPTED:
                raise UsageError(
                    f"`{command}` acts on an interrupted promotion, and {env!r} has none"
                    + (f" (the last one, {found.record.id}, ended {found.record.phase})" if found.record else ""),
                    fix=f"run `orchestrator promote --env {env}` for a new promotion; nothing was published",
                )  # fmt: skip
        raise AssertionError(f"{verdict} is no refusal")  # every row's verdict is carried out (oracle tests)

    # One store each per command: a boto3 client per look would be rebuilt every half second
    # while `abort` waits. boto3 clients are thread-safe, so the heartbeat shares them.
    @cached_property
    def records(self) -> RecordStore:
        return RecordStore(self.target.s3_client(), self.target.bucket, self.env.name)

    @cached_property
    def leases(self) -> LeaseStore:
        return LeaseStore(self.target.s3_client(), self.target.bucket, self.env.name)

    def _traffic(self) -> Traffic:
        return Traffic(
            self.target.lambda_client(), self.target.function_name, poll_s=self.target.cloud.settle_poll_s
        )

    def _diagnose(self, text: str) -> None:
        self.say(ProgressEvent("diagnostic", text))

    def _live(self) -> AliasState:
        return self._traffic().state()

    def _live_or_none(self) -> AliasState | None:
        try:
            return self._live()
        except Exception:  # only for a message; the driver already read the alias back
            return None

    def _live_view(self) -> dict[str, Any]:
        """live as a command's result shows it; a read that fails after the work was done is
        said (`live_unread`), not an error: the command's outcome stands (review P3-7: a Lambda
        read failing after a completed rollback exited 1, "an AWS call failed")."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            view = _alias_view(self._live())
        except (BotoCoreError, ClientError) as exc:  # the work is done, only the look failed
            self._diagnose(
                f"live could not be read back ({type(exc).__name__}: {exc}); see `orchestrator status`"
            )
            return {"live": None, "live_unread": f"{type(exc).__name__}: {exc}"}
        return {"live": view.pop("version"), **view}

    def _write(self, report: PromotionReport, record: PromotionRecord, directory: Path) -> None:
        """The report of a promotion that ended (its timeline from the record), then the
        environment's older reports pruned to reports.keep."""
        transitions = [t.__dict__ for t in record.transitions]
        report.timeline = timeline(transitions, [int(w) for w in record.plan.get("steps", [])])
        if transitions:
            report.started_at, report.ended_at = transitions[0]["at"], transitions[-1]["at"]
        report.slo = dict(record.plan.get("slo", {}))
        write(report, directory)
        try:
            reports.prune(directory.parent, keep=self.env.reports.keep, current=record.id)
        except OSError as exc:  # an old report that cannot go is no reason to fail a promotion
            self.say(ProgressEvent("diagnostic", f"could not prune old reports in {directory.parent}: {exc}"))

    def _prune(self, record: PromotionRecord) -> dict[str, Any]:
        """Old versions and their code packages deleted (orchestrator/release/prune.py), keeping
        function.keep_versions. The promotion is done: whatever happens here is said, never
        a failed promotion (the next promotion prunes again)."""
        from orchestrator.release import prune

        target = self.target
        try:
            done = prune.prune(
                target.lambda_client(), target.s3_client(), target.function_name, target.bucket,
                record, self.env.function.keep_versions,
            )  # fmt: skip
        except Exception as exc:  # AWS refusing (permissions, throttling): the promotion stands
            self.say(ProgressEvent("diagnostic", f"could not prune old versions: {exc}; promotion {record.id} "
                                   "is done; the next promotion prunes again"))  # fmt: skip
            return {"error": str(exc)}
        for problem in done.problems:
            self.say(ProgressEvent("diagnostic", f"pruning: {problem}"))
        self.say(ProgressEvent("step", done.summary(), data=done.to_dict()))
        return done.to_dict()

    def _report(self, record: PromotionRecord) -> PromotionReport:
        report = PromotionReport(
            record.id, self.env.name, record.blue, record.green, str(record.plan["schedule"])
        )
        if self._contract_view is not None:  # set by _start: the promotion this command started
            report.contract = self._contract_view
        return report

    def _result(self, record: PromotionRecord) -> dict[str, Any]:
        return {
            "env": self.env.name,
            "promotion": record.id,
            "outcome": str(record.phase),
            **self._live_view(),
        }


def gate_fix(cause: Outcome) -> str:
    """What to do after a promotion a gate (or the health check) rolled back. A void gate is
    no verdict on green: blue, the control, failed the gate's own load, so what is suspect is
    the load (or live itself), and fixing green would change nothing."""
    if cause == Outcome.VOID:
        return (
            "the load, not green, is suspect: live's own version failed the gate's requests. Check "
            "the load against live's model (did green's model change its input or output? the load "
            "follows green's example) and whether live is healthy (`orchestrator status`), then "
            "promote again"
        )
    return "fix green and promote again"


def _alias_view(live: AliasState) -> dict[str, Any]:
    """An alias as results show it: version, weights, and `moving_from` while Lambda holds
    every request on the version it moves from ({old: 1}): then `weights` is not a split."""
    view: dict[str, Any] = {"version": live.version, "weights": {v: w for v, w in live.weights.items() if w}}
    reading = read_alias(live)
    if reading.kind == Reading.MOVING:
        view["moving_from"] = reading.serving
    return view


def _record_view(record: PromotionRecord) -> dict[str, Any]:
    """The record as `status` shows it (the full log stays in S3)."""
    data = record.to_dict()
    data["weight"] = record.weight
    data["transitions"] = data["transitions"][-5:]
    return data


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
