"""The workflow harness itself: GitHub's expression semantics as tables, which jobs each
event selects in deploy.yml and init's workflow, and a small workflow run for real (bash,
GITHUB_ENV/OUTPUT/PATH/STEP_SUMMARY, outputs across jobs, loud failures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_expr import Contexts, ExpressionError, condition, evaluate, render
from tests.workflow_harness import (
    HarnessError,
    Runner,
    StandIn,
    Workflow,
    dispatch,
    pull_request,
    push,
    session_seconds,
)

REPO = Path(__file__).resolve().parents[1]

CONTEXTS = {
    "github": {
        "event_name": "push",
        "ref": "refs/heads/main",
        "event": {"pull_request": None, "commits": [{"id": "a"}, {"id": "b"}]},
        "repository": "octo/repo",
    },
    "inputs": {"environment": "dev", "action": "promote"},
    "vars": {"REGION": "eu-west-1", "EMPTY": ""},
    "needs": {"tests": {"result": "success", "outputs": {"n": "3"}}},
    "steps": {"build": {"outputs": {"zip": "a.zip"}, "outcome": "success"}},
    "matrix": {},
}


def _ctx(status: dict[str, bool] | None = None) -> Contexts:
    answers = status or {"success": True, "failure": False, "cancelled": False}
    return Contexts(
        dict(CONTEXTS),
        strict=frozenset({"vars", "needs", "inputs"}),
        status=lambda which: answers[which],
        workspace=REPO,
    )


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("github.event_name == 'push'", True),
        ("github.event_name == 'PUSH'", True),  # strings compare ignoring case
        ("github.ref != 'refs/heads/main'", False),
        ("startsWith(github.ref, 'refs/tags/v')", False),
        ("startswith(github.ref, 'REFS/heads')", True),  # function names ignore case too
        ("endsWith(github.repository, '/repo')", True),
        ("contains(github.ref, 'main')", True),
        ('contains(fromJSON(\'["dev","staging"]\'), inputs.environment)', True),
        ("github.event.pull_request.head.repo.full_name", None),  # through null: null
        ("github.event.commits[1].id", "b"),
        ("github.event.commits.*.id", ["a", "b"]),
        ("github.event['event_name']", None),
        ("github['event_name']", "push"),
        ("inputs.environment == 'dev' && inputs.action", "promote"),  # && returns an operand
        ("vars.EMPTY || 'fallback'", "fallback"),
        ("!vars.EMPTY", True),
        ("needs.tests.outputs.n == 3", True),  # '3' == 3: coerced to numbers
        ("needs.tests.outputs.n > 2.5", True),
        ("'' == 0", True),
        ("null == 0", True),
        ("true == 1", True),
        ("'abc' == 0", False),  # NaN equals nothing
        ("0x10 == 16", True),
        ("-1.5e1 < 0", True),
        ("format('{0}-{1} {{x}}', 'a', 1)", "a-1 {x}"),
        ("join(github.event.commits.*.id, '+')", "a+b"),
        ("toJSON(inputs)", '{\n  "environment": "dev",\n  "action": "promote"\n}'),
        ("fromJSON('{\"a\": [1, true]}').a[1]", True),
        ("steps.build.outputs.zip", "a.zip"),
        ("success() && !cancelled()", True),
        ("(1 == 1) && (2 < 1 || 'it''s')", "it's"),
    ],
)
def test_expressions_evaluate_as_on_github(expression: str, value: Any) -> None:
    assert evaluate(expression, _ctx()) == value


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("secrets.TOKEN", "unknown context 'secrets'"),  # not available here
        ("vars.MISSING", "vars.MISSING is not defined"),  # GitHub: '' silently
        ("needs.deploy.result", "needs.deploy is not defined"),
        ("inputs.envirnoment", "inputs.envirnoment is not defined"),
        ("hashfile('x')", "unknown function hashfile()"),
        ("startsWith(github.ref)", "takes 2 arguments"),
        ("github.ref = 'x'", "cannot read"),
        ("github.ref == ", "unexpected"),
        ("format('{1}', 'a')", "no argument for {1}"),
    ],
)
def test_what_cannot_be_evaluated_fails_loudly(expression: str, says: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, _ctx())
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("value", "status", "chosen"),
    [
        (None, {"success": True, "failure": False, "cancelled": False}, True),
        (None, {"success": False, "failure": True, "cancelled": False}, False),
        ("github.event_name == 'push'", {"success": False, "failure": True, "cancelled": False}, False),
        ("${{ github.event_name == 'push' }}", {"success": True, "failure": False, "cancelled": False}, True),
        ("always()", {"success": False, "failure": True, "cancelled": True}, True),
        ("cancelled()", {"success": False, "failure": False, "cancelled": True}, True),
        ("cancelled()", {"success": True, "failure": False, "cancelled": False}, False),
        (
            "!cancelled() && needs.tests.result == 'success'",
            {"success": False, "failure": True, "cancelled": False},
            True,
        ),
    ],
)
def test_if_adds_success_unless_a_status_function_is_named(
    value: str | None, status: dict[str, bool], chosen: bool
) -> None:
    assert condition(value, _ctx(status)) is chosen


def test_templates_keep_a_lone_expressions_type_and_join_mixed_text() -> None:
    ctx = _ctx()
    assert render("${{ needs.tests.outputs.n == 3 }}", ctx) is True
    assert render("${{ github.repository }}/runs/${{ 42 }}", ctx) == "octo/repo/runs/42"
    assert render({"a": ["${{ vars.REGION }}"]}, ctx) == {"a": ["eu-west-1"]}
    with pytest.raises(ExpressionError):
        render("${{ github.ref", ctx)


# --- which jobs an event runs -----------------------------------------------------------------


def _workflow(path: Path, workspace: Path | None = None, **kwargs: Any) -> Workflow:
    runner = Runner(
        pythons={"3.11": sys.executable}, pulumi=Path("/nonexistent"), pulumi_version="3.260.0", aws={},
        root=(workspace or REPO) / ".harness",
        toolcache=(workspace or REPO) / ".harness" / "toolcache",
    )  # fmt: skip
    deploy_vars = {
        "PULUMI_BACKEND_URL": "file:///x",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
        "AWS_REGION": "eu-west-1",
    }
    return Workflow(
        path, workspace or REPO, runner, vars=deploy_vars, secrets={"PULUMI_CONFIG_PASSPHRASE": "p"}, **kwargs
    )


def _selected(path: Path, event: Any) -> set[str]:
    wf = _workflow(path, stand_ins={"./.github/workflows/ci.yml": StandIn("the suite runs on its own")})
    return {name for name, result in wf.run(event, execute=False).results().items() if result == "success"}


SHA = "0" * 40


@pytest.mark.parametrize(
    ("event", "jobs"),
    [
        (pull_request(SHA, head_repo="octo/repo"), {"tests", "preview-dev", "comment"}),
        (pull_request(SHA, head_repo="fork/repo"), {"tests"}),  # a fork's PR: no role, no preview
        (push("refs/heads/main", SHA), {"tests", "preview-dev", "dev"}),
        (push("refs/tags/v1.2.0", SHA), {"tests", "preview-staging", "preview-prod", "staging", "prod"}),
        (dispatch("refs/heads/main", SHA, environment="staging"), {"tests", "preview-staging", "staging"}),
        (dispatch("refs/heads/feature", SHA, environment="dev"), {"tests"}),  # refs guarded in the workflow
        (dispatch("refs/heads/feature", SHA, environment="prod", action="abort"), set()),
        (dispatch("refs/heads/main", SHA, environment="dev", action="rollback"), {"recover"}),
        (dispatch("refs/tags/v1.2.0", SHA, environment="prod", action="resume"), {"recover"}),
    ],
)
def test_each_event_selects_the_jobs_docs_ci_md_lists(event: Any, jobs: set[str]) -> None:
    assert _selected(REPO / ".github" / "workflows" / "deploy.yml", event) == jobs


def test_inits_workflow_selects_the_same_jobs(tmp_path: Path) -> None:
    from orchestrator.project.scaffold import deploy_workflow

    rendered = tmp_path / "edgeship-deploy.yml"
    rendered.write_text(deploy_workflow("edgeship==0.1.0"))
    for event in (push("refs/heads/main", SHA), push("refs/tags/v2.0.0", SHA), pull_request(SHA)):
        assert _selected(rendered, event) == _selected(REPO / ".github" / "workflows" / "deploy.yml", event)


def test_a_dispatch_input_outside_its_choices_and_an_untriggered_event_are_refused() -> None:
    deploy = REPO / ".github" / "workflows" / "deploy.yml"
    with pytest.raises(HarnessError, match="is not one of"):
        _selected(deploy, dispatch("refs/heads/main", SHA, environment="qa"))
    with pytest.raises(HarnessError, match="does not run on push"):
        _selected(deploy, push("refs/heads/feature", SHA))
    with pytest.raises(HarnessError, match="declare a StandIn"):
        _workflow(deploy).run(push("refs/heads/main", SHA), execute=False)


# --- a small workflow, run -------------------------------------------------------------------

SMALL = """
name: small
on:
  push:
    branches: [main]
