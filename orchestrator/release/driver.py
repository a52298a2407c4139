"""Drives one promotion record to a terminal phase: act, then persist, one phase at a time.

    loop while the record is in flight:
        (the record already says phase P: the intent is durable)
        fault point enter-P
        run P's act -> Outcome           (machine.PHASES' row, `_ACTS`; a stop request cuts waits short)
        fault point done-P
        next = machine.advance(record, outcome)          (machine.TRANSITIONS)
        write next, fenced by the ETag we last wrote (a deposed driver stops here)
        (S3 away, or the write failed: machine.S3_AWAY, machine.AFTER_WRITE_FAILURE)

Stop requests are observed, never raised: SIGINT/SIGTERM (processes.SignalLatch), an
operator's abort (seen by the lease heartbeat), and a lost lease. The first two turn the
current phase's outcome into INTERRUPTED/ABORT, which the machine sends to rolling_back;
a lost lease stops the driver at once without touching the alias again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.base import faults
from orchestrator.base.errors import (
    EdgeshipError,
    FencedError,
    LeaseLostError,
    LeaseUnconfirmedError,
    LeaseUnreadError,
    RollbackIncompleteError,
)
from orchestrator.base.processes import SignalLatch
from orchestrator.base.progress import ProgressEvent, Reporter
from orchestrator.gates import judge as gate
from orchestrator.gates import loadrun, sequential, watch
from orchestrator.gates.cloudwatch import LambdaMetrics
from orchestrator.gates.sizing import Sizing
from orchestrator.gates.sizing import describe as sizing_text
from orchestrator.release.lease import CONFIRM_PAUSE_S, Heartbeat, after_failed_read
from orchestrator.release.machine import (
    AFTER_WRITE_FAILURE,
    PHASES,
    S3_AWAY,
    STOP_PRIORITY,
    Act,
    Course,
    Outcome,
    Phase,
    PromotionRecord,
    Stop,
    advance,
    after_failed_write,
    course,
    rolled_back_unrecorded,
)
from orchestrator.release.plan import Plan
from orchestrator.release.record import ContinueRequest, RecordStore
from orchestrator.release.report import BakeReport, PauseReport, PromotionReport, StepReport
from orchestrator.release.traffic import AliasState, Settle, Traffic, fence_for
from orchestrator.stacks.targets import Endpoint, StackTarget, health

LAST_LOOK_ATTEMPTS = 3  # the look that ends a bake is retried before the watch counts as blind
SLIDING_S = 300.0  # while paused, the metrics window is the last five minutes
CONTINUE_POLL_S = 1.0  # seconds between looks for the go-ahead while paused
EXTEND_SAY_S = 60.0  # an extending bake says so again this often


_UNJUDGED_FIX = (
    "A bake judges real users' traffic on green: send some through the edge during bakes, raise "
    'traffic.metric_delay_s if Lambda\'s metrics arrive later here, set traffic.unjudged_bake = "extend" '
    "to bake on until green's traffic is judged, or bake_s = 0 where no real users are (the gates alone "
    "judge green)"
)


@dataclass(frozen=True)
class Step:
    """What one phase's action came to."""

    outcome: Outcome
    reason: str = ""


