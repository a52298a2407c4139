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
    # an environment by name, or the dispatch input passed through as a variable
    assert ctx.params.get("env_name") in ("dev", "staging", "prod", "$EDGESHIP_ENV")


# --- deploy.yml, point by point (docs/ci.md explains each) -------------------------------------

DEPLOY = yaml.safe_load((REPO / ".github" / "workflows" / "deploy.yml").read_text())
CI = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
CREDENTIALS = "aws-actions/configure-aws-credentials@"


def _steps(job: dict) -> list[dict]:
    return list(job.get("steps", []))


def _with_credentials() -> dict[str, dict]:
    return {
        name: job
        for name, job in DEPLOY["jobs"].items()
        if any(CREDENTIALS in str(s.get("uses", "")) for s in _steps(job))
    }


def _on(workflow: dict) -> dict:
    return workflow.get("on") or workflow.get(True)  # PyYAML reads the key `on` as True


def test_every_deploy_job_installs_the_runtime_before_it_takes_credentials() -> None:
    jobs = _with_credentials()
    assert set(jobs) == {
        "preview-dev",
        "preview-staging",
        "preview-prod",
        "dev",
        "staging",
        "prod",
        "recover",
    }
    for name, job in jobs.items():
        steps = _steps(job)
        install = [i for i, s in enumerate(steps) if "make install" in str(s.get("run", ""))]
        credentials = [i for i, s in enumerate(steps) if CREDENTIALS in str(s.get("uses", ""))]
        assert [steps[i]["run"] for i in install] == ["make install-runtime"], name  # no test/dev extras
        assert install[0] < credentials[0], f"{name}: installs after taking credentials"


def test_every_job_that_packages_has_the_lambda_runtimes_python_for_its_bytecode() -> None:
    # `up`, `preview` and `promote` build the zip, compiling its bytecode with the runtime's own
    # interpreter (without one the zip has none and every cold start compiles from source).
    from orchestrator.config.settings import load

    runtimes = {env.function.runtime for env in load(REPO / "edgeship.toml").environments.values()}
    for workflow in WORKFLOWS:
        jobs = yaml.safe_load(workflow.read_text())["jobs"]
        for name, job in jobs.items():
            for step in _steps(job):
                if "actions/setup-python" not in str(step.get("uses", "")):
                    continue
                versions = str(step["with"]["python-version"]).split()
                assert {r.removeprefix("python") for r in runtimes} <= set(versions), (workflow.name, name)
                assert versions[-1] == "3.11", (
                    workflow.name,
                    name,
                )  # the default python stays the tested one


def test_no_expression_is_spliced_into_a_shell_script() -> None:
    for workflow in WORKFLOWS:
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for step in _steps(job):
                assert "${{" not in str(step.get("run", "")), f"{workflow.name}:{name}: {step.get('run')}"


