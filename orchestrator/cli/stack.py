"""The stack commands: envs, preview, up, refresh, outputs, rotate-origin-secret, destroy, package,
unlock, bootstrap: an environment's stack, as the Pulumi engine keeps it."""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator.base.errors import RefusedError
from orchestrator.cli.base import (
    Ctx,
    _asdict,
    _changes_line,
    _confirm,
    _preview_text,
    _release,
    _run,
    _target,
    env_option,
    json_option,
    main,
    stack_options,
    yes_option,
)


def _summarised(result: dict[str, Any]) -> dict[str, Any]:
    """A stack operation's result, also told to GitHub's step summary when in a workflow."""
    from orchestrator.base import output

    output.append_summary(output.stack_summary(result))
    return result


def _result_text(result: dict[str, Any]) -> str:
    lines = [_changes_line(result)]
    lines += [f"  {k} = {v}" for k, v in sorted(result.get("outputs", {}).items())]
    return "\n".join(lines)


@main.command()
@json_option
@click.pass_obj
def envs(ctx: Ctx) -> None:
    """List the environments declared in edgeship.toml."""

    def action() -> list[dict[str, Any]]:
        settings = ctx.settings()
        return [
            {
                "name": e.name,
                "region": e.region,
                "account_id": e.account_id,
                "schedule": e.traffic.schedule,
                "memory_mb": e.function.memory_mb,
                "architecture": e.function.architecture,
                "local": e.is_local,
                "protect": e.protect,
            }
            for e in settings.environments.values()
        ]

    def human(rows: list[dict[str, Any]]) -> str:
        head = f"{'ENV':<10} {'REGION':<12} {'ACCOUNT':<13} {'SCHEDULE':<12} {'MEMORY':>6}  ARCH"
        body = [
            f"{r['name']:<10} {r['region']:<12} {r['account_id']:<13} {r['schedule']:<12} {r['memory_mb']:>6}  {r['architecture']}"
            + ("  protected" if r["protect"] else "")
            for r in rows
        ]
        return "\n".join([head, *body])

    _run(ctx, action, human)


@main.command()
@stack_options
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Show every resource that changes, property by property (model and code sha256, config).",
)
@json_option
@click.pass_obj
def preview(ctx: Ctx, env_name: str, backend: str | None, program: str | None, show_diff: bool) -> None:
    """Show what `up` would change in an environment, changing nothing.

    Says whether `up` would publish a new version, with which model and code (their
    sha256, before and after), and which config values differ; --diff adds every
    resource's changed properties. --json always includes them ("diff").
    """
    _run(
        ctx,
        lambda: _summarised(_asdict(_target(ctx, env_name, backend, program).preview())),
        lambda r: _preview_text(r, full=show_diff),
    )


@main.command()
@stack_options
@yes_option
@json_option
@click.pass_obj
def up(ctx: Ctx, env_name: str, backend: str | None, program: str | None, yes: bool) -> None:
    """Create or update an environment's stack. Ctrl-C (or SIGTERM) cancels cleanly.

    As `pulumi up`: shows the preview (what changes, which model and code a new version
    would carry) and asks "Do you want to perform this update?"; --yes (-y) skips both.
    Without a terminal (CI, a pipe) and without --yes it refuses, changing nothing (exit 6).

    Publishes a new version when the code, the model or the function's config changed
    (`live` stays where releases put it; `candidate` follows the new version). Holds the
    environment's promotion lease while it updates, so no promotion starts meanwhile
    (`abort` refuses it: there is nothing to abort); exit 12 when the update finished but
    the lease was no longer its own (a promotion may have started under it).
    Refused while another run holds the lease (exit 4), while a promotion is interrupted
    (exit 11), and while another update holds the stack (exit 10).

    For --env local this first starts the AWS API emulator if needed, and reads back
    what a restarted emulator or a stopped edge lost, so `up` recreates it.
    """

    def action() -> dict[str, Any]:
        fix = f"pass --yes (-y) to update without asking; `orchestrator preview --env {env_name} --diff` shows what would change"
        if not yes and not sys.stdin.isatty():  # before anything runs: nothing to undo
            _confirm(ctx, "update", fix)
        from orchestrator.build.modelpack import read_archive

        # project.model a raw .onnx or a wrong path: exit 2 before the emulator or the engine runs
        read_archive(ctx.settings().model)
        # A test program (--program) is not the environment's function: no lease for it.
        release = None if program is not None else _release(ctx, env_name, backend)
        if release is not None:  # a promotion owns the function while its lease is live: refuse early
            release.guard_stack_change("up")
        target = _target(ctx, env_name, backend, program)
        if not yes:
            _confirm(ctx, "update", fix, lambda: _asdict(target.preview()))
        if release is None:
            return _summarised(_asdict(target.up()))
        # The lease from after the question (a person's answer must not hold promotions back)
        # to the end of the update: no promotion starts while it moves `candidate`.
        with release.holding_for_stack_change("up"):
            result = target.up()
        return _summarised(_asdict(result))

    _run(ctx, action, _result_text)


