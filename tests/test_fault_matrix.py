"""The fault matrix: every fault point x every action, on the local environment (real moto
server, real Locust, real edge), each followed by recovery from another machine and the
invariant check. Sizes and results are published in docs/reliability.md.

Invariant after every case: `live` routes 100 % to exactly one of blue/green; the newest
record is closed and agrees with the alias (promoted <-> green, anything else <-> blue);
no lease is held; no Locust process is left.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base import faults
from orchestrator.base.errors import ExitCode
from tests.conftest import SAMPLE_MODEL, LocalProject, locusts_of, wait_for

ACTIONS = ("kill", "sigterm", "raise")
# SIGINT and SIGTERM reach the same handler (processes.SignalLatch, installed with the
# lease, before the first point): SIGINT runs at three points that span the promotion
# (before the publish, in a gate, in the rollback) to keep that equivalence checked.
SIGINT_AT = ("after-lease", "in-gate", "done-rolling-back")
# lease-taken (the take's PUT landed, before the heartbeat): a signal there must not leave the
# lease held (the latch is up before the take); the other actions there are after-lease's.
ONLY_SIGINT_AT = ("lease-taken",)
NO_RECORD = {
    "lease-taken",
    "after-lease",
    "after-publish",
}  # the driver had not written this promotion's record yet
BEFORE_TRAFFIC = NO_RECORD | {"enter-planned", "done-planned", "enter-pre-traffic", "in-gate"}
IN_ROLLBACK = {"enter-rolling-back", "done-rolling-back"}
# The matrix promotion does not pause: kills while paused are tested in test_local_release.py.
# The gate-* points are reached only by sequential gates: test_fault_at_a_sequential_stop.
CASES = [
    (p, a)
    for p, a in itertools.product(faults.POINTS, ACTIONS)
    if "paused" not in p
    and not p.startswith("gate-")
    and p not in ("write-after-shift", "rolled-back-unrecorded", "stack-change-after-lease")
    and p not in ONLY_SIGINT_AT
] + [(p, "sigint") for p in (*SIGINT_AT, *ONLY_SIGINT_AT)]
# write-after-shift, rolled-back-unrecorded: tests/test_wedge.py (a kill at the first is the
# matrix's done-shifting kill; the second is reached only after a failed record write);
# stack-change-after-lease is `up`'s, never a promotion's: tests/test_uplease.py

FAST_TOML = """
[project]
name = "matrix"
model = "{model}"

