"""`up` and the environment's lease on every path (issue 26), on the local environment.

An `up` interrupted (SIGTERM, Ctrl-C) or failed right after it took the lease leaves none;
one whose give-back's answer was lost exits 0 with the lease gone, and a signal during the
give-back waits for it; one that finishes with the lease no longer its own says so (exit
12); `abort` during an `up` refuses at once (exit 4) instead of waiting for an abort nobody
reads, but looks once more first. The lease is read as an object, as another machine sees
it: on this machine a leaked lease would be judged stale by its dead pid, so "the next `up`
works" proves nothing.

One local project for the module (deployed once: that first `up` takes no lease, there is
no bucket yet); each test leaves no lease behind. `rotate-origin-secret`'s hold on the lease
is watched in tests/test_origin_rotation.py, which runs a rotation anyway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base import formats, netfaults
from orchestrator.base.errors import ExitCode, LeaseLostError, PromotionLockedError
from orchestrator.base.progress import NullReporter
from orchestrator.release import lease
from orchestrator.release.lease import LeaseStore
from orchestrator.release.operations import Look, Release
from orchestrator.release.record import RecordStore
from tests.conftest import LocalProject


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProject]:
    project = LocalProject(tmp_path_factory.mktemp("uplease"))
    # A lease of 30 s, not 3: a give-back whose DELETE answer was lost counts only while a
    # third of the lease is left, and 1 s of a 3 s lease can go by on a starved CPU.
    toml = project.config.read_text()
    assert "lease_s = 3\n" in toml
    project.config.write_text(toml.replace("lease_s = 3\n", "lease_s = 30\n"))
    code, first = project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    yield project
    project.stop()


@pytest.fixture(scope="module")
def target(deployed: LocalProject) -> Any:
    return deployed.target()


@pytest.fixture
def store(target: Any) -> Iterator[LeaseStore]:
    store = LeaseStore(target.s3_client(), target.bucket, "local")
    yield store
    assert store.read() == (None, None)  # every test gives the lease back


def _release(project: LocalProject, target: Any) -> Release:
    return Release(target, target.env, NullReporter(), project.root / "reports")


def _put(store: LeaseStore, held: lease.Lease) -> None:
    """Another machine's lease, as S3 ends up holding it."""
    body = json.dumps(formats.stamp(asdict(held))).encode()
    store.s3.put_object(Bucket=store.bucket, Key=store.key, Body=body)


def _elsewhere(kind: str) -> lease.Lease:
    return replace(lease.me(30, kind=kind), holder="ci@elsewhere:7", host="elsewhere", pid=7, boot="")


def _then(release: Release, act: Callable[[], None]) -> None:
    """`act` right after the release's first look: what another machine did meanwhile."""
    first = release.look

    def look() -> Look:
        found = first()
        if release.look is look:
            del release.look  # the class's own from now on
            act()
        return found

    release.look = look  # type: ignore[method-assign]


def test_an_up_interrupted_or_failed_after_its_take_leaves_no_lease(
    deployed: LocalProject, store: LeaseStore
) -> None:
    for action, exit_code in (
        ("sigterm", ExitCode.INTERRUPTED),  # CI's cancel: before the engine, outside its own handler
        ("sigint", ExitCode.INTERRUPTED),
        ("raise", ExitCode.ERROR),
    ):
        done = deployed.cli(
            "up", "--yes", "--env", "local", EDGESHIP_FAULT=f"stack-change-after-lease={action}"
        )
        assert done.returncode == exit_code, (action, done.returncode, done.stderr[-2000:])
        assert store.read() == (None, None), action  # the object itself: gone, not merely stale here


