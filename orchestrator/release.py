"""The promotion state machine: publish green, gate it alone, shift traffic step by step
with a gate at each step, finish on green, or roll back to blue in one call.

    plan (pure) -> lock + record -> pre-traffic gate -> [shift -> bake -> gate]* -> finish
                                  any failure, error, SIGINT or SIGTERM -> rollback

The same code drives every environment; the Target says how to publish and where to
send load.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import gate, loadrun
from orchestrator.errors import Cancelled, EdgeshipError, GateFailedError, PromotionLockedError
from orchestrator.plan import Plan, make_plan
from orchestrator.processes import sigterm_as_interrupt
from orchestrator.progress import ProgressEvent, Reporter
from orchestrator.record import FAILED, PROMOTED, ROLLED_BACK, RUNNING, Holder, PromotionRecord, RecordStore
from orchestrator.report import PromotionReport, StepReport, write
from orchestrator.settings import Environment
from orchestrator.targets import Endpoint, Target
from orchestrator.traffic import Traffic


@dataclass(frozen=True)
class PromoteOptions:
    """How to run one promotion."""

    schedule: str | None = None
    dry_run: bool = False
    resume: bool = False
    rollback: bool = False
    function_dir: Path | None = None
    model: Path | None = None


class InterruptedPromotion(PromotionLockedError):
    """A previous promotion stopped half-way (crash, kill -9) and needs a decision."""


class Release:
    """Promotion, rollback and status of one environment."""

    def __init__(self, target: Target, env: Environment, reporter: Reporter, reports_root: Path) -> None:
        self.target, self.env, self.reporter, self.reports_root = target, env, reporter, reports_root

    # -- status and recovery ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Versions, weights and any in-flight or interrupted promotion."""
        traffic = Traffic(self.target.lambda_client(), self.target.function_name)
        live, candidate = traffic.state("live"), traffic.state("candidate")
        store = self._store()
        record, holder = store.current(), store.lock_holder()
        return {
            "env": self.env.name,
            "function": self.target.function_name,
            "live": {"version": live.version, "weights": live.weights},
            "candidate": candidate.version,
            "versions": traffic.versions(),
            "promotion": record.to_dict() if record else None,
            "lock": holder.describe() if holder else None,
            "interrupted": bool(record and record.state == RUNNING and holder and _gone(holder)),
        }

    def rollback(self) -> dict[str, Any]:
        """Put `live` back on blue: an in-flight or interrupted promotion's, else the last promotion's."""
        store = self._store()
        record, holder = store.current(), store.lock_holder()
        if record is None:
            raise EdgeshipError(
                f"no promotion recorded for {self.env.name!r}; nothing to roll back",
                fix="see `orchestrator status`",
            )
        if holder and not _gone(holder) and holder != Holder.me():
            raise PromotionLockedError(
                f"a promotion of {self.env.name!r} is running: {holder.describe()}",
                fix="interrupt it (Ctrl-C rolls back), or wait for it to finish",
            )
        Traffic(self.target.lambda_client(), self.target.function_name).rollback(record.blue)
        self._moved()
        closed = record.close(ROLLED_BACK, "rolled back by `orchestrator rollback`")
        store.save(closed)
        if holder:
            store.release()
        self.reporter.event(
            ProgressEvent("step", f"live -> v{record.blue} (100%); promotion {record.id} rolled back")
        )
        return {"env": self.env.name, "live": record.blue, "promotion": closed.id, "outcome": ROLLED_BACK}

    # -- promotion --------------------------------------------------------------------------

    def dry_run(self, options: PromoteOptions) -> dict[str, Any]:
        """The plan, from what is deployed now; changes nothing."""
        lam = self.target.lambda_client()
        try:
            blue = Traffic(lam, self.target.function_name).state("live").version
        except Exception:  # nothing deployed yet
            blue = "none"
        plan = make_plan(self.env, blue, "next published version", options.schedule)
        return {"dry_run": True, **plan.to_dict()}

    def promote(self, options: PromoteOptions) -> PromotionReport:
        """Run (or resume) a promotion to its end: promoted, or rolled back with a reason."""
        store_before = self._store()
        interrupted = self._interrupted(store_before, options)
        if interrupted is not None and options.rollback:
            self.rollback()
            report = PromotionReport(
                interrupted.id, self.env.name, interrupted.blue, interrupted.green, interrupted.schedule
            )
            report.outcome, report.reason = ROLLED_BACK, "interrupted promotion rolled back"
            write(report, self.reports_root / self.env.name / interrupted.id)
            return report

        if interrupted is not None:
            record = interrupted
            store = self._store()
            store.take_over(Holder.me())
            record = PromotionRecord(**{**record.__dict__, "holder": Holder.me()})
            self.reporter.event(
                ProgressEvent("step", f"resuming promotion {record.id} at step {record.step_reached + 1}")
            )
        else:
            published = self.target.publish(options.function_dir, options.model, self.reporter)
            if published.blue is None or published.blue == published.green:
                outcome = (
                    "first deploy: live serves it"
                    if published.blue is None
                    else "no change since the live version"
                )
                self.reporter.event(
                    ProgressEvent("step", f"v{published.green}: {outcome}; nothing to promote")
                )
                return PromotionReport(
                    "none", self.env.name, published.blue, published.green, "-", "nothing_to_do", outcome
                )
            plan = make_plan(self.env, published.blue, published.green, options.schedule)
            record = PromotionRecord.new(self.env.name, plan.blue, plan.green, plan.schedule, plan.steps)
            store = self._store()
            store.acquire(record.holder)
            store.save(record)
        plan = make_plan(self.env, record.blue, record.green, record.schedule)
        report = PromotionReport(record.id, self.env.name, record.blue, record.green, record.schedule)
        return self._drive(plan, record, store, report)

    def _drive(
        self, plan: Plan, record: PromotionRecord, store: RecordStore, report: PromotionReport
    ) -> PromotionReport:
        directory = self.reports_root / self.env.name / record.id
        traffic = Traffic(self.target.lambda_client(), self.target.function_name)
        say = self.reporter.event
        say(
            ProgressEvent(
                "step", f"promotion {record.id}: v{plan.blue} -> v{plan.green}, {plan.schedule} {plan.steps}"
            )
        )
        try:
            with sigterm_as_interrupt():
                if record.step_reached < 0:
                    traffic.point_candidate(plan.green)
                    self._health(self.target.candidate())
                    self._gate(plan, report, directory, "pre-traffic", 0, self.target.candidate(), share=1.0)
                for index in range(max(record.step_reached, 0), len(plan.steps)):
                    weight = plan.steps[index]
                    started = time.monotonic()
                    traffic.shift(plan.blue, plan.green, weight)
                    self._moved()
                    record = record.advance(index, weight)
                    store.save(record)
                    say(
                        ProgressEvent(
                            "step", f"step {index + 1}/{len(plan.steps)}: green v{plan.green} at {weight}%"
                        )
                    )
                    moved = time.monotonic() - started
                    time.sleep(plan.bake_s)
                    judged = time.monotonic()
                    tested = self._gate(
                        plan,
                        report,
                        directory,
                        f"step {index + 1}",
                        weight,
                        self.target.edge(),
                        share=weight / 100,
                    )
                    report.overhead_s.append(moved + (time.monotonic() - judged - tested))
        except KeyboardInterrupt:
            self._roll_back(traffic, plan, record, store, report, directory, "interrupted (SIGINT/SIGTERM)")
            raise Cancelled(
                f"promotion {record.id} interrupted; live is back on v{plan.blue}",
                fix="run `orchestrator promote` again",
            ) from None
        except GateFailedError as exc:
            self._roll_back(traffic, plan, record, store, report, directory, exc.message)
            raise GateFailedError(
                f"{exc.message}; live is back on v{plan.blue} (report: {directory / 'report.md'})",
                fix=exc.fix,
            ) from None
        except Exception as exc:
            self._roll_back(traffic, plan, record, store, report, directory, f"error: {exc}")
            raise
        record = record.close(PROMOTED)
        store.save(record)
        store.release()
        report.outcome = PROMOTED
        write(report, directory)
        say(
            ProgressEvent("step", f"promoted: live -> v{plan.green} (100%); report {directory / 'report.md'}")
        )
        return report

    def _gate(
        self,
        plan: Plan,
        report: PromotionReport,
        directory: Path,
        name: str,
        weight: int,
        endpoint: Endpoint,
        *,
        share: float,
    ) -> float:
        """Load-test and judge green; extend once when inconclusive. Returns seconds spent load-testing."""
        spent = 0.0
        for attempt in (1, 2):
            self.reporter.event(
                ProgressEvent(
                    "step",
                    f"gate {name}: {plan.load.users} users for {plan.load.duration_s:g}s on {endpoint.url}{endpoint.path}",
                )
            )
            started = time.monotonic()
            run = loadrun.run(
                endpoint.url, plan.load, directory, f"{name.replace(' ', '-')}-{attempt}",
                path=endpoint.path, headers=endpoint.headers, sigv4_region=endpoint.sigv4_region,
            )  # fmt: skip
            spent += time.monotonic() - started
            blue = None if name == "pre-traffic" else plan.blue
            result = gate.from_stats_file(run.stats, blue or "", plan.green, plan.slo, share)
            report.steps.append(
                StepReport(name, weight, str(result.verdict), result.reasons,
                           result.green.to_dict() if result.green else None,
                           result.blue.to_dict() if result.blue else None, run.html.name, attempt)
            )  # fmt: skip
            self.reporter.event(ProgressEvent("gate", f"gate {name}: {result.verdict} ({'; '.join(result.reasons)})",
                                              data=result.to_dict()))  # fmt: skip
            if result.verdict == gate.Verdict.PASS:
                return spent
            if result.verdict == gate.Verdict.FAIL:
                raise GateFailedError(
                    f"gate {name} failed: {'; '.join(result.reasons)}", fix="fix green and promote again"
                )
        raise GateFailedError(f"gate {name} stayed inconclusive after one extension: {'; '.join(result.reasons)}",
                              fix="raise load.users or load.duration_s, or lower slo.min_samples")  # fmt: skip

    def _health(self, endpoint: Endpoint) -> None:
        url = endpoint.url + endpoint.path.rsplit("/", 1)[0] + "/healthz"
        headers = dict(endpoint.headers or {})
        if endpoint.sigv4_region:
            headers.update(sigv4_headers("GET", url, endpoint.sigv4_region))
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                ok, detail = response.status == 200, ""
        except urllib.error.HTTPError as exc:
            ok, detail = False, exc.read().decode(errors="replace")[:300]
        except OSError as exc:
            ok, detail = False, str(exc)
        if not ok:
            raise GateFailedError(
                f"green failed its health check: {detail}", fix="check the model artifact and its sha256"
            )

    def _roll_back(
        self,
        traffic: Traffic,
        plan: Plan,
        record: PromotionRecord,
        store: RecordStore,
        report: PromotionReport,
        directory: Path,
        reason: str,
    ) -> None:
        say = self.reporter.event
        try:
            if record.step_reached >= 0:
                traffic.rollback(plan.blue)
                self._moved()
        except Exception as exc:  # the alias may be half-shifted: say so and keep the record open
            report.outcome, report.reason = FAILED, f"{reason}; ROLLBACK FAILED: {exc}"
            write(report, directory)
            raise EdgeshipError(
                f"{reason}; and rolling back failed: {exc}",
                fix=f"run `orchestrator rollback --env {self.env.name}` once the environment is reachable",
            ) from exc
        state = ROLLED_BACK if record.step_reached >= 0 else FAILED
        store.save(record.close(state, reason))
        store.release()
        report.outcome, report.reason = state, reason
        write(report, directory)
        say(
            ProgressEvent(
                "step", f"{state.replace('_', ' ')}: live on v{plan.blue}; {reason}", status="failed"
            )
        )

    # -- helpers --------------------------------------------------------------------------------

    def _store(self) -> RecordStore:
        return RecordStore(self.target.s3_client(), self.target.bucket, self.env.name)

    def _moved(self) -> None:
        try:
            self.target.traffic_moved()
        except OSError as exc:
            self.reporter.event(
                ProgressEvent("diagnostic", f"edge refresh failed ({exc}); it will catch up by polling")
            )

    def _interrupted(self, store: RecordStore, options: PromoteOptions) -> PromotionRecord | None:
        try:
            record, holder = store.current(), store.lock_holder()
        except Exception:  # no bucket yet: first deploy
            return None
        if holder is None:
            return None
        if not _gone(holder) and not (options.resume or options.rollback):
            raise PromotionLockedError(
                f"another promotion of {self.env.name!r} is running: {holder.describe()}",
                fix="wait for it to finish; if it crashed on another machine, pass --resume or --rollback",
            )
        if record is None or record.state != RUNNING:
            store.release()  # a lock without a running record protects nothing
            return None
        if options.resume or options.rollback:
            return record
        raise InterruptedPromotion(
            f"promotion {record.id} of {self.env.name!r} was interrupted at {record.weight}% "
            f"(v{record.blue} -> v{record.green}, holder {record.holder.describe()} is gone)",
            fix=f"`orchestrator promote --env {self.env.name} --resume` to continue, or `--rollback` to undo",
        )


def sigv4_headers(method: str, url: str, region: str, body: bytes = b"") -> dict[str, str]:
    """Headers that sign one request for API Gateway IAM auth, with the ambient AWS credentials."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise EdgeshipError(
            "no AWS credentials to sign the candidate request", fix="configure AWS credentials"
        )
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def _gone(holder: Holder) -> bool:
    from orchestrator.processes import alive
    from orchestrator.record import holder_is_gone

    me = Holder.me()
    return holder_is_gone(holder, host=me.host, pid_alive=alive(holder.pid))