def test_dispatch_offers_every_recovery_action_per_environment() -> None:
    inputs = _on(DEPLOY)["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["dev", "staging", "prod"]
    assert inputs["action"]["options"] == ["promote", "resume", "rollback", "abort"]
    recover = DEPLOY["jobs"]["recover"]
    assert recover["env"]["EDGESHIP_ENV"] == "${{ inputs.environment }}"
    assert recover["env"]["EDGESHIP_ACTION"] == "${{ inputs.action }}"
    script = next(s["run"] for s in _steps(recover) if "case" in str(s.get("run", "")))
    for action, command in (("resume", "promote --env \"$EDGESHIP_ENV\" --resume"),
                            ("rollback", "promote --env \"$EDGESHIP_ENV\" --rollback"),
                            ("abort", "abort --env \"$EDGESHIP_ENV\"")):  # fmt: skip
        assert f"{action}) exec .venv/bin/orchestrator {command}" in script


RECOVERY = "Abort if cancelled or failed"


def test_every_engine_run_is_under_exec_and_every_promotion_names_its_run_and_recovers() -> None:
    # exec: GitHub's cancel (SIGINT, then SIGTERM) reaches the driver or the engine, not bash
    for name in ("dev", "staging", "prod", "recover"):
        job = DEPLOY["jobs"][name]
        assert job["env"]["EDGESHIP_HOLDER"].endswith("/actions/runs/${{ github.run_id }}"), name
        runs = [str(s.get("run", "")) for s in _steps(job)]
        acting = [
            line.strip()
            for r in runs
            for line in r.splitlines()
            if re.search(r"orchestrator (up|promote|abort) ", line)
        ]
        assert acting and all(line.startswith(("exec .venv/bin/orchestrator", "abort) exec ", "resume) exec ",
                                               "rollback) exec ")) for line in acting), (name, acting)  # fmt: skip
        recovering = [s for s in _steps(job) if "orchestrator abort --env" in str(s.get("run", ""))]
        assert [s["name"] for s in recovering][-1] == RECOVERY and recovering[-1][
            "if"
        ] == "failure() || cancelled()"
        assert job["concurrency"]["cancel-in-progress"] is False
    deploy = next(s for s in _steps(DEPLOY["jobs"]["dev"]) if s.get("name") == "Deploy")
    assert deploy["run"] == "exec .venv/bin/orchestrator up --env dev --yes"


@pytest.mark.parametrize(
    ("cancelled", "failed", "runs"), [(False, False, False), (False, True, True), (True, False, True)]
)
def test_the_recovery_step_runs_on_failure_and_on_cancel_only(
    cancelled: bool, failed: bool, runs: bool
) -> None:
    from tests.workflow_expr import Contexts, condition

    status = {"cancelled": cancelled, "failure": failed, "success": not (cancelled or failed)}
    for name in ("dev", "staging", "prod", "recover"):
        step = next(s for s in _steps(DEPLOY["jobs"][name]) if s.get("name") == RECOVERY)
        assert condition(step["if"], Contexts({}, status=status.__getitem__)) is runs, name


def test_the_recover_job_can_reach_a_running_promotion() -> None:
    # A dispatched abort must not wait in the promotions' group for the promotion it stops.
    from tests.workflow_expr import Contexts, render

    jobs = DEPLOY["jobs"]
    promotions = {jobs[env]["concurrency"]["group"] for env in ("dev", "staging", "prod")}
    assert promotions == {"deploy-dev", "deploy-staging", "deploy-prod"}
    for env in ("dev", "staging", "prod"):
        group = render(jobs["recover"]["concurrency"]["group"], Contexts({"inputs": {"environment": env}}))
        assert group == f"recover-{env}", group  # its own, one recovery per environment at a time


# The recovery step's script, run as a runner runs it (bash -eo pipefail), with `status`
# answering as the CLI's --json does and `abort` recorded. Its `orchestrator` is a stand-in
# (a script printing a status document): what is tested is the step's decision.
ME, OTHER = "https://github.com/octo/repo/actions/runs/7", "https://github.com/octo/repo/actions/runs/5"


def _found(phase: str | None, holder: str, situation: str, lease: str | None = None) -> dict[str, object]:
    return {
        "promotion": {"id": "20261207T050000-abcdef", "phase": phase, "holder": holder} if phase else None,
        "lease": {"holder": lease, "live": situation == "running"} if lease else None,
        "situation": situation,
        "interrupted": situation == "interrupted",
    }


RECOVERY_CASES = [
    (_found("baking", ME, "interrupted"), True),  # this run's driver killed mid-promotion
    # every gate passed, the write of `promoted` failed (exit 8): finished, never rolled back
    (_found("promoting", ME, "interrupted"), "resume"),
    (_found("promoting", OTHER, "interrupted"), False),
    (_found("rolling_back", ME, "interrupted"), True),  # its rollback unfinished (exit 8)
    (_found("shifting", ME, "running", ME), True),  # its killed driver's lease not expired yet
    (_found("promoted", ME, "idle"), False),  # finished: never aborted
    (_found("rolled_back", ME, "idle"), False),  # the driver rolled back itself (a gate failed)
    (_found("baking", OTHER, "running", OTHER), False),  # another run's promotion, running
    (_found("baking", OTHER, "interrupted"), False),  # another's, interrupted: a person decides
    (_found("baking", ME, "running", OTHER), False),  # taken over (a resume): its new holder's
    (_found(None, "", "idle"), False),  # nothing recorded
    (None, False),  # status failed (nothing deployed, no credentials): a warning, nothing else
]


def test_the_recovery_steps_are_one_script() -> None:
    # staging's and prod's are dev's with their environment: executed once below
    dev = next(s for s in _steps(DEPLOY["jobs"]["dev"]) if s.get("name") == RECOVERY)
    for name in ("staging", "prod"):
        step = next(s for s in _steps(DEPLOY["jobs"][name]) if s.get("name") == RECOVERY)
        assert step == {**dev, "run": dev["run"].replace("--env dev", f"--env {name}")}, name


@pytest.mark.parametrize("job", ["dev", "recover"])
def test_the_recovery_step_aborts_only_this_runs_promotion_left_in_flight(tmp_path: Path, job: str) -> None:
    import json
    import os

    step = next(s for s in _steps(DEPLOY["jobs"][job]) if s.get("name") == RECOVERY)
    env_name = job if job != "recover" else "staging"
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    stand_in = bin_dir / "orchestrator"
    stand_in.write_text(
        '#!/bin/sh\necho "$*" >> "$CALLS"\n'
        'if [ "$1" = status ]; then [ -n "$FOUND" ] || { echo "no stack" >&2; exit 2; }; printf %s "$FOUND"; fi\n'
    )
    stand_in.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    for found, aborts in RECOVERY_CASES:
        calls = tmp_path / "calls"
        calls.write_text("")
        env = {"PATH": os.environ["PATH"], "CALLS": str(calls), "EDGESHIP_HOLDER": ME, "EDGESHIP_ENV": env_name,
               "FOUND": json.dumps(found) if found else ""}  # fmt: skip
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (found, done.stdout + done.stderr)
        then = {True: [f"abort --env {env_name}"], "resume": [f"promote --env {env_name} --resume --yes"]}
        expected = [f"status --env {env_name} --json", *then.get(aborts, [])]
        assert calls.read_text().splitlines() == expected, (found, done.stdout + done.stderr)
        if found is None:
            assert "::warning title=Promotion state unread::" in done.stdout


def test_nothing_deploys_before_the_tests_and_the_preview_it_approves() -> None:
    jobs = DEPLOY["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/ci.yml"
    assert "workflow_call" in _on(CI)
    for env in ("dev", "staging", "prod"):
        needs = jobs[env]["needs"]
        assert "tests" in needs and f"preview-{env}" in needs, env
        assert f"needs.preview-{env}.result == 'success'" in jobs[env]["if"], env
        preview = jobs[f"preview-{env}"]
        assert preview["environment"] == f"{env}-preview"  # a read-only role, no reviewers
        runs = " ".join(str(s.get("run", "")) for s in _steps(preview))
        assert "orchestrator preview" in runs and "preview.md" in runs
        assert " up " not in runs and "promote" not in runs
    assert "staging" in jobs["prod"]["needs"]


def test_each_environment_deploys_only_from_its_refs() -> None:
    main, tag = "github.ref == 'refs/heads/main'", "startsWith(github.ref, 'refs/tags/v')"
    jobs = DEPLOY["jobs"]
    assert main in jobs["dev"]["if"] and tag not in jobs["dev"]["if"]
    assert main in jobs["staging"]["if"] and tag in jobs["staging"]["if"]
    assert tag in jobs["prod"]["if"] and main not in jobs["prod"]["if"]
    recover = jobs["recover"]["if"]
    assert (
        f"inputs.environment == 'dev' && {main}" in recover
        and f"inputs.environment == 'prod' && {tag}" in recover
    )


def test_the_pr_comment_is_one_comment_updated_by_a_job_without_credentials() -> None:
    job = DEPLOY["jobs"]["comment"]
    assert job["permissions"] == {"pull-requests": "write"} and job["needs"] == ["preview-dev"]
    uses = [str(s.get("uses", "")) for s in _steps(job)]
    assert any(u.startswith("actions/download-artifact@") for u in uses)
    assert not any(CREDENTIALS in u or u.startswith("actions/checkout@") for u in uses)
    script = next(s["with"]["script"] for s in _steps(job) if "github-script" in str(s.get("uses", "")))
    assert "updateComment" in script and "<!-- edgeship-preview:dev -->" in script


def test_ci_cancels_superseded_runs_of_pull_requests_only_and_caches_only_there() -> None:
    # ci.yml's concurrency, caches and jobs: tests/test_ci.py
    assert CI["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    ci_uses = [str(s.get("uses", "")) for job in CI["jobs"].values() for s in _steps(job)]
    assert any(u.startswith("actions/cache@") for u in ci_uses)
    online = [s for job in CI["jobs"].values() for s in _steps(job) if "zizmor" in str(s.get("run", ""))]
    assert len(online) == 1 and "--offline" not in online[0]["run"] and online[0]["continue-on-error"] is True
    deploy_uses = [str(s.get("uses", "")) for job in DEPLOY["jobs"].values() for s in _steps(job)]
    assert not any(u.startswith("actions/cache") for u in deploy_uses)
    assert not any(s.get("with", {}).get("cache") for job in DEPLOY["jobs"].values() for s in _steps(job))


# --- credentials that last the job --------------------------------------------------------------

# AWS's largest DurationSeconds (a role's MaxSessionDuration is at most 12 h)
MAX_SESSION_SECONDS = 43200


def _rendered_workflows(tmp_path: Path) -> dict[str, dict]:
    """deploy.yml, and init's workflow for every `--install-from` form scaffold supports."""
    from orchestrator.project import scaffold

    (tmp_path / "dist").mkdir()
    wheel = tmp_path / "dist" / "edgeship-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    forms = ("pypi", str(wheel), "git+https://github.com/octo/edgeship@v1.2.3")
    rendered = {"deploy.yml": DEPLOY}
    for form in forms:
        install = scaffold.install_spec(form, tmp_path, "0.1.0")
        rendered[f"init --install-from {form}"] = yaml.safe_load(scaffold.deploy_workflow(install))
    return rendered


def test_every_credential_lasts_its_jobs_timeout(tmp_path: Path) -> None:
    # configure-aws-credentials asks for 1 h unless told otherwise: past it, a 2 h prod job
    # could neither renew its promotion lease nor move the alias, nor roll back.
    for label, workflow in _rendered_workflows(tmp_path).items():
        checked = 0
        for name, job in workflow["jobs"].items():
            for step in _steps(job):
                if CREDENTIALS not in str(step.get("uses", "")):
                    continue
                # without one, GitHub's default is 360 minutes: no session can cover it
                assert isinstance(job.get("timeout-minutes"), int), f"{label}: {name} has no timeout-minutes"
                seconds = step["with"].get("role-duration-seconds")
                assert seconds is not None, f"{label}: {name} asks for no role-duration-seconds (1 h)"
                assert 60 * job["timeout-minutes"] <= int(seconds) <= MAX_SESSION_SECONDS, (
                    label,
                    name,
                    seconds,
                )
                checked += 1
        assert checked == 7, label  # the three previews, dev, staging, prod and recover


# --- the state backend: an unset variable stops the job ------------------------------------------

GUARD = "Check the state backend"


def _guard() -> dict:
    return next(s for s in _steps(DEPLOY["jobs"]["dev"]) if s.get("name") == GUARD)


def test_every_job_with_a_stack_checks_its_backend_before_installing_or_taking_credentials(
    tmp_path: Path,
) -> None:
    for label, workflow in _rendered_workflows(tmp_path).items():
        guarded = 0
        for name, job in workflow["jobs"].items():
            if "PULUMI_BACKEND_URL" not in job.get("env", {}):
                assert not any("orchestrator" in str(s.get("run", "")) for s in _steps(job)) or name == "tests", (
                    label, name)  # fmt: skip
                continue
            steps = _steps(job)
            names = [str(s.get("name") or s.get("uses")) for s in steps]
            assert GUARD in names, (label, name)
            at = names.index(GUARD)
            first_install = next(
                i for i, s in enumerate(steps) if "install" in str(s.get("name", "")).lower()
            )
            credentials = next(i for i, s in enumerate(steps) if CREDENTIALS in str(s.get("uses", "")))
            pulumi = next(
                i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@")
            )
            assert at < min(first_install, credentials, pulumi), (label, name, names)
            assert steps[at]["run"] == _guard()["run"], (label, name)  # one check, everywhere alike
            guarded += 1
        assert guarded == 7, label  # the three previews, dev, staging, prod and recover


@pytest.mark.parametrize(
    ("variable", "configured", "passes"),
    [
        (None, False, False),  # not set anywhere
        ("", False, False),  # GitHub's unset `vars.PULUMI_BACKEND_URL`
        ("  ", False, False),
        ("", True, True),  # edgeship.toml's [project] backend names it
        ("s3://state/edgeship", False, True),
    ],
)
def test_the_backend_check_fails_the_job_on_an_unset_variable(
    tmp_path: Path, variable: str | None, configured: bool, passes: bool
) -> None:
    import os

    step = _guard()
    toml = '[project]\nname = "shop"\n' + ('backend = "s3://state/shop"\n' if configured else "")
    (tmp_path / "edgeship.toml").write_text(toml)
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    # setup-python's `python` (3.11: tomllib) first on PATH, as on the runner
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if variable is not None:
        env["PULUMI_BACKEND_URL"] = variable
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode == 0) is passes, done.stdout + done.stderr
    if not passes:
        assert done.stdout.startswith(
            "::error title=No state backend::the variable PULUMI_BACKEND_URL is not set"
        )
        assert "docs/ci.md" in done.stdout
