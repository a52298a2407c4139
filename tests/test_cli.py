"""The CLI surface: help, exit codes, --json, and errors a person can act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, config: Path = REPO / "edgeship.toml", **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env} if env else None,
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


def test_doctor_report_and_schema_take_the_global_options(tmp_path: Path) -> None:
    """--env before the command and EDGESHIP_ENV pick doctor's environment as every command's;
    `report` filters on a global --env; `schema --json --write` answers in JSON."""
    for args, env, expected in [
        (["--env", "dev", "doctor", "--json"], {}, "dev"),
        (["doctor", "--json"], {"EDGESHIP_ENV": "staging"}, "staging"),
        (["doctor", "--env", "prod", "--json"], {"EDGESHIP_ENV": "staging"}, "prod"),
    ]:
        done = cli(*args, PULUMI_CONFIG_PASSPHRASE="", **env)
        assert json.loads(done.stdout)["env"] == expected, (args, env, done.stderr)

    root = tmp_path / "project"
    root.mkdir()
    (root / "edgeship.toml").write_text((REPO / "edgeship.toml").read_text())
    for env_name, stamp in (("local", "20260101T000000-000001"), ("dev", "20260102T000000-000002")):
        folder = root / "reports" / env_name / stamp
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps({"id": stamp, "env": env_name, "outcome": "promoted"}))
    listed = cli("--env", "local", "report", "--json", config=root / "edgeship.toml")
    assert [r["env"] for r in json.loads(listed.stdout)] == ["local"], listed.stderr
    everything = cli("report", "--json", config=root / "edgeship.toml")
    assert sorted(r["env"] for r in json.loads(everything.stdout)) == ["dev", "local"]

    written = cli("schema", "--json", "--write", str(tmp_path / "s.json"))
    assert json.loads(written.stdout) == {"path": str(tmp_path / "s.json")}, written.stderr
    assert json.loads((tmp_path / "s.json").read_text())["title"]


def test_up_holds_the_lease_a_promotion_started_meanwhile_is_refused(local_project: LocalProject) -> None:
    """`up` takes the environment's lease for its whole update (the CLI's own process holds
    it while the engine runs) and gives it back at the end; while it is held (taken here in
    this process, with the code `up` runs), a promote and another `up` get exit 4."""
    from orchestrator.base.progress import NullReporter
    from orchestrator.release import lease
    from orchestrator.release.operations import Release

    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    target = local_project.target()
    store = lease.LeaseStore(target.s3_client(), target.bucket, "local")

    # A second `up` (no change: the engine still runs): seen holding the lease as its own pid.
    update = local_project.popen("up", "--yes", "--env", "local", "--json")
    holders: set[int] = set()
    while update.poll() is None:
        held, _ = store.read()
        if held is not None:
            holders.add(held.pid)
        time.sleep(0.1)
    _out, err = update.communicate()
    assert update.returncode == 0, err[-3000:]
    assert holders == {update.pid}, (holders, update.pid)
    assert store.read() == (None, None)  # released at the end

    release = Release(target, target.env, NullReporter(), local_project.root / "reports")
    with release.holding_for_stack_change("up"):
        held, _ = store.read()
        assert held is not None and held.pid == os.getpid()
        green = str(local_project.model("2"))
        code, refused = local_project.json("promote", "--env", "local", "--model", green)
        assert (code, refused["error"]) == (ExitCode.LEASE_HELD, "PromotionLockedError"), refused
        assert f"pid {os.getpid()}" in refused["message"], refused
        assert refused["message"].startswith("`up` is running on 'local': "), refused  # the lease's kind
        code, refused = local_project.json("up", "--yes", "--env", "local")
        assert code == ExitCode.LEASE_HELD and "is running" in refused["message"], refused
    code, status = local_project.json("status", "--env", "local")  # given back; the promote changed nothing
    assert (code, status["lease"], status["live"]["version"]) == (0, None, "1"), status
