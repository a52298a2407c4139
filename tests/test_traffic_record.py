"""Traffic moves and the promotion record/lock against a real moto server over HTTPS."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from typing import Any

import pytest

from orchestrator.base.errors import FencedError, LeaseLostError, PromotionLockedError
from orchestrator.base.processes import alive
from orchestrator.config.settings import Environment
from orchestrator.local import emulator
from orchestrator.release import lease, machine
from orchestrator.release.lease import Heartbeat, Lease, LeaseStore
from orchestrator.release.machine import PromotionRecord
from orchestrator.release.plan import make_plan
from orchestrator.release.record import RecordStore
from orchestrator.release.traffic import Traffic, TrafficError
from tests.conftest import wait_for


@dataclass(frozen=True)
class _Names:
    function_name: str = "traffic-test-infer"
    bucket: str = "traffic-test-models"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A function with versions 1-3 (`live` on 1, `candidate` on 3) and a bucket, made with
    plain boto3 calls: these tests are about the Traffic and store adapters, not the stack."""
    state = tmp_path_factory.mktemp("emulator")
    server = emulator.ensure(state)
    ca = state / "tls" / "cert.pem"
    clients = {name: emulator.client(name, server.url, ca) for name in ("lambda", "s3", "iam")}
    names = _Names()
    clients["s3"].create_bucket(Bucket=names.bucket)
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = clients["iam"].create_role(RoleName="traffic-test", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    lam = clients["lambda"]
    for version in ("1", "2", "3"):
        config = {"Role": role, "Environment": {"Variables": {"VERSION": version}}}
        if version == "1":
            lam.create_function(FunctionName=names.function_name, Runtime="python3.12", Handler="handler.handler",
                                Code={"ZipFile": code.getvalue()}, Publish=True, **config)  # fmt: skip
        else:
            lam.update_function_configuration(FunctionName=names.function_name, **config)
            lam.publish_version(FunctionName=names.function_name)
    lam.create_alias(FunctionName=names.function_name, Name="live", FunctionVersion="1")
    lam.create_alias(FunctionName=names.function_name, Name="candidate", FunctionVersion="3")
    yield clients, names
    emulator.stop(state)


def test_shift_finish_and_rollback(aws: Any) -> None:
    clients, stack = aws
    traffic = Traffic(clients["lambda"], stack.function_name)
    traffic.rollback("1")
    assert traffic.shift("1", "3", 10) == traffic.state()
    assert traffic.state().weights == {"3": 0.1} and traffic.state().version == "1"
    traffic.shift("1", "3", 60)
    assert traffic.state().share_of("3") == pytest.approx(0.6)
    traffic.shift("1", "3", 100)
    assert traffic.state().version == "3" and traffic.state().weights == {}
    traffic.rollback("1")
    assert traffic.state().version == "1" and traffic.state().weights == {}
    with pytest.raises(TrafficError):
        traffic.shift("1", "99", 10)  # no such version: the API refuses, we say so


def _stale(store: LeaseStore) -> None:
    """Write a lease that expired a minute ago, held by a machine that is gone."""
    gone = replace(lease.me(60), holder="ci-run-1", host="gone-runner", expires_at=time.time() - 60)
    store.s3.put_object(Bucket=store.bucket, Key=store.key, Body=json.dumps(asdict(gone)).encode())


def test_lease_take_refuse_renew_release(aws: Any) -> None:
    clients, stack = aws
    store = LeaseStore(clients["s3"], stack.bucket, "leasetest")
    assert store.read() == (None, None)
    mine, etag = store.take(lease.me(60), pid_alive=alive)
    with pytest.raises(PromotionLockedError) as info:
        store.take(lease.me(60), pid_alive=lambda pid: True)
    assert mine.holder in info.value.message and "orchestrator abort" in (info.value.fix or "")
    renewed, etag2 = store.renew(mine, etag, 60)
    assert etag2 != etag and renewed.token == mine.token and renewed.expires_at >= mine.expires_at
    # a stale ETag on a lease that still carries our token: a renewal of ours whose answer was
    # lost. It is ours (a take-over writes a new token: test_deposed_holder_cannot_renew_or_release)
    again, etag3 = store.renew(mine, etag, 60)
    assert again.token == mine.token and store.read() == (again, etag3)
    # the wrong ETag alone deletes nothing
    assert store.release(etag) == lease.Released.OTHER and store.read()[0] == again
    assert store.release(etag3) == lease.Released.RELEASED and store.read() == (None, None)


def test_deposed_holder_cannot_renew_or_release(aws: Any) -> None:
    clients, stack = aws
    store = LeaseStore(clients["s3"], stack.bucket, "deposed")
    old, old_etag = store.take(lease.me(60), pid_alive=alive)
    # the old holder's lease runs out; another machine takes it over
    store.s3.put_object(
        Bucket=store.bucket, Key=store.key, IfMatch=old_etag,
        Body=json.dumps(asdict(replace(old, expires_at=time.time() - 1))).encode(),
    )  # fmt: skip
    expired_etag = store.read()[1]
    assert expired_etag is not None
    new, new_etag = store.take(replace(lease.me(60), holder="other-machine"), pid_alive=alive)
    with pytest.raises(LeaseLostError, match="other-machine"):
        store.renew(old, expired_etag, 60)
    assert store.release(expired_etag) == lease.Released.OTHER
    assert store.read()[0] == new and store.release(new_etag) == lease.Released.RELEASED


def _race(s3: Any, bucket: str, env: str, machines: int) -> tuple[list[str], list[str]]:
    """`machines` threads call take() at the same instant; returns (winners, losers)."""
    barrier = threading.Barrier(machines)
    won: list[str] = []
    lost: list[str] = []

    def contend(n: int) -> None:
        mine = replace(lease.me(60), holder=f"machine-{n}")
        barrier.wait()
        try:
            LeaseStore(s3, bucket, env).take(mine, pid_alive=alive)
            won.append(mine.holder)
        except PromotionLockedError:
            lost.append(mine.holder)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(machines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


def test_of_many_machines_racing_for_a_stale_lease_exactly_one_wins(aws: Any) -> None:
    clients, stack = aws
    for attempt in range(3):
        store = LeaseStore(clients["s3"], stack.bucket, f"race{attempt}")
        _stale(store)
        won, lost = _race(clients["s3"], stack.bucket, store.env, 6)
        assert len(won) == 1 and len(lost) == 5, (won, lost)
        held = store.read()[0]
        assert held is not None and held.holder == won[0]


def test_record_writes_are_fenced(aws: Any) -> None:
    clients, stack = aws
    store = RecordStore(clients["s3"], stack.bucket, "fencetest")
    assert store.read() == (None, None)
    plan = make_plan(Environment("fencetest", "us-east-1", "123456789012"), "1", "2")
    record = PromotionRecord.new(plan, "driver-a", time.time())
    etag = store.write(record, None)
    with pytest.raises(FencedError):
        store.write(record, None)  # "no record yet" is no longer true
    taken = machine.take_over(record, now=time.time(), by="driver-b", note="taken over")
    etag_b = store.write(taken, etag)
    same_bytes = store.write(taken, etag_b)  # identical content still gets a new ETag
    assert same_bytes != etag_b
    with pytest.raises(FencedError):
        store.write(machine.advance(record, machine.Outcome.DONE, now=time.time(), by="driver-a"), etag)
    back, back_etag = store.read()
    assert back == taken and back_etag == same_bytes
    history = clients["s3"].get_object(
        Bucket=stack.bucket, Key=f"promotions/fencetest/history/{record.id}.json"
    )
    assert json.loads(history["Body"].read())["holder"] == "driver-b"
    request = store.request_abort("operator", record.id, None)
    assert store.abort_request() == request


def test_a_retried_write_that_already_landed_is_not_a_take_over(aws: Any) -> None:
    # S3 applied the PUT but its answer was lost; botocore retries with the same If-Match
    # and gets 412: that is our own write, and must not stop the driver as "deposed".
    clients, stack = aws
    store = RecordStore(clients["s3"], stack.bucket, "retrytest")
    plan = make_plan(Environment("retrytest", "us-east-1", "123456789012"), "1", "2")
    record = PromotionRecord.new(plan, "driver-a", time.time())
    etag = store.write(record, None)
    nxt = machine.advance(record, machine.Outcome.DONE, now=time.time(), by="driver-a")
    landed = store.write(nxt, etag, write_id="w-1")
    assert store.write(nxt, etag, write_id="w-1") == landed  # the retry: same write id, same result
    with pytest.raises(FencedError):
        store.write(nxt, etag, write_id="w-2")  # another write from the old ETag is fenced

    leases = LeaseStore(clients["s3"], stack.bucket, "retrytest")
    mine, lease_etag = leases.take(lease.me(60), pid_alive=alive)
    landed_lease, landed_etag = leases.renew(mine, lease_etag, 60, nonce="n-9")
    again, again_etag = leases.renew(mine, lease_etag, 60, nonce="n-9")  # the retry: stale ETag, same nonce
    assert again_etag == landed_etag and again.nonce == landed_lease.nonce == "n-9"
    # A later renewal from the stale ETag (the retry's answer was lost too) meets a lease that
    # still carries this driver's token: its own, adopted, not "lost to unknown@host".
    later, later_etag = leases.renew(mine, lease_etag, 60, nonce="n-10")
    assert later.nonce == "n-10" and leases.read() == (later, later_etag)
    assert leases.release(later_etag) == lease.Released.RELEASED


def test_a_weight_that_reads_back_different_after_a_shift_is_an_error_naming_both(aws: Any) -> None:
    # Someone else moved live between our shift and its read-back (another tool, a person in
    # the console): the move is not where it was asked to be and never will be, so the
    # read-back fails at once (the driver then rolls back: the fault matrix's
    # `done-shifting=raise` case is that error after the shift) instead of waiting out its bound.
    clients, stack = aws
    traffic = Traffic(clients["lambda"], stack.function_name, poll_s=0.1)
    traffic.rollback("1")
    asked = traffic.shift("1", "3", 20)
    clients["lambda"].update_alias(FunctionName=stack.function_name, Name="live", FunctionVersion="1",
                                   RoutingConfig={"AdditionalVersionWeights": {"3": 0.5}})  # fmt: skip
    with pytest.raises(TrafficError) as info:
        traffic.settle(asked, bound_s=60)
    assert info.value.message == "live is on v1 + v3 50% where it was asked to be on v1 + v3 20%"
    assert info.value.fix == "see `orchestrator status`: something else moved live"
    # the version itself read back different: the same
    asked = traffic.shift("1", "3", 100)
    traffic.rollback("2")
    with pytest.raises(TrafficError, match=r"^live is on v2 at 100% where it was asked to be on v3 at 100%$"):
        traffic.settle(asked, bound_s=60)
    traffic.rollback("1")


def test_a_hung_main_thread_stops_the_renewals_and_its_lease_runs_out(aws: Any) -> None:
    # Heartbeat.max_quiet_s (15 minutes in production): a driver whose main thread stopped
    # showing progress (hung in a call, deadlocked) must not keep the environment locked
    # forever from its still-running heartbeat thread. Here 1 s, with a lease of 6 s (renewed
    # every 2 s: 4 s of slack for a starved heartbeat thread on a niced, busy machine).
    clients, stack = aws
    store, held, beat = _watched(clients, stack, "hung")
    with beat:
        # While the main thread beats, the lease is renewed past its first expiry.
        first_expiry = held.expires_at
        wait_for(lambda: beat.beat() is None and time.time() > first_expiry + 0.5, 30)
        beat.beat()
        current, _ = store.read()
        assert current is not None and current.token == held.token and current.expires_at > time.time()
        # Silent from now on: the heartbeat stops renewing and the lease runs out in S3.
        wait_for(lambda: _expired(store), 30)
        assert not beat.valid() and beat.lost is None  # not deposed: just no longer surely held
        # Another machine takes it over; the driver, waking up, finds it lost and stops.
        other, _ = LeaseStore(clients["s3"], stack.bucket, "hung").take(
            replace(lease.me(60), holder="other-machine"), pid_alive=lambda _pid: True
        )
        beat.beat()
        wait_for(lambda: beat.lost is not None, 30)
        assert isinstance(beat.lost, LeaseLostError) and "other-machine" in beat.lost.message
    assert store.read()[0] == other


def test_a_publish_is_renewed_however_long_it_takes(aws: Any) -> None:
    # A promotion's publish is an engine `up` (minutes on AWS: a CloudFront update): its main
    # thread beats no more, and the hung-driver watchdog (15 minutes) stopped the renewals in
    # the middle of a long one (review P3-7). `patient()` renews meanwhile, then watches again.
    clients, stack = aws
    store, held, beat = _watched(clients, stack, "patient")
    with beat:
        with beat.patient():  # silent for longer than the lease: still renewed
            time.sleep(8)
            current, _ = store.read()
            assert current is not None and current.token == held.token and current.expires_at > time.time()
            assert beat.valid()
        assert beat.max_quiet_s == 1.0  # watched again: silent from now on, the lease runs out
        wait_for(lambda: _expired(store), 30)
        assert not beat.valid() and beat.lost is None


def _watched(clients: dict[str, Any], stack: Any, env: str) -> tuple[LeaseStore, Lease, Heartbeat]:
    """`env`'s lease taken for 6 s (renewed every 2 s: 4 s of slack for a starved heartbeat
    thread on a niced, busy machine), its heartbeat's hung-driver watchdog at 1 s of silence."""
    store = LeaseStore(clients["s3"], stack.bucket, env)
    held, etag = store.take(lease.me(6), pid_alive=alive)
    beat = Heartbeat(store, held, etag, 6, abort_check=lambda _lease: False)
    beat.max_quiet_s = 1.0
    return store, held, beat


def _expired(store: LeaseStore) -> bool:
    current, _ = store.read()
    return current is not None and current.expires_at < time.time()
