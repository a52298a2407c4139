"""`up` and the environment's lease on every path (issue 26), on the local environment.

An `up` interrupted (SIGTERM, Ctrl-C) or failed right after it took the lease leaves none;
one that finishes with the lease no longer its own says so (exit 12); `abort` during an
`up` refuses at once (exit 4) instead of waiting for an abort nobody reads. The lease is
read as an object, as another machine sees it: on this machine a leaked lease would be
judged stale by its dead pid, so "the next `up` works" proves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, replace
from typing import Any

import pytest

from orchestrator import formats, lease
from orchestrator.errors import ExitCode, LeaseLostError
from orchestrator.lease import LeaseStore
from tests.conftest import LocalProject


def _store(target: Any) -> LeaseStore:
    return LeaseStore(target.s3_client(), target.bucket, "local")


def test_an_up_interrupted_or_failed_after_its_take_leaves_no_lease(local_project: LocalProject) -> None:
    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    store = _store(local_project.target())
    for action, exit_code in (
        ("sigterm", ExitCode.INTERRUPTED),  # CI's cancel: before the engine, outside its own handler
        ("sigint", ExitCode.INTERRUPTED),
        ("raise", ExitCode.ERROR),
    ):
        done = local_project.cli(
            "up", "--yes", "--env", "local", EDGESHIP_FAULT=f"stack-change-after-lease={action}"
        )
        assert done.returncode == exit_code, (action, done.returncode, done.stderr[-2000:])
        assert store.read() == (None, None), action  # the object itself: gone, not merely stale here


def test_abort_during_an_up_refuses_at_once_and_asks_nothing(local_project: LocalProject) -> None:
    from orchestrator.progress import NullReporter
    from orchestrator.record import RecordStore
    from orchestrator.release import Release

    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    target = local_project.target()
    release = Release(target, target.env, NullReporter(), local_project.root / "reports")
    with release.holding_for_stack_change("up"):
        held, _ = _store(target).read()
        assert held is not None and (held.kind, held.pid) == ("up", os.getpid())
        code, status = local_project.json("status", "--env", "local")
        assert (code, status["lease"]["kind"], status["situation"]) == (0, "up", "running"), status
        code, refused = local_project.json("abort", "--env", "local")
        assert (code, refused["error"]) == (ExitCode.LEASE_HELD, "PromotionLockedError"), refused
        assert refused["message"].startswith("`up` is running on 'local' (")
        assert refused["message"].endswith("): wait for it; nothing to abort"), refused
        assert RecordStore(target.s3_client(), target.bucket, "local").abort_request() is None
        code, refused = local_project.json(
            "promote", "--env", "local", "--model", str(local_project.model("2"))
        )
        assert code == ExitCode.LEASE_HELD and refused["message"].startswith("`up` is running on 'local': ")
    assert _store(target).read() == (None, None)


def test_an_up_whose_lease_was_taken_meanwhile_ends_deposed(local_project: LocalProject) -> None:
    """Renewals that fail let the lease run out and another machine take it; the `up` still
    finishes its update, then says the lease was not its own (exit 12), leaving the other's."""
    from orchestrator.progress import NullReporter
    from orchestrator.release import Release

    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    target = local_project.target()
    store = _store(target)
    release = Release(target, target.env, NullReporter(), local_project.root / "reports")
    other = replace(lease.me(30), holder="ci@elsewhere:7", host="elsewhere", pid=7, boot="")
    with pytest.raises(LeaseLostError) as lost, release.holding_for_stack_change("up"):
        body = json.dumps(formats.stamp(asdict(other))).encode()  # a take-over, as S3 ends up holding it
        target.s3_client().put_object(Bucket=target.bucket, Key=store.key, Body=body)
    assert lost.value.exit_code == ExitCode.DEPOSED
    assert lost.value.message.startswith(
        "`up` finished, but the lease of 'local' was no longer its own at the end"
    )
    assert lost.value.message.endswith("a promotion may have started under it"), lost.value.message
    assert lost.value.fix.startswith("the `up` itself is done; see `orchestrator status --env local`")
    left, _ = store.read()
    assert left is not None and left.token == other.token  # the other's lease, untouched


def test_rotate_origin_secret_holds_the_lease_for_its_whole_run(local_project: LocalProject) -> None:
    """Its three `up`s run under one lease of kind `rotate-origin-secret`, given back at the end."""
    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    store = _store(local_project.target())
    log = local_project.root / "rotate.log"
    with log.open("w") as out:  # a file, not a pipe: three `up`s' progress must never block it
        rotating = subprocess.Popen(
            local_project.argv("rotate-origin-secret", "--env", "local", "--json"),
            env=local_project.env(), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        seen: set[tuple[str, int]] = set()
        while rotating.poll() is None:
            held, _ = store.read()
            if held is not None:
                seen.add((held.kind, held.pid))
            time.sleep(0.1)
    assert rotating.returncode == 0, log.read_text()[-3000:]
    assert seen == {("rotate-origin-secret", rotating.pid)}, seen
    assert store.read() == (None, None)
