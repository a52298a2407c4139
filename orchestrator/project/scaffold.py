"""`orchestrator init`: what a new repository needs to ship its model with edgeship.

Everything is derived from this repository's own files, shipped in the wheel (templates/
holds links to them, which the build copies): the starter edgeship.toml is ours with the
project's name and model path, the deploy workflow is the one this repository runs with
the install step and the test job a user's repository can run. So the pipeline users get
is the pipeline tested here, and each rewrite below must find what it rewrites (a test
renders the workflows and lints them with actionlint and zizmor; tests/test_workflow_runs.py
runs the rendered workflow's jobs end to end with tests/workflow_harness.py).

Where the workflow installs edgeship from is chosen at `init` (`--install-from`) and written
once, as the workflow's `EDGESHIP_INSTALL`: every job installs it with uv into `.venv`,
whose `orchestrator` the later steps call, and links the Pulumi CLI of pulumi/actions with
`install-pulumi` (the dynamic providers' launcher bound to that venv's interpreter).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from orchestrator.base import paths
from orchestrator.base.errors import EdgeshipError, RefusedError, UsageError
from orchestrator.config import schema as config_schema
from orchestrator.config.settings import SAMPLE_MODEL

TEMPLATES = paths.TEMPLATES
README_MARKER = "<!-- edgeship -->"
# The uv that installs edgeship in the workflow's jobs: the Makefile's UV_VERSION (a test
# keeps them equal).
UV_VERSION = "0.13.9"
# What edgeship writes into a project that must not be committed: the local environment's
# state, TLS key and origin secret, the build cache (.edgeship/), the linked tools (.tools/:
# absolute symlinks), gate reports (reports/), the virtualenv the workflow installs into.
GITIGNORE_MARKER = "# edgeship: local state, keys, tools and reports (orchestrator init)"
GITIGNORED = (".edgeship/", ".tools/", "reports/", ".venv/")


class TemplateError(EdgeshipError):
    """A template no longer has what `init` rewrites: a bug in this release."""


@dataclass(frozen=True)
class Planned:
    """One file `init` writes."""

    path: str  # relative to the repository
    content: bytes


def plan(project_name: str, install: str | None = None) -> list[Planned]:
    """The files for a new repository named `project_name` whose workflow installs edgeship
    with `install` (a requirement, `install_spec`'s; default: this release from PyPI).
    Pure: nothing is written."""
    return [
        Planned("edgeship.toml", config(project_name).encode()),
        Planned(".github/workflows/edgeship-deploy.yml", deploy_workflow(install).encode()),
        Planned("models/model.tar.gz", SAMPLE_MODEL.read_bytes()),
        # The schema edgeship.toml's `#:schema` line points editors at: a committed file
        # beside it works offline and in every clone, unlike a path into site-packages.
        Planned(config_schema.PROJECT_FILE, config_schema.render().encode()),
    ]


def install_origin(direct_url: str | None) -> str | None:
    """Where this edgeship was installed from, when not from a package index: PEP 610's
    direct_url.json of the distribution (None: an index, whose release `pypi` pins). A git
    install gives `git+URL@COMMIT`, which `init` can pin as is; a local wheel or checkout
    gives its file URL, which no workflow can reach."""
    if not direct_url:
        return None
    import json

    data = json.loads(direct_url)
    vcs = data.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id") and str(data.get("url", "")).startswith("https://"):
        return f"git+{data['url']}@{vcs['commit_id']}"
    return str(data.get("url") or "a local path")


def direct_url() -> str | None:
    """This edgeship's PEP 610 direct_url.json (None: installed from an index, or not at all)."""
    from importlib.metadata import distribution

    try:
        return distribution("edgeship").read_text("direct_url.json")
    except PackageNotFoundError:
        return None


def default_install_from(direct_url: str | None) -> tuple[str, str | None]:
    """`--install-from` when the user gave none, and a warning when the choice cannot work
    on a runner: a git install is pinned at its commit; an index install is pinned at its
    release; a local wheel or checkout falls back to `pypi` with a warning (nothing of
    ours on an index serves that build: the workflow's install step would fail)."""
    origin = install_origin(direct_url)
    if origin is None:
        return "pypi", None
    if origin.startswith("git+https://"):
        return origin, None
    return "pypi", (
        f"this edgeship was installed from {origin}, not from a package index: the workflow pins "
        f"edgeship=={_version() or '?'}, which its install step finds only if your index serves "
        "that release; pass --install-from with a wheel committed in the repository (e.g. "
        "dist/edgeship-*.whl) or git+https://HOST/OWNER/REPO@REF"
    )


def install_spec(install_from: str, root: Path, release: str | None = None) -> str:
    """What the workflow installs edgeship from, for `init --install-from`:

    \b
      pypi                    this release from the package index: edgeship==<version>
      git+https://...@REF     a git repository at a pinned ref (tag or commit)
      PATH.whl                a wheel committed in the repository (relative to its root)
    """
    if install_from == "pypi":
        release = release or _version()
        if release is None:
            raise UsageError(
                "this edgeship is not an installed release: `--install-from pypi` has no version to pin",
                fix="pass --install-from with a wheel in the repository or a git+https://...@REF URL",
            )
        return f"edgeship=={release}"
    if install_from.startswith("git+"):
        url = install_from
        rest = url.removeprefix("git+https://")
        if rest == url or "@" not in rest.split("/", 1)[-1]:
            raise UsageError(
                f"--install-from {install_from!r}: a git URL must be git+https://HOST/OWNER/REPO@REF",
                fix="pin a tag or a commit after @ (a branch would install whatever it points to at each run)",
            )
        return f"edgeship @ {url}"
    wheel = Path(install_from)
    if wheel.suffix != ".whl":
        raise UsageError(
            f"--install-from {install_from!r} is neither pypi, a git+https:// URL nor a .whl file",
            fix="pass pypi, git+https://HOST/OWNER/REPO@REF, or the path of a wheel in the repository",
        )
    absolute = (wheel if wheel.is_absolute() else Path.cwd() / wheel).resolve()
    try:
        relative = absolute.relative_to(root.resolve())
    except ValueError:
        raise UsageError(
            f"the wheel {install_from} is not inside the repository {root}: the workflow's checkout would not have it",
            fix="copy the wheel into the repository (e.g. dist/), commit it, and pass that path",
        ) from None
    if not absolute.is_file():
        raise UsageError(
            f"no wheel at {install_from}", fix="build it first (e.g. `uv build --wheel`), then run init"
        )
    return f"./{relative.as_posix()}"


def write(
    root: Path, project_name: str, *, force: bool = False, install: str | None = None
) -> dict[str, list[str]]:
    """Write the plan under `root`; refuse (before writing anything) to overwrite unless `force`."""
    install = install or default_install()
    files = plan(project_name, install)
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
        readme.write_text(text.rstrip() + "\n\n" + readme_section(install, project_name) + "\n")
    gitignore = root / ".gitignore"
    before = gitignore.read_text() if gitignore.exists() else None
    after = gitignore_text(before)
    if after != before:
        gitignore.write_text(after)
    return {
        "written": [f.path for f in files],
        "overwritten": existing,
        "readme": ["README.md"] if appended else [],
        "gitignore": [".gitignore"] if after != before else [],
    }


def gitignore_text(existing: str | None) -> str:
    """A .gitignore with every line of GITIGNORED: `existing` with the missing lines appended
    (under one marker comment), unchanged when none is missing. Pure."""
    text = existing or ""
    present = {line.strip().strip("/") for line in text.splitlines()}
    missing = [line for line in GITIGNORED if line.strip("/") not in present]
    if not missing:
        return text
    block = "\n".join([GITIGNORE_MARKER, *missing]) + "\n"
    if not text:
        return block
    return text.rstrip("\n") + "\n\n" + block


def _rewrite(text: str, old: str, new: str, what: str) -> str:
    if old not in text:
        raise TemplateError(f"the {what} template has no {old.strip()!r} to rewrite", fix="report this bug")
    return text.replace(old, new)


def config(project_name: str) -> str:
    """Our edgeship.toml, for the new project."""
    text = (TEMPLATES / "edgeship.toml").read_text()
    text = _rewrite(text, 'name = "edgeship"', f'name = "{project_name}"', "edgeship.toml")
    text = _rewrite(text, config_schema.DIRECTIVE, config_schema.PROJECT_DIRECTIVE, "edgeship.toml")
    return _rewrite(
        text,
        'model = "programs/function/sample/model.tar.gz"',
        'model = "models/model.tar.gz"  # `orchestrator model pack` writes yours',
        "edgeship.toml",
    )


def default_install() -> str:
    """This release from the package index (a checkout never installed: unpinned)."""
    release = _version()
    return f"edgeship=={release}" if release else "edgeship"


def _version() -> str | None:
    try:
        return version("edgeship")
    except PackageNotFoundError:  # a checkout that was never installed
        return None


# Every job's install: edgeship into .venv (uv: seconds, where pip takes minutes for
# pulumi-aws), before any credential exists in the job. `{pulumi}` links the CLI pulumi/actions
# put on PATH into .tools/pulumi, with the dynamic providers' launcher bound to .venv's Python.
INSTALL = """run: |
          python -m pip install --quiet "uv=={uv}"
          python -m venv --without-pip .venv
          uv pip install --quiet --python .venv/bin/python "$EDGESHIP_INSTALL"{pulumi}"""
INSTALL_PULUMI = "\n          .venv/bin/orchestrator install-pulumi"


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
      - name: Install edgeship
        {install}
      # edgeship.toml is valid and the model archive is where it says; add your own tests here
      - name: Check the configuration
        run: .venv/bin/orchestrator envs
"""


def deploy_workflow(install: str | None = None) -> str:
    """Our deploy workflow installing edgeship from `install` (EDGESHIP_INSTALL, default this
    release from PyPI) in every job, with a test job of its own."""
    text = (TEMPLATES / "deploy.yml").read_text()
    match = TESTS_JOB.search(text)
    if match is None:
        raise TemplateError("the deploy workflow template has no tests job to rewrite", fix="report this bug")
    install = install or default_install()
    # The actions at the pins the template's other jobs use: one place to bump them.
    pinned = {
        name: _pinned_action(text, f"actions/{name.replace('_', '-')}")
        for name in ("checkout", "setup_python")
    }
    tests_install = INSTALL.format(uv=UV_VERSION, pulumi="")
    text = text[: match.start()] + USER_TESTS.format(install=tests_install, **pinned) + text[match.end() :]
    text = _rewrite(text, "(ci.yml, called below)", "(the tests job below)", "deploy workflow")
    text = _rewrite(
        text,
        '\nenv:\n  PULUMI_VERSION: "3.260.0"\n',
        '\nenv:\n  PULUMI_VERSION: "3.260.0"\n'
        "  # Where every job installs edgeship from (`orchestrator init --install-from`): a pinned\n"
        "  # release, a wheel committed in this repository, or git+https://...@REF.\n"
        f"  EDGESHIP_INSTALL: {json.dumps(install)}\n",
        "deploy workflow",
    )
    text = _rewrite(
        text,
        "The runtime only, from uv.lock.",
        "edgeship from EDGESHIP_INSTALL, into .venv.",
        "deploy workflow",
    )
    text = _rewrite(text, "- name: Install (runtime only)", "- name: Install edgeship", "deploy workflow")
    return _rewrite(
        text,
        "run: make install-runtime",
        INSTALL.format(uv=UV_VERSION, pulumi=INSTALL_PULUMI),
        "deploy workflow",
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


def readme_section(install: str, project: str) -> str:
    setup = "\n".join(aws_setup(project))
    return f"""{README_MARKER}
## Shipping the model with edgeship

```bash
python -m venv .venv && . .venv/bin/activate
pip install "{install}"   # what the workflow installs (its EDGESHIP_INSTALL)
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
the `staging` and `prod` GitHub environments; create the roles and variables it names.
`.gitignore` keeps out what edgeship writes here (`.edgeship/`: local state, keys and
secrets; `.tools/`, `reports/`, `.venv/`).

### AWS roles, from this project's policy

Each AWS environment has a deploy role and a read-only preview role, both trusted through
GitHub's OIDC provider for this repository and one GitHub environment (trust policy:
edgeship's docs/ci.md). `orchestrator iam-policy` prints the least-privilege policies for
this project's names. For dev (staging and prod alike, with `--env` and the names changed):

```bash
{setup}
```

The boundary comes first: the deploy role may create the function roles only with it
attached, and can neither create nor change it. Each deploy job asks for credentials as
long as its timeout; a role's maximum session duration is 1 h unless raised as above."""


def aws_setup(project: str, env: str = "dev") -> list[str]:
    """The commands that give `project`'s AWS environment `env` its roles' policies, in the
    order they must run, as `init` prints them and its README section shows them (bash,
    `#` comments). Pure: the boundary's name comes from orchestrator/config/names.py, each deploy
    role's session from the workflow template's job timeouts."""
    from orchestrator.config.names import ROLE_PATH_ROOT, ResourceNames

    names = ResourceNames.of(project, env)
    lines = [
        "# 1. an administrator, once per environment: the function roles' permissions boundary",
        f"orchestrator iam-policy --env {env} --role boundary > boundary.json",
        f"aws iam create-policy --path {ROLE_PATH_ROOT} --policy-name {names.boundary_policy} "
        "--policy-document file://boundary.json",
        "# 2. the deploy and preview roles' policies",
        "# (the state backend the workflow's PULUMI_BACKEND_URL names: its statements are part of the policy)",
        f"orchestrator iam-policy --env {env} --role deploy --backend s3://STATE-BUCKET/PREFIX > deploy-policy.json",
        "aws iam put-role-policy --role-name DEPLOY_ROLE --policy-name edgeship "
        "--policy-document file://deploy-policy.json",
        f"orchestrator iam-policy --env {env} --role preview --backend s3://STATE-BUCKET/PREFIX > preview-policy.json",
        "aws iam put-role-policy --role-name PREVIEW_ROLE --policy-name edgeship "
        "--policy-document file://preview-policy.json",
    ]
    longer = {
        environment: seconds
        for environment, seconds in session_durations(deploy_workflow("edgeship")).items()
        if seconds > DEFAULT_MAX_SESSION_SECONDS
    }
    lines.append(
        f"# 3. credentials last the job: the deploy roles whose job runs past 1 h ({', '.join(longer)})"
    )
    lines += [
        f"aws iam update-role --role-name {environment.upper()}_DEPLOY_ROLE --max-session-duration {seconds}"
        for environment, seconds in longer.items()
    ]
    return lines


# IAM's MaxSessionDuration of a role created without one.
DEFAULT_MAX_SESSION_SECONDS = 3600
CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials@"


def session_durations(workflow: str) -> dict[str, int]:
    """Per GitHub environment named literally in `workflow`, the longest session its jobs ask
    configure-aws-credentials for (`role-duration-seconds`): what that environment's role's
    MaxSessionDuration must allow. A job whose environment is an expression (recover's,
    the dispatch input) is left out: it runs within the longest of the environments it names."""
    import yaml

    longest: dict[str, int] = {}
    for job in (yaml.safe_load(workflow).get("jobs") or {}).values():
        environment = job.get("environment")
        if not isinstance(environment, str) or "${{" in environment:
            continue
        for step in job.get("steps", []):
            if CREDENTIALS_ACTION in str(step.get("uses", "")):
                seconds = int(
                    (step.get("with") or {}).get("role-duration-seconds", DEFAULT_MAX_SESSION_SECONDS)
                )
                longest[environment] = max(longest.get(environment, 0), seconds)
    return longest
