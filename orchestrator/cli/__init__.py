"""The `orchestrator` command: parse, call, print. No release logic lives here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from orchestrator.base.errors import EXIT_CODE_HELP, EdgeshipError, ExitCode, RefusedError, UsageError

EXIT_CODES_TEXT = "\b\nExit codes:\n" + "\n".join(
    f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()
)


class Ctx:
    """What every command needs: where the config is, how to print, the environment named
    before the command (`orchestrator --env dev status`)."""

    # A plain class, not a dataclass: `--help` must not pay for importing dataclasses.
    def __init__(self, config: Path | None = None, as_json: bool = False, env: str | None = None) -> None:
        self.config = config
        self.as_json = as_json
        self.env = env
        # One stack target per environment for the whole command: each reads the stack's
        # outputs once (a `pulumi stack output` run, ~0.4 s of CPU), and a command that both
        # looks at the lease and changes the stack (`up`, `promote`) used two or three.
        self.targets: dict[tuple[str, str | None, str | None], Any] = {}

    def settings(self) -> Any:
        from orchestrator.config import settings

        return settings.load(self.config)

    def reporter(self) -> Any:
        from orchestrator.base.progress import ConsoleReporter, JsonLinesReporter

        return JsonLinesReporter() if self.as_json else ConsoleReporter()


def _emit(ctx: Ctx, payload: Any, human: Callable[[Any], str]) -> None:
    if ctx.as_json:
        import json

        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        click.echo(human(payload))


def _fail(as_json: bool, error: dict[str, Any]) -> NoReturn:
    """Print an error (`EdgeshipError.to_dict()`'s shape) as JSON on stdout or as
    `error:` / `fix:` lines on stderr (an `::error::` annotation too on GitHub Actions, also
    under --json: a workflow's log is its stderr), and exit with its code."""
    from orchestrator.base import output

    click_ctx = click.get_current_context(silent=True)
    words: list[str] = []  # the command's words (`model pack`), never the program's path or `python -m`
    while click_ctx is not None and click_ctx.parent is not None:
        words.insert(0, click_ctx.info_name or "")
        click_ctx = click_ctx.parent
    title = " ".join(["orchestrator", *words]) + f" failed (exit {int(error['exit_code'])})"
    if as_json:
        import json

        fix = f"\nfix: {error['fix']}" if error.get("fix") else ""
        output.Printer(sys.stderr).annotate("error", error["message"] + fix, title=title)
        click.echo(json.dumps(error, indent=2))
    else:
        output.error(error["message"], error.get("fix"), title=title)
    sys.exit(int(error["exit_code"]))


def _run(ctx: Ctx, action: Callable[[], Any], human: Callable[[Any], str]) -> None:
    """Call the action, print its result, and turn edgeship errors into exit codes."""
    try:
        payload = action()
    except EdgeshipError as exc:
        _fail(ctx.as_json, exc.to_dict())
    except Exception as exc:  # an AWS error is reported as one; anything else is a bug: its traceback
        failure = aws_failure(exc)
        if failure is None:
            raise
        _fail(ctx.as_json, failure.to_dict())
    except KeyboardInterrupt:
        from orchestrator.base import output

        output.Printer(sys.stderr).line("interrupted", style="red")
        sys.exit(int(ExitCode.INTERRUPTED))
    _emit(ctx, payload, human)


def aws_failure(exc: Exception) -> EdgeshipError | None:
    """An AWS call's error that no layer below turned into an EdgeshipError (S3 or Lambda
    unreachable or refusing while a command looked or prepared), as an error with a fix
    (exit 1): a traceback, and no JSON under --json, would leave a script or an operator
    guessing. None for anything else. botocore is looked up, not imported: a command that
    made no AWS call cannot have raised its errors (and `--help` stays fast)."""
    boto = sys.modules.get("botocore.exceptions")
    if boto is None or not isinstance(exc, boto.BotoCoreError | boto.ClientError):
        return None
    return EdgeshipError(
        f"an AWS call failed: {type(exc).__name__}: {exc}",
        fix="check that AWS (or the local emulator) answers; `orchestrator status` shows whether anything "
        "was left in flight; then run the command again",
    )


def _usage_error(exc: click.ClickException) -> dict[str, Any]:
    """A click error (missing option, bad value, unknown command) as --json reports it."""
    where = getattr(exc, "ctx", None)
    return {
        "error": "UsageError",
        "message": exc.format_message(),
        "fix": f"see `{where.command_path} --help`" if where is not None else "see `orchestrator --help`",
        "exit_code": exc.exit_code,
    }


def _wants_json(args: list[str]) -> bool:
    """--json anywhere on the command line (before a `--`): usage errors are found before
    the option itself is processed, and must be JSON too."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


class Group(click.Group):
    """The `orchestrator` group: errors found while parsing (a missing or bad option, no
    environment) are printed as every other error is, JSON under --json (exit 2)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:  # fmt: skip
        from orchestrator.base.interrupts import cancel_on_sigint

        argv = list(sys.argv[1:] if args is None else args)
        as_json = _wants_json(argv)
        try:
            # again, inside the try (a SIGINT can land the moment it is in place): `orchestrator`
            # (the script) does not start in __main__
            cancel_on_sigint()
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            if not standalone_mode:
                raise
            if not as_json:
                exc.show()
                sys.exit(exc.exit_code)
            _fail(True, _usage_error(exc))
        except click.Abort:
            if not standalone_mode:
                raise
            click.echo("Aborted!", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        except KeyboardInterrupt:  # while click parsed, before a command's own handling
            if not standalone_mode:
                raise
            from orchestrator.base.interrupts import interrupted

            interrupted()
        except EdgeshipError as exc:  # raised by an option's callback (no environment, bad config)
            if not standalone_mode:
                raise
            _fail(as_json, exc.to_dict())
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _set_json(click_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        click_ctx.ensure_object(Ctx).as_json = True
    return value


def _set_config(click_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        click_ctx.ensure_object(Ctx).config = value
    return value


def _json_flag(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        is_eager=True,
        help="Print one JSON document on stdout (progress goes to stderr as JSON lines).",
    )(f)


def _config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    # Eager: processed before --env, whose default (default_env) is read from this file.
    return click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_set_config,
        is_eager=True,
        help="Path to edgeship.toml (default: the nearest one above the current directory).",
    )(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The global options every command accepts after its name too: `--json` (one JSON
    document on stdout, progress as JSON lines on stderr) and `--config`."""
    return _config_option(_json_flag(f))


def _resolve_env(click_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    """--env after the command, else before it, else EDGESHIP_ENV, else edgeship.toml's
    default_env; else a usage error listing the environments."""
    import os

    from orchestrator.config.env_choice import ENV_VAR, choose

    ctx = click_ctx.ensure_object(Ctx)
    if value is not None:
        return value
    if ctx.env is not None:
        return ctx.env
    settings = ctx.settings()
    return choose(os.environ.get(ENV_VAR), settings.default_env, settings.environments, settings.path)


def env_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--env NAME`: which environment (stack) to act on."""
    return click.option(
        "--env",
        "env_name",
        default=None,
        callback=_resolve_env,
        metavar="NAME",
        help="Environment from edgeship.toml (local, dev, staging, prod, ...). Default: EDGESHIP_ENV, "
        "then default_env in edgeship.toml.",
    )(f)


def yes_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--yes/-y`: go ahead without asking (what a CI job passes)."""
    return click.option(
        "--yes",
        "-y",
        "yes",
        is_flag=True,
        help="Do not ask for confirmation (needed when not on a terminal).",
    )(f)


def stack_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options of every command that drives the Pulumi engine."""
    f = click.option(
        "--backend",
        metavar="URL",
        default=None,
        help="State backend (file://DIR, s3://BUCKET/PREFIX, https://api.pulumi.com). "
        "Default: PULUMI_BACKEND_URL, then edgeship.toml; only --env local falls back to "
        ".edgeship/state (any other environment without one is refused, exit 2).",
    )(f)
    f = click.option(
        "--program",
        metavar="MODULE:FUNC",
        default=None,
        hidden=False,
        help="Inline Pulumi program to run instead of the serving stack (orchestrator.programs.serving:program).",
    )(f)
    return env_option(f)


def _set_group_env(click_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        click_ctx.ensure_object(Ctx).env = value
    return value


@click.group(cls=Group, epilog=EXIT_CODES_TEXT, context_settings={"help_option_names": ["-h", "--help"]})
@_config_option
@_json_flag
@click.option(
    "--env",
    metavar="NAME",
    default=None,
    expose_value=False,
    callback=_set_group_env,
    help="Environment for the commands that take one (as their own --env; default: EDGESHIP_ENV, "
    "then default_env in edgeship.toml).",
)
@click.version_option(package_name="edgeship")
@click.pass_context
def main(click_ctx: click.Context) -> None:
    """Ship ML models to the AWS edge and roll them out safely.

    \b
    Typical flow:
      orchestrator envs                     list environments
      orchestrator preview --env dev        what `up` would change (--diff: property by property)
      orchestrator up --env dev             preview, ask, deploy the stack (publishes a version)
      orchestrator outputs --env dev        edge URL, function, versions
      orchestrator promote --env dev        gated blue/green rollout of a new version
      orchestrator status --env dev         versions, weights, promotion in flight
      orchestrator destroy --env dev --yes  tear it down

    --env local rehearses all of it on this machine: an AWS API emulator and a local
    edge that runs the deployed code, no AWS account needed. EDGESHIP_ENV (or
    default_env in edgeship.toml) saves repeating --env.

    --config, --json and --env go before or after the command. `up` and `destroy` ask
    first on a terminal; elsewhere (CI) they need --yes.
    """
    click_ctx.ensure_object(Ctx)


def _target(ctx: Ctx, env_name: str, backend: str | None, program: str | None = None) -> Any:
    """The environment's stack, as releases and stack commands use it (one path for all)."""
    from orchestrator.stacks.targets import open_environment

    key = (env_name, backend, program)
    if key not in ctx.targets:
        settings = ctx.settings()
        env = settings.environment(env_name)
        ctx.targets[key] = open_environment(
            settings, env, reporter=ctx.reporter(), backend=backend, program=program
        )
    return ctx.targets[key]


def _changes_line(result: dict[str, Any]) -> str:
    from orchestrator.base.progress import counts

    changes = counts(result["changes"])
    return f"{result['operation']} {result['stack']}: {changes} ({result['duration_s']:.1f}s)"


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


def _preview_text(result: dict[str, Any], *, full: bool) -> str:
    """A preview for a person: the counts, what `up` would publish, the config that moves;
    `full` (--diff): every resource that changes, property by property."""
    from orchestrator.stacks import diff

    lines = [*([result["note"]] if result.get("note") else []), _changes_line(result)]
    found = result.get("diff")
    if found is not None:
        summary = diff.Diff(
            found["publishes"],
            diff.Digest(**found["model"]) if found.get("model") else None,
            diff.Digest(**found["code"]) if found.get("code") else None,
            [diff.PropertyChange(**c) for c in found["config"]],
            [
                diff.ResourceChange(
                    r["op"], r["resource"], [diff.PropertyChange(**p) for p in r["properties"]]
                )
                for r in found["resources"]
            ],
        )
        lines += [f"  {line}" for line in diff.headline(summary)]
        if full:
            lines += [f"  {line}" for line in diff.detail(summary)] or ["  (no resource changes)"]
    return "\n".join(lines)


def _confirm(
    ctx: Ctx, what: str, fix: str, preview: Callable[[], dict[str, Any]] | None = None, question: str = ""
) -> None:
    """Ask before a change, as `pulumi up` does: show the preview, then "[y/N]". Without a
    terminal to ask on, refuse (exit 6) before anything ran: a CI job passes --yes."""
    if not sys.stdin.isatty():
        raise RefusedError(f"{what}: not confirmed (no terminal to ask on); nothing was changed", fix=fix)
    if preview is not None:
        click.echo(_preview_text(preview(), full=True), err=ctx.as_json)
    question = question or f"Do you want to perform this {what}?"
    if not click.confirm(question, default=False, err=ctx.as_json):
        raise RefusedError(f"{what} not confirmed; nothing was changed", fix=fix)


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


@main.command()
@stack_options
@click.option("--limit", default=10, show_default=True, help="How many updates to show.")
@json_option
@click.pass_obj
def history(ctx: Ctx, env_name: str, backend: str | None, program: str | None, limit: int) -> None:
    """List the stack's recent updates and promotions, newest first (times in UTC, ISO 8601).

    Promotions show their outcome, versions, duration and, when this machine ran them,
    where their report is.
    """
    _run(ctx, lambda: _history(ctx, env_name, backend, program, limit), _history_text)


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


# -- releases --------------------------------------------------------------------------------


def _release(ctx: Ctx, env_name: str, backend: str | None) -> Any:
    from orchestrator.release.operations import Release

    settings = ctx.settings()
    target = _target(ctx, env_name, backend)
    return Release(target, settings.environment(env_name), ctx.reporter(), settings.root / "reports")


def _late_metrics(plan: dict[str, Any]) -> str:
    """What a bake waits for past bake_s, in the dry run's words."""
    if not plan["bake_s"] or plan.get("metric_delay_s") is None:
        return ", "
    return (
        f" + green's late metrics (up to {plan['metric_delay_s']:g}s late; "
        f"a bake that judged nothing of green: {plan['unjudged_bake']}), "
    )


def _relative_text(slo: dict[str, Any]) -> str:
    """The relative check of a plan's thresholds (gate.regression_floor_ms, from the plan's dict)."""
    if not slo.get("relative_p95_factor"):
        return "no check against blue (relative_p95_factor = 0)"
    from orchestrator.config.settings import SloSettings
    from orchestrator.gates.judge import regression_floor_ms

    known = {k: v for k, v in slo.items() if k in SloSettings.__dataclass_fields__ and k != "alarms"}
    checked = SloSettings(**known)  # a plan recorded before these keys existed: their defaults
    return f"p95 not worse than blue's by > {regression_floor_ms(checked):g} ms (a test at alpha {checked.alpha:g})"


def _contract_text(contract: dict[str, Any] | None) -> list[str]:
    """The dry run's models (live's and green's name, version, sha256) and their contract."""
    if not contract:
        return []
    lines = []
    for who, m in (("live", contract.get("live")), ("green", contract.get("green"))):
        if m:
            where = f" (v{m['function_version']})" if m.get("function_version") else ""
            lines.append(f"  {who} model{where}: {m.get('name')} {m.get('version')} (sha256 {str(m.get('sha256'))[:12]})"
                         + (f": {m['contract']}" if m.get("contract") else ""))  # fmt: skip
    if contract.get("unknown"):
        lines.append(f"  contract: {contract['unknown']}")
    elif "breaking" in contract:
        notes = "; ".join(contract.get("notes") or []) or "same contract"
        lines.append(
            f"  contract: {contract['said']}"
            if contract.get("said")
            else f"  contract: not breaking ({notes})"
        )
    return lines


def _gate_durations(report: dict[str, Any]) -> list[str]:
    """The dry run's gates: green's requests and load time per gate at the plan's estimate of a
    request, and a warning for a gate whose green cannot reach min_green_requests in time."""
    load, rows = report["load"], report.get("gate_durations", [])
    want = int(load.get("min_green_requests") or 0)
    lines = [f"  gates at ~{report.get('healthy_request_ms', 50):g} ms a request (an estimate):"]
    for g in rows:
        reach = f", {want} after ~{g['min_green_requests_s']:g}s" if want else ""
        lines.append(
            f"    {g['gate']} at {g['weight']}%: ~{g['green_requests_at_duration']} green requests in "
            f"{load['duration_s']:g}s{reach}; ~{g['healthy_s']:g}s for a healthy green, {g['worst_s']:g}s at most"
        )
    for g in rows:
        if g.get("short"):
            lines.append(
                f"  warning: {g['gate']} ({g['weight']}%): green would answer {want} requests only after "
                f"~{g['min_green_requests_s']:g}s, past max_duration_s ({g['worst_s']:g}s): the gate would be "
                "judged short of them; raise load.users or load.max_duration_s"
            )
    return lines


def _load_text(load: dict[str, Any]) -> str:
    """A plan's gate load in words (its dict: a recorded plan has every key LoadSettings has)."""
    from orchestrator.config.settings import LoadSettings
    from orchestrator.gates.sizing import describe

    return describe(LoadSettings(**load))


def _report_text(report: dict[str, Any]) -> str:
    if report.get("dry_run"):
        slo = report["slo"]
        return "\n".join(
            [
                f"plan for {report['env']}: v{report['blue']} -> {report['green']}",
                f"  schedule {report['schedule']}: green at {', '.join(f'{w}%' for w in report['steps'])}",
                f"  gates: {report['gates']} (1 pre-traffic + 1 per step), bake {report['bake_s']:g}s"
                + _late_metrics(report)
                + f"load {_load_text(report['load'])}",
                f"  thresholds: p95 <= {slo['p95_ms']:g} ms, p99 <= {slo['p99_ms']:g} ms, errors <= {slo['max_error_ratio']:.1%}, "
                f">= {slo['min_rps']:g} rps, >= {slo['min_samples']} samples, {_relative_text(slo)}",
                "  watched through every bake: green's Lambda Errors, Throttles, Duration"
                + (f"; alarms {', '.join(slo['alarms'])}" if slo.get("alarms") else ""),
                *(f"  hook ({h['on']}): {h['run']}" for h in report.get("hooks", [])),
                *([f"  pause after the gate at {report['pause_at']}%"] if report.get("pause_at") else []),
                f"  expected duration: {report['expected_duration_s']:.0f}s if every gate passes"
                + (
                    f", ~{report['expected_healthy_duration_s']:.0f}s for a healthy green"
                    if report["load"].get("sequential")
                    else ""
                )
                + f", {report['worst_duration_s']:.0f}s with every gate at its longest"
                + (" (plus the pause)" if report.get("pause_at") else ""),
                *_gate_durations(report),
                *_contract_text(report.get("contract")),
            ]
        )
    if report["outcome"] == "deployed":  # a first deploy: no blue, no gate
        return f"deployed: {report['env']} v{report['green']} is live ({report['reason']})"
    lines = [
        f"{report['outcome']}: {report['env']} v{report['blue']} -> v{report['green']} {report.get('reason') or ''}".rstrip()
    ]
    if report.get("directory"):
        lines.append(f"report: {report['directory']}/report.html")
    return "\n".join(lines)


@main.command()
@env_option
@click.option(
    "--schedule",
    type=click.Choice(["canary", "linear", "all-at-once", "explicit"]),
    default=None,
    help="Override the environment's traffic schedule.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (versions, steps, gates, thresholds, duration); change nothing.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted promotion with its recorded plan (exit 2 if none).",
)
@click.option(
    "--rollback", "roll_back", is_flag=True, help="Roll back an interrupted promotion (exit 2 if none)."
)
@click.option(
    "--function-dir",
    type=click.Path(file_okay=False, path_type=Path, resolve_path=True),
    default=None,
    help="Function code to publish (default: programs/function).",
)
@click.option(
    "--model",
    # resolved here: the engine's providers run elsewhere than the caller's directory
    type=click.Path(dir_okay=False, path_type=Path, resolve_path=True),
    default=None,
    help="Model archive to publish (default: project.model).",
)
@click.option(
    "--pause-at",
    type=int,
    default=None,
    metavar="WEIGHT",
    help="Hold after the gate at this weight (any step but the last; see --dry-run) until "
    "`orchestrator resume-promotion`.",
)
@click.option(
    "--allow-breaking-change",
    is_flag=True,
    help="Let green's model break live's contract (other features, output kind or labels): green is "
    "gated alone on the candidate route, then takes all traffic at once. Without it such a model is refused (exit 2).",
)
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@click.option(
    "--yes",
    "-y",
    "yes",
    is_flag=True,
    help="On an environment with no stack yet, deploy the first version without asking (as `up --yes`).",
)
@json_option
@click.pass_obj
def promote(
    ctx: Ctx,
    env_name: str,
    schedule: str | None,
    dry_run: bool,
    resume: bool,
    roll_back: bool,
    function_dir: Path | None,
    model: Path | None,
    pause_at: int | None,
    allow_breaking_change: bool,
    backend: str | None,
    yes: bool,
) -> None:
    """Publish a new version and shift `live` to it step by step, gated by load tests.

    \b
    1. take the environment's lease, publish green (live still serves blue), record the plan
    2. pre-traffic gate: green alone, through the candidate route; then pre-traffic hooks
    3. each step: shift weights; bake while watching green's Lambda metrics and the
       slo.alarms (a breach rolls back at once); load-test the edge, judge green per
       version; run the step hooks; with --pause-at, hold until `resume-promotion`
    4. finish on green, or roll back to blue on any failure, error, Ctrl-C, SIGTERM
       or `orchestrator abort` from any machine

    Every step is written to the promotion record before it acts, so a run killed at
    any instant can be finished from any machine: --resume continues with the recorded
    plan, --rollback (or `orchestrator abort`) puts live back on blue. Both exit 2 when
    nothing was interrupted.

    \b
    On an environment with no stack yet nothing is live to gate against: promote then
    is a first deploy, an `up` that says so (outcome `deployed`), and asks as `up` does:
    the preview and "[y/N]" on a terminal, --yes (-y) to skip, refused without either
    (exit 6). The next promote is gated.

    \b
    Exit 7 gate failed, 9 aborted (live back on blue), 130 interrupted (live back on
    blue), 8 rollback incomplete (live may be split; the fix names the command for the
    recorded phase), 4 another run holds the lease, 11 an interrupted promotion needs
    --resume or --rollback, 12 this run lost the lease and stopped (the new holder goes on).
    Exit 2 before anything is published: --model (or project.model) is not a `model pack`
    archive, or green's model breaks live's contract without --allow-breaking-change.
    """
    from orchestrator.release.operations import PromoteOptions

    if resume and roll_back:
        raise click.UsageError("--resume and --rollback exclude each other")
    if pause_at is not None and (resume or roll_back):
        raise click.UsageError(
            "--pause-at applies to a new promotion (a resumed one keeps its recorded pause)"
        )
    options = PromoteOptions(
        schedule, dry_run, resume, roll_back, function_dir, model, pause_at,
        allow_breaking_change=allow_breaking_change,
    )  # fmt: skip

    def first_deploy(preview: Callable[[], Any]) -> None:
        fix = f"pass --yes (-y) to deploy the first version without asking, or run `orchestrator up --env {env_name}`"
        _confirm(ctx, "first deploy", fix, lambda: _asdict(preview()))

    def action() -> dict[str, Any]:
        release = _release(ctx, env_name, backend)
        if dry_run:
            return dict(release.dry_run(options))
        return dict(release.promote(options, None if yes else first_deploy).to_dict())

    _run(ctx, action, _report_text)


@main.command()
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def rollback(ctx: Ctx, env_name: str, backend: str | None) -> None:
    """Put `live` back on blue: of an interrupted promotion, or of the last one.

    Takes the promotion lease first: refused (exit 4) while another run holds it; use
    `orchestrator abort` to stop a running promotion.
    """
    _run(ctx, lambda: _release(ctx, env_name, backend).rollback(), _recovered_text)


def _wait_option(for_what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--wait SECONDS: how long a command waits for another machine's driver to act."""
    return click.option(
        "--wait", "wait_s", type=float, default=None, metavar="SECONDS",
        help=f"How long to wait for {for_what} (default: lease_s + 30).",
    )  # fmt: skip


@main.command()
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@_wait_option("a running driver to roll back")
@click.option("--to", "to", metavar="VERSION", default=None,
              help="Put live on this published version instead of blue, and close the promotion there "
              "(when blue no longer exists).")  # fmt: skip
@json_option
@click.pass_obj
def abort(ctx: Ctx, env_name: str, backend: str | None, wait_s: float | None, to: str | None) -> None:
    """Stop a promotion from any machine and put `live` back on blue.

    \b
    - a running driver sees the request at its next heartbeat (about a second),
      rolls back and exits 9;
    - a driver that is gone (killed, cancelled CI job): abort waits until its lease
      expires, takes the lease and rolls back itself;
    - an interrupted rollback (record `rolling_back`) is finished;
    - nothing in flight but live split: live is put on the version the last
      promotion ended on.

    `--to VERSION`: when blue no longer exists (a version clean-up), put live on
    VERSION instead and close the promotion there (no driver may be running).

    Exit 0 once live is on blue at 100 % (or when nothing was in flight), 8 if the
    rollback could not complete, 4 if the driver kept the lease past the wait.
    """

    def act() -> dict[str, Any]:
        release = _release(ctx, env_name, backend)
        return release.abort_to(to) if to is not None else release.abort(wait_s)

    _run(ctx, act, _recovered_text)


@main.command("resume-promotion")
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@_wait_option("the paused driver to go on")
@json_option
@click.pass_obj
def resume_promotion(ctx: Ctx, env_name: str, backend: str | None, wait_s: float | None) -> None:
    """Let a promotion held by `promote --pause-at` go on, from any machine.

    \b
    - a driver holding the pause sees the go-ahead within a second and goes on to the
      next step; this command returns once it has (exit 0);
    - a driver that is gone (killed, cancelled CI job) while paused: this command takes
      the lease and drives the promotion on to its end, as `promote --resume` would
      (exit codes as for promote).

    Exit 2 when nothing is paused, 1 when the promotion did not go on (a breach or an
    abort ended the pause first). `orchestrator abort` rolls a paused promotion back.
    """

    def action() -> dict[str, Any]:
        return dict(_release(ctx, env_name, backend).resume_promotion(wait_s))

    _run(ctx, action, _resumed_text)


def _resumed_text(r: dict[str, Any]) -> str:
    if "steps" in r:  # this machine drove the promotion to its end
        return _report_text(r)
    return f"resumed: promotion {r['promotion']} of {r['env']} is {r['phase']}; {_live_text(r)}"


def _recovered_text(r: dict[str, Any]) -> str:
    promotion = f" (promotion {r['promotion']})" if r.get("promotion") else ""
    return f"{r['outcome']}: {r['env']} {_live_text(r)}{promotion}"


def _live_text(r: dict[str, Any]) -> str:
    """live as a result has it: `live v1 at 100%`, `live v1 + v2 10%`, or why it is unknown."""
    if r.get("live") is None:
        return f"live not read back ({r.get('live_unread', 'unknown')})"
    weights = ", ".join(f"v{v} {w:.0%}" for v, w in r.get("weights", {}).items())
    return f"live v{r['live']}" + (f" + {weights}" if weights else " at 100%")


@main.command()
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def status(ctx: Ctx, env_name: str, backend: str | None) -> None:
    """Versions, alias weights and any in-flight or interrupted promotion."""

    def human(s: dict[str, Any]) -> str:
        weights = ", ".join(f"v{v} {w:.0%}" for v, w in s["live"]["weights"].items())
        if s["live"].get("moving_from"):
            weights = f"moving: v{s['live']['moving_from']} serves until its provisioned concurrency is ready"
        lines = [
            f"{s['env']}: live v{s['live']['version']}" + (f" + {weights}" if weights else ""),
            f"  candidate v{s['candidate']}; versions {', '.join(s['versions'])}",
            *_model_lines(s),
            *(
                [f"  contract v{c['live']} (live) -> v{c['candidate']} (candidate): {c['text']}"]
                if (c := s.get("contract"))
                else []
            ),
        ]
        p = s.get("promotion")
        if p:
            lines.append(
                f"  last promotion {p['id']}: {p['phase']} (v{p['blue']} -> v{p['green']}, green at {p['weight']}%)"
                + (f": {p['reason']}" if p.get("reason") else "")
            )
        paused = bool(p and p["phase"] == "paused")
        if s["interrupted"]:
            lease = s["lease"]
            since = f"; its lease expired {-lease['expires_in_s']:.0f}s ago" if lease else ""
            go_on = f"resume-promotion --env {s['env']}" if paused else f"promote --env {s['env']} --resume"
            lines.append(
                f"  INTERRUPTED (driver {p['holder'] if p else '?'} is gone{since}): "
                f"`orchestrator {go_on}`, or `orchestrator abort --env {s['env']}`"
            )
        elif paused:
            lines.append(
                f"  PAUSED at {p['weight'] if p else '?'}% by {s['lock']}: "
                f"`orchestrator resume-promotion --env {s['env']}` to go on, `orchestrator abort --env {s['env']}` to roll back"
            )
        elif s["lease"] and s["lease"]["live"]:
            lines.append(f"  in flight: {s['lock']}")
        return "\n".join(lines)

    _run(ctx, lambda: _release(ctx, env_name, backend).status(), human)


def _asdict(result: Any) -> dict[str, Any]:
    from dataclasses import asdict

    # an operation's result: its diff is a preview's only, a note a first deploy's preview's
    return {k: v for k, v in asdict(result).items() if not (k in ("diff", "note") and v is None)}


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
@click.argument("promotion_id", metavar="[ID]", required=False)
@click.option(
    "--env",
    "env_name",
    default=None,
    metavar="NAME",
    help="Only this environment's reports (also --env before the command; default: every "
    "environment's, EDGESHIP_ENV and default_env are not applied).",
)
@json_option
@click.pass_obj
def report(ctx: Ctx, promotion_id: str | None, env_name: str | None) -> None:
    """List the promotions' reports (newest first), or show one by ID (a unique prefix, or
    `latest`). Each promotion's folder holds report.html (charts of latency, errors and
    weights; opens offline), report.md and report.json."""
    env_name = env_name or ctx.env

    def action() -> Any:
        from orchestrator.release import reports

        settings = ctx.settings()
        if env_name:
            settings.environment(env_name)  # a typo is an error, not an empty list
        root = settings.root / "reports"
        if promotion_id:
            return reports.show(root, env_name, promotion_id)
        return reports.listing(root, env_name)

    def human(result: Any) -> str:
        from orchestrator.release import reports

        return reports.listing_text(result) if isinstance(result, list) else reports.show_text(result)

    _run(ctx, action, human)


# -- inspect: see and touch what runs (status's models, history, invoke, logs, doctor) ------


def _model_lines(s: dict[str, Any]) -> list[str]:
    """`status`: the model each routed version serves (from what it was published with)."""
    roles: dict[str, list[str]] = {}
    roles.setdefault(str(s["live"]["version"]), []).append("live")
    for version in s["live"].get("weights", {}):
        roles.setdefault(str(version), []).append("live")
    roles.setdefault(str(s["candidate"]), []).append("candidate")
    from orchestrator.stacks.deployed import ModelInfo

    lines = []
    for version, info in s.get("models", {}).items():
        model = ModelInfo(**{**info, "example": tuple(info["example"]), "features": tuple(info["features"])})
        source = {"package": ", model in the package", "s3": ", model from S3"}.get(model.delivery or "", "")
        lines.append(
            f"  v{version} ({', '.join(dict.fromkeys(roles.get(version, [])))}): {model.describe()}{source}"
        )
    return lines


def _history(
    ctx: Ctx, env_name: str, backend: str | None, program: str | None, limit: int
) -> list[dict[str, Any]]:
    from orchestrator.base.errors import NotDeployedError
    from orchestrator.release import timeline
    from orchestrator.release.record import RecordStore

    target = _target(ctx, env_name, backend, program)
    updates = [timeline.update_row(u) for u in target.history(limit)]
    promotions: list[dict[str, Any]] = []
    if program is None:
        from botocore.exceptions import BotoCoreError, ClientError

        from orchestrator.base.progress import ProgressEvent

        try:
            store = RecordStore(target.s3_client(), target.bucket, env_name)
            records = store.history(limit)
        except NotDeployedError:  # never deployed, destroyed, or a local emulator that is gone
            records = []
        except (BotoCoreError, ClientError) as exc:  # the stack's history is still worth showing
            ctx.reporter().event(ProgressEvent("diagnostic", f"promotions not shown: {exc}"))
            records = []
        reports = ctx.settings().root / "reports"
        promotions = [timeline.promotion_row(r, timeline.report_of(reports, env_name, r.id)) for r in records]
    return timeline.merge(updates, promotions, limit)


def _history_text(rows: list[dict[str, Any]]) -> str:
    from orchestrator.base.progress import counts

    lines = []
    for r in rows:
        took = f"  {r['duration_s']:.1f}s" if r.get("duration_s") is not None else ""
        if r["type"] == "promotion":
            lines.append(
                f"{r['started']}  promotion {r['outcome']:<12} v{r['blue']} -> v{r['green']}{took}"
                + (f"  {r['reason']}" if r.get("reason") else "")
                + (f"\n{'':<27}report: {r['report']}" if r.get("report") else "")
            )
        else:
            lines.append(
                f"{r['started']}  {r['kind']:<9} {r['result']:<12} {counts(r['changes'], with_same=False)}{took}"
                + (f"  (#{r['version']})" if r["version"] else "")
            )
    return "\n".join(lines) or "(no updates)"


@main.command()
@env_option
@click.option(
    "--data", default=None, metavar="JSON", help="Request body (default: the live model's example row)."
)
@click.option(
    "--route",
    type=click.Choice(["live", "candidate"]),
    default="live",
    show_default=True,
    help="live: the edge, as users call it; candidate: the IAM route to the candidate alias (signed).",
)
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def invoke(ctx: Ctx, env_name: str, data: str | None, route: str, backend: str | None) -> None:
    """Send one inference request to an environment and print the answer.

    POSTs to /infer on the edge (live) or the signed /candidate/infer route (candidate) and
    prints the HTTP status, the function version that answered (its x-function-version
    header; none when API Gateway itself answered) and the body. Exit 0 for a 2xx answer,
    1 otherwise.

    \b
    Example:
      orchestrator invoke --env local
      orchestrator invoke --env dev --route candidate --data '{"inputs": [5.1, 3.5, 1.4, 0.2]}'
    """
    from orchestrator.project import invoke as calling
    from orchestrator.stacks import deployed

    answer: dict[str, Any] = {}

    def action() -> dict[str, Any]:
        target = _target(ctx, env_name, backend)
        if data is None:  # one row of the model the route's alias serves
            lam, s3 = target.lambda_client(), target.s3_client()
            alias = lam.get_alias(FunctionName=target.function_name, Name=route)
            model = deployed.model_of(lam, s3, target.function_name, str(alias["FunctionVersion"]))
            body = calling.body_of(None, model.example, len(model.features))
        else:
            body = calling.body_of(data, (), 0)
        endpoint = target.edge() if route == "live" else target.candidate()
        answer.update(calling.send(calling.call_for(endpoint, body), route).to_dict())
        return answer

    def human(r: dict[str, Any]) -> str:
        import json

        who = f"v{r['version']}" if r["version"] else "no function version (the platform answered)"
        model = f", model {r['model_version']}" if r.get("model_version") else ""
        text = r["body"] if isinstance(r["body"], str) else json.dumps(r["body"])
        return f"HTTP {r['status']} from {who}{model} via {r['route']} ({r['latency_ms']:.0f} ms)\n{text}"

    _run(ctx, action, human)
    if answer and not 200 <= int(answer["status"]) < 300:
        sys.exit(int(ExitCode.ERROR))


@main.command()
@env_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option(
    "--since",
    default="10m",
    show_default=True,
    metavar="DURATION",
    help="From how long ago: 30s, 10m, 2h, 1d.",
)
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def logs(ctx: Ctx, env_name: str, follow: bool, since: str, backend: str | None) -> None:
    """Print the function's logs: CloudWatch Logs on AWS (/aws/lambda/<function>), the local
    edge's log for the local environment (the edge's events and its sandboxes' output).

    With --json, one JSON object per line ({time, stream, text}); --follow keeps going
    until Ctrl-C (exit 0).
    """
    import json
    import time

    from orchestrator.project import logs as logging_

    def show(line: Any) -> None:
        click.echo(json.dumps(line.to_dict()) if ctx.as_json else line.render())

    def action() -> dict[str, Any]:
        start = time.time() - logging_.since_seconds(since)
        settings = ctx.settings()
        env = settings.environment(env_name)
        if env.is_local:
            path = settings.root / ".edgeship" / "local" / "edge.log"
            texts, offset = logging_.read_local(path)
            for line in logging_.window(texts, start):
                show(line)
            if follow:
                for line in logging_.follow_local(path, offset):
                    show(line)
            return {}
        target = _target(ctx, env_name, backend)
        client, group = target.cloud.client("logs"), logging_.log_group(target.function_name)
        lines = (
            logging_.follow_cloudwatch(client, group, start)
            if follow
            else iter(logging_.read_cloudwatch(client, group, start))
        )
        for line in lines:
            show(line)
        return {}

    try:
        action()  # prints as it goes: no document at the end
    except KeyboardInterrupt:
        sys.exit(0 if follow else int(ExitCode.INTERRUPTED))  # Ctrl-C is how --follow ends
    except EdgeshipError as exc:
        _run(ctx, _raiser(exc), str)  # reported as every command reports errors


def _raiser(exc: Exception) -> Callable[[], Any]:
    def again() -> Any:
        raise exc

    return again


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
