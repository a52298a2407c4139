"""Pulumi users' habits: global options anywhere, --env defaults, JSON usage errors, `up`
that previews and asks (refuses without a terminal), `preview --diff`, a first promote
that says it is a deploy, prerequisites checked before packaging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.base.errors import ConfigError, ExitCode, UsageError
from orchestrator.cli import main
from orchestrator.config.env_choice import choose
from orchestrator.stacks import diff
from tests.conftest import LocalProject

TOML = """
{default}
[project]
name = "habits"

[environments.local]
region = "us-east-1"
account_id = "123456789012"

[environments.dev]
region = "eu-west-1"
account_id = "123456789012"
"""

# -- which environment, from where (pure) ------------------------------------------------------


@pytest.mark.parametrize(
    ("from_var", "default_env", "expected"),
    [
        ("dev", None, "dev"),
        ("dev", "local", "dev"),  # the variable beats the file
        (None, "local", "local"),
        ("", "local", "local"),  # an empty variable is unset
    ],
)
def test_environment_chosen_without_env(from_var: str | None, default_env: str | None, expected: str) -> None:
    assert choose(from_var, default_env, ["local", "dev"], Path("edgeship.toml")) == expected


def test_no_environment_anywhere_is_a_usage_error_listing_them() -> None:
    with pytest.raises(UsageError) as caught:
        choose(None, None, ["local", "dev"], Path("/p/edgeship.toml"))
    assert caught.value.message == "no environment given: pass --env NAME (known: dev, local)"
    assert caught.value.fix is not None
    assert "EDGESHIP_ENV=local" in caught.value.fix
    assert 'default_env = "local" at the top of edgeship.toml' in caught.value.fix


def test_an_unknown_environment_from_the_variable_says_where_it_came_from() -> None:
    with pytest.raises(ConfigError) as caught:
        choose("lcoal", None, ["local", "dev"], Path("/p/edgeship.toml"))
    assert caught.value.message.startswith("EDGESHIP_ENV='lcoal' names no environment")
    assert caught.value.fix is not None and caught.value.fix.startswith("did you mean local?")


def test_default_env_must_name_an_environment(tmp_path: Path) -> None:
    config = tmp_path / "edgeship.toml"
    config.write_text(TOML.format(default='default_env = "prod"'))
    done = CliRunner().invoke(main, ["envs", "--config", str(config)])
    assert done.exit_code == ExitCode.USAGE
    assert "default_env" in done.stderr and "not an environment of this file" in done.stderr


# -- global options before or after the command (the real CLI, in process) -----------------------

# `unlock` takes --env and answers without the engine (no lock in a file backend): it names
# the environment it resolved.
CASES: list[tuple[list[str], dict[str, str], str | None, str | int]] = [
    (["unlock", "--env", "dev", "--json", "--config", "{c}"], {}, None, "dev"),
    (["--json", "unlock", "--env", "dev", "--config", "{c}"], {}, None, "dev"),
    (["--config", "{c}", "--env", "dev", "--json", "unlock"], {}, None, "dev"),
    (["--json", "--config", "{c}", "unlock"], {"EDGESHIP_ENV": "dev"}, None, "dev"),
    (["unlock", "--config", "{c}", "--json"], {}, 'default_env = "local"', "local"),
    (["unlock", "--config", "{c}", "--json"], {"EDGESHIP_ENV": "dev"}, 'default_env = "local"', "dev"),
    (["--env", "local", "unlock", "--config", "{c}", "--json"], {"EDGESHIP_ENV": "dev"}, None, "local"),
    (["--env", "dev", "unlock", "--env", "local", "--config", "{c}", "--json"], {}, None, "local"),
    # usage errors under --json: one JSON document, exit 2
    (["unlock", "--json", "--config", "{c}"], {}, None, "no environment given: pass --env NAME (known: dev, local)"),
    (["--json", "--config", "{c}", "unlock", "--env"], {}, None, "Option '--env' requires an argument."),
    (["history", "--limit", "x", "--env", "local", "--config", "{c}", "--json"], {}, None,
     "Invalid value for '--limit': 'x' is not a valid integer."),
    (["unlock", "--json", "--config", "{c}"], {"EDGESHIP_ENV": "qa"}, None,
     "EDGESHIP_ENV='qa' names no environment of {c} (known: dev, local)"),
    (["unlock", "--env", "local", "--json", "--config", "{c}.missing"], {}, None,
     "{c}.missing: file not found"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "environ", "default", "expected"), CASES)
def test_global_options_anywhere(
    tmp_path: Path, args: list[str], environ: dict[str, str], default: str | None, expected: str
) -> None:
    config = tmp_path / "edgeship.toml"
    config.write_text(TOML.format(default=default or ""))
    argv = [a.replace("{c}", str(config)) for a in args]
    # dev is not local: it needs a backend of its own (tests/test_backend_choice.py)
    env = {"EDGESHIP_ENV": None, "PULUMI_BACKEND_URL": (tmp_path / "state").as_uri(), **environ}
    done = CliRunner().invoke(main, argv, env=env)  # type: ignore[arg-type]
    out = json.loads(done.stdout)
    if expected in ("dev", "local"):
        assert (done.exit_code, out) == (0, {"stack": expected, "removed": []}), done.output
    else:
        assert done.exit_code == ExitCode.USAGE and out["exit_code"] == 2, done.output
        assert out["message"] == expected.replace("{c}", str(config)), out


def test_usage_errors_without_json_stay_clicks(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["unlock", "--envv", "x"])
    assert done.exit_code == 2 and "No such option '--envv'" in done.stderr and not done.stdout


# -- refusals before anything runs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["up", "--env", "local"], ["destroy", "--env", "local"], ["--json", "up", "--env", "local"]]
)
def test_up_and_destroy_without_a_terminal_refuse_and_change_nothing(tmp_path: Path, args: list[str]) -> None:
    config = tmp_path / "edgeship.toml"
    config.write_text(TOML.format(default=""))
    done = CliRunner().invoke(main, ["--config", str(config), *args])  # stdin: not a terminal
    assert done.exit_code == ExitCode.REFUSED, done.output
    text = done.stdout if "--json" in args else done.stderr
    assert "not confirmed (no terminal to ask on); nothing was changed" in text and "--yes" in text
    # nothing started, nothing written: no emulator, no workspace, no state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edgeship.toml"]


def _no_aws(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_CONFIG_PASSPHRASE"))}
    missing = str(tmp_path / "no-such-file")
    return {**env, "AWS_CONFIG_FILE": missing, "AWS_SHARED_CREDENTIALS_FILE": missing,
            "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


@pytest.mark.parametrize("command", [["preview"], ["up", "--yes"], ["promote", "--yes"]])
@pytest.mark.parametrize(
    ("passphrase", "message"),
    [(False, "PULUMI_CONFIG_PASSPHRASE is not set"), (True, "no AWS credentials for environment 'dev'")],
)
def test_prerequisites_fail_before_packaging(
    tmp_path: Path, command: list[str], passphrase: bool, message: str
) -> None:
    config = tmp_path / "edgeship.toml"
    config.write_text(TOML.format(default=""))
    env = _no_aws(tmp_path) | ({"PULUMI_CONFIG_PASSPHRASE": "x"} if passphrase else {})
    env["PULUMI_BACKEND_URL"] = (tmp_path / "state").as_uri()  # dev's own (none is refused first)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *command, "--env", "dev", "--config", str(config), "--json"],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    error = json.loads(done.stdout)
    assert done.returncode == ExitCode.USAGE and message in error["message"], error
    assert "package" not in done.stderr, done.stderr  # no build started (its progress would say)


# -- the diff (pure) ----------------------------------------------------------------------------------

OLD_SHA, NEW_SHA = "a" * 64, "b" * 64
FN = "urn:pulumi:local::e2e::pulumi-python:dynamic/edgeship:Function::function"
PROVIDER = "urn:pulumi:local::e2e::pulumi:providers:pulumi-python::default"


def _function(op: str, model: str, code: str, memory: int = 512, old: bool = True) -> diff.Step:
    def inputs(m: str, mem: int) -> dict[str, Any]:
        return {"__provider": "x", "stateDir": "/s", "memoryMb": mem, "codeSha256": code,
                "environment": {"MODEL_SHA256": m}}  # fmt: skip

    return diff.Step(op, FN, inputs(OLD_SHA, 512) if old else None, inputs(model, memory))


@pytest.mark.parametrize(
    ("steps", "headline"),
    [
        ([_function("update", NEW_SHA, "c" * 64)],
         ["publishes a new version: model bbbbbbbbbbbb (was aaaaaaaaaaaa); code cccccccccccc (unchanged)"]),
        ([_function("same", OLD_SHA, "c" * 64)], ["publishes no new version"]),
        ([_function("create", OLD_SHA, "c" * 64, old=False)],
         ["publishes a new version: model aaaaaaaaaaaa; code cccccccccccc"]),
        # a refresh reads the function back first: its own step is the one that tells
        ([diff.Step("refresh", FN, None, None), _function("update", OLD_SHA, "c" * 64, memory=1024),
          diff.Step("update", PROVIDER, {"edgeship:memoryMb": "512", "edgeship:modelPath": "/a"},
                    {"edgeship:memoryMb": "1024", "edgeship:modelPath": "/b"})],
         ["publishes a new version: model aaaaaaaaaaaa (unchanged); code cccccccccccc (unchanged)",
          "config: memoryMb 512 -> 1024"]),
    ],
)  # fmt: skip
def test_preview_headline(steps: list[diff.Step], headline: list[str]) -> None:
    assert diff.headline(diff.summarise(steps)) == headline


def test_preview_detail_lists_changed_properties_only() -> None:
    steps = [
        _function("update", NEW_SHA, "c" * 64, memory=1024),
        diff.Step("update", FN.replace("Function::function", "Alias::candidate"),
                  {"functionVersion": "1"}, {"functionVersion": diff.UNKNOWN}),
        diff.Step("create-replacement", FN.replace("Function", "ModelObject"), {"sha256": OLD_SHA}, {"sha256": NEW_SHA}),
        diff.Step("same", FN.replace("Function::function", "Role::role"), {"a": 1}, {"a": 1}),
    ]  # fmt: skip
    assert diff.detail(diff.summarise(steps)) == [
        "~ edgeship:Function function",
        "    environment.MODEL_SHA256: aaaaaaaaaaaa => bbbbbbbbbbbb",
        "    memoryMb: 512 => 1024",
        "~ edgeship:Alias candidate",
        "    functionVersion: 1 => (known after up)",
    ]


# -- against the local environment (real engine, emulator, edge) ---------------------------------


def _outputs(project: LocalProject) -> dict[str, Any]:
    code, out = project.json("outputs", "--env", "local")
    assert code == 0, out
    return dict(out)


def _answer(project: LocalProject, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal as stdin (a pty) that answers the prompt with `answer`."""
    import pty

    main_fd, terminal = pty.openpty()
    try:
        os.write(main_fd, f"{answer}\n".encode())
        return subprocess.run(
            project.argv(*args),
            env=project.env(),
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.close(terminal)
        os.close(main_fd)


def test_up_previews_asks_and_refuses_without_a_terminal(local_project: LocalProject) -> None:
    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0 and first["outputs"]["publishedVersion"] == "1", first
    # the next `up` would publish model v2 (as after a `promote --model`, the config still says v1)
    v2 = local_project.model("2")
    text = local_project.config.read_text()
    local_project.config.write_text(text.replace('model = "', f'model = "{v2}"\n# was: model = "'))
    done = local_project.cli("up", "--env", "local")  # stdin is not a terminal
    assert done.returncode == ExitCode.REFUSED and "pass --yes (-y)" in done.stderr, done.stderr
    assert _outputs(local_project)["publishedVersion"] == "1"  # nothing published

    code, preview = local_project.json("preview", "--diff", "--env", "local")
    assert code == 0, preview
    assert preview["diff"]["publishes"] and preview["diff"]["model"] == {
        "old": first["outputs"]["modelSha256"],
        "new": _sha(v2),
    }
    # on a terminal: the preview (property by property), then the question; "n" changes nothing
    declined = _answer(local_project, "n", "up", "--env", "local")
    assert declined.returncode == ExitCode.REFUSED, declined.stderr
    old, new = first["outputs"]["modelSha256"][:12], _sha(v2)[:12]
    assert f"  publishes a new version: model {new} (was {old})" in declined.stdout
    assert f"      environment.MODEL_SHA256: {old} => {new}" in declined.stdout
    assert declined.stdout.rstrip().endswith("Do you want to perform this update? [y/N]:")
    assert _outputs(local_project)["publishedVersion"] == "1"
    accepted = _answer(local_project, "y", "up", "--env", "local")
    assert accepted.returncode == 0, accepted.stderr
    assert _outputs(local_project)["publishedVersion"] == "2"


def _sha(path: Path) -> str:
    from orchestrator.build.artifacts import sha256_file

    return sha256_file(path)


def test_first_promote_is_a_deploy_that_says_so(local_project: LocalProject) -> None:
    code, refused = local_project.json("promote", "--env", "local")  # no terminal, no --yes
    assert code == ExitCode.REFUSED and "first deploy: not confirmed" in refused["message"], refused
    assert not (local_project.state / "emulator.json").exists()  # nothing started, nothing deployed
    done = local_project.cli("promote", "--env", "local", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    said = [json.loads(line)["message"] for line in done.stderr.splitlines() if line.startswith("{")]
    assert "local has no stack yet: this promote is a first deploy (an `up`): no version is live " \
        "to gate against, so no gate runs" in said  # fmt: skip
    report = json.loads(done.stdout)
    assert (report["outcome"], report["blue"], report["green"]) == ("deployed", None, "1"), report
    code, status = local_project.json("status", "--env", "local")
    assert code == 0 and status["live"] == {"version": "1", "weights": {}} and status["promotion"] is None
