"""The pipeline users copy: real linters, and only commands and options that exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from orchestrator.cli import main

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = REPO / ".tools" / "bin" / "actionlint"


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "deploy.yml"}


def test_actionlint_is_clean() -> None:
    assert ACTIONLINT.exists(), "actionlint is not installed: run `make install`"
    done = subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_zizmor_is_clean() -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "zizmor"),
            "--offline",
            "--no-progress",
            str(REPO / ".github" / "workflows"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


def _orchestrator_calls() -> list[list[str]]:
    calls = []
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                for line in str(step.get("run", "")).splitlines():
                    match = re.search(r"(?:\.venv/bin/)?orchestrator\s+(.*)", line)
                    if match:
                        words = shlex.split(match.group(1).split("|")[0].split(">")[0])
                        calls.append(words)
    return calls


def test_workflows_call_orchestrator() -> None:
    commands = {call[0] for call in _orchestrator_calls()}
    assert {"preview", "up", "promote"} <= commands


@pytest.mark.parametrize("call", _orchestrator_calls(), ids=lambda c: " ".join(c))
def test_every_workflow_call_exists_with_its_options(call: list[str]) -> None:
    command = main.commands.get(call[0])
    assert command is not None, f"orchestrator has no command {call[0]!r}"
    known = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
    used = [word for word in call[1:] if word.startswith("--")]
    assert set(used) <= known, f"unknown options for {call[0]}: {set(used) - known}"
    # and click parses the whole call
    ctx = command.make_context(call[0], list(call[1:]), resilient_parsing=False)
    assert ctx.params.get("env_name") in ("dev", "staging", "prod")
