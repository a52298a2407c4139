"""Output and reports of real commands on the local environment, with a freshly installed
Pulumi (`orchestrator install-pulumi`) first on PATH, as a user's shell or a CI job has it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from orchestrator.base.errors import ExitCode
from orchestrator.demo import faulty_function
from tests.conftest import REPO, LocalProject

PLUGIN_WARNING = "from $PATH"


def _fresh_pulumi(tmp_path: Path, pulumi_root: Path) -> Path:
    """`orchestrator install-pulumi --dir` into an empty directory, with the pinned CLI on PATH
    (what it links, as for a user who installed Pulumi)."""
    tools = tmp_path / "tools"
    env = {**os.environ, "PATH": f"{pulumi_root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(REPO / "edgeship.toml"), "install-pulumi",
         "--dir", str(tools), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli = tools / "bin" / "pulumi"
    # a real file beside the launcher: the engine looks for plugins beside the resolved CLI
    assert not cli.is_symlink() and cli.resolve().parent == (tools / "bin").resolve()
    assert (tools / "bin" / "pulumi-resource-pulumi-python").exists()
    return tools


def test_failed_gate_on_github_actions_then_report(
    local_project: LocalProject, tmp_path: Path, pulumi_root: Path
) -> None:
    tools = _fresh_pulumi(tmp_path, pulumi_root)
    summary = tmp_path / "step-summary.md"
    extra = {
        "EDGESHIP_PULUMI_ROOT": str(tools),
        "PATH": f"{tools / 'bin'}{os.pathsep}{os.environ['PATH']}",  # `pulumi-resource-pulumi-python` on PATH too
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "FORCE_COLOR": "1",  # must not colour a log: it is not a terminal
    }
    text = local_project.config.read_text()
    # min_samples 5: a 300 ms green on a starved CPU (nice 19, CI) answered fewer than 30 in
    # its gate, which then ended inconclusive instead of failing on its p95
    local_project.config.write_text(
        text.replace("p95_ms = 1000", "p95_ms = 150").replace("p99_ms = 2000", "p99_ms = 400")
        .replace("min_samples = 30", "min_samples = 5")
        + "[environments.local.reports]\nkeep = 2\n"
    )  # fmt: skip
    old = local_project.root / "reports" / "local"
    for stamp in ("20200101T000000-000001", "20200102T000000-000002"):  # two earlier promotions
        (old / stamp).mkdir(parents=True)
        (old / stamp / "report.json").write_text(
            json.dumps({"id": stamp, "env": "local", "outcome": "promoted"})
        )

    up = local_project.cli("up", "--env", "local", "--yes", **extra)
    assert up.returncode == 0, up.stderr
    preview = local_project.cli("preview", "--env", "local", "--json", **extra)
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout)["operation"] == "preview"
    for out in (up.stdout, up.stderr, preview.stdout, preview.stderr):
        assert PLUGIN_WARNING not in out
    assert "### edgeship up `local`" in summary.read_text()

    bad = faulty_function(local_project.root / "bad", delay_s=0.3)
    promote = local_project.cli("promote", "--env", "local", "--function-dir", str(bad), **extra)
    assert promote.returncode == ExitCode.GATE_FAILED, promote.stderr
    log = promote.stderr
    assert PLUGIN_WARNING not in log and "\x1b[" not in log
    lines = log.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []  # no trailing spaces
    # one message per line: each line is a whole message (or a workflow command), none a
    # piece of one broken at 80 columns
    prefixes = ("::", "  ", "package for ", "changes: ", "promotion ", "[", "gate ", "failed: ", "waiting for ",
                "error: ", "fix: ")  # fmt: skip
    assert [line for line in lines if not line.startswith(prefixes)] == [], log
    rolling = next(line for line in lines if " rolling back to v1: " in line)
    assert rolling.endswith(" ms") and len(rolling) > 80
    # the verdict's length depends on which check failed first; whole or not, it ends its line
    verdict = next(line for line in lines if line.startswith("gate pre-traffic: fail ("))
    assert "p95" in verdict and verdict.endswith(")")
    errors = [line for line in lines if line.startswith("::error ")]
    assert any(line.startswith("::error title=gate failed::gate pre-traffic: fail (") for line in errors)
    assert any(
        re.match(r"::error title=orchestrator promote failed \(exit 7\)::.*live is still on v1", line)
        for line in errors
    )

    # the report: kept with the newest earlier one (keep = 2), drawn, listed, shown
    kept = sorted(p.name for p in old.iterdir())
    assert len(kept) == 2 and kept[0] == "20200102T000000-000002"
    current = old / kept[1]
    page = (current / "report.html").read_text()
    steps = json.loads((current / "report.json").read_text())["steps"]
    looked = sum(1 for s in steps if (s.get("sequential") or {}).get("looks"))
    assert looked >= 1  # the failed gate was sequential: its evidence is drawn too
    assert page.count("<svg ") == 3 + looked and "<script" not in page and "failed" in page
    assert list(current.glob("*.html")) == [current / "report.html"]  # no Locust page by default
    assert "**failed**" in summary.read_text() and "report.html" in summary.read_text()

    code, listed = local_project.json("report", "--env", "local")
    assert code == 0, listed
    assert [(r["id"], r["outcome"]) for r in listed] == [(kept[1], "failed"), (kept[0], "promoted")]
    assert (
        listed[0]["blue"] == "1"
        and listed[0]["green"] == "2"
        and listed[0]["html"] == str(current / "report.html")
    )
    shown = local_project.cli("report", "--env", "local", kept[1][:15])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"promotion {kept[1]} on local: failed"
    assert re.search(r"pre-traffic +green alone +fail +green p50 [\d.]+ ms, p95 [\d.]+ ms", shown.stdout)