class Driver:
    """Runs the phases of one promotion while holding its lease."""

    def __init__(
        self,
        target: StackTarget,
        records: RecordStore,
        heartbeat: Heartbeat,
        latch: SignalLatch,
        reporter: Reporter,
        report: PromotionReport,
        directory: Path,
        *,
        locust_html: bool = False,
    ) -> None:
        self.target, self.records, self.heartbeat, self.latch = target, records, heartbeat, latch
        self.say, self.report, self.directory = reporter.event, report, directory
        self.locust_html = locust_html  # keep Locust's own page per gate (reports.locust_html)
        self.traffic = Traffic(
            target.lambda_client(), target.function_name, poll_s=target.cloud.settle_poll_s
        )
        self.metrics = LambdaMetrics(
            target.cloudwatch_client(), target.function_name, percentiles=target.percentiles,
            resolution_s=target.cloud.metric_resolution_s,
        )  # fmt: skip
        self.by = heartbeat.lease.holder
        self._waited = 0.0  # seconds of the current step spent baking, load-testing or paused
        self._shifted_at = time.time()  # when live last moved: the start of the metrics window
        # live's RevisionId after this driver's own last write of it, read back ("" before any):
        # kept in the record, and the fence of this driver's next forward write (fence_for).
        self._own_revision = ""
        self._last_write_id = ""  # the record write last tried (`_try_write`): it may have landed
        # A forward write refused because S3 did not answer the lease read (LeaseUnreadError):
        # the rollback that follows puts live on blue first, on the local deadline alone, and
        # records it after, instead of spending what is left of the lease's third on S3 calls
        # that time out (second review of the session: a slowly failing S3 left live split).
        self._s3_away: Exception | None = None
        self._phase = Phase.PLANNED

    def run(self, record: PromotionRecord, etag: str) -> PromotionRecord:
        """Drive `record` (already written, with `etag`) to a terminal phase and return it."""
        plan = record.the_plan()
        step_started = time.monotonic()
        while record.in_flight:
            self.heartbeat.beat()
            self._phase = record.phase  # what a stop for want of the lease tells to do next
            phase = record.phase.replace("_", "-")
            if record.phase == Phase.SHIFTING:  # overhead per step: all but bake and load time
                step_started, self._waited = time.monotonic(), 0.0
            # From the moment the record says a phase no stop ends (rolling_back), before its
            # enter point: a signal there says "rolling back, please wait", not "stopping and
            # rolling back"
            self.latch.rolling_back = not PHASES[record.phase].stoppable
            try:
                faults.point(f"enter-{phase}")
                step = self._act(record, plan)
                faults.point(f"done-{phase}")
            except (LeaseLostError, LeaseUnconfirmedError):
                raise
            except Exception as exc:  # whatever breaks between the record and the alias: roll back
                step = _error(exc)
            nxt = advance(record, step.outcome, now=time.time(), by=self.by, reason=step.reason)
            if nxt is record:  # the STAY edge: rolling_back is sticky, the alias call did not complete
                raise RollbackIncompleteError(
                    f"promotion {record.id}: could not put live back on v{record.blue}: {step.reason}; "
                    f"live may be split ({self._alias_text()})",
                    fix=f"run `orchestrator abort --env {record.env}` once AWS (or the emulator) answers",
                )
            if self._own_revision and nxt.live_revision != self._own_revision:
                nxt = replace(nxt, live_revision=self._own_revision)
            if (
                self._s3_away is not None
                and course(S3_AWAY, nxt.phase, lease=self.heartbeat.valid) is Course.ROLL_BACK_UNRECORDED
            ):
                return self._roll_back_unrecorded(record, etag, nxt, self._s3_away)
            written = self._try_write(nxt, etag, previous=record)
            if isinstance(written, Exception):  # S3 did not take the record
                after = course(AFTER_WRITE_FAILURE, nxt.phase, lease=self._lease_held)
                if after is Course.ROLL_BACK_UNRECORDED:
                    return self._roll_back_unrecorded(record, etag, nxt, written)
                raise self._write_failed(nxt, written)
            etag = written
            if record.phase == Phase.GATING:
                self.report.overhead_s.append(time.monotonic() - step_started - self._waited)
            record = nxt
            self._announce(record)
        return record

    # -- the acts, one per phase (machine.PHASES, `_ACTS`) ------------------------------------

    def _act(self, record: PromotionRecord, plan: Plan) -> Step:
        row = PHASES[record.phase]
        if row.stoppable:
            stop = self._stop_requested()
            if stop is not None:
                return stop
        assert row.act is not None, record.phase  # run() acts only in flight: every such row has one
        try:
            step = _ACTS[row.act](self, record, plan)
            if row.hooks is not None and step.outcome == Outcome.DONE:
                return self._hooks(plan, record, row.hooks)
            return step
        except (LeaseLostError, LeaseUnconfirmedError):
            raise
        except Exception as exc:  # any failure of an action is a reason to roll back, never to stop half-way
            return _error(exc)

    def _gate_edge(self, plan: Plan, record: PromotionRecord) -> Step:
        weight = plan.steps[record.step]
        return self._gate(plan, f"step {record.step + 1}", weight, self.target.edge(), share=weight / 100)

    def _promote(self, plan: Plan, record: PromotionRecord) -> Step:
        step = self._move(plan.blue, plan.green, 100, record.live_revision)
        if step.outcome == Outcome.DONE:
            self._invalidate_cache()
        return step

    def _prepare_candidate(self, plan: Plan) -> Step:
        self.traffic.point_candidate(plan.green, guard=self._require_lease)
        problem = health(self.target.candidate())
        if problem is not None:
            # Callers get no details (a failed init is a bare 500): the function's log has them.
            where = self.target.function_logs()
            return Step(
                Outcome.FAILED, f"green failed its health check: {problem} (its log says why: {where})"
            )
        # An alarm already firing (or misnamed) would end the first bake: say so before any traffic.
        broken = watch.breach(watch.judge_alarms(self.metrics.alarms(plan.slo.alarms)))
        if broken is not None:
            return Step(Outcome.FAILED, f"{broken.name} before any traffic moved: {broken.detail}")
        return Step(Outcome.DONE)

    def _move(self, blue: str, green: str, weight: int, recorded: str = "") -> Step:
        """Set live to `weight` % on green, fenced on the RevisionId the record kept (`recorded`)."""
        before = self.traffic.state()
        fence = fence_for(recorded, before.revision, own=bool(recorded) and recorded == self._own_revision)
        if fence.refused:
            return Step(Outcome.ERROR, f"error: {fence.refused}")
        if fence.note:
            self._diagnose(fence.note)
        asked = self.traffic.shift(blue, green, weight, revision=fence.revision, guard=self._require_lease)
        if asked.note:
            self._diagnose(asked.note)
        self._own_revision = asked.revision or self._own_revision
        # Green's metrics window starts now, not once settled: a change of weights moves requests
        # at once (only the PC is split again meanwhile), and green's metrics are counted per
        # ExecutedVersion, so a whole move that Lambda holds on blue adds nothing to them.
        self._shifted_at = time.time()
        # Read back until live is where asked (with provisioned concurrency, Lambda holds a
        # new version's requests on the old one until it is warm); a signal or an abort
        # cuts the wait short, and the rollback that follows puts live back on blue.
        settled = self.traffic.settle(
            asked, say=self._waiting, diagnose=self._diagnose,
            should_stop=lambda: self._stop_requested() is not None,
        )  # fmt: skip
        self._own_revision = settled.state.revision or self._own_revision  # Lambda's own moves since (PC)
        if settled.stopped:
            return self._stop_requested() or Step(Outcome.INTERRUPTED, "interrupted while live moved")
        if settled.verdict.settle == Settle.COLD:  # a gate would judge green on cold sandboxes
            return Step(Outcome.ERROR, f"error: {settled.verdict.why}")
        self._refresh_edge()
        return Step(Outcome.DONE)

    def _put_on_blue(self, blue: str) -> Step:
        asked = self.traffic.rollback(blue, guard=lambda: self._require_lease(rollback=True))
        self._own_revision = asked.revision or self._own_revision
        self._refresh_edge()
        # Done once every request is on blue (a PC still re-allocating is only said); signals
        # do not cut this wait (the rollback finishes first), a lost lease does.
        settled = self.traffic.settle(
            asked, rollback=True, say=self._waiting, diagnose=self._diagnose,
            should_stop=lambda: keep_lease(self.heartbeat),
        )  # fmt: skip
        self._own_revision = settled.state.revision or self._own_revision
        self._refresh_edge()  # again: any weights Lambda held back have cleared since
        if settled.verdict.settle == Settle.COLD or settled.verdict.note:  # all on blue: rolled back, said
            self._diagnose(settled.verdict.note or settled.verdict.why)
        self._invalidate_cache()
        return Step(Outcome.DONE)

    def _waiting(self, why: str) -> None:
        self.say(waiting_for_lambda(why))

    def _diagnose(self, text: str) -> None:
        self.say(ProgressEvent("diagnostic", text))

    def _bake(self, plan: Plan, record: PromotionRecord) -> Step:
        name, weight = f"step {record.step + 1}", plan.steps[record.step]
        if plan.bake_s <= 0:  # no bake, but the alarms are still looked at once (CodeDeploy's stop)
            bake = BakeReport(name, weight, 0.0, 0, "skipped", [],
                              reason="bake_s = 0: no bake, the gates alone judge green")  # fmt: skip
            self.report.bakes.append(bake)
            checks = self._look(plan, bake, self._shifted_at, attempts=LAST_LOOK_ATTEMPTS, metrics=False)
            if checks is None:
                return Step(Outcome.ERROR, f"{name}: could not read the alarms")
            broken = watch.breach(checks)
            if broken is not None:
                return Step(Outcome.FAILED, f"{name} at {weight}%: {broken.name}: {broken.detail}")
            bake.verdict = "skipped"
            return Step(Outcome.DONE)
        return self._watch(plan, record, name, end=time.time() + plan.bake_s)

    def _hold(self, plan: Plan, record: PromotionRecord) -> Step:
        """Paused: watch as a bake does until someone says go (`resume-promotion`)."""
        weight = plan.steps[record.step]
        self.say(ProgressEvent(
            "step", f"paused at {weight}%: run `orchestrator resume-promotion --env {record.env}` to go on, "
            f"or `orchestrator abort --env {record.env}` to roll back",
        ))  # fmt: skip
        pause = PauseReport(record.step, weight, time.time())
        self.report.pauses.append(pause)
        go: list[ContinueRequest] = []
        next_poll = 0.0

        def go_ahead() -> bool:
            nonlocal next_poll
            if time.monotonic() < next_poll:
                return False
            next_poll = time.monotonic() + CONTINUE_POLL_S
            try:
                found = self.records.continue_request(record.id)
            except Exception as exc:  # one S3 blip must not end a pause that may last hours
                self.say(
                    ProgressEvent(
                        "diagnostic", f"could not read the go-ahead ({type(exc).__name__}); retrying"
                    )
                )
                return False
            if found is None:
                return False
            go.append(found)
            return True

        step = self._watch(plan, record, f"step {record.step + 1} (paused)", go_ahead=go_ahead)
        pause.seconds = round(time.time() - pause.started_at, 3)
        pause.ended_by = f"resumed by {go[0].by}" if go and step.outcome == Outcome.DONE else step.reason
        return step

    def _watch(
        self,
        plan: Plan,
        record: PromotionRecord,
        name: str,
        *,
        end: float | None = None,
        go_ahead: Callable[[], bool] | None = None,
    ) -> Step:
        """Watch green's Lambda metrics and the alarms with real users on it, every look_s of
        the cloud; a breach ends the watch at once (rollback).

        A bake (`end`: when its window closes, epoch seconds) ends as watch.decide says: once
        green's late datapoints cover the window, or at the bound past it; it never passes
        without a judged metric of green. A pause (`go_ahead`) has no window: it ends on the
        go-ahead, whatever was judged (a person decides); its window slides over the last
        SLIDING_S so errors that start late are not diluted. The look that ends either must
        succeed: a watch that cannot see at the end has not seen the step."""
        weight = plan.steps[record.step]
        started = time.monotonic()
        bake = BakeReport(name, weight, 0.0, 0, str(watch.Check.NOT_JUDGED), [])
        self.report.bakes.append(bake)
        delay = plan.metric_delay_s if plan.metric_delay_s is not None else self.target.env.metric_delay_s
        timing = self.target.metric_timing(delay)
        next_look = time.time() + timing.look_s if end is None else min(time.time() + timing.look_s, end)
        said: dict[str, float] = {}
        try:
            while True:
                stop = self._stop_requested()  # every 0.1 s, waiting for datapoints included
                if stop is not None:
                    bake.verdict = "stopped"
                    return stop
                done = go_ahead is not None and go_ahead()
                if not done and time.time() < next_look:
                    time.sleep(0.1)
                    continue
                if end is None:  # a pause
                    since = max(self._shifted_at, time.time() - SLIDING_S)
                    checks = self._look(plan, bake, since, attempts=LAST_LOOK_ATTEMPTS if done else 1)
                    if checks is None and done:
                        return Step(Outcome.ERROR, f"{name}: could not read green's metrics or the alarms")
                    broken = watch.breach(checks or [])
                    if broken is not None:
                        return Step(Outcome.FAILED, f"{name} at {weight}%: {broken.name}: {broken.detail}")
                    if done:
                        bake.reason = "ended by the go-ahead" + (
                            "" if bake.verdict != watch.Check.NOT_JUDGED else
                            f"; no metric of green judged in its last {SLIDING_S:g} s")  # fmt: skip
                        return Step(Outcome.DONE)
                    next_look = time.time() + timing.look_s
                    continue
                decision = self._bake_look(plan, bake, end, timing)
                bake.verdict, bake.reason = str(decision.verdict), decision.reason
                if decision.action == watch.Action.PASS:
                    return Step(Outcome.DONE)
                if decision.action == watch.Action.BLIND:
                    return Step(Outcome.ERROR, f"{name}: {decision.reason}")
                if decision.action == watch.Action.FAIL:
                    if decision.verdict == watch.Check.BREACH:
                        return Step(Outcome.FAILED, f"{name} at {weight}%: {decision.reason}")
                    return Step(Outcome.FAILED, f"{name} at {weight}%: not judged: {decision.reason}. "
                                f"{_UNJUDGED_FIX}")  # fmt: skip
                self._say_once(said, name, decision)
                next_look = decision.look_at or time.time() + timing.look_s
        finally:
            bake.seconds = round(time.monotonic() - started, 3)
            if end is not None:
                bake.waited_s = round(max(0.0, bake.seconds - plan.bake_s), 3)
            # A bake's wait for late metrics is part of it, as a pause is: not overhead.
            self._waited += bake.seconds

    def _bake_look(self, plan: Plan, bake: BakeReport, end: float, timing: watch.Timing) -> watch.Decision:
        """One look at a bake whose window ends at `end`, and what it comes to."""
        past_end = time.time() >= end
        newest = None
        if past_end:
            # How far green's datapoints reach: only needed once the window has closed. Read
            # before the checks: a datapoint landing between the two reads is then seen by the
            # checks and not by `newest` (a look too early, retried), never the other way round
            # (coverage the checks never judged). A bake extended long past its bound asks only
            # for the recent ones (an older datapoint would have ended it at an earlier look).
            after = max(end - timing.resolution_s, time.time() - timing.wait_s - timing.look_s)
            try:
                newest = self.metrics.newest(plan.green, after, time.time())
            except Exception as exc:  # the bound still ends the bake; the next look asks again
                self.say(
                    ProgressEvent("diagnostic", f"could not read CloudWatch ({type(exc).__name__}: {exc})")
                )
        checks = self._look(plan, bake, self._shifted_at, attempts=LAST_LOOK_ATTEMPTS if past_end else 1)
        return watch.decide(
            checks, now=time.time(), end=end, newest=newest, timing=timing, unjudged=plan.unjudged_bake,
            max_extend_s=plan.extend_cap_s,
        )  # fmt: skip

    def _say_once(self, said: dict[str, float], name: str, decision: watch.Decision) -> None:
        """Progress when a bake starts waiting for its late datapoints, and when it extends
        (again every EXTEND_SAY_S while it does: an extension may last long)."""
        if decision.stage not in ("waiting", "extending"):
            return
        last = said.get(decision.stage)
        if last is None or (decision.stage == "extending" and time.monotonic() - last >= EXTEND_SAY_S):
            said[decision.stage] = time.monotonic()
            self.say(ProgressEvent("step", f"{name}: {decision.reason}"))

    def _look(
        self, plan: Plan, bake: BakeReport, since: float, attempts: int, *, metrics: bool = True
    ) -> list[watch.MetricCheck] | None:
        """One look at green's metrics (unless not `metrics`) and the alarms, recorded in
        `bake`: its checks, or None when CloudWatch could not be read (`attempts` times)."""
        for attempt in range(attempts):
            try:
                seen = self.metrics.version(plan.green, since, time.time()) if metrics else None
                states = self.metrics.alarms(plan.slo.alarms)
                break
            except Exception as exc:  # CloudWatch throttled or away: the next look tries again
                self.say(
                    ProgressEvent("diagnostic", f"could not read CloudWatch ({type(exc).__name__}: {exc})")
                )
                if attempt + 1 < attempts:
                    time.sleep(0.5)
        else:
            return None
        checks = (watch.judge_metrics(seen, plan.slo) if seen else []) + watch.judge_alarms(states)
        broken = watch.breach(checks)
        bake.looks += 1
        bake.checks = [c.to_dict() for c in checks]
        bake.verdict = str(watch.verdict(checks))
        if broken is not None:
            self.say(ProgressEvent("gate", f"{bake.name}: {broken.name} breached: {broken.detail}",
                                   data={"checks": bake.checks}))  # fmt: skip
        return checks

    def _hooks(self, plan: Plan, record: PromotionRecord, on: str) -> Step:
        """Run the plan's hooks for this point in order; the first that does not pass fails the gate."""
        chosen = [h for h in plan.hooks if h.on == on]
        if not chosen:
            return Step(Outcome.DONE)
        from orchestrator.release import hooks  # imported when used: most promotions have no hooks

        name = "pre-traffic" if on == "pre-traffic" else f"step {record.step + 1}"
        weight = 0 if on == "pre-traffic" else plan.steps[record.step]
        env = self._hook_env(record, weight)
        for i, hook in enumerate(chosen):
            self.say(ProgressEvent("step", f"hook {name}: {hook.run}"))
            started = time.monotonic()
            try:
                result = hooks.run(
                    on, hook.run, timeout_s=hook.timeout_s, cwd=self.target.settings.root, env=env,
                    log=self.directory / f"hook-{name.replace(' ', '-')}-{i + 1}.log",
                    should_stop=self._stop_requested,
                )  # fmt: skip
            finally:
                self._waited += time.monotonic() - started
            self.report.hooks.append({**result.to_dict(), "step": name})
            if result.outcome == "stopped":
                stop = self._stop_requested()
                return stop or Step(Outcome.INTERRUPTED, "interrupted during a hook")
            if not result.ok:
                return Step(Outcome.FAILED, f"{name}: {result.describe()}")
        return Step(Outcome.DONE)

    def _hook_env(self, record: PromotionRecord, weight: int) -> dict[str, str]:
        edge, candidate = self.target.edge(), self.target.candidate()
        # The candidate route wants SigV4 in EDGESHIP_REGION. Locally the hook signs with the
        # emulator's credentials, given here; on AWS with its own (the job's) credentials.
        # An ambient session token belongs to other keys: blanked (botocore then sends none),
        # or the edge refuses the hook's request as API Gateway would.
        signing = (
            {
                **candidate.credentials, "AWS_SESSION_TOKEN": "", "AWS_SECURITY_TOKEN": "",
                "AWS_DEFAULT_REGION": candidate.sigv4_region or "",
            }
            if candidate.credentials
            else {}
        )  # fmt: skip
        return {
            "EDGESHIP_ENV": record.env, "EDGESHIP_PROMOTION": record.id,
            "EDGESHIP_BLUE": record.blue, "EDGESHIP_GREEN": record.green,
            "EDGESHIP_WEIGHT": str(weight), "EDGESHIP_STEP": str(record.step + 1),
            "EDGESHIP_EDGE_URL": edge.url, "EDGESHIP_CANDIDATE_URL": candidate.url + candidate.path,
            "EDGESHIP_REGION": candidate.sigv4_region or "",
            **signing,
        }  # fmt: skip

    def _gate(self, plan: Plan, name: str, weight: int, endpoint: Endpoint, *, share: float) -> Step:
        """Load-test and judge green; one extension when inconclusive, judged on both runs pooled.

        The load runs duration_s and on until green has answered load.min_green_requests, at
        most max_duration_s (orchestrator/gates/sizing.py: a monitor reads each live snapshot). With
        load.sequential every snapshot is also a look (orchestrator/gates/sequential.py) that may end
        the load early; the verdict is still the fixed judge on everything measured, and where
        it disagrees with the early decision it wins (the report says so). A gate that reached
        max_duration_s short of green's requests is judged as it is, with a caveat saying so.
        """
        pooled: gate.LoadStats | None = None
        blue = "" if name == "pre-traffic" else plan.blue
        # At 100 % blue gets none of the load: nothing to compare with, so no comparison may
        # hold an early PASS back (it waited for blue's samples until max_duration_s).
        held_for = blue if weight < 100 else ""
        sizing = Sizing.of(plan.load)
        for attempt in (1, 2):
            self.say(
                ProgressEvent(
                    "step", f"gate {name}: {sizing_text(plan.load)} on {endpoint.url}{endpoint.path}"
                )
            )
            monitor = None
            if plan.load.sequential or plan.load.min_green_requests > 0:
                policy = sequential.Policy(
                    min_duration_s=plan.load.min_duration_s,
                    alpha=float(getattr(plan.slo, "alpha", sequential.DEFAULT_ALPHA)),
                )
                monitor = sequential.Monitor(
                    plan.green, plan.slo, policy, prior=pooled, blue=held_for, sizing=sizing,
                    sequential=plan.load.sequential,
                )  # fmt: skip
            started = time.monotonic()
            try:
                run = loadrun.run(
                    endpoint.url, plan.load, self.directory, f"{name.replace(' ', '-')}-{attempt}",
                    path=endpoint.path, headers=endpoint.headers, sigv4_region=endpoint.sigv4_region,
                    credentials=endpoint.credentials,
                    should_stop=self._stop_requested, example=list(plan.example) or None,
                    late_ms=plan.slo.p99_ms, html=self.locust_html,
                    on_snapshot=monitor.stops if monitor else None, run_time_s=sizing.run_time_s,
                )  # fmt: skip
            except loadrun.LoadRunStopped as stopped:
                step = stopped.args[0]
                assert isinstance(step, Step)
                return step
            finally:
                self._waited += time.monotonic() - started
            if run.stopped_early and monitor is not None and monitor.decided is not None:
                # Only a look that decided (pass or fail), not a gate ended by its size.
                faults.point("gate-stopped-early")
            stats = gate.LoadStats.read(run.stats)
            pooled = pooled.pooled(stats) if pooled else stats
            result = gate.judge_stats(pooled, blue, plan.green, plan.slo, share)
            decided = monitor.decided if monitor is not None and run.stopped_early else None
            if decided is None or decided.decision != sequential.Decision.FAIL:
                # An early FAIL needs no more requests (valid at any n); anything else short of
                # min_green_requests ran to max_duration_s: judged as it is, and said.
                green_requests = sequential.Counts.of(pooled, plan.green, plan.slo).requests
                short = sizing.shortfall(green_requests)
                if short is not None:
                    result = replace(result, caveats=[*result.caveats, short])
            evidence = _sequential_evidence(
                monitor if plan.load.sequential else None, run.stopped_early, result.verdict,
                time.monotonic() - started, sizing,
            )  # fmt: skip
            said = "; ".join([*result.reasons, *result.caveats])
            verdict = result.verdict
            if evidence and evidence["early"] == str(sequential.Decision.FAIL) and verdict in (
                gate.Verdict.PASS, gate.Verdict.INCONCLUSIVE,
            ):  # fmt: skip
                # The always-valid test found an SLO clearly broken (at alpha, however often it
                # looked): the judge on the shortened data must not promote over it.
                verdict = gate.Verdict.FAIL
                found = decided.reason if decided else evidence["stop"]
                said = f"the sequential test found an SLO clearly broken: {found} (the judge alone said {result.verdict}: {said})"
            elif evidence and evidence["note"]:
                said = f"{said}; {evidence['note']}"
            if evidence and evidence["early"] == str(sequential.Decision.FAIL):
                faults.point("gate-early-fail")  # the early FAIL stands (over the judge, if need be)
            self.report.steps.append(
                StepReport(name, weight, str(verdict), result.reasons,
                           result.green.to_dict() if result.green else None,
                           result.blue.to_dict() if result.blue else None, run.html.name if run.html else None, attempt,
                           result.skipped, result.caveats,
                           result.comparison.to_dict() if result.comparison else None, evidence)
            )  # fmt: skip
            self.say(ProgressEvent("gate", f"gate {name}: {verdict} ({said})", data=result.to_dict()))
            if verdict == gate.Verdict.PASS:
                return Step(Outcome.DONE)
            if verdict == gate.Verdict.FAIL:
                return Step(Outcome.FAILED, f"gate {name} failed: {said}")
            if verdict == gate.Verdict.VOID:  # blue failed the load: rolled back like a failure
                return Step(Outcome.VOID, f"gate {name} void: {said}")
        return Step(
            Outcome.FAILED,
            f"gate {name} stayed inconclusive after one extension: {said} "
            "(raise load.users, load.duration_s or load.max_duration_s, or lower slo.min_samples)",
        )

    # -- stop requests, the lease, persistence ------------------------------------------------------

    def _stop_requested(self) -> Step | None:
        """A reason to stop now, or None. A lost lease is raised: nothing more may be done."""
        return stop_requested(self.heartbeat, self.latch)

    def _require_lease(self, *, rollback: bool = False) -> None:
        """Right before every alias write (after its reads and checks): `require_lease`. A
        rollback after S3 failed the forward write's lease read does not read it again."""
        try:
            require_lease(
                self.heartbeat, rollback=rollback, diagnose=self._diagnose,
                stopped=lambda: f"this run stopped without touching live ({self._alias_text()})",
                fix=lambda: after_failed_write(self.records.env, self._phase),
                read_fix=f"check that S3 answers (`orchestrator status --env {self.records.env}`), then promote again",
                read=not (rollback and self._s3_away is not None),
            )  # fmt: skip
        except LeaseUnreadError as exc:
            self._s3_away = exc
            raise

    def _lease_held(self) -> bool:
        """Valid, or renewed now: a write that failed slowly may have used the third that was left."""
        return self.heartbeat.valid() or self.heartbeat.renew_now()

    def _try_write(self, record: PromotionRecord, etag: str, *, previous: PromotionRecord) -> str | Exception:
        """Write the next record: its new ETag, or the exception S3 (or the way to it) raised.
        A lost lease (or a fenced write) is raised: nothing more may be done."""
        try:
            if previous.phase == Phase.SHIFTING and record.phase == Phase.BAKING:
                faults.point("write-after-shift")  # live has just moved: the write that tells so
            self._last_write_id = uuid.uuid4().hex  # kept: a write that failed may have landed
            return self.records.write(record, etag, self._last_write_id)
        except LeaseLostError:
            raise
        except Exception as exc:  # S3 unreachable, or its answer lost: the caller decides
            return exc

    def _write_failed(self, record: PromotionRecord, exc: Exception) -> RollbackIncompleteError:
        """The stop when a record write failed and no rollback may follow (the lease is no
        longer surely held, or live is already whole): the record in S3 explains the rest."""
        return RollbackIncompleteError(
            f"promotion {record.id}: could not write the record ({type(exc).__name__}: {exc}); "
            f"live may be split ({self._alias_text()})",
            fix=after_failed_write(record.env, record.phase),  # `abort` would undo a promoted one
        )

    def _roll_back_unrecorded(
        self, record: PromotionRecord, etag: str, nxt: PromotionRecord, exc: Exception
    ) -> PromotionRecord:
        """A forward write failed while the lease is still held: put live back on blue rather
        than stop with it split, then record the rollback (one write, after the fact: the
        intent could not be written, and the record in S3, still in flight, already tells any
        other machine to roll back or resume). The alias goes first because it is the truth
        about traffic and Lambda may answer while S3 does not."""
        why = (
            f"S3 did not answer ({exc.message})" if isinstance(exc, LeaseUnreadError)
            else f"could not write the record ({type(exc).__name__}: {exc})"
        )  # fmt: skip
        self._diagnose(f"{why}; the lease is still held: rolling back to v{record.blue} before recording it")
        try:
            step = self._put_on_blue(record.blue)
        except (LeaseLostError, LeaseUnconfirmedError):
            raise
        except Exception as failed:  # Lambda refusing too: live stays where it is, said
            step = _error(failed)
        if step.outcome != Outcome.DONE:
            raise RollbackIncompleteError(
                f"promotion {record.id}: {why}, and live could not be put back on v{record.blue}: "
                f"{step.reason}; live may be split ({self._alias_text()})",
                fix=after_failed_write(record.env, nxt.phase),
            )
        faults.point("rolled-back-unrecorded")
        done = rolled_back_unrecorded(record, nxt, now=time.time(), by=self.by, why=why)
        if self._own_revision:
            done = replace(done, live_revision=self._own_revision)
        try:
            self._write_over_own(done, etag)
        except FencedError:
            raise  # another holder wrote the record: deposed (exit 12), it finishes the job
        except Exception as again:  # S3 still away
            raise RollbackIncompleteError(
                f"promotion {record.id}: {why}; live is back on v{record.blue} "
                f"({self._alias_text()}), but the record could not be written either "
                f"({type(again).__name__}: {again}) and still says the promotion is in flight",
                fix=f"run `orchestrator abort --env {record.env}` once S3 answers: it closes the record "
                "(live is already on blue)",
            ) from again
        self._announce(done)
        return done

    def _write_over_own(self, record: PromotionRecord, etag: str) -> str:
        """Write `record` on `etag`; when that is refused because the failed write before it
        had landed (its answer lost: S3 holds our own last write, with an ETag we never
        learnt), write on that one's ETag. Anyone else's write stays a FencedError (review
        P3-2: it was reported as "S3 still away", exit 8, even with another holder driving)."""
        try:
            return self.records.write(record, etag)
        except FencedError:
            landed = self.records.etag_if_written(self._last_write_id) if self._last_write_id else None
            if landed is None:
                raise
            return self.records.write(record, landed)

    def _refresh_edge(self) -> None:
        try:
            self.target.traffic_moved()
        except OSError as exc:
            self.say(ProgressEvent("diagnostic", f"edge refresh failed ({exc}); it will catch up by polling"))

    def _invalidate_cache(self) -> None:
        """Drop the edge's cached answers once live settled on one version: they may be of the
        version it left. A failure leaves them to expire by their TTL; no reason to roll back."""
        try:
            self.target.invalidate_cache()
        except Exception as exc:  # OSError locally, botocore's errors on AWS: only a diagnostic
            self.say(ProgressEvent("diagnostic", f"edge cache invalidation failed ({type(exc).__name__}: {exc}); "
                                   "cached GET /infer answers expire with their TTL"))  # fmt: skip

    def _alias_text(self, state: AliasState | None = None) -> str:
        try:
            return (state or self.traffic.state()).describe()
        except Exception as exc:  # only for a message: the alias cannot be read either
            return f"live could not be read: {type(exc).__name__}"

    def _announce(self, record: PromotionRecord) -> None:
        plan_steps = record.plan["steps"]
        if record.phase == Phase.SHIFTING:
            text = f"step {record.step + 1}/{len(plan_steps)}: shifting green v{record.green} to {plan_steps[record.step]}%"
        elif record.phase == Phase.ROLLING_BACK:
            text = f"rolling back to v{record.blue}: {record.reason}"
        else:
            text = f"{record.phase.replace('_', ' ')}"
        self.say(
            ProgressEvent(
                "step", f"[{record.id}] {text}", data={"phase": str(record.phase), "step": record.step}
            )
        )


