"""The project commands: `model pack`, init, install-pulumi, schema, iam-policy, doctor: the files,
tools and permissions a project needs around its stacks and releases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.base.errors import ExitCode, UsageError
from orchestrator.cli.base import Ctx, _run, env_option, json_option, main


@main.group()
def model() -> None:
    """Models: pack an ONNX file and what it means into the archive edgeship ships."""


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@model.command("pack")
@click.argument("onnx_file", metavar="MODEL.onnx", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--features", required=True, metavar="F1,F2,...", help="Input column names, in the model's order."
)
@click.option(
    "--labels", default="", metavar="A,B,...", help="Class names in class order; omit for a regressor."
)
@click.option("--name", required=True, help="Model name, reported by every response.")
@click.option("--version", "model_version", required=True, help="Model version, reported by every response.")
@click.option(
    "--example",
    default="",
    metavar="V1,V2,...",
    help="One typical input row: the gates' load payload (default: 0 for every feature).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("model.tar.gz"),
    show_default=True,
    help="Where to write the archive.",
)
@json_option
@click.pass_obj
def model_pack(
    ctx: Ctx,
    onnx_file: Path,
    features: str,
    labels: str,
    name: str,
    model_version: str,
    example: str,
    output: Path,
) -> None:
    """Write model.tar.gz (model.onnx + metadata.json) and print its sha256.

    The model is opened with ONNX Runtime and run once on the example row first: its input
    must take as many features as --features names; with --labels it must output a label
    and one probability per label (a classifier), without them one number per row (a
    regressor). Promote it with `orchestrator promote --env E --model model.tar.gz`.
    """

    def action() -> dict[str, Any]:
        from orchestrator.base.errors import UsageError
        from orchestrator.build.modelpack import PackRequest, pack

        try:
            row = tuple(float(v) for v in _names(example))
        except ValueError:
            raise UsageError(
                f"--example {example!r} is not a list of numbers", fix="e.g. --example 5.1,3.5"
            ) from None
        request = PackRequest(onnx_file, _names(features), _names(labels), name, model_version, row)
        built = pack(request, output)
        return {"path": str(built.path), "sha256": built.sha256, "bytes": built.size, "task": request.task}

    _run(ctx, action, lambda r: f"{r['path']} ({r['task']})\nsha256 {r['sha256']}")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--name", default=None, help="Project name (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite the files init writes if they exist.")
@click.option(
    "--install-from",
    default=None,
    metavar="pypi|WHEEL|git+https://...@REF",
    help="Where the workflow installs edgeship from: this release from PyPI, a wheel committed "
    "in the repository, or a git URL at a pinned ref (the workflow's EDGESHIP_INSTALL). "
    "Default: where this edgeship came from (a git install: its commit), else pypi; a warning "
    "when that cannot work (this edgeship came from a local wheel or checkout).",
)
@json_option
@click.pass_obj
def init(ctx: Ctx, directory: Path, name: str | None, force: bool, install_from: str | None) -> None:
    """Start shipping a model from this repository (or DIRECTORY).

    \b
    Writes:
      edgeship.toml                          environments local, dev, staging, prod
      .github/workflows/edgeship-deploy.yml  previews, deploys, approvals, recovery
      models/model.tar.gz                    the sample model (replace it: `model pack`)
    appends a short section to README.md, and adds what edgeship writes (.edgeship/,
    .tools/, reports/, .venv/) to .gitignore. Refuses to overwrite any of those files
    unless --force (exit 6). Then: `orchestrator up --env local`; for AWS, the commands
    it prints (`orchestrator iam-policy`: the boundary first, then the roles' policies).
    """

    def action() -> dict[str, Any]:
        from orchestrator.project.scaffold import (
            aws_setup,
            default_install_from,
            direct_url,
            install_spec,
            project_name,
            write,
        )

        root = directory.resolve()
        project = name or project_name(root)
        warnings = []
        chosen = install_from
        if chosen is None:
            chosen, warning = default_install_from(direct_url())
            warnings += [warning] if warning else []
        install = install_spec(chosen, root)
        root.mkdir(parents=True, exist_ok=True)
        return {
            "directory": str(root),
            "project": project,
            "install": install,
            "warnings": warnings,
            **write(root, project, force=force, install=install),
            # then, for AWS: the roles' policies, generated (README.md's section says the same)
            "aws_setup": aws_setup(project),
        }

    def human(r: dict[str, Any]) -> str:
        from orchestrator.base import output

        for warning in r["warnings"]:
            output.warning(warning)
        return "\n".join(f"wrote {p}" for p in r["written"] + r["readme"] + r["gitignore"]) + (
            f"\nthe workflow installs {r['install']}\nnext: orchestrator up --env local"
            "\nthen AWS, for dev (staging and prod alike; README.md has these steps):\n"
            + "\n".join(f"  {line}" for line in r["aws_setup"])
        )

    _run(ctx, action, human)


@main.command("install-pulumi")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to install (default: .tools/pulumi beside edgeship.toml, where commands look first).",
)
@json_option
@click.pass_obj
def install_pulumi(ctx: Ctx, target: Path | None) -> None:
    """Install the pinned Pulumi CLI for this project, as `make install` does in edgeship's
    own checkout: a `pulumi` on PATH at the pinned version is linked, else the official
    release is downloaded, else it is built with Go (several minutes, once)."""

    def action() -> dict[str, Any]:
        from orchestrator.stacks import toolchain

        where = target or (ctx.settings().root / ".tools" / "pulumi")
        toolchain.install(where)
        return {"pulumi_root": str(where), "version": toolchain.pulumi_version(where)}

    _run(ctx, action, lambda r: f"pulumi {r['version']} in {r['pulumi_root']}/bin")


@main.command("schema")
@click.option(
    "--write",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write it to this file (e.g. edgeship.schema.json beside edgeship.toml) instead of stdout.",
)
@json_option
@click.pass_obj
def schema_command(ctx: Ctx, out: Path | None) -> None:
    """Print the JSON schema of edgeship.toml, for editors with a TOML language server
    (taplo, VS Code's Even Better TOML): with the schema in edgeship.schema.json, make
    `#:schema ./edgeship.schema.json` the first line of edgeship.toml. (The schema is JSON
    already: --json changes only what --write reports.)"""
    from orchestrator.config.schema import render

    text = render()
    if out is None:
        click.echo(text, nl=False)
        return

    def action() -> dict[str, Any]:
        out.write_text(text)
        return {"path": str(out)}

    _run(ctx, action, lambda r: f"wrote {r['path']}")


@main.command("iam-policy")
@env_option
@click.option(
    "--role",
    type=click.Choice(["deploy", "preview", "boundary"]),
    required=True,
    help="deploy: the deploy jobs' role; preview: the preview jobs' (read only); boundary: the "
    "permissions boundary of the function roles (an administrator creates it once, first).",
)
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@click.option(
    "--no-state",
    is_flag=True,
    help="Leave out the state statements (a backend that is not S3, e.g. Pulumi Cloud).",
)
@click.option(
    "--explain", is_flag=True, help="Print the grants not scoped to the stack's names, with AWS's reason."
)
@json_option
@click.pass_obj
def iam_policy(
    ctx: Ctx, env_name: str, role: str, backend: str | None, no_state: bool, explain: bool
) -> None:
    """Print the IAM policy a role of this environment needs, scoped to its names (JSON:
    `... | aws iam put-role-policy --role-name R --policy-name edgeship
    --policy-document file:///dev/stdin`). An s3:// backend adds the state statements."""

    def action() -> dict[str, Any]:
        import os

        from orchestrator.config.names import ResourceNames
        from orchestrator.project import iam
        from orchestrator.stacks import engine as stacks

        settings = ctx.settings()
        env = settings.environment(env_name)
        names = ResourceNames.of(settings.project, env.name)
        where = {"region": env.region, "account": env.account_id}
        if explain:
            if ctx.as_json:
                return {"unscoped": iam.unscoped(names, **where)}
            return {"explain": iam.explain(names, **where)}
        # Only the backend someone named: the local default (.edgeship/state) is no S3 bucket
        # either way, and the boundary and --no-state need none.
        url = stacks.explicit_backend(backend, settings.backend, os.environ)
        state = None if no_state or url is None else iam.s3_backend(url)
        if state is None and role != "boundary" and not no_state:
            # A role without them fails its first job on the state bucket (AccessDenied).
            raise UsageError(
                f"the state backend is {url or 'not set'}, not s3://BUCKET/PREFIX, so the policy would have no "
                "statements for it: pass --backend s3://STATE-BUCKET/PREFIX (what the workflow's "
                "PULUMI_BACKEND_URL names), or --no-state for a backend that is not S3"
            )
        if role == "boundary":
            click.echo(f"note: {iam.boundary_hint(names)}", err=True)
        secrets = settings.secrets_provider  # an awskms:// key adds its statements
        document = iam.policy(names, role=role, state=state, secrets=secrets, **where)  # type: ignore[arg-type]
        too_big = iam.oversize(document)
        if too_big:
            click.echo(
                f"warning: {too_big}: split its statements into managed policies (6,144 characters each)",
                err=True,
            )
        return document

    def human(r: dict[str, Any]) -> str:
        import json

        return r["explain"].rstrip("\n") if "explain" in r else json.dumps(r, indent=2)

    _run(ctx, action, human)


@main.command()
@click.option(
    "--env",
    "env_name",
    default=None,
    metavar="NAME",
    help="Environment to check for (default: --env before the command, EDGESHIP_ENV, "
    "default_env, else the first declared).",
)
@json_option
@click.pass_obj
def doctor(ctx: Ctx, env_name: str | None) -> None:
    """Check this machine for an environment: the Pulumi CLI (pinned version), the runtime's
    interpreter and awslambdaric (local), the emulator (local), credentials, the state
    backend and the secrets' passphrase. Prints each check with ok/FAIL and the fix.

    Exit 0 when every check passes, 1 when any fails (the output names which).
    """
    from orchestrator.project import doctor as doc

    result: dict[str, Any] = {}

    def action() -> dict[str, Any]:
        import os

        from orchestrator.base.errors import UsageError
        from orchestrator.config.env_choice import ENV_VAR, choose

        settings = ctx.settings()
        name = env_name or ctx.env
        if name is None:  # as every command chooses, but with nothing chosen the first is checked
            try:
                name = choose(
                    os.environ.get(ENV_VAR), settings.default_env, settings.environments, settings.path
                )
            except UsageError:
                name = next(iter(settings.environments))
        checks = doc.judge(doc.probe(settings, settings.environment(name)))
        result.update(env=name, ok=not doc.failed(checks), checks=[c.to_dict() for c in checks])
        return result

    def human(r: dict[str, Any]) -> str:
        lines = [f"doctor: {r['env']}"]
        for c in r["checks"]:
            lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']:<12} {c['detail']}")
            if not c["ok"] and c["fix"]:
                lines.append(f"       {'':<12} fix: {c['fix']}")
        return "\n".join(lines)

    _run(ctx, action, human)
    if result and not result["ok"]:
        sys.exit(int(ExitCode.ERROR))
