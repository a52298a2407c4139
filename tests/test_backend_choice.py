"""Which state backend an environment's stack lives in: never a file inside the checkout
for an environment other than local (issue 26: an unset CI variable reads as "" and used
to send dev, staging and prod to `.edgeship/state` on the runner, lost with it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.base.errors import ConfigError, ExitCode
from orchestrator.cli import main
from orchestrator.stacks import engine as stacks

REPO = Path(__file__).resolve().parents[1]
ROOT = Path("/work/project")
LOCAL_DEFAULT = (ROOT / ".edgeship" / "state").as_uri()

# (--backend, PULUMI_BACKEND_URL (None: unset), [project] backend, local?) -> URL, or None: refused
CASES = [
    # named somewhere: that one, in this order, for every environment
    ("s3://flag/p", "s3://var/p", "s3://toml/p", False, "s3://flag/p"),
    (None, "s3://var/p", "s3://toml/p", False, "s3://var/p"),
    (None, None, "s3://toml/p", False, "s3://toml/p"),
    (None, "", "s3://toml/p", False, "s3://toml/p"),  # an empty variable names nothing
    ("", "s3://var/p", None, False, "s3://var/p"),  # nor an empty flag
    (None, "  s3://var/p ", None, False, "s3://var/p"),
    (None, "file:///srv/state", None, False, "file:///srv/state"),  # explicit: taken as named
    (None, "s3://var/p", None, True, "s3://var/p"),
    # named nowhere: the local environment keeps its file backend, any other is refused
    (None, None, None, True, LOCAL_DEFAULT),
    (None, "", None, True, LOCAL_DEFAULT),
    (None, None, None, False, None),
    (None, "", None, False, None),
    (None, "   ", None, False, None),
    ("", "", "", False, None),
]


@pytest.mark.parametrize(("flag", "variable", "configured", "local", "expected"), CASES)
def test_the_backend_decision(
    flag: str | None, variable: str | None, configured: str | None, local: bool, expected: str | None
) -> None:
    environ = {} if variable is None else {"PULUMI_BACKEND_URL": variable}
    name = "local" if local else "prod"
    if expected is not None:
        assert (
            stacks.resolve_backend(flag, configured, environ, ROOT, env_name=name, is_local=local) == expected
        )
        return
    with pytest.raises(ConfigError) as refused:
        stacks.resolve_backend(flag, configured, environ, ROOT, env_name=name, is_local=local)
    error = refused.value
    assert error.exit_code == ExitCode.USAGE
    assert error.message.startswith("environment 'prod' has no state backend")
    assert ("PULUMI_BACKEND_URL is set but empty" in error.message) == (variable is not None)
    assert error.fix is not None
    for way in ("--backend s3://", "PULUMI_BACKEND_URL=s3://", "[project] backend = ", "docs/ci.md"):
        assert way in error.fix, way


TOML = """
[project]
name = "shop"

[environments.local]
region = "us-east-1"
account_id = "123456789012"

[environments.dev]
region = "eu-west-1"
account_id = "123456789012"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "edgeship.toml").write_text(TOML)
    return tmp_path


def _refused(error: dict[str, object]) -> None:
    assert error["exit_code"] == ExitCode.USAGE and error["error"] == "ConfigError", error
    assert error["message"] == (
        "environment 'dev' has no state backend (PULUMI_BACKEND_URL is set but empty, which names "
        "none): its state would be a file inside this checkout, lost with it"
    )
    assert "docs/ci.md" in str(error["fix"])


def test_up_with_an_empty_backend_variable_is_refused_before_anything_runs(project: Path) -> None:
    env = {**os.environ, "PULUMI_BACKEND_URL": "", "PULUMI_CONFIG_PASSPHRASE": "x", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "up", "--yes", "--env", "dev", "--json"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stdout + done.stderr
    _refused(json.loads(done.stdout))
    assert "Traceback" not in done.stderr
    # no stack, no state, no workspace, no emulator: nothing but the config
    assert sorted(p.name for p in project.iterdir()) == ["edgeship.toml"]


# Every command that opens the environment's stack or names its backend (in process: the
# same CLI, faster than a process each).
COMMANDS = [
    ["preview"], ["up", "--yes"], ["refresh"], ["outputs"], ["history"], ["destroy", "--yes"],
    ["promote", "--yes"], ["promote", "--dry-run"], ["promote", "--resume"], ["promote", "--rollback"],
    ["rollback"], ["abort"], ["resume-promotion"], ["status"], ["unlock"], ["bootstrap"],
    ["invoke"], ["logs"], ["rotate-origin-secret"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_stack_command_refuses_a_non_local_environment_without_a_backend(
    project: Path, command: list[str]
) -> None:
    argv = [*command, "--env", "dev", "--config", str(project / "edgeship.toml"), "--json"]
    done = CliRunner().invoke(main, argv, env={"PULUMI_BACKEND_URL": "", "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert done.exit_code == ExitCode.USAGE, done.output
    _refused(json.loads(done.stdout))
    assert sorted(p.name for p in project.iterdir()) == ["edgeship.toml"]


def test_iam_policy_and_doctor_say_so_and_local_keeps_its_default(project: Path) -> None:
    config = ["--config", str(project / "edgeship.toml")]
    env = {"PULUMI_BACKEND_URL": "", "PULUMI_CONFIG_PASSPHRASE": "x"}
    # the state statements need a named S3 backend (the boundary and --no-state need none)
    policy = CliRunner().invoke(main, ["iam-policy", "--env", "dev", "--role", "deploy", *config], env=env)
    assert policy.exit_code == ExitCode.USAGE and "the state backend is not set" in policy.stderr
    boundary = CliRunner().invoke(
        main, ["iam-policy", "--env", "dev", "--role", "boundary", *config], env=env
    )
    assert boundary.exit_code == 0, boundary.output
    doctor = CliRunner().invoke(main, ["doctor", "--env", "dev", "--json", *config], env=env)
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "backend")
    assert not check["ok"] and "has no state backend" in check["detail"] and "docs/ci.md" in check["fix"]
    # the local environment: its file backend in .edgeship/state, as before
    local = CliRunner().invoke(main, ["unlock", "--env", "local", "--json", *config], env=env)
    assert (local.exit_code, json.loads(local.stdout)) == (0, {"stack": "local", "removed": []}), local.output
