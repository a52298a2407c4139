"""The driver's fences against a real moto server, in-process: the lease read from S3 right
before an alias write stops a driver whose lease was taken (or removed) between two steps,
with `live` left where the first step put it; a lease still ours but expired by the wall
clock is renewed once (the step goes on, or exit 8 when S3 cannot take the renewal); a read
that outlasts the third left waits for a renewal; with the lease reads failing, a forward
write is refused and the rollback that follows still writes live (the lease holds locally);
a forward write after live moved since the driver's own last write is refused. The
decisions alone: tests/test_fence_rules.py.

The driver runs its real actions (`Driver._act`) on moto's Lambda and S3; the stack it reads
its function name and clients from is a stand-in (`_Target`): no Pulumi stack is needed to
move an alias. Its heartbeat runs on a clock that stands still, as CLOCK_MONOTONIC does
through a suspend: the local deadline says the lease is young, only S3 can say otherwise."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator.base import netfaults
from orchestrator.base.errors import LeaseLostError, LeaseUnconfirmedError
from orchestrator.base.processes import SignalLatch, alive
from orchestrator.base.progress import NullReporter, ProgressEvent
from orchestrator.config.settings import Environment
from orchestrator.local import emulator
from orchestrator.release import lease
from orchestrator.release.driver import Driver, Step
from orchestrator.release.lease import Heartbeat, LeaseStore
from orchestrator.release.machine import Outcome, Phase, PromotionRecord
from orchestrator.release.plan import make_plan
from orchestrator.release.record import RecordStore
from orchestrator.release.report import PromotionReport
from orchestrator.release.traffic import Traffic
from orchestrator.stacks.targets import StackTarget

FUNCTION, BUCKET = "fences-test-infer", "fences-test-state"


@dataclass
class _Target:
    """What a Driver asks of its stack to move live: the function and the clients."""

    clients: dict[str, Any]
    function_name: str = FUNCTION
    percentiles: bool = False
    cloud: Any = field(default_factory=lambda: SimpleNamespace(settle_poll_s=0.1, metric_resolution_s=60.0))

    def lambda_client(self) -> Any:
        return self.clients["lambda"]

    def cloudwatch_client(self) -> Any:
        return self.clients["cloudwatch"]

    def traffic_moved(self) -> None:
        return None  # no edge here

    def invalidate_cache(self) -> None:
        return None


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Versions 1-3 of a function with `live` on 1, and the state bucket (plain boto3 calls)."""
    state = tmp_path_factory.mktemp("emulator")
    server = emulator.ensure(state)
    ca = state / "tls" / "cert.pem"
    clients = {name: emulator.client(name, server.url, ca) for name in ("lambda", "s3", "iam", "cloudwatch")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = clients["iam"].create_role(RoleName="fences-test", AssumeRolePolicyDocument=json.dumps(trust))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    lam = clients["lambda"]
    lam.create_function(FunctionName=FUNCTION, Runtime="python3.12", Handler="handler.handler",
                        Code={"ZipFile": code.getvalue()}, Role=role["Role"]["Arn"], Publish=True)  # fmt: skip
    for version in ("2", "3"):
        lam.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {"V": version}})
        lam.publish_version(FunctionName=FUNCTION)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    clients["server"] = (server.url, ca)  # for clients made with network faults armed
    yield clients
    emulator.stop(state)