def _sequential_evidence(
    monitor: sequential.Monitor | None,
    stopped_early: bool,
    verdict: gate.Verdict,
    seconds: float,
    sizing: Sizing,
) -> dict[str, Any] | None:
    """What a sequential gate's looks saw, for the report: why the load ended, the statistics
    per look, and whether the fixed judge on all the data agreed with the early decision."""
    if monitor is None:
        return None
    ended = monitor.ended if stopped_early else None
    decided = monitor.decided if stopped_early else None
    early = str(decided.decision) if decided is not None else None
    note = ""
    if decided is not None and str(decided.decision) != str(verdict):
        stands = (
            "the sequential test's FAIL stands"
            if decided.decision == sequential.Decision.FAIL
            else "the fixed judge's verdict stands"
        )
        note = (
            f"the sequential look decided {early} early ({decided.reason}) but the fixed judge on all "
            f"{decided.samples}+ requests says {verdict}: {stands}"
        )
    if decided is not None:
        stop = f"ended early at {decided.elapsed_s:.1f}s: {decided.decision} ({decided.reason})"
    elif ended is not None:  # its size ended it: duration_s, and green's min_green_requests
        stop = f"{ended.reason}: no look was decisive"
    elif sizing.run_time_s > sizing.duration_s:
        stop = f"ran to max_duration_s ({sizing.run_time_s:g}s): no look was decisive"
    else:
        stop = "ran its full duration_s: no look was decisive"
    return {
        "stop": stop,
        "early": early,
        "agreed": early is None or early == str(verdict),
        "note": note,
        "seconds": round(seconds, 2),
        "looks": monitor.evidence(),
    }


