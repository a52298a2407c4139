"""Gate load from a Locust master and workers, end to end on the local environment: the
promotion passes its gates with `load.workers = 2`, and a worker killed during a step's
gate fails that gate with a reason that names it, and the promotion rolls back."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject, locusts_of


def _with_workers(project: LocalProject, workers: int) -> None:
    text = project.config.read_text()
    marker = "[environments.local.load]\n"
    assert marker in text
    project.config.write_text(text.replace(marker, f"{marker}workers = {workers}\n"))


def _up(project: LocalProject) -> None:
    code, result = project.json("up", "--yes", "--env", "local")
    assert code == 0, result


def test_a_promotion_with_two_workers_passes_its_gates(local_project: LocalProject) -> None:
    _with_workers(local_project, 2)
    _up(local_project)
    code, report = local_project.json("promote", "--env", "local", "--model", str(local_project.model("2")))
    assert code == 0, report
    assert report["outcome"] == "promoted"
    canary = report["steps"][1]
    assert canary["green"]["samples"] >= 30 and canary["blue"]["samples"] > canary["green"]["samples"]
    directory = Path(report["directory"])
    # every gate ran a master and two workers, each with its own log
    assert len(list(directory.glob("*.worker1.log"))) == len(report["steps"]) == 3
    assert len(list(directory.glob("*.worker2.log"))) == 3
    assert locusts_of(local_project.root) == []


def _step_gate_worker(driver: int) -> int | None:
    """A Locust worker the driver started for a gate on live traffic (not the candidate)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"--worker" not in (proc / "cmdline").read_bytes():
                continue
            environ = dict(
                line.split(b"=", 1) for line in (proc / "environ").read_bytes().split(b"\0") if b"=" in line
            )
        except OSError:
            continue
        if environ.get(b"EDGESHIP_PARENT_PID") == str(driver).encode() and b"candidate" not in environ.get(
            b"EDGESHIP_PATH", b"candidate"
        ):
            return int(proc.name)
    return None


def test_a_worker_killed_in_a_step_gate_fails_it_and_rolls_back(local_project: LocalProject) -> None:
    _with_workers(local_project, 2)
    _up(local_project)
    run = local_project.popen("promote", "--env", "local", "--model", str(local_project.model("2")))
    deadline, worker = time.monotonic() + 180, None
    while worker is None and run.poll() is None and time.monotonic() < deadline:
        worker = _step_gate_worker(run.pid)
        time.sleep(0.05)
    assert worker is not None, "no step gate's worker appeared"
    time.sleep(1)  # in the middle of the gate's load
    os.kill(worker, signal.SIGKILL)
    _out, err = run.communicate(timeout=180)
    assert run.returncode == ExitCode.ERROR, err
    assert "Locust worker" in err and "died (killed by SIGKILL) during the load test" in err, err
    code, status = local_project.json("status", "--env", "local")
    assert code == 0, status
    assert status["live"] == {"version": "1", "weights": {}}
    assert status["promotion"]["phase"] == "rolled_back" and status["lock"] is None
    assert locusts_of(local_project.root) == []