env:
  GREETING: hello
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      word: ${{ steps.say.outputs.word }}
    steps:
      - uses: actions/checkout@0000000000000000000000000000000000000000 # v1
      - id: say
        run: |
          echo "word=$GREETING-${{ github.ref_name }}" >> "$GITHUB_OUTPUT"
          echo "LATER=set by GITHUB_ENV" >> "$GITHUB_ENV"
          { echo 'BLOCK<<EOF'; echo 'two'; echo 'lines'; echo 'EOF'; } >> "$GITHUB_ENV"
          mkdir -p tools && printf '#!/bin/sh\\necho tool ran\\n' > tools/tool && chmod +x tools/tool
          echo "$PWD/tools" >> "$GITHUB_PATH"
          echo "### done" >> "$GITHUB_STEP_SUMMARY"
      - run: test "$LATER" = "set by GITHUB_ENV" && test "$BLOCK" = "$(printf 'two\\nlines')" && tool
      - name: fails
        id: fails
        run: exit 3
        continue-on-error: true
      - name: after a tolerated failure
        run: test "${{ steps.fails.outcome }}/${{ steps.fails.conclusion }}" = "failure/success"
      - name: only on failure
        if: failure()
        run: exit 1
  second:
    needs: first
    if: needs.first.outputs.word == 'hello-main'
    runs-on: ubuntu-latest
    steps:
      - run: echo "$WORD" > word.txt && false
        env:
          WORD: ${{ needs.first.outputs.word }}
      - name: always
        if: always()
        run: cat word.txt
      - name: skipped after the failure
        run: echo never
