"""edgeship from its wheel, in a repository of someone else's: the wheel is built, installed
into a fresh virtualenv in a temporary directory (the dependencies at the versions of
uv.lock), and everything runs from there, with no path into this checkout, in a directory
with working packages of its own named `programs` and `loadtests`, installed into the same
virtualenv after edgeship: `init`, `install-pulumi` (it links the pinned CLI this checkout
built, found on PATH as a user's own install would be, instead of building it again),
`model pack` of a model made here, `up` and `promote --env local` to promoted, and `destroy`;
then `git status` offers only the project's own files (init's .gitignore covers everything
edgeship wrote).

The wheel's only top-level package is `orchestrator` (its programs and load tests are
`orchestrator.programs` and `orchestrator.loadtests`), so the team's `programs` and
`loadtests` stay theirs: `python -m programs` runs their code, and no edgeship process (the
CLI, the engine's dynamic providers, Locust, the edge) imports it, which their packages'
import log shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from tests.conftest import Wheel, regressor_onnx

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".tools" / "uv" / "bin" / "uv"


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


DIST_INFO = "edgeship-0.1.0.dist-info/"
# The team's packages: each import appends the package and the importing process's argv to a
# log outside their repository (so that `git status` below stays the team's files).
TEAM_INIT = """import json
import sys

with open({log!r}, "a") as log:
    log.write(json.dumps([{name!r}, *sys.argv]) + "\\n")
"""
TEAM_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "fraud-model-code"
version = "1.0"

[tool.setuptools]
packages = ["programs", "loadtests"]
"""


def test_the_wheel_holds_only_the_orchestrator_package(wheel: Wheel) -> None:
    """One top-level name: a wheel that also installed `programs` or `loadtests` would shadow a
    user's own packages of those names, or be shadowed by them (docs/architecture.md)."""
    names = zipfile.ZipFile(wheel.path).namelist()
    assert [n for n in names if not n.startswith(("orchestrator/", DIST_INFO))] == []
    # the payload is in it, under orchestrator/ (orchestrator/programs is a symlink in a checkout)
    assert {
        "orchestrator/programs/__init__.py",
        "orchestrator/programs/serving.py",
        "orchestrator/programs/function/handler.py",
        "orchestrator/programs/function/requirements.txt",
        "orchestrator/programs/function/sample/model.tar.gz",
        "orchestrator/programs/authorizer/origin.py",
        "orchestrator/loadtests/locustfile.py",
    } <= set(names)
    top_level = zipfile.ZipFile(wheel.path).read(f"{DIST_INFO}top_level.txt").decode().split()
    assert top_level == ["orchestrator"]


def test_the_wheel_runs_a_promotion_in_a_repository_of_its_own(tmp_path: Path, wheel: Wheel) -> None:
    venv = tmp_path / "venv"
    _run([str(UV), "venv", "--quiet", "--python", _python(), str(venv)])
    _run(
        [
            str(UV),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            str(wheel.path),
            "-c",
            str(wheel.constraints),
        ]
    )

    home = tmp_path / "fraud-model"
    home.mkdir()
    git = ["git", "-C", str(home), "-c", "user.name=t", "-c", "user.email=t@t"]
    _run([*git, "init", "--quiet", "-b", "main"])
    # The team's repository has working packages of its own named as edgeship's payload was
    # before it moved under orchestrator/, installed into the same virtualenv after edgeship
    # (a wheel that shipped those names would be overwritten here, or overwrite theirs).
    imports = tmp_path / "imports.log"
    for name in ("programs", "loadtests"):
        (home / name).mkdir()
        (home / name / "__init__.py").write_text(TEAM_INIT.format(log=str(imports), name=name))
    (home / "programs" / "__main__.py").write_text('print("team programs")\n')
    (home / "pyproject.toml").write_text(TEAM_PYPROJECT)
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds.
    source = shutil.copytree(home, tmp_path / "team-source", ignore=shutil.ignore_patterns(".git"))
    _run([str(UV), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(source)])
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PULUMI_", "EDGESHIP_"))
    }
    on_path = tmp_path / "bin"  # the pinned CLI alone, as an official install puts it on PATH
    on_path.mkdir()
    (on_path / "pulumi").symlink_to(REPO / ".tools" / "pulumi" / "bin" / "pulumi")
    env |= {"PATH": f"{venv / 'bin'}:{on_path}:{env['PATH']}"}

    def orchestrator(*args: str) -> Any:
        done = _run([str(venv / "bin" / "orchestrator"), *args, "--json"], cwd=home, env=env, timeout=600)
        return json.loads(done.stdout)

    where = _run(
        [str(venv / "bin" / "python"), "-c", "import orchestrator; print(orchestrator.__file__)"],
        cwd=home,
        env=env,
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # not the checkout's sources
    # The team's own code, from their checkout and as installed (site-packages, from elsewhere).
    for cwd in (home, tmp_path):  # (no __pycache__ left in their checkout for `git status`)
        team = _run(
            [str(venv / "bin" / "python"), "-m", "programs"],
            cwd=cwd,
            env=env | {"PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert team.stdout == "team programs\n", (cwd, team.stdout)
    ran = imports.read_text()
    assert [json.loads(line)[0] for line in ran.splitlines()] == ["programs", "programs"], ran

    assert orchestrator("init")["project"] == "fraud-model"
    installed = orchestrator("install-pulumi")
    assert installed["pulumi_root"] == str(home / ".tools" / "pulumi") and installed["version"] == "v3.260.0"
    launcher = (home / ".tools" / "pulumi" / "bin" / "pulumi-resource-pulumi-python").read_text()
    assert str(venv / "bin" / "python") in launcher  # dynamic providers run with the wheel's interpreter
    onnx_file = regressor_onnx(tmp_path / "risk.onnx", 3)
    packed = orchestrator(
        "model", "pack", str(onnx_file), "--features", "amount,age,score", "--name", "risk", "--version", "2",
        "-o", "models/risk.tar.gz",
    )  # fmt: skip
    assert packed["task"] == "regression"
    try:
        assert (
            orchestrator("up", "--yes", "--env", "local")["outputs"]["publishedVersion"] == "1"
        )  # the sample model
        # another contract than the sample's (3 features, a regressor): allowed explicitly
        report = orchestrator(
            "promote", "--env", "local", "--model", "models/risk.tar.gz", "--allow-breaking-change"
        )
        assert report["outcome"] == "promoted" and report["green"] != report["blue"], report
    finally:
        gone = orchestrator("destroy", "--env", "local", "--yes")
    assert gone["changes"].get("delete", 0) >= 1, gone
    # No edgeship process imported the team's packages: the log holds the two runs above only.
    assert imports.read_text() == ran
    # what edgeship wrote is ignored (.gitignore from init): git offers only the project's files
    status = _run([*git, "status", "--porcelain", "--untracked-files=all"]).stdout.splitlines()
    assert sorted(status) == [
        "?? .github/workflows/edgeship-deploy.yml",
        "?? .gitignore",
        "?? README.md",
        "?? edgeship.schema.json",
        "?? edgeship.toml",
        "?? loadtests/__init__.py",
        "?? models/model.tar.gz",
        "?? models/risk.tar.gz",
        "?? programs/__init__.py",
        "?? programs/__main__.py",
        "?? pyproject.toml",
    ], status


def _python() -> str:
    import sys

    return sys.executable