def require_lease(
    heartbeat: Heartbeat,
    *,
    rollback: bool,
    diagnose: Callable[[str], None],
    stopped: Callable[[], str],
    fix: Callable[[], str],
    read_fix: str = "check that S3 answers, then try again",
    read: bool = True,
) -> None:
    """Called right before every alias write (after its reads and checks), by the driver and
    by the recovery commands: act only while the lease surely holds, locally (not deposed, a
    third of it left on a clock that counts a suspend, renewed at once if less) and in S3
    (read: still our token, a third left by the wall clock; `Heartbeat.confirm`). A read that
    fails says nothing about the holder: a forward write is tried again while there is time,
    then refused (the promotion rolls back); a `rollback` goes on while the lease holds
    locally (`lease.after_failed_read`). `stopped()` says where live was left when this stops
    (LeaseUnconfirmedError, exit 8); `fix()` what to run then. Without `read` (a rollback
    right after S3 failed to answer the lease read), the local deadline alone decides, as it
    does when that read fails (`after_failed_read`: "write"), without waiting for S3 again."""
    _surely_valid(heartbeat, stopped, fix)
    if not read:
        diagnose(
            "S3 did not answer the promotion lease read moments ago; the lease holds on this machine's "
            "clock (a third of it left), so nobody else can have taken it: rolling back without reading it again"
        )
        return
    tries = 0
    while True:
        tries += 1
        started = time.monotonic()
        try:
            short = heartbeat.confirm()  # LeaseLostError (deposed, exit 12) is raised as it is
        except LeaseLostError:
            raise
        except Exception as exc:  # botocore's errors: whether we still hold the lease is unknown
            failed = f"{type(exc).__name__}: {exc}"
            then = after_failed_read(
                rollback=rollback, valid=heartbeat.valid(), tries=tries,
                spare_s=heartbeat.spare_s(), read_s=time.monotonic() - started,
            )  # fmt: skip
            if then == "write":
                diagnose(
                    f"could not read the promotion lease before putting live back on blue ({failed}); it "
                    "holds on this machine's clock (a third of it left), so nobody else can have taken it: "
                    "rolling back anyway"
                )
                break
            if then == "refuse":
                raise LeaseUnreadError(
                    f"could not read the promotion lease to confirm it before moving live forward "
                    f"({tries} tries; {failed}); live was not moved",
                    fix=read_fix,
                ) from exc
            if then == "renew":
                break  # _surely_valid below renews, or stops without touching live
            diagnose(f"could not read the promotion lease ({failed}); trying again")
            time.sleep(min(CONFIRM_PAUSE_S, heartbeat.lease_s / 12))
            continue
        if short is not None:  # ours by token, but the renewal it needed failed
            raise LeaseUnconfirmedError(
                f"could not confirm the promotion lease in S3: {short}; {stopped()}", fix=fix()
            )
        break
    # Again after the read, which can take longer than the third that was left (2 attempts
    # of up to 13 s): the write must still land while nobody else may take the lease.
    _surely_valid(heartbeat, stopped, fix)