"""


def _repo(path: Path, files: dict[str, str]) -> str:
    path.mkdir()
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_small_workflow_runs_its_steps_with_the_runners_files(tmp_path: Path) -> None:
    sha = _repo(tmp_path / "repo", {".github/workflows/small.yml": SMALL})
    wf = _workflow(tmp_path / "repo" / ".github" / "workflows" / "small.yml", tmp_path / "repo")
    wf.runner.root = tmp_path / "runner"
    run = wf.run(push("refs/heads/main", sha))
    first, second = run.jobs["first"], run.jobs["second"]
    assert first.result == "success", run.describe()
    assert [s.outcome for s in first.steps] == [
        "success",
        "success",
        "success",
        "failure",
        "success",
        "skipped",
    ]
    assert first.outputs == {"word": "hello-main"} and first.summary == "### done\n"
    assert "tool ran" in first.steps[2].log
    assert second.result == "failure", run.describe()
    assert [s.outcome for s in second.steps] == ["failure", "success", "skipped"]
    assert second.steps[1].log == "hello-main\n"


def test_an_unknown_action_or_expression_in_a_step_fails_the_run(tmp_path: Path) -> None:
    text = SMALL.replace("actions/checkout@", "actions/unknown@")
    sha = _repo(tmp_path / "repo", {".github/workflows/small.yml": text})
    wf = _workflow(tmp_path / "repo" / ".github" / "workflows" / "small.yml", tmp_path / "repo")
    wf.runner.root = tmp_path / "runner"
    with pytest.raises(HarnessError, match="action actions/unknown is not emulated"):
        wf.run(push("refs/heads/main", sha))


CANCELLED = """
name: cancelled
on: [push]
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - name: interrupted
        run: |
          trap 'echo got SIGINT; exit 130' INT
          touch started
          for _ in $(seq 300); do sleep 0.1; done
      - name: next
        run: echo never
      - name: on cancel
        if: cancelled()
        run: echo cleaning up
  after:
    needs: long
    runs-on: ubuntu-latest
    steps:
      - run: echo never
