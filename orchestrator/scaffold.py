"""`orchestrator init`: what a new repository needs to ship its model with edgeship.

Everything is derived from this repository's own files, shipped in the wheel (templates/
holds links to them, which the build copies): the starter edgeship.toml is ours with the
project's name and model path, the deploy workflow is the one this repository runs with
the install step and the test job a user's repository can run. So the pipeline users get
is the pipeline tested here, and each rewrite below must find what it rewrites (a test
renders the workflows and lints them with actionlint and zizmor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from orchestrator.errors import EdgeshipError, RefusedError
from orchestrator.settings import SAMPLE_MODEL

TEMPLATES = Path(__file__).resolve().parent / "templates"
README_MARKER = "<!-- edgeship -->"


class TemplateError(EdgeshipError):
    """A template no longer has what `init` rewrites: a bug in this release."""


@dataclass(frozen=True)
class Planned:
    """One file `init` writes."""

    path: str  # relative to the repository
    content: bytes


def plan(project_name: str) -> list[Planned]:
    """The files for a new repository named `project_name` (pure: nothing is written)."""
    return [
        Planned("edgeship.toml", config(project_name).encode()),
        Planned(".github/workflows/edgeship-deploy.yml", deploy_workflow().encode()),
        Planned("models/model.tar.gz", SAMPLE_MODEL.read_bytes()),
    ]


def write(root: Path, project_name: str, *, force: bool = False) -> dict[str, list[str]]:
    """Write the plan under `root`; refuse (before writing anything) to overwrite unless `force`."""
    files = plan(project_name)
    existing = [f.path for f in files if (root / f.path).exists()]
    if existing and not force:
        raise RefusedError(
            f"init would overwrite {', '.join(existing)}",
            fix="move them away, or pass --force to overwrite them",
        )
    for planned in files:
        target = root / planned.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(planned.content)
    readme = root / "README.md"
    text = readme.read_text() if readme.exists() else f"# {project_name}\n"
    appended = README_MARKER not in text
    if appended:
        readme.write_text(text.rstrip() + "\n\n" + readme_section() + "\n")
    return {
        "written": [f.path for f in files],
        "overwritten": existing,
        "readme": ["README.md"] if appended else [],
    }


def _rewrite(text: str, old: str, new: str, what: str) -> str:
    if old not in text:
        raise TemplateError(f"the {what} template has no {old.strip()!r} to rewrite", fix="report this bug")
    return text.replace(old, new)


def config(project_name: str) -> str:
    """Our edgeship.toml, for the new project."""
    text = (TEMPLATES / "edgeship.toml").read_text()
    text = _rewrite(text, 'name = "edgeship"', f'name = "{project_name}"', "edgeship.toml")
    return _rewrite(
        text,
        'model = "programs/function/sample/model.tar.gz"',
        'model = "models/model.tar.gz"  # `orchestrator model pack` writes yours',
        "edgeship.toml",
    )


def _pin() -> str:
    try:
        return f"edgeship=={version('edgeship')}"
    except PackageNotFoundError:  # a checkout that was never installed
        return "edgeship"


TESTS_JOB = re.compile(r"  tests:\n(?:    .*\n|\n(?=    ))+")
USER_TESTS = """  tests:
    name: tests
    if: github.event_name != 'workflow_dispatch' || inputs.action == 'promote'
    runs-on: ubuntu-latest
    timeout-minutes: 15
    permissions:
      contents: read
    steps:
      - uses: {checkout}
        with:
          persist-credentials: false
      - uses: {setup_python}
        with:
          python-version: "3.11"
      - name: Install
        run: python -m pip install "{pin}"
      # edgeship.toml is valid and the model archive is where it says; add your own tests here
      - name: Check the configuration
        run: orchestrator envs
"""


def deploy_workflow() -> str:
    """Our deploy workflow with a pip install of this release and a test job of its own."""
    text = (TEMPLATES / "deploy.yml").read_text()
    match = TESTS_JOB.search(text)
    if match is None:
        raise TemplateError("the deploy workflow template has no tests job to rewrite", fix="report this bug")
    pin = _pin()
    # The actions at the pins the template's other jobs use: one place to bump them.
    pinned = {
        name: _pinned_action(text, f"actions/{name.replace('_', '-')}")
        for name in ("checkout", "setup_python")
    }
    text = text[: match.start()] + USER_TESTS.format(pin=pin, **pinned) + text[match.end() :]
    text = _rewrite(text, "(ci.yml, called below)", "(the tests job below)", "deploy workflow")
    text = _rewrite(
        text, "The runtime only, from uv.lock.", "This release of edgeship, pinned.", "deploy workflow"
    )
    return _rewrite(
        text, "run: make install-runtime", f'run: python -m pip install "{pin}"', "deploy workflow"
    )


def _pinned_action(workflow: str, action: str) -> str:
    """`action@sha # version` as the workflow pins it."""
    found = re.search(rf"uses: ({re.escape(action)}@[0-9a-f]{{40}} # \S+)", workflow)
    if found is None:
        raise TemplateError(f"the deploy workflow template does not pin {action}", fix="report this bug")
    return found.group(1)


def project_name(root: Path) -> str:
    """A project name from the repository's directory name (Pulumi's allowed characters)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", root.name).strip("-") or "my-model"


def readme_section() -> str:
    return f"""{README_MARKER}
## Shipping the model with edgeship

```bash
pip install edgeship
orchestrator install-pulumi          # the pinned Pulumi CLI, in .tools/pulumi
orchestrator model pack model.onnx --features f1,f2,f3 --labels a,b --name my-model --version 2 -o models/my-model.tar.gz
orchestrator up --env local          # the local environment (no AWS account): the sample model as v1
orchestrator promote --env local --model models/my-model.tar.gz
orchestrator destroy --env local --yes
```

Without `--labels` the model is a regressor. `edgeship.toml` declares the environments
(local, dev, staging, prod): fill in each AWS environment's `account_id` and region, and
set `project.model` to your archive. `.github/workflows/edgeship-deploy.yml` previews pull
requests, promotes dev from main and staging then prod from `v*` tags, with approvals on
the `staging` and `prod` GitHub environments; create the roles and variables it names."""
