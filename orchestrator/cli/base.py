"""What every command of the `orchestrator` CLI shares: the `main` group (orchestrator.cli's
entry point; the family modules register their commands on it), the context (Ctx), how results
and errors are printed and turned into exit codes, the option decorators, and the helpers more
than one family calls (an environment's stack target and release, the preview's text, the
question before a change). It imports none of the family modules: they import it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from orchestrator.base.errors import EXIT_CODE_HELP, EdgeshipError, ExitCode, RefusedError

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


def _release(ctx: Ctx, env_name: str, backend: str | None) -> Any:
    from orchestrator.release.operations import Release

    settings = ctx.settings()
    target = _target(ctx, env_name, backend)
    return Release(target, settings.environment(env_name), ctx.reporter(), settings.root / "reports")


def _asdict(result: Any) -> dict[str, Any]:
    from dataclasses import asdict

    # an operation's result: its diff is a preview's only, a note a first deploy's preview's
    return {k: v for k, v in asdict(result).items() if not (k in ("diff", "note") and v is None)}