def _driver(
    clients: dict[str, Any], env: str, tmp_path: Path, lease_s: float = 30.0, clock: Any = lambda: 0.0
) -> tuple[Driver, PromotionRecord, LeaseStore]:
    """A driver holding `env`'s lease (30 s, its heartbeat not started, its clock stopped unless
    given one) with a promotion of v3 over v1 at its first shift; live put back on v1 first."""
    store = LeaseStore(clients["s3"], BUCKET, env)
    taken_at = clock()
    held, etag = store.take(lease.me(lease_s), pid_alive=alive)
    heartbeat = Heartbeat(
        store, held, etag, lease_s, abort_check=lambda _: False, clock=clock, taken_at=taken_at
    )
    plan = make_plan(Environment(env, "us-east-1", "123456789012"), "1", "3")
    record = replace(PromotionRecord.new(plan, held.holder, time.time()), phase=Phase.SHIFTING, step=0)
    Traffic(clients["lambda"], FUNCTION).rollback("1")
    report = PromotionReport(record.id, env, "1", "3", "linear")
    target = cast(StackTarget, _Target(clients))
    records = RecordStore(clients["s3"], BUCKET, env)
    return Driver(target, records, heartbeat, SignalLatch(), NullReporter(), report, tmp_path), record, store


def _armed_store(clients: dict[str, Any], env: str, spec: str) -> LeaseStore:
    """The lease store of `env` on a client made with the network faults of `spec` armed."""
    netfaults.arm(spec)
    return LeaseStore(emulator.client("s3", *clients["server"]), BUCKET, env)


@pytest.fixture
def disarm() -> Any:
    yield
    netfaults.arm("")


@pytest.mark.parametrize("how", ["taken-over", "removed"])
def test_a_driver_whose_lease_went_between_two_steps_stops_without_writing_live(
    aws: Any, tmp_path: Path, how: str
) -> None:
    driver, record, store = _driver(aws, f"fences-{how}", tmp_path)
    plan, traffic = record.the_plan(), Traffic(aws["lambda"], FUNCTION)
    assert driver._act(record, plan) == Step(Outcome.DONE)  # step 1: live moved, lease confirmed in S3
    first = traffic.state()
    assert (first.version, first.weights) == ("1", {"3": plan.steps[0] / 100})
    assert driver._own_revision == first.revision != ""  # kept for the record (moto returns one)

    # The machine sleeps past its lease: in S3 it ran out (a renewal long ago) ...
    mine = driver.heartbeat.lease
    store.renew(mine, driver.heartbeat.etag, -1.0)
    if how == "taken-over":  # ... and another machine took it
        other = replace(lease.me(30.0), holder="ci-run-2", host="runner-2")
        LeaseStore(aws["s3"], BUCKET, record.env).take(other, pid_alive=alive)
    else:  # ... and another machine's `abort` cleared it as stale
        aws["s3"].delete_object(Bucket=BUCKET, Key=store.key)
    assert driver.heartbeat.valid()  # the stopped local clock still believes the lease young

    with pytest.raises(LeaseLostError) as lost:
        driver._act(replace(record, step=1), plan)  # step 2
    said = "it was taken over by ci-run-2 (host runner-2" if how == "taken-over" else "it was removed;"
    assert lost.value.message.startswith(
        f"this run no longer holds the promotion lease of {record.env!r} in S3: {said}"
    )
    assert lost.value.exit_code == 12 and driver.heartbeat.lost is lost.value
    after = traffic.state()
    assert (after.version, after.weights) == ("1", {"3": plan.steps[0] / 100})  # live unchanged
    found, _ = store.read()
    assert (found is None) == (how == "removed") and (found is None or found.token != mine.token)