"""


@pytest.mark.parametrize("hard", [False, True])
def test_a_cancel_signals_the_step_and_runs_only_the_cancelled_steps(tmp_path: Path, hard: bool) -> None:
    from tests.workflow_harness import Cancel

    sha = _repo(tmp_path / "repo", {".github/workflows/c.yml": CANCELLED})
    wf = _workflow(tmp_path / "repo" / ".github" / "workflows" / "c.yml", tmp_path / "repo")
    wf.runner.root = tmp_path / "runner"
    started = tmp_path / "repo" / "started"
    run = wf.run(
        push("refs/heads/main", sha), cancel=Cancel("long", "interrupted", started.exists, hard=hard)
    )
    assert run.cancelled and run.results() == {"long": "cancelled", "after": "skipped"}, run.describe()
    long = run.jobs["long"]
    # GitHub's cancel: SIGINT reaches the step, then the cancelled() steps run; a lost runner runs nothing more
    assert [s.outcome for s in long.steps] == ["cancelled", "skipped", "skipped" if hard else "success"]
    assert ("got SIGINT" in long.steps[0].log) is not hard


# --- configure-aws-credentials' session ------------------------------------------------------

CREDENTIALS = """
name: credentials
on: [push]
jobs:
  deploy:
    runs-on: ubuntu-latest
    timeout-minutes: 120
    steps:
      - uses: aws-actions/configure-aws-credentials@0000000000000000000000000000000000000000 # v1
        with:
          role-to-assume: ${{{{ vars.AWS_ROLE_ARN }}}}
          aws-region: ${{{{ vars.AWS_REGION }}}}
          {duration}
"""


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7200", 7200),
        (None, 3600),  # the action's default
        ("", 3600),
        ("900", 900),
        ("43200", 43200),
        ("43201", "from 900 to 43200"),  # beyond AWS's 12 h
        ("600", "from 900 to 43200"),  # AssumeRole's minimum is 15 min
        ("0", "from 900 to 43200"),
        ("2h", "not a whole number"),  # the real action would fall back to 1 h, silently
        ("-3600", "not a whole number"),
        ("3600.5", "not a whole number"),
    ],
)
def test_a_session_outside_assume_roles_range_fails_loudly(value: str | None, seconds: int | str) -> None:
    if isinstance(seconds, int):
        assert session_seconds(value) == seconds
    else:
        with pytest.raises(HarnessError, match=seconds):
            session_seconds(value)


def test_the_credentials_session_is_recorded_and_an_invalid_one_fails_the_run(tmp_path: Path) -> None:
    def run(name: str, duration: str) -> Any:
        sha = _repo(tmp_path / name, {".github/workflows/c.yml": CREDENTIALS.format(duration=duration)})
        wf = _workflow(tmp_path / name / ".github" / "workflows" / "c.yml", tmp_path / name)
        wf.runner.root = tmp_path / f"{name}-runner"
        return wf.run(push("refs/heads/main", sha))

    done = run("good", "role-duration-seconds: 7200")
    assert done.jobs["deploy"].result == "success", done.describe()
    assert done.jobs["deploy"].steps[0].log == (
        "credentials of the stand-in for arn:aws:iam::1:role/r, a 7200 s session"
    )
    with pytest.raises(HarnessError, match="'7200s' is not a whole number"):
        run("bad", "role-duration-seconds: 7200s")
