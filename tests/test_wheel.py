"""edgeship from its wheel, in a repository of someone else's: the wheel is built, installed
into a fresh virtualenv in a temporary directory (the dependencies at the versions of
uv.lock), and everything runs from there, with no path into this checkout, in a directory
with packages of its own named `programs` and `loadtests`: `init`,
`install-pulumi` (it links the pinned CLI this checkout built, found on PATH as a user's
own install would be, instead of building it again), `model pack` of a model made here,
`up` and `promote --env local` to promoted, and `destroy`; then `git status` offers only the
project's own files (init's .gitignore covers everything edgeship wrote)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Wheel, regressor_onnx

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".tools" / "uv" / "bin" / "uv"


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


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
    # The team's repository has packages of its own named like edgeship's top-level ones;
    # every process edgeship starts there (the engine's providers, Locust) must use its own.
    for name in ("programs", "loadtests"):
        (home / name).mkdir()
        (home / name / "__init__.py").write_text(f"raise ImportError('the repository\\'s own {name}')\n")
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
    ], status


def _python() -> str:
    import sys

    return sys.executable
