"""The JSON schema editors use for edgeship.toml: shipped as generated from the declarations
the loader validates with, pointed at by edgeship.toml's `#:schema` line, and agreeing with
the loader on what is valid."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.base.errors import ConfigError
from orchestrator.config import schema as config_schema
from orchestrator.config import settings
from orchestrator.project import scaffold

REPO = Path(__file__).resolve().parents[1]
REPO_TOML = REPO / "edgeship.toml"


def _validator() -> jsonschema.Draft7Validator:
    schema = config_schema.schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert config_schema.SHIPPED.read_text() == config_schema.render(), (
        "run: .venv/bin/python -m orchestrator.config.schema"
    )
    assert config_schema.main(["--check"]) == 0


def test_edgeship_toml_points_editors_at_the_shipped_schema() -> None:
    first = REPO_TOML.read_text().splitlines()[0]
    assert first == config_schema.DIRECTIVE  # taplo reads it only at the top of the file
    target = first.removeprefix("#:schema ").strip()
    assert (REPO_TOML.parent / target).resolve() == config_schema.SHIPPED


@pytest.mark.parametrize(
    "text", [REPO_TOML.read_text(), scaffold.config("fraud-model")], ids=["repo", "init"]
)
def test_the_repository_config_and_the_init_template_validate(text: str) -> None:
    errors = [e.message for e in _validator().iter_errors(tomllib.loads(text))]
    assert errors == []


OK_ENV = {"region": "eu-west-1", "account_id": "111111111111"}


def _env(**sections: Any) -> dict[str, Any]:
    return {"environments": {"dev": {**OK_ENV, **sections}}}


@pytest.mark.parametrize(
    "raw",
    [
        {"defaults": {"slo": {"p95ms": 250}}},  # unknown key
        {"defaults": {"slo": {"p95_ms": -5}}},  # below its limit
        {"defaults": {"slos": {}}},  # unknown table
        _env(function={"memory_mb": "2048"}),  # wrong type
        _env(function={"memory_mb": 64}),
        _env(traffic={"schedule": "canery"}),  # not a choice
        _env(traffic={"hooks": [{"on": "step"}]}),  # a hook without its command
        _env(load={"duration_s": 0.5}),  # not whole seconds
        _env(load={"workers": "many"}),
        _env(protect="yes"),
        {"environments": {"dev": {"region": "eu-west-1", "account_id": "12345"}}},
        {"environments": {"dev": {"region": "eu-west-1"}}},
        {"environments": {}},
        {"project": {"name": "bad name!"}, **_env()},
        {"environmnets": {"dev": OK_ENV}},
    ],
)
def test_schema_and_loader_refuse_the_same_mistakes(raw: dict[str, Any]) -> None:
    full = {**_env(), **raw} if "environments" not in raw and "environmnets" not in raw else raw
    assert list(_validator().iter_errors(full)), "the schema accepted it"
    with pytest.raises(ConfigError):
        settings.parse(full, Path("/p/edgeship.toml"))


@pytest.mark.parametrize(
    "raw",
    [
        _env(load={"workers": "auto"}, traffic={"schedule": "explicit", "weights": [5, 50, 100]}),
        _env(traffic={"hooks": [{"on": "pre-traffic", "run": "x.sh", "timeout_s": 5}]}, protect=False),
        {"default_env": "dev", "project": {"name": "a-b_c", "model": "m.tar.gz"}, **_env()},
    ],
)
def test_schema_and_loader_accept_the_same_files(raw: dict[str, Any]) -> None:
    assert [e.message for e in _validator().iter_errors(raw)] == []
    settings.parse(raw, Path("/p/edgeship.toml"))


def test_the_schema_command_prints_and_writes_the_shipped_schema(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "schema", *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert json.loads(run()) == config_schema.schema()
    run("--write", str(tmp_path / "edgeship.schema.json"))
    assert (tmp_path / "edgeship.schema.json").read_text() == config_schema.SHIPPED.read_text()