def test_an_up_whose_release_answer_was_lost_holds_the_lease_throughout_and_exits_0(
    deployed: LocalProject, store: LeaseStore, tmp_path: Path
) -> None:
    """The DELETE lands, its answer is lost, botocore's retry meets no lease: before the fix
    `up` said exit 12 ("a promotion may have started under it") after a good update."""
    log, out = tmp_path / "fired.jsonl", tmp_path / "up.log"
    spec = "s3:DeleteObject[lock.json]@1=lost(1)"
    with out.open("w") as sink:  # a file, not a pipe: the engine's progress must never block it
        upping = subprocess.Popen(
            deployed.argv("up", "--yes", "--env", "local"),
            env=deployed.env(EDGESHIP_NETFAULT=spec, EDGESHIP_NETFAULT_LOG=str(log)),
            stdout=sink, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        seen: set[tuple[str, int]] = set()
        while upping.poll() is None:
            held, _ = store.read()
            if held is not None:
                seen.add((held.kind, held.pid))
            time.sleep(0.1)
    assert upping.returncode == 0, out.read_text()[-3000:]
    assert seen == {("up", upping.pid)}, seen
    assert [(f["operation"], f["fault"]) for f in netfaults.read_log(log)] == [("s3:DeleteObject", "lost")]


def test_a_signal_while_the_lease_is_given_back_waits_for_it(
    deployed: LocalProject, target: Any, store: LeaseStore
) -> None:
    """CI cancels with SIGINT, then SIGTERM: one arriving in the DELETE interrupted it, and the
    lease stayed until it expired (another `up` or a promotion got exit 4 meanwhile)."""
    release = _release(deployed, target)

    def sigterm(**_: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    release.leases.s3.meta.events.register("before-parameter-build.s3.DeleteObject", sigterm)
    with pytest.raises(KeyboardInterrupt), release.holding_for_stack_change("up"):
        held, _ = store.read()
        assert held is not None and held.kind == "up"
    assert store.read() == (None, None)  # given back, then interrupted


def test_abort_during_an_up_refuses_at_once_and_asks_nothing(
    deployed: LocalProject, target: Any, store: LeaseStore
) -> None:
    with _release(deployed, target).holding_for_stack_change("up"):
        held, _ = store.read()
        assert held is not None and (held.kind, held.pid) == ("up", os.getpid())
        code, status = deployed.json("status", "--env", "local")
        assert (code, status["lease"]["kind"], status["situation"]) == (0, "up", "running"), status
        code, refused = deployed.json("abort", "--env", "local")
        assert (code, refused["error"]) == (ExitCode.LEASE_HELD, "PromotionLockedError"), refused
        assert refused["message"].startswith("`up` is running on 'local' (")
        assert refused["message"].endswith("): wait for it; nothing to abort"), refused
        assert RecordStore(target.s3_client(), target.bucket, "local").abort_request() is None
        code, refused = deployed.json("promote", "--env", "local", "--model", str(deployed.model("2")))
        assert code == ExitCode.LEASE_HELD and refused["message"].startswith("`up` is running on 'local': ")


def test_abort_looks_again_before_refusing_an_up(
    deployed: LocalProject, target: Any, store: LeaseStore
) -> None:
    """Its first look saw an `up`; by its refusal the `up` had ended and a promotion taken the
    lease: that promotion is asked to stop, not an `up` waited for."""
    _put(store, _elsewhere("up"))
    release = _release(deployed, target)
    promotion = replace(_elsewhere("promotion"), promotion="p-1")
    _then(release, lambda: _put(store, promotion))
    records = RecordStore(target.s3_client(), target.bucket, "local")
    try:
        with pytest.raises(PromotionLockedError) as waited:
            release.abort(wait_s=0.5)
        assert waited.value.message.startswith(
            "the driver of 'local' did not act on the abort within the wait"
        )
        request = records.abort_request()
        assert request is not None and (request.promotion, request.token) == ("p-1", promotion.token)
    finally:
        records.s3.delete_object(Bucket=records.bucket, Key=f"{records.prefix}/abort.json")
        store.s3.delete_object(Bucket=store.bucket, Key=store.key)


def test_an_up_refused_by_the_take_reads_no_lease_after(
    deployed: LocalProject, target: Any, store: LeaseStore
) -> None:
    """The lease was free at `up`'s look, then another machine took it: the take refuses, and
    nothing of this run is there to look for (no extra read, no "a lease this run took")."""
    release = _release(deployed, target)
    other = _elsewhere("promotion")
    _then(release, lambda: _put(store, other))
    reads: list[str] = []
    release.leases.s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: reads.append(params["Key"])
    )
    try:
        with pytest.raises(PromotionLockedError) as refused, release.holding_for_stack_change("up"):
            raise AssertionError("never held")
        assert refused.value.message.startswith("a promotion of 'local' holds the lease: ci@elsewhere:7")
        assert [key for key in reads if key == store.key] == [store.key] * 2  # the look's, the take's
        assert store.read()[0] == other
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=store.key)


def test_an_up_whose_lease_was_taken_meanwhile_ends_deposed(
    deployed: LocalProject, target: Any, store: LeaseStore
) -> None:
    """Renewals that fail let the lease run out and another machine take it; the `up` still
    finishes its update, then says the lease was not its own (exit 12), leaving the other's."""
    other = _elsewhere("promotion")
    try:
        with pytest.raises(LeaseLostError) as lost, _release(deployed, target).holding_for_stack_change("up"):
            _put(store, other)  # a take-over, as S3 ends up holding it
        assert lost.value.exit_code == ExitCode.DEPOSED
        assert lost.value.message.startswith(
            "`up` finished, but the lease of 'local' was no longer its own at the end"
        )
        assert lost.value.message.endswith("a promotion may have started under it"), lost.value.message
        assert lost.value.fix.startswith("the `up` itself is done; see `orchestrator status --env local`")
        left, _ = store.read()
        assert left is not None and left.token == other.token  # the other's lease, untouched
    finally:
        store.s3.delete_object(Bucket=store.bucket, Key=store.key)