@main.command()
@stack_options
@json_option
@click.pass_obj
def refresh(ctx: Ctx, env_name: str, backend: str | None, program: str | None) -> None:
    """Read the real resources back into the stack's state."""
    _run(ctx, lambda: _asdict(_target(ctx, env_name, backend, program).refresh()), _changes_line)


@main.command()
@stack_options
@click.option("--show-secrets", is_flag=True, help="Print secret outputs in clear text.")
@json_option
@click.pass_obj
def outputs(ctx: Ctx, env_name: str, backend: str | None, program: str | None, show_secrets: bool) -> None:
    """Print an environment's stack outputs (edge URL, function, versions...)."""

    def action() -> dict[str, Any]:
        return dict(_target(ctx, env_name, backend, program).stack_outputs(show_secrets=show_secrets))

    _run(ctx, action, lambda out: "\n".join(f"{k} = {v}" for k, v in sorted(out.items())) or "(no outputs)")


@main.command("rotate-origin-secret")
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def rotate_origin_secret(ctx: Ctx, env_name: str, backend: str | None) -> None:
    """Replace the secret header CloudFront sends to the API, with no refused request.

    Three `up` runs of the secret and what depends on it (never a new function version):
    the API accepts the new value too, then CloudFront sends it, then the API forgets the
    old one; on AWS each waits until the previous one applies everywhere (75 s of waiting
    in all, plus CloudFront's deployment). Stopped half-way (Ctrl-C, a kill, a cancelled
    job), run it again: it finishes that rotation. Holds the environment's promotion lease
    while it runs, as `up` does; refused while another run holds it (exit 4) or a promotion
    was interrupted (exit 11).

    \b
    Example:
      orchestrator rotate-origin-secret --env prod
    """

    def action() -> dict[str, Any]:
        from orchestrator.programs import rotation

        release = _release(ctx, env_name, backend)
        release.guard_stack_change("rotate-origin-secret")
        target = release.target
        # Its three `up`s under the lease, as `up`'s: no promotion starts between them.
        with release.holding_for_stack_change("rotate-origin-secret"):
            return rotation.rotate(target, ctx.reporter(), settle_s=target.cloud.origin_settle_s)

    _run(
        ctx, action, lambda r: f"origin secret rotated: {r['from']} -> {r['to']} ({len(r['stages'])} stages)"
    )


@main.command()
@stack_options
@yes_option
@click.option("--force", is_flag=True, help="Required to destroy a protected environment (prod by default).")
@click.option("--remove", is_flag=True, help="Also delete the stack and its history.")
@json_option
@click.pass_obj
def destroy(
    ctx: Ctx, env_name: str, backend: str | None, program: str | None, yes: bool, force: bool, remove: bool
) -> None:
    """Delete every resource of an environment. Asks first unless --yes (-y); without a
    terminal and without --yes it refuses, changing nothing (exit 6); a protected
    environment (`protect = true` in edgeship.toml, prod's default) needs --force.

    For --env local this also stops the emulator and the edge and removes the stack (the
    emulator forgets everything when it stops, so there is no history worth keeping); with
    `[storage] keep_on_destroy` the emulator keeps running, holding the kept bucket (the
    next `up` creates a new bucket beside it; a `destroy` without keep_on_destroy stops it).
    """

    def action() -> dict[str, Any]:
        settings = ctx.settings()
        if settings.environment(env_name).protect and not force:
            raise RefusedError(
                f"refusing to destroy {env_name!r} without --force: it is protected",
                fix=f"add --force if you really mean it (or set protect = false in "
                f"[environments.{env_name}] of {settings.path.name})",
            )
        if not yes:
            _confirm(ctx, "destroy", "answer yes, or pass --yes (-y)",
                     question=f"Destroy every resource in {env_name!r}?")  # fmt: skip
        if program is None:  # as for `up`: not while a promotion owns the function
            _release(ctx, env_name, backend).guard_stack_change("destroy")
        return dict(_target(ctx, env_name, backend, program).destroy(remove=remove))

    def human(r: dict[str, Any]) -> str:
        stopped = ", ".join(name for name, was in r.get("stopped", {}).items() if was)
        return _changes_line(r) + (f"\nstopped: {stopped}" if stopped else "")

    _run(ctx, action, human)