[environments.local]
region = "us-east-1"
account_id = "123456789012"
[environments.local.traffic]
schedule = "canary"
canary_weight = 50
bake_s = 0
# 8 s, renewed every 2.7 s: `make unit` runs the matrix at a low CPU priority, where a 3 s
# lease was once lost between renewals (the driver then stops, as it must, but that is not
# the case under test). A killed driver's lease runs out 5 s later than with 3.
lease_s = 8
[environments.local.load]
# 1 user: the matrix judges faults, not capacity, and its load (two niced processes of
# sequential promotions, each gate at full speed) was much of a CI run's CPU; one user also
# needs one sandbox per version, not two (each imports ONNX Runtime)
users = 1
spawn_rate = 1
# 2 s: `make unit` runs the matrix at a low CPU priority beside the rest of the suite, and a
# 1 s gate there can end before green has answered min_samples.
duration_s = 2
min_green_requests = 0  # gates of 2 s, sized by seconds alone: the matrix is about the faults
[environments.local.slo]
p95_ms = 3000
p99_ms = 6000
max_error_ratio = 0.2
min_rps = 1
min_samples = 3
relative_p95_factor = 0
"""


def expected(point: str, action: str) -> tuple[int, str | None]:
    """(driver exit code, final phase of this promotion's record; None: no record was written)."""
    if action == "kill":
        if point in NO_RECORD:
            return -9, None
        return -9, "rolled_back" if point in IN_ROLLBACK else "aborted"  # recovered by `abort`
    if action == "raise":
        if point in NO_RECORD:
            return ExitCode.ERROR, None
        if point in IN_ROLLBACK:  # the rollback itself broke; `abort` finishes it
            return ExitCode.ROLLBACK_INCOMPLETE, "rolled_back"
        # an exception in done-pre-traffic replaces the gate's pass: still before any shift
        return ExitCode.ERROR, "failed" if point in BEFORE_TRAFFIC | {"done-pre-traffic"} else "rolled_back"
    # a signal: the driver rolls back by itself, or finishes a rollback already running
    if point in NO_RECORD:
        return ExitCode.INTERRUPTED, None  # the publish is cancelled; no record, live untouched
    if point in IN_ROLLBACK:
        return ExitCode.ERROR, "rolled_back"  # the injected error started that rollback
    if point == "done-promoting":
        return ExitCode.OK, "promoted"  # green was already live alone and the gates had passed
    return ExitCode.INTERRUPTED, "failed" if point in BEFORE_TRAFFIC else "rolled_back"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("matrix")
    project = LocalProject(root)
    project.config.write_text(FAST_TOML.format(model=SAMPLE_MODEL))
    code, up = project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    project.versions = itertools.count(2)  # type: ignore[attr-defined]
    project.looker = project.target()  # type: ignore[attr-defined]
    yield project
    project.stop()


def _look(project: LocalProject) -> dict[str, Any]:
    """`status` as another machine sees it: in-process, with the same code as the CLI, and
    the stack's outputs read once (function and bucket do not change between cases)."""
    from orchestrator.base.progress import NullReporter
    from orchestrator.release.operations import Release

    target = project.looker  # type: ignore[attr-defined]
    return Release(target, target.env, NullReporter(), project.root / "reports").status()


@pytest.mark.parametrize(("point", "action"), CASES, ids=[f"{p}={a}" for p, a in CASES])
def test_fault(matrix: LocalProject, point: str, action: str) -> None:
    before = _look(matrix)
    blue = before["live"]["version"]
    previous = before["promotion"]["id"] if before["promotion"] else None
    spec = f"enter-gating=raise;{point}={action}" if point in IN_ROLLBACK else f"{point}={action}"
    model: Path = matrix.model(str(next(matrix.versions)))  # type: ignore[attr-defined]
    driver = subprocess.run(
        matrix.argv("promote", "--env", "local", "--model", str(model)),
        env=matrix.env(EDGESHIP_FAULT=spec, EDGESHIP_HOST="driver-machine"),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    want_exit, want_phase = expected(point, action)
    assert driver.returncode == want_exit, driver.stderr[-3000:]
    if action in ("sigint", "sigterm"):  # what the signal said it does: only what it does
        said = (
            "rolling back, please wait" if point in IN_ROLLBACK
            else f"{action.upper()} received: stopping (live was not touched)" if point in NO_RECORD
            else f"{action.upper()} received: stopping and rolling back"
        )  # fmt: skip
        assert f"edgeship: {said}" in driver.stderr, driver.stderr[-3000:]

    # recovery from another machine: it sees what is left and finishes the job
    seen = _look(matrix)
    if point in NO_RECORD and action != "kill":  # a driver that lived gave its lease back itself
        assert seen["lease"] is None and seen["situation"] == "idle", seen
    if seen["situation"] != "idle":
        code, result = matrix.json("abort", "--env", "local", EDGESHIP_HOST="recovery-machine")
        assert code == 0, result

    after = _look(matrix)
    record = after["promotion"]
    assert after["live"]["weights"] == {}, after["live"]  # exactly one version, at 100 %
    # No lease is held. A driver killed before it wrote a record leaves its lease behind;
    # once expired that is no one's (the next promotion takes it over), and a look that
    # comes later than lease_s finds the environment idle with nothing to recover.
    lease_left = after["lease"]
    assert (lease_left is None or not lease_left["live"]) and not after["interrupted"], lease_left
    if lease_left is not None:
        assert (point, action) in {(p, "kill") for p in NO_RECORD}, lease_left
    assert locusts_of(matrix.root) == []
    if want_phase is None:
        assert (record["id"] if record else None) == previous and after["live"]["version"] == blue
        return
    assert record["id"] != previous and record["phase"] == want_phase, record
    assert record["blue"] == blue
    assert after["live"]["version"] == (record["green"] if want_phase == "promoted" else blue)


def _with_keys(toml: str, section: str, **keys: object) -> str:
    """`toml` with `keys` set in `[section]` (replaced where present, else added after its header)."""
    lines, out, inside = toml.splitlines(), [], False
    for line in lines:
        if line.startswith("["):
            inside = line.strip() == f"[{section}]"
        name = line.split("=", 1)[0].strip()
        if inside and "=" in line and name in keys:
            continue
        out.append(line)
        if line.strip() == f"[{section}]":
            out.extend(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in keys.items())
    return "\n".join(out) + "\n"


# Sequential gates that land an early stop at the canary step, never before: green sleeps
# 100 ms per request, so 2 users send it at most 20 a second and pre-traffic (green alone,
# healthy on the candidate route) cannot reach the ~300 requests an early PASS needs in its
# 5 s; behind live green fails every request, so the canary gate's first look after 1 s
# fails it early (a handful of requests suffice against a 20 % error budget).
SEQUENTIAL_LOAD = {"users": 2, "spawn_rate": 2, "duration_s": 5, "sequential": True, "min_duration_s": 1}
SEQUENTIAL_CASES = [
    ("gate-stopped-early", "kill"),
    ("gate-stopped-early", "sigterm"),
    ("gate-early-fail", "kill"),
]


@pytest.mark.parametrize(("point", "action"), SEQUENTIAL_CASES, ids=[f"{p}={a}" for p, a in SEQUENTIAL_CASES])
def test_fault_at_a_sequential_stop(matrix: LocalProject, point: str, action: str) -> None:
    from orchestrator.demo import faulty_function

    before = _look(matrix)
    blue = before["live"]["version"]
    fast = matrix.config.read_text()
    matrix.config.write_text(_with_keys(fast, "environments.local.load", **SEQUENTIAL_LOAD))
    try:
        green = faulty_function(
            matrix.root / f"live-fails-{point}-{action}",
            delay_s=0.1,
            live_only=True,
            error_ratio=1.0,
            seed=25,
        )
        driver = subprocess.run(
            matrix.argv("promote", "--env", "local", "--function-dir", str(green)),
            env=matrix.env(EDGESHIP_FAULT=f"{point}={action}", EDGESHIP_HOST="driver-machine"),
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        seen = _look(matrix)
        record = seen["promotion"]
        assert record["blue"] == blue and record["step"] == 0, record  # it reached the canary step
        if action == "kill":
            # killed at the stop or once the early FAIL stood, the verdict unrecorded: the record says gating at 50 %, live
            # is split; once the lease runs out another machine's --resume finishes the job
            assert driver.returncode == -9, driver.stderr[-3000:]
            assert (record["phase"], seen["live"]["weights"]) == ("gating", {record["green"]: 0.5}), seen
            wait_for(lambda: _look(matrix)["situation"] == "interrupted", 30)
            resumed = matrix.cli("promote", "--env", "local", "--resume", EDGESHIP_HOST="recovery-machine")
            assert resumed.returncode == ExitCode.GATE_FAILED, resumed.stderr[-3000:]
            assert f"live is back on v{blue} at 100%" in resumed.stderr, resumed.stderr[-3000:]
            said = resumed.stderr
        else:
            # a signal once the gate has decided: the verdict stands and the driver rolls back itself
            assert driver.returncode == ExitCode.GATE_FAILED, driver.stderr[-3000:]
            assert record["phase"] == "rolled_back", record
            said = driver.stderr
    finally:
        matrix.config.write_text(fast)
    # the gate that decided the end stopped early on its sequential FAIL (the run that finished)
    report = json.loads(
        (Path(said.rsplit("(report: ", 1)[1].split("/report.html)")[0]) / "report.json").read_text()
    )
    canary = [s for s in report["steps"] if s["name"] == "step 1"][-1]
    assert (canary["verdict"], canary["sequential"]["early"]) == ("fail", "fail"), canary
    after = _look(matrix)
    record = after["promotion"]
    assert after["live"]["weights"] == {} and after["live"]["version"] == blue, after["live"]
    assert (record["phase"], record["cause"]) == ("rolled_back", "failed"), record
    assert not after["interrupted"] and (after["lease"] is None or not after["lease"]["live"]), after["lease"]
    assert locusts_of(matrix.root) == []
