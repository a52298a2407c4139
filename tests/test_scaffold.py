"""`orchestrator init`: a new repository gets a valid edgeship.toml, the sample model, and
this repository's deploy workflow rewritten for it, which the real linters accept; nothing
is overwritten without --force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.base.errors import ExitCode, UsageError
from orchestrator.config import schema as config_schema
from orchestrator.config import settings
from orchestrator.config.names import ResourceNames
from orchestrator.project import scaffold

REPO = Path(__file__).resolve().parents[1]
ACTIONLINT = REPO / ".tools" / "bin" / "actionlint"


def _init(directory: Path, *args: str) -> tuple[int, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "init", str(directory), *args, "--json"],
        capture_output=True, text=True, cwd=directory.parent,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def test_init_writes_a_project_that_loads_and_a_pipeline_that_lints(tmp_path: Path) -> None:
    root = tmp_path / "fraud model"
    code, result = _init(root)
    assert code == 0, result
    assert result["project"] == "fraud-model"
    assert set(result["written"]) == {
        "edgeship.toml",
        ".github/workflows/edgeship-deploy.yml",
        "models/model.tar.gz",
        "edgeship.schema.json",
    }
    # editors find the schema beside the file, offline and in every clone
    assert (root / "edgeship.toml").read_text().splitlines()[0] == "#:schema ./edgeship.schema.json"
    assert (root / "edgeship.schema.json").read_text() == config_schema.render()
    assert result["gitignore"] == [".gitignore"] and result["install"].startswith("edgeship==")
    loaded = settings.load(root / "edgeship.toml")
    assert set(loaded.environments) == {"local", "dev", "staging", "prod"}
    assert loaded.project == "fraud-model" and loaded.model == root / "models" / "model.tar.gz"
    assert (
        loaded.model.read_bytes() == (REPO / "programs" / "function" / "sample" / "model.tar.gz").read_bytes()
    )

    workflow = root / ".github" / "workflows" / "edgeship-deploy.yml"
    text = workflow.read_text()
    assert "make install" not in text and "uses: ./.github/workflows/ci.yml" not in text
    # one place says where edgeship comes from; every job installs it into the .venv it calls
    parsed = yaml.safe_load(text)
    assert parsed["env"]["EDGESHIP_INSTALL"] == result["install"] and text.count(result["install"]) == 1
    for job_name, job in parsed["jobs"].items():
        runs = [str(step.get("run", "")) for step in job.get("steps", [])]
        calls = [i for i, r in enumerate(runs) if ".venv/bin/orchestrator" in r and "uv pip" not in r]
        if calls:
            installs = [
                i
                for i, r in enumerate(runs)
                if 'uv pip install --quiet --python .venv/bin/python "$EDGESHIP_INSTALL"' in r
            ]
            assert installs and installs[0] < calls[0], job_name
    lint = subprocess.run([str(ACTIONLINT), "-no-color", str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    zizmor = subprocess.run(
        [str(Path(sys.executable).parent / "zizmor"), "--offline", "--no-progress", str(workflow.parent)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    readme = (root / "README.md").read_text()
    assert "orchestrator model pack" in readme
    # the roles' policies come from the generator, the boundary first; no policy is copied
    assert result["aws_setup"] == scaffold.aws_setup("fraud-model")
    assert "\n".join(result["aws_setup"]) in readme and '"Statement"' not in readme


def test_init_refuses_to_overwrite_and_force_does_it_once(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("# repo\n\nOurs.\n")
    assert _init(root)[0] == 0
    (root / "edgeship.toml").write_text("# edited by the team\n")
    code, refused = _init(root)
    assert code == ExitCode.REFUSED, refused
    assert "edgeship.toml" in refused["message"] and "--force" in refused["fix"]
    assert (root / "edgeship.toml").read_text() == "# edited by the team\n"  # nothing written
    code, forced = _init(root, "--force")
    assert code == 0 and "edgeship.toml" in forced["overwritten"], forced
    readme = (root / "README.md").read_text()
    assert readme.startswith("# repo\n\nOurs.\n") and readme.count("<!-- edgeship -->") == 1
    assert forced["gitignore"] == [] and (root / ".gitignore").read_text().count(".edgeship/") == 1


def test_install_from_names_a_release_a_wheel_in_the_repository_or_a_pinned_git_ref(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    wheel = tmp_path / "dist" / "edgeship-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert scaffold.install_spec("pypi", tmp_path, "1.2.3") == "edgeship==1.2.3"
    assert scaffold.install_spec(str(wheel), tmp_path) == "./dist/edgeship-0.1.0-py3-none-any.whl"
    git = "git+https://github.com/octo/edgeship@v1.2.3"
    assert scaffold.install_spec(git, tmp_path) == f"edgeship @ {git}"
    for bad, says in (
        ("git+https://github.com/octo/edgeship", "pin a tag or a commit"),  # a moving branch's head
        ("git+ssh://git@github.com/octo/edgeship@v1", "pin a tag or a commit"),
        (str(tmp_path.parent / "elsewhere.whl"), "copy the wheel into the repository"),
        (str(tmp_path / "dist" / "missing.whl"), "build it first"),
        ("edgeship==1.0", "pass pypi, git+https"),
    ):
        with pytest.raises(UsageError) as raised:
            scaffold.install_spec(bad, tmp_path)
        assert says in raised.value.fix, (bad, raised.value.fix)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, f"{scaffold.GITIGNORE_MARKER}\n.edgeship/\n.tools/\nreports/\n.venv/\n"),
        ("", f"{scaffold.GITIGNORE_MARKER}\n.edgeship/\n.tools/\nreports/\n.venv/\n"),
        (
            "node_modules/\n/.venv\nreports/",
            f"node_modules/\n/.venv\nreports/\n\n{scaffold.GITIGNORE_MARKER}\n.edgeship/\n.tools/\n",
        ),
        (
            ".edgeship\n.tools/\nreports\n.venv/\n",
            ".edgeship\n.tools/\nreports\n.venv/\n",
        ),  # nothing missing: unchanged
    ],
)
def test_gitignore_appends_only_what_is_missing(existing: str | None, expected: str) -> None:
    assert scaffold.gitignore_text(existing) == expected
    assert scaffold.gitignore_text(expected) == expected  # idempotent


def test_the_workflow_installs_with_the_makefiles_uv() -> None:
    assert f"UV_VERSION := {scaffold.UV_VERSION}\n" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize(
    ("direct_url", "chosen", "warns"),
    [
        (None, "pypi", False),  # from an index: pin that release
        (
            '{"url": "https://github.com/acme/edgeship", "vcs_info": {"vcs": "git", "commit_id": "0a1b2c"}}',
            "git+https://github.com/acme/edgeship@0a1b2c",
            False,
        ),
        ('{"url": "file:///home/me/dist/edgeship-0.1.0-py3-none-any.whl", "archive_info": {}}', "pypi", True),
        ('{"url": "file:///home/me/edgeship", "dir_info": {"editable": true}}', "pypi", True),
        (
            '{"url": "ssh://git@host/acme/edgeship", "vcs_info": {"vcs": "git", "commit_id": "0a"}}',
            "pypi",
            True,
        ),
    ],
)
def test_init_installs_from_where_this_edgeship_came_from(
    direct_url: str | None, chosen: str, warns: bool
) -> None:
    got, warning = scaffold.default_install_from(direct_url)
    assert got == chosen and (warning is not None) == warns, warning
    if warning:
        assert "--install-from" in warning


def test_the_aws_setup_generates_the_policies_boundary_first_and_sessions_as_long_as_the_jobs() -> None:
    lines = scaffold.aws_setup("Fraud_Model", "prod")
    commands = [line for line in lines if not line.startswith("#")]
    boundary = ResourceNames.of("Fraud_Model", "prod").boundary_policy
    assert commands[:6] == [
        "orchestrator iam-policy --env prod --role boundary > boundary.json",
        f"aws iam create-policy --path /edgeship/ --policy-name {boundary} --policy-document file://boundary.json",
        "orchestrator iam-policy --env prod --role deploy --backend s3://STATE-BUCKET/PREFIX > deploy-policy.json",
        "aws iam put-role-policy --role-name DEPLOY_ROLE --policy-name edgeship "
        "--policy-document file://deploy-policy.json",
        "orchestrator iam-policy --env prod --role preview --backend s3://STATE-BUCKET/PREFIX > preview-policy.json",
        "aws iam put-role-policy --role-name PREVIEW_ROLE --policy-name edgeship "
        "--policy-document file://preview-policy.json",
    ]
    assert boundary == "fraud-model-prod-function-boundary"
    # each deploy role allows the session its job asks for (dev's hour is IAM's default)
    assert commands[6:] == [
        "aws iam update-role --role-name STAGING_DEPLOY_ROLE --max-session-duration 5400",
        "aws iam update-role --role-name PROD_DEPLOY_ROLE --max-session-duration 7200",
    ]
    assert scaffold.session_durations(scaffold.deploy_workflow("edgeship==0.1.0")) == {
        "dev-preview": 1800,
        "staging-preview": 1800,
        "prod-preview": 1800,
        "dev": 3600,
        "staging": 5400,
        "prod": 7200,
    }


def test_init_prints_the_aws_setup_after_the_local_start(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    done = CliRunner().invoke(main, ["init", str(tmp_path / "repo"), "--install-from", "pypi"])
    assert done.exit_code == 0, done.output
    after = done.output.split("next: orchestrator up --env local\n", 1)[1]
    assert after.splitlines()[1:] == [f"  {line}" for line in scaffold.aws_setup("repo")]