@main.command()
@env_option
@json_option
@click.pass_obj
def package(ctx: Ctx, env_name: str) -> None:
    """Build the Lambda zip for an environment's runtime and architecture (reproducible).

    Then imports its dependencies from the unpacked zip with the runtime's interpreter,
    where this machine runs that architecture (exit 1 when they do not import); otherwise
    says the package was not import-tested.
    """

    def action() -> dict[str, Any]:
        settings = ctx.settings()
        from orchestrator.stacks.clouds import build_package

        built, tested = build_package(settings, settings.environment(env_name), None, ctx.reporter())
        return {
            "path": str(built.artifact.path),
            "sha256": built.artifact.sha256,
            "zipped_bytes": built.artifact.size,
            "unzipped_bytes": built.unzipped_size,
            "files": built.files,
            "bytecode": built.bytecode,
            "limit_ratio": round(built.limit_ratio, 4),
            "import_test": tested,
        }

    _run(
        ctx,
        action,
        lambda r: (
            f"{r['path']}\nsha256 {r['sha256']}\n{r['unzipped_bytes'] / 1e6:.1f} MB unzipped = {r['limit_ratio']:.1%} of the 250 MB limit"
        ),
    )


@main.command()
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@click.option("--force", is_flag=True, help="Remove the lock even if its process still runs here.")
@json_option
@click.pass_obj
def unlock(ctx: Ctx, env_name: str, backend: str | None, force: bool) -> None:
    """Clear a stale stack lock left by a crashed run (file backends)."""

    def action() -> dict[str, Any]:
        import os

        from orchestrator.stacks import engine as stacks

        settings = ctx.settings()
        env = settings.environment(env_name)
        url = stacks.resolve_backend(
            backend, settings.backend, os.environ, settings.root, env_name=env.name, is_local=env.is_local
        )
        removed = stacks.unlock(url, settings.project, env_name, force=force)
        return {"stack": env_name, "removed": [str(p) for p in removed]}

    _run(ctx, action, lambda r: f"removed {len(r['removed'])} lock(s) from {r['stack']}")


@main.command()
@env_option
@click.option(
    "--backend", metavar="URL", default=None,
    help="State backend. Default: PULUMI_BACKEND_URL, then edgeship.toml; only --env local falls "
    "back to .edgeship/state.",
)  # fmt: skip
@json_option
@click.pass_obj
def bootstrap(ctx: Ctx, env_name: str, backend: str | None) -> None:
    """Create an environment's stack, empty, in the state backend (run once, with the deploy role).

    Optional: previews of an environment not deployed yet already work, read-only, against
    a throwaway backend. After this one, they read the real (empty) stack. Runs no program
    and creates no cloud resource; a second run changes nothing.
    """

    def action() -> dict[str, Any]:
        from orchestrator.stacks import engine as stacks
        from orchestrator.stacks import toolchain

        settings = ctx.settings()
        env = settings.environment(env_name)
        spec = stacks.spec_for(
            settings, env, pulumi_root=toolchain.pulumi_root(settings.root), backend=backend
        )
        return stacks.bootstrap(spec)

    def human(r: dict[str, Any]) -> str:
        said = {True: "created", False: "already exists, unchanged", None: "ready"}[r["created"]]
        return f"bootstrap {r['stack']}: stack {said} in {r['backend']}"

    _run(ctx, action, human)