def _surely_valid(heartbeat: Heartbeat, stopped: Callable[[], str], fix: Callable[[], str]) -> None:
    """Not deposed and a third of the lease left on the local clock, renewed at once if less
    (a renewal that was merely late must not stop a promotion); else stop, live untouched."""
    if heartbeat.lost is not None:
        raise heartbeat.lost
    if heartbeat.valid() or heartbeat.renew_now():
        return
    if heartbeat.lost is not None:  # the renewal found another holder
        raise heartbeat.lost
    # Not even a rollback may follow (another machine may hold the lease by now): the
    # record, still in flight, tells whoever comes next to finish the job.
    raise LeaseUnconfirmedError(
        f"the promotion lease could not be renewed (is S3 reachable?); {stopped()}", fix=fix()
    )


def keep_lease(heartbeat: Heartbeat) -> bool:
    """Renew the lease (if due); a lost one is raised: nothing more may be done. False: go on."""
    heartbeat.beat()
    if heartbeat.lost is not None:
        raise heartbeat.lost
    return False


def stop_requested(heartbeat: Heartbeat, latch: SignalLatch) -> Step | None:
    """A reason to stop now (a signal, an operator's abort), or None; a lost lease is raised.
    The driver asks between and during its actions; `promote` too while it waits for Lambda."""
    keep_lease(heartbeat)
    seen: dict[Stop, Callable[[], str | None]] = {  # each stop's reason if requested, asked in turn
        Stop.SIGNAL: lambda: f"interrupted ({latch.received})" if latch.received else None,
        Stop.ABORT_REQUEST: lambda: (
            "aborted by an operator (`orchestrator abort`)" if heartbeat.abort_requested else None
        ),
    }
    for stop, outcome in STOP_PRIORITY:
        reason = seen[stop]()
        if reason is not None:
            return Step(outcome, reason)
    return None


