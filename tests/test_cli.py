"""The CLI surface: help, exit codes, --json, and errors a person can act on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.errors import ExitCode
from tests.conftest import LocalProject

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, config: Path = REPO / "edgeship.toml") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_commands_and_exit_codes() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for word in ("promote", "rollback", "status", "preview", "up", "destroy", "Exit codes:", "130"):
        assert word in done.stdout
    promote = cli("promote", "--help")
    assert "--dry-run" in promote.stdout and "--resume" in promote.stdout and "Exit 7" in promote.stdout


def test_envs_json() -> None:
    done = cli("envs", "--json")
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == ["local", "dev", "staging", "prod"]
    assert next(r for r in rows if r["name"] == "local")["local"] is True


def test_invalid_config_is_exit_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "edgeship.toml"
    bad.write_text('[environments.dev]\nregion = "eu-west-1"\naccount_id = "42"\n')
    done = cli("envs", config=bad)
    assert done.returncode == ExitCode.USAGE
    assert f'{bad}:3: [environments.dev] account_id = "42": not a 12-digit AWS account id' in done.stderr
    assert 'fix: e.g. account_id = "123456789012"' in done.stderr
    as_json = json.loads(cli("envs", "--json", config=bad).stdout)
    assert as_json["error"] == "ConfigError" and as_json["exit_code"] == 2
    # where the mistake is, for editors and CI annotations
    assert (as_json["file"], as_json["line"], as_json["table"], as_json["key"]) == (
        str(bad),
        3,
        "environments.dev",
        "account_id",
    )


def test_unknown_environment_suggests_the_closest() -> None:
    done = cli("status", "--env", "lcoal", "--json")
    assert done.returncode == ExitCode.USAGE
    error = json.loads(done.stdout)
    assert error["message"].endswith("edgeship.toml: no environment named 'lcoal'")
    assert error["fix"] == "did you mean local? (environments in edgeship.toml: dev, local, prod, staging)"


def test_a_protected_environment_is_not_destroyed_without_force(tmp_path: Path) -> None:
    config = tmp_path / "edgeship.toml"
    config.write_text(
        '[environments.qa]\nregion = "eu-west-1"\naccount_id = "111111111111"\nprotect = true\n'
    )
    done = cli("destroy", "--env", "qa", "--yes", config=config)
    assert done.returncode == ExitCode.REFUSED, done.stderr
    assert "error: refusing to destroy 'qa' without --force: it is protected" in done.stderr
    assert "set protect = false in [environments.qa] of edgeship.toml" in done.stderr


def test_every_command_on_a_never_deployed_stack_says_what_to_run(local_project: LocalProject) -> None:
    for command in (
        ["status"],
        ["outputs"],
        ["history"],
        ["refresh"],
        ["abort"],
        ["rollback"],
        ["destroy", "--yes"],
    ):
        done = local_project.cli(*command, "--env", "local")
        assert done.returncode == ExitCode.USAGE, (command, done.stderr)
        assert "not deployed" in done.stderr or "no stack yet" in done.stderr, (command, done.stderr)
        assert "orchestrator up --env local" in done.stderr and "Traceback" not in done.stderr, (
            command,
            done.stderr,
        )
    assert not (local_project.state / "emulator.json").exists()  # nothing was started for it


def test_resume_and_rollback_exclude_each_other() -> None:
    done = cli("promote", "--env", "local", "--resume", "--rollback")
    assert done.returncode == ExitCode.USAGE and "exclude each other" in done.stderr


def test_every_exit_code_is_documented_in_help_and_readme() -> None:
    readme = (REPO / "README.md").read_text()
    help_text = cli("--help").stdout
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"README's exit-code table lacks {int(code)}"
        assert f"{int(code):>3}  " in help_text, f"--help lacks exit code {int(code)}"


def test_abort_help_teaches_recovery() -> None:
    done = cli("abort", "--help")
    assert done.returncode == 0
    for phrase in ("any machine", "its lease", "rolls back", "--wait", "Exit 0"):
        assert phrase in done.stdout, phrase
