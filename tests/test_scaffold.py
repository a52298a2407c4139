"""`orchestrator init`: a new repository gets a valid edgeship.toml, the sample model, and
this repository's deploy workflow rewritten for it, which the real linters accept; nothing
is overwritten without --force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator import settings
from orchestrator.errors import ExitCode

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
    }
    loaded = settings.load(root / "edgeship.toml")
    assert set(loaded.environments) == {"local", "dev", "staging", "prod"}
    assert loaded.project == "fraud-model" and loaded.model == root / "models" / "model.tar.gz"
    assert (
        loaded.model.read_bytes() == (REPO / "programs" / "function" / "sample" / "model.tar.gz").read_bytes()
    )

    workflow = root / ".github" / "workflows" / "edgeship-deploy.yml"
    text = workflow.read_text()
    assert "make install" not in text and "ci.yml" not in text and 'python -m pip install "edgeship' in text
    lint = subprocess.run([str(ACTIONLINT), "-no-color", str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    zizmor = subprocess.run(
        [str(Path(sys.executable).parent / "zizmor"), "--offline", "--no-progress", str(workflow.parent)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    assert "orchestrator model pack" in (root / "README.md").read_text()


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
