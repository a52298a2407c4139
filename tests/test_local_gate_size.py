"""Gates sized by green's requests, end to end on the local environment (orchestrator/gates/sizing.py):
a gate whose duration_s is over long before green has min_green_requests runs on until it has
them; one that reaches max_duration_s short of them is judged as it is, with a caveat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import LocalProject

# 1 s gates, fixed-length (only their size ends them), green at 20 % of 2 users: in 1 s green
# answers well under 100 requests here (the edge answers a few hundred per second in all).
GATE = """min_green_requests = {n}
max_duration_s = {most}
duration_s = 1"""


def _promote(project: LocalProject, version: str, n: int, most: int, *args: str) -> dict[str, Any]:
    text = project.config.read_text()
    head, _, tail = text.partition("[environments.local.load]\n")
    body, _, rest = tail.partition("[environments.local.slo]")
    kept = [
        line
        for line in body.splitlines()
        if not line.startswith(("min_green_requests", "max_duration_s", "duration_s", "sequential"))
    ]
    body = "\n".join([*kept, "sequential = false", GATE.format(n=n, most=most)]) + "\n"
    project.config.write_text(f"{head}[environments.local.load]\n{body}[environments.local.slo]{rest}")
    code, report = project.json("promote", "--env", "local", "--model", str(project.model(version)), *args)
    assert code == 0, report
    assert report["outcome"] == "promoted", report
    return dict(report)


def test_a_gate_runs_past_duration_s_until_green_has_its_requests(local_project: LocalProject) -> None:
    code, result = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, result
    report = _promote(local_project, "2", n=300, most=60)
    assert [s["name"] for s in report["steps"]] == ["pre-traffic", "step 1", "step 2"]
    for step in report["steps"]:
        green = step["green"]
        # the gate's final statistics: green has its 300, which 1 s never gave it at 20 %
        assert green["samples"] >= 300, step
        assert not [c for c in step["caveats"] if "requests the gate's error rates need" in c], step
    canary = report["steps"][1]
    assert canary["weight"] == 20 and canary["green"]["duration_s"] > 1, canary

    # 2 s at most, and far more requests wanted than that gives: judged as it is (healthy:
    # promoted), and every gate says how short it was (two gates: all at once)
    report = _promote(local_project, "3", 100_000, 2, "--schedule", "all-at-once")
    assert [s["name"] for s in report["steps"]] == ["pre-traffic", "step 1"]
    for step in report["steps"]:
        samples = step["green"]["samples"]
        assert 0 < samples < 100_000 and step["verdict"] == "pass", step
        assert (
            f"green answered {samples} of the 100000 requests the gate's error rates need; "
            "raise load.users or load.max_duration_s"
        ) in step["caveats"], step
        assert step["green"]["duration_s"] < 10, step  # Locust's --run-time: max_duration_s
    md = (Path(report["directory"]) / "report.md").read_text()
    assert "of the 100000 requests the gate's error rates need" in md