@pytest.mark.parametrize("renewal", ["lands", "unreachable"])
def test_a_lease_still_ours_but_expired_by_the_wall_clock_is_renewed_once(
    aws: Any, tmp_path: Path, renewal: str, disarm: Any
) -> None:
    """The wall clock stepped forward past the lease's S3 expiry (NTP after a VM booted); the
    local deadline (CLOCK_BOOTTIME) still holds. Nobody took the lease: one renewal, If-Match
    on our ETag, proves it ours and the step goes on. With S3 unreachable for that renewal the
    lease is unknown, not lost: exit 8 without touching live, `lost` unset."""
    env = f"fences-step-{renewal}"
    driver, record, store = _driver(aws, env, tmp_path)
    plan, traffic = record.the_plan(), Traffic(aws["lambda"], FUNCTION)
    assert driver._act(record, plan) == Step(Outcome.DONE)  # step 1
    mine = driver.heartbeat.lease
    store.renew(mine, driver.heartbeat.etag, -1.0)  # in S3: ours, expired 1 s ago by the wall clock
    if renewal == "unreachable":
        driver.heartbeat.store = _armed_store(aws, env, "s3:PutObject[lock.json]@1+=unsent")
        with pytest.raises(LeaseUnconfirmedError) as stopped:
            driver._act(replace(record, step=1), plan)  # step 2
        assert stopped.value.exit_code == 8 and driver.heartbeat.lost is None
        assert stopped.value.message.startswith("could not confirm the promotion lease in S3: it expired ")
        assert "s ago by this machine's clock (was the clock stepped forward" in stopped.value.message
        assert "and renewing it failed (EndpointConnectionError" in stopped.value.message
        after = traffic.state()
        assert (after.version, after.weights) == ("1", {"3": plan.steps[0] / 100})  # live unchanged
        return
    assert driver._act(replace(record, step=1), plan) == Step(Outcome.DONE)  # step 2 goes on
    after = traffic.state()
    assert (after.version, after.weights) == ("3", {})
    found, etag = store.read()
    assert found is not None and found.token == mine.token and found.expires_at > time.time() + 20
    assert etag == driver.heartbeat.etag and driver.heartbeat.lost is None


def test_a_lease_read_that_outlasts_the_third_left_is_followed_by_a_renewal(
    aws: Any, tmp_path: Path, disarm: Any
) -> None:
    """The lease read confirmed the lease, but took so long (up to 2 attempts of 13 s) that
    less than a third of it is left on the local clock: the write waits for a renewal, and
    with none possible (S3 unreachable for it) stops without touching live (exit 8)."""
    env = "fences-slow-read"
    driver, record, _ = _driver(aws, env, tmp_path)
    plan, traffic = record.the_plan(), Traffic(aws["lambda"], FUNCTION)
    assert driver._act(record, plan) == Step(Outcome.DONE)  # step 1
    clock = [0.0]
    renewals = _armed_store(aws, env, "s3:PutObject[lock.json]@1+=unsent")

    class SlowRead(LeaseStore):
        def read(self) -> tuple[lease.Lease | None, str | None]:
            found = LeaseStore(aws["s3"], BUCKET, env).read()
            clock[0] += 25.0  # of a 30 s lease: 5 s left when the answer arrives
            return found

    driver.heartbeat.store = SlowRead(renewals.s3, BUCKET, env)
    driver.heartbeat._clock = lambda: clock[0]
    with pytest.raises(LeaseUnconfirmedError) as stopped:
        driver._act(replace(record, step=1), plan)  # step 2
    assert stopped.value.message.startswith("the promotion lease could not be renewed (is S3 reachable?)")
    assert driver.heartbeat.lost is None and {f["fault"] for f in netfaults.fired} == {"unsent"}
    after = traffic.state()
    assert (after.version, after.weights) == ("1", {"3": plan.steps[0] / 100})  # live unchanged