# What each act of machine.PHASES runs (the row's hooks, and the stop requests before it, are
# Driver._act's; the fault points around it run()'s).
_ACTS: dict[Act, Callable[[Driver, PromotionRecord, Plan], Step]] = {
    Act.PREPARE_CANDIDATE: lambda d, record, plan: d._prepare_candidate(plan),
    Act.GATE_CANDIDATE:    lambda d, record, plan: d._gate(plan, "pre-traffic", 0, d.target.candidate(), share=1.0),
    Act.SHIFT:             lambda d, record, plan: d._move(plan.blue, plan.green, plan.steps[record.step],
                                                           record.live_revision),
    Act.BAKE:              lambda d, record, plan: d._bake(plan, record),
    Act.GATE_EDGE:         lambda d, record, plan: d._gate_edge(plan, record),
    Act.HOLD:              lambda d, record, plan: d._hold(plan, record),
    Act.PROMOTE:           lambda d, record, plan: d._promote(plan, record),
    Act.PUT_ON_BLUE:       lambda d, record, plan: d._put_on_blue(record.blue),
}  # fmt: skip


def waiting_for_lambda(why: str) -> ProgressEvent:
    """The progress line while Lambda finishes moving live (provisioned concurrency)."""
    return ProgressEvent("step", f"waiting for Lambda: {why}")


def _error(exc: Exception) -> Step:
    message = exc.message if isinstance(exc, EdgeshipError) else f"{type(exc).__name__}: {exc}"
    return Step(Outcome.ERROR, f"error: {message}")
