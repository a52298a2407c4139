"""Network faults at the AWS-call boundary (orchestrator/base/netfaults.py): the tool itself
against a real moto server, the two faults it found (a driver deposing itself after a lost
renewal answer; a best-effort history write stopping a driver), and a small matrix of
local promotions with faults on the lease, record and alias operations, writes and reads.

Matrix invariant (docs/reliability.md): the driver leaves live split only where it could not
keep its lease (MAY_LEAVE_SPLIT); after the command (and, when it left a promotion
in flight, `abort` from another machine), `live` serves exactly one version at 100 %, the
record agrees with it, no lease is held; the driver never stops as deposed (nobody else
takes the lease in these cases) and prints no traceback; and each case's faults fired.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from orchestrator.base import netfaults
from orchestrator.base.errors import ConfigError, ExitCode
from orchestrator.base.processes import alive
from orchestrator.config.settings import Environment
from orchestrator.local import emulator
from orchestrator.release import lease
from orchestrator.release.lease import Heartbeat, LeaseStore
from orchestrator.release.machine import PromotionRecord
from orchestrator.release.plan import make_plan
from orchestrator.release.record import RecordStore
from tests.conftest import SAMPLE_MODEL, LocalProject, locusts_of
from tests.test_fault_matrix import FAST_TOML, _look

BUCKET = "netfault-test"


def test_parse_reads_operation_key_occurrence_and_attempts() -> None:
    terms = netfaults.parse(
        "s3:PutObject[lock.json]@2=lost; lambda:UpdateAlias@3+=5xx(1);s3:GetObject=unsent"
    )
    assert terms == [
        netfaults.Term("s3:PutObject", "lock.json", 2, False, "lost", 0),
        netfaults.Term("lambda:UpdateAlias", "", 3, True, "5xx", 1),
        netfaults.Term("s3:GetObject", "", 1, False, "unsent", 0),
    ]
    assert [terms[0].hits(n) for n in (1, 2, 3)] == [False, True, False]
    assert [terms[1].hits(n) for n in (2, 3, 9)] == [False, True, True]
    assert netfaults.parse("") == []
    # a slow timeout: seconds per attempt, with or without a number of attempts
    assert netfaults.parse("s3:GetObject[lock.json]@5+=timeout(1,2.5s)") == [
        netfaults.Term("s3:GetObject", "lock.json", 5, True, "timeout", 1, 2.5)
    ]
    assert netfaults.parse("s3:GetObject=lost(2s)")[0].delay_s == 2.0
    for bad in ("s3:PutObject=explode", "PutObject=lost", "s3:PutObject@0=lost", "s3:PutObject=lost(x)",
                "s3:PutObject=5xx(2s)", "s3:PutObject=timeout(-1s)"):  # fmt: skip
        with pytest.raises(ConfigError):
            netfaults.parse(bad)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    state = tmp_path_factory.mktemp("emulator")
    running = emulator.ensure(state)
    ca = state / "tls" / "cert.pem"
    emulator.client("s3", running.url, ca).create_bucket(Bucket=BUCKET)
    yield running.url, ca
    emulator.stop(state)


@pytest.fixture
def armed(server: Any) -> Any:
    """arm(spec) -> a fresh S3 client carrying the faults (clients take the hooks when made)."""

    def arm(spec: str) -> Any:
        netfaults.arm(spec)
        return emulator.client("s3", *server)

    yield arm
    netfaults.arm("")


def _body(s3: Any, key: str) -> bytes | None:
    try:
        return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def test_each_fault_acts_as_named(armed: Any) -> None:
    plain = armed("")
    s3 = armed("s3:PutObject[unsent]=unsent;s3:PutObject[lost]=lost;s3:PutObject[timeout]=timeout;"
               "s3:PutObject[5xx]=5xx;s3:PutObject[slow]=throttle;s3:PutObject[once]=lost(1)")  # fmt: skip
    with pytest.raises(EndpointConnectionError):
        s3.put_object(Bucket=BUCKET, Key="unsent", Body=b"x")
    assert _body(plain, "unsent") is None  # never reached the server
    with pytest.raises(ReadTimeoutError):
        s3.put_object(Bucket=BUCKET, Key="lost", Body=b"x")
    assert _body(plain, "lost") == b"x"  # applied; only the answer was lost
    with pytest.raises(ReadTimeoutError):
        s3.put_object(Bucket=BUCKET, Key="timeout", Body=b"x")
    assert _body(plain, "timeout") is None
    for key, code in (("5xx", "InternalError"), ("slow", "SlowDown")):
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
        assert info.value.response["Error"]["Code"] == code and _body(plain, key) is None
    # lost once: botocore's retry of a conditional create meets its own first attempt
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=BUCKET, Key="once", Body=b"x", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed" and _body(plain, "once") == b"x"
    s3.put_object(Bucket=BUCKET, Key="unsent", Body=b"y")  # each term hit its first call only
    assert _body(plain, "unsent") == b"y"
    # every attempt of each faulted call was recorded (the local client makes 3)
    assert [(f["key"], f["attempt"]) for f in netfaults.fired] == [
        (k, a) for k in ("unsent", "lost", "timeout", "5xx", "slow") for a in (1, 2, 3)
    ] + [("once", 1)]


def test_faults_fire_at_the_chosen_occurrence_and_are_logged(
    armed: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    log = tmp_path / "fired.jsonl"
    monkeypatch.setenv(netfaults.LOG_VAR, str(log))
    s3 = armed("s3:PutObject[occ]@2+=unsent")
    s3.put_object(Bucket=BUCKET, Key="occ-1", Body=b"1")
    for n in (2, 3):
        with pytest.raises(EndpointConnectionError):
            s3.put_object(Bucket=BUCKET, Key=f"occ-{n}", Body=b"x")
    s3.get_object(Bucket=BUCKET, Key="occ-1")  # another operation: not counted, not faulted
    assert [(e["operation"], e["key"], e["call"]) for e in netfaults.read_log(log)][::3] == [
        ("s3:PutObject", "occ-2", 2),
        ("s3:PutObject", "occ-3", 3),
    ]


def test_a_renewal_whose_answer_was_lost_does_not_depose_its_driver(armed: Any) -> None:
    # The renewal lands in S3, its answer and botocore's retry's answer are lost: the
    # driver keeps its old ETag. Its next renewal gets 412 from a lease that still carries
    # its token: that lease is its own (before the fix: LeaseLostError, exit 4, live split).
    s3 = armed("s3:PutObject[lock.json]@2=lost")
    store = LeaseStore(s3, BUCKET, "selfdepose")
    mine, etag = store.take(lease.me(60), pid_alive=alive)
    with pytest.raises(ReadTimeoutError):
        store.renew(mine, etag, 60, promotion="p-1")  # as Heartbeat.attach names the promotion
    assert store.read()[1] != etag  # it landed
    renewed, new_etag = store.renew(mine, etag, 60)
    assert renewed.token == mine.token and store.read() == (renewed, new_etag)
    assert renewed.promotion == "p-1"  # what the lost renewal wrote is kept
    # a stale ETag released: the lease still carries the token, so it is ours to delete
    assert store.release(etag, mine.token) == lease.Released.RELEASED and store.read() == (None, None)
    # a take-over writes a new token: that stays a lost lease (test_traffic_record's deposed case)


def test_a_release_whose_answer_was_lost_gave_the_lease_back(armed: Any) -> None:
    # The DELETE lands, its answer is lost, botocore's retry of the conditional DELETE meets no
    # lease. Before the fix that read as "not ours" and `up` exited 12 after a good update.
    store = LeaseStore(armed("s3:DeleteObject[lock.json]@1=lost(1)"), BUCKET, "lostrelease")
    held, etag = store.take(lease.me(60), pid_alive=alive)
    beat = Heartbeat(store, held, etag, 60, abort_check=lambda _lease: False)  # its thread never started
    assert beat.release() is True and store.read() == (None, None)
    assert [(f["key"], f["fault"]) for f in netfaults.fired] == [("promotions/lostrelease/lock.json", "lost")]
    # what the store itself says: no lease there (the heartbeat knows it was still valid)
    store = LeaseStore(armed("s3:DeleteObject[lock.json]@1=lost(1)"), BUCKET, "lostrelease")
    held, etag = store.take(lease.me(60), pid_alive=alive)
    assert store.release(etag, held.token) == lease.Released.ABSENT and store.read() == (None, None)
    # another acquisition's lease is left alone, and is not ours
    held, etag = store.take(lease.me(60), pid_alive=alive)
    store.s3.delete_object(Bucket=BUCKET, Key=store.key)
    other, _ = store.take(lease.me(60), pid_alive=alive)
    assert store.release(etag, held.token) == lease.Released.OTHER and store.read()[0] == other
    store.s3.delete_object(Bucket=BUCKET, Key=store.key)


def test_a_lease_not_surely_valid_is_renewed_before_an_alias_write_and_never_assumed(armed: Any) -> None:
    # Before an alias write the driver needs a third of its lease left (Heartbeat.valid). On
    # a busy CI machine a renewal came late: the driver, at 100 % on green with every gate
    # passed, stopped with "the lease could not be renewed" and then rolled back anyway
    # (test_local_gate_size failed twice so). Now the write renews at once (renew_now): a late
    # renewal costs one S3 call; an unreachable S3 or another holder still stops the driver.
    # The lease's local time is the test's clock (a busy machine's slow botocore retries must
    # not eat the budget under test); its time in S3 (other machines' view) is real.
    now = [0.0]
    s3 = armed("")
    store = LeaseStore(s3, BUCKET, "latebeat")
    held, etag = store.take(lease.me(3), pid_alive=alive)
    beat = Heartbeat(store, held, etag, 3, abort_check=lambda _lease: False, clock=lambda: now[0])
    now[0] = 2.1  # more than two thirds gone, no renewal (its thread never started): not surely valid
    assert not beat.valid()
    assert beat.renew_now() and beat.valid() and beat.lost is None
    assert store.read()[1] == beat.etag  # the renewal is in S3
    renewed = time.monotonic()

    now[0] = 4.2  # renewed at 2.1: 0.9 s left, room for every try
    beat.store = LeaseStore(armed("s3:PutObject[lock.json]@1+=unsent"), BUCKET, "latebeat")
    assert not beat.renew_now() and beat.lost is None  # S3 unreachable: unknown, not assumed
    calls = {f["call"] for f in netfaults.fired}
    assert len(calls) == lease.RENEW_TRIES  # every try, each with botocore's 3 attempts
    assert [f["fault"] for f in netfaults.fired] == ["unsent"] * 3 * len(calls)

    beat.store = LeaseStore(armed(""), BUCKET, "latebeat")
    time.sleep(max(0.0, renewed + 3.5 - time.monotonic()))  # the lease has run out in S3 too
    now[0] = 5.5
    other, _ = LeaseStore(armed(""), BUCKET, "latebeat").take(lease.me(60), pid_alive=alive)
    assert not beat.renew_now() and beat.lost is not None  # deposed: raised as LeaseLostError
    assert store.read()[0] == other


def test_a_renewal_before_an_alias_write_is_tried_again_while_the_lease_holds(armed: Any) -> None:
    # One renewal failing as a whole (botocore's own retries included: a burst of 503s) is
    # tried again while the lease has not run out locally (review P3-5: before, one failed
    # try stopped a healthy promotion, exit 8 with live split). On a clock of the test's: the
    # lease's time passes only when the test says so, however long botocore backs off.
    now = [0.0]
    store = LeaseStore(armed(""), BUCKET, "retried")
    held, etag = store.take(lease.me(30), pid_alive=alive)
    beat = Heartbeat(store, held, etag, 30, abort_check=lambda _lease: False, clock=lambda: now[0])
    now[0] = 25.0  # 5 s left: not surely valid
    beat.store = LeaseStore(armed("s3:PutObject[lock.json]@1=throttle"), BUCKET, "retried")
    assert beat.renew_now() and beat.valid() and beat.lost is None
    assert [f["call"] for f in netfaults.fired] == [1, 1, 1]  # the 1st renewal failed; the 2nd held
    assert store.read()[1] == beat.etag
    now[0] = 54.5  # 0.5 s left of the renewed lease: no time for a second try
    beat.store = LeaseStore(armed("s3:PutObject[lock.json]@1=throttle"), BUCKET, "retried")
    assert not beat.renew_now() and beat.lost is None
    assert [f["call"] for f in netfaults.fired] == [1, 1, 1]


def test_a_history_copy_that_times_out_does_not_stop_the_write(armed: Any) -> None:
    # The history copy is best effort: before the fix a BotoCoreError (here a read timeout
    # on both attempts) escaped write(), and the driver exited 8 mid-step with live split.
    s3 = armed("s3:PutObject[history/]=timeout")
    store = RecordStore(s3, BUCKET, "copy")
    record = PromotionRecord.new(
        make_plan(Environment("copy", "us-east-1", "123456789012"), "1", "2"), "driver", time.time()
    )
    etag = store.write(record, None)
    assert store.read() == (record, etag)
    assert [f["fault"] for f in netfaults.fired] == ["timeout"] * 3


# -- the matrix: local promotions with faults on the lease, record and alias operations ------------

LEASE, RECORD, HISTORY, ALIAS, LEASE_READ = (
    "s3:PutObject[lock.json]",
    "s3:PutObject[current.json]",
    "s3:PutObject[history/]",
    "lambda:UpdateAlias[live]",
    "s3:GetObject[lock.json]",
)
READ_LEASE, READ_RECORD, READ_ALIAS = (
    "s3:GetObject[lock.json]",
    "s3:GetObject[current.json]",
    "lambda:GetAlias[live]",
)
# (fault spec, driver exit, final phase of the promotion's record). The lease's 1st write is
# the take, the 2nd names the promotion, the 3rd on are the heartbeat's renewals. The
# record's writes: 1 planned, 2 pre-traffic, 3 shifting, 4 baking (live split), 5 gating,
# 6 promoting, 7 promoted. The live alias: 1 the canary step, 2 green at 100 %. The lease's
# reads: 1 `promote`'s look, 2 the take, 3 the look under the lease, then one before each alias
# write: 4 the candidate alias, 5 the canary step, 6 the next alias write.
MATRIX = [
    (f"{LEASE}@2=lost", ExitCode.OK, "promoted"),  # the self-deposition of issue 26
    (f"{LEASE}@3=timeout", ExitCode.OK, "promoted"),  # one renewal fails; the next one holds
    (f"{LEASE}@2+=throttle(1)", ExitCode.OK, "promoted"),  # every renewal throttled once, retried
    # S3 unreachable for the lease from the first renewal on: the driver stops at its next alias
    # write without touching live (no rollback either: it may no longer hold the lease), and
    # `abort` from another machine, once the lease ran out, finishes the job
    (f"{LEASE}@3+=unsent", ExitCode.ROLLBACK_INCOMPLETE, "aborted"),
    (f"{RECORD}@4=lost(1)", ExitCode.OK, "promoted"),  # the retry meets its own write (write id)
    # the write after the first shift lands with every answer lost: the driver rolls back
    # (the lease holds) and records it over its own landed write (review P3-2; before: its
    # 412 read as "S3 still away", exit 8, `abort` closed the record)
    (f"{RECORD}@4=lost", ExitCode.ERROR, "rolled_back"),
    # the write of the next phase's intent never reaches S3 while the lease holds: the driver
    # puts live on blue and records the rollback (issue 26; before: exit 8, `abort` ended it)
    (f"{RECORD}@2=unsent", ExitCode.ERROR, "failed"),
    # S3 away for the record and the lease reads from the write after the first shift on (live
    # split): the rollback cannot confirm the lease in S3 but it holds locally, so live goes
    # back on blue; the record stays in flight (exit 8) and `abort` closes it. Before: exit 8
    # with live split.
    (f"{RECORD}@4+=unsent;{LEASE_READ}@6+=unsent", ExitCode.ROLLBACK_INCOMPLETE, "aborted"),
    (f"{HISTORY}@4=timeout", ExitCode.OK, "promoted"),  # best effort (issue 26: exit 8 with live split)
    (f"{ALIAS}@1=lost", ExitCode.ERROR, "rolled_back"),  # every attempt lands unanswered: roll back
    (f"{ALIAS}@1=5xx(1)", ExitCode.OK, "promoted"),  # botocore's retry gets through
    # the canary shift lands, its answer is lost; botocore's retry names the old RevisionId and
    # the emulator, as Lambda, refuses it (412): the driver's own write, carried on (review
    # P2-2; before: "could not point live", a healthy promotion rolled back)
    (f"{ALIAS}@1=lost(1)", ExitCode.OK, "promoted"),
    (f"{ALIAS}@2=throttle", ExitCode.ERROR, "rolled_back"),  # green never reaches 100 %: roll back
    # Reads (None: this run wrote no record; the newest is the previous promotion's). The lease's
    # 3rd read is promote's second look, with the lease taken, before the publish: the command
    # fails (exit 1, an error naming the AWS call, before: a traceback), gives the lease back,
    # nothing published or moved. The record's 3rd read is the one after the publish that its
    # first write is conditioned on: the same, green published but never recorded or routed.
    (f"{READ_LEASE}@3=unsent", ExitCode.ERROR, None),
    # the take lands and every answer is lost: the command fails (exit 1) and drops the lease
    # that carries its token (review P3-4; before: held until it expired, others waited)
    (f"{LEASE}@1=lost", ExitCode.ERROR, None),
    (f"{READ_RECORD}@3=unsent", ExitCode.ERROR, None),
    # live's 4th read is the read-back after the canary shift (1 contract, 2 blue after the
    # publish, 3 the RevisionId before the shift): a transient error there is read again (a
    # diagnostic), never a reason to roll back
    (f"{READ_ALIAS}@4=unsent", ExitCode.OK, "promoted"),
]
# Where the driver may stop with live split: it could not keep its lease (no rollback may follow).
MAY_LEAVE_SPLIT = {f"{LEASE}@3+=unsent"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("netmatrix")
    project = LocalProject(root)
    project.config.write_text(FAST_TOML.format(model=SAMPLE_MODEL))
    code, up = project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    project.versions = itertools.count(2)  # type: ignore[attr-defined]
    project.looker = project.target()  # type: ignore[attr-defined]
    yield project
    project.stop()


@pytest.mark.parametrize(("spec", "want_exit", "want_phase"), MATRIX, ids=[m[0] for m in MATRIX])
def test_network_fault(
    matrix: LocalProject, tmp_path: Path, spec: str, want_exit: int, want_phase: str | None
) -> None:
    before = _look(matrix)
    blue = before["live"]["version"]
    previous = before["promotion"]["id"] if before["promotion"] else None
    log = tmp_path / "fired.jsonl"
    model: Path = matrix.model(str(next(matrix.versions)))  # type: ignore[attr-defined]
    driver = subprocess.run(
        matrix.argv("promote", "--env", "local", "--model", str(model)),
        env=matrix.env(EDGESHIP_NETFAULT=spec, EDGESHIP_NETFAULT_LOG=str(log), EDGESHIP_HOST="driver-machine"),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    # Recovery first (a failed case must not leave the next one an interrupted promotion):
    # when a record says a promotion is in flight, another machine finishes the job.
    seen = _look(matrix)
    if spec not in MAY_LEAVE_SPLIT:  # the driver itself left live whole (before any recovery)
        assert seen["live"]["weights"] == {}, (seen["live"], driver.stderr[-3000:])
    if spec in MAY_LEAVE_SPLIT:  # the driver's own report says it stopped on the lease, not a rollback
        stopped = matrix.root / "reports" / "local" / seen["promotion"]["id"] / "report.json"
        assert json.loads(stopped.read_text())["outcome"] == "stopped_lease_unconfirmed"
    recovered = None
    if seen["situation"] != "idle":
        recovered = matrix.json("abort", "--env", "local", EDGESHIP_HOST="recovery-machine")
    fired = netfaults.read_log(log)
    assert fired and {f["fault"] for f in fired} == {t.fault for t in netfaults.parse(spec)}, (
        f"the fault never fired: {fired}"
    )
    # the driver stops as deposed only when another holder really holds the lease: never here
    assert "lost the promotion lease" not in driver.stderr, driver.stderr[-3000:]
    assert "Traceback" not in driver.stderr, driver.stderr[-3000:]  # an error with its fix, always
    assert driver.returncode == want_exit, driver.stderr[-3000:]
    assert recovered is None or recovered[0] == 0, recovered
    after = _look(matrix)
    record = after["promotion"]
    assert after["live"]["weights"] == {}, after["live"]  # exactly one version, at 100 %
    assert (after["lease"] is None or not after["lease"]["live"]) and not after["interrupted"], after["lease"]
    assert locusts_of(matrix.root) == []
    if want_phase is None:  # stopped before its record: nothing of this run is in flight or live
        assert recovered is None, seen  # nothing left held or in flight for another machine to clear
        error = "ReadTimeoutError" if "=lost" in spec else "EndpointConnectionError"
        assert f"an AWS call failed: {error}" in driver.stderr, driver.stderr[-3000:]
        assert record is None or record["id"] == previous, record
        assert after["live"]["version"] == blue
        return
    assert record["id"] != previous and record["phase"] == want_phase and record["blue"] == blue, record
    assert after["live"]["version"] == (record["green"] if want_phase == "promoted" else blue)