def test_a_rollback_puts_live_on_blue_though_the_lease_cannot_be_read_while_it_holds(
    aws: Any, tmp_path: Path, disarm: Any
) -> None:
    """S3 unreachable for the lease reads, the lease held (a third left on the local clock, so
    nobody else may take it). The next forward write is tried three times, then refused: an
    error, the promotion rolls back, and that rollback writes live though its read fails too.
    Before: exit 8 with live split (the pre-wedge behaviour issue 26 removed)."""
    env = "fences-unread"
    driver, record, _ = _driver(aws, env, tmp_path)
    plan, traffic = record.the_plan(), Traffic(aws["lambda"], FUNCTION)
    assert driver._act(record, plan) == Step(Outcome.DONE)  # step 1: live split
    shifting = replace(record, step=1)
    etag = driver.records.write(shifting, None)
    said: list[ProgressEvent] = []
    driver.say = said.append
    driver.heartbeat.store = _armed_store(aws, env, "s3:GetObject[lock.json]@1+=unsent")

    final = driver.run(shifting, etag)

    assert final.phase == Phase.ROLLED_BACK and final.cause == Outcome.ERROR, final
    assert final.reason.startswith(
        "error: could not read the promotion lease to confirm it before moving live forward (3 tries; "
        "EndpointConnectionError"
    ), final.reason
    after = traffic.state()
    assert (after.version, after.weights) == ("1", {})
    assert driver.records.read()[0] == final
    # three reads before the forward write (each with botocore's attempts); the rollback does
    # not read again (S3 did not answer moments ago): the local deadline alone decides
    calls = [f["call"] for f in netfaults.fired]
    assert calls == sorted(calls) and set(calls) == {1, 2, 3} and len(calls) == 3 * calls.count(1)
    notes = [e.message for e in said if e.kind == "diagnostic"]
    assert notes[:2] == [notes[0]] * 2 and notes[0].startswith("could not read the promotion lease (")
    assert notes[2].startswith("S3 did not answer (could not read the promotion lease to confirm it")
    assert notes[2].endswith("the lease is still held: rolling back to v1 before recording it")
    assert notes[3].startswith("S3 did not answer the promotion lease read moments ago")
    assert notes[3].endswith("nobody else can have taken it: rolling back without reading it again")


def test_a_lease_read_failing_slowly_is_refused_at_once_and_live_goes_back_on_blue(
    aws: Any, tmp_path: Path, disarm: Any
) -> None:
    """S3 partitioned: every lease read and renewal takes a second per attempt before its
    timeout (botocore's 2 attempts: over 2 s a call, more with its backoff), on a 12 s lease
    (a third: 4 s) and a clock that runs. Before: the forward write was tried 3 times, those
    reads used up the third, the renewal failed too, and the driver stopped with live split
    (exit 8). Now the first slow failure leaves no room for another read and the rollback:
    refused at once, and live goes back on blue on the local deadline alone."""
    env = "fences-slow"
    driver, record, _ = _driver(aws, env, tmp_path, lease_s=12.0, clock=lease.lease_clock())
    plan, traffic = record.the_plan(), Traffic(aws["lambda"], FUNCTION)
    assert driver._act(record, plan) == Step(Outcome.DONE)  # step 1: live split
    shifting = replace(record, step=1)
    etag = driver.records.write(shifting, None)
    driver.heartbeat.store = _armed_store(
        aws, env, "s3:GetObject[lock.json]@1+=timeout(1s);s3:PutObject[lock.json]@1+=timeout(1s)"
    )

    final = driver.run(shifting, etag)

    assert final.phase == Phase.ROLLED_BACK and final.cause == Outcome.ERROR, final
    assert final.reason.startswith(
        "error: could not read the promotion lease to confirm it before moving live forward (1 tries; ReadTimeoutError"
    ), final.reason
    after = traffic.state()
    assert (after.version, after.weights) == ("1", {})
    assert {f["call"] for f in netfaults.fired if f["operation"] == "s3:GetObject"} == {1}


def test_a_forward_write_after_live_moved_since_the_drivers_own_write_is_refused(
    aws: Any, tmp_path: Path
) -> None:
    """moto keeps one RevisionId per alias for its life (it neither changes it on update nor
    enforces it), so a change by someone else is played by the record: this driver's own last
    write left revision "r-mine", live now reads moto's. Refused before any call: rolled back
    as an error, live untouched."""
    driver, record, _ = _driver(aws, "fences-moved", tmp_path)
    traffic = Traffic(aws["lambda"], FUNCTION)
    before = traffic.state()
    driver._own_revision = "r-mine"
    step = driver._act(replace(record, live_revision="r-mine"), record.the_plan())
    assert step == Step(
        Outcome.ERROR,
        "error: live was changed by someone else since this run last wrote it (its RevisionId is "
        f"{before.revision}, this run's write left r-mine)",
    )
    after = traffic.state()
    assert (after.version, after.weights) == ("1", {})
