"""The `orchestrator` command: parse, call, print. No release logic lives here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from orchestrator.errors import EXIT_CODE_HELP, EdgeshipError, ExitCode, RefusedError

EXIT_CODES_TEXT = "\b\nExit codes:\n" + "\n".join(
    f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()
)


class Ctx:
    """What every command needs: where the config is and how to print."""

    # A plain class, not a dataclass: `--help` must not pay for importing dataclasses.
    def __init__(self, config: Path | None = None, as_json: bool = False) -> None:
        self.config = config
        self.as_json = as_json

    def settings(self) -> Any:
        from orchestrator import settings

        return settings.load(self.config)

    def reporter(self) -> Any:
        from orchestrator.progress import ConsoleReporter, JsonLinesReporter

        return JsonLinesReporter() if self.as_json else ConsoleReporter()


def _emit(ctx: Ctx, payload: Any, human: Callable[[Any], str]) -> None:
    if ctx.as_json:
        import json

        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        click.echo(human(payload))


def _run(ctx: Ctx, action: Callable[[], Any], human: Callable[[Any], str]) -> None:
    """Call the action, print its result, and turn edgeship errors into exit codes."""
    try:
        payload = action()
    except EdgeshipError as exc:
        if ctx.as_json:
            import json

            click.echo(json.dumps(exc.to_dict(), indent=2))
        else:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.fix:
                click.secho(f"fix: {exc.fix}", err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        click.secho("interrupted", fg="red", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    _emit(ctx, payload, human)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` on every command: one JSON document on stdout, progress as JSON lines on stderr."""

    def callback(click_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            click_ctx.ensure_object(Ctx).as_json = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=callback,
        is_eager=True,
        help="Print one JSON document on stdout (progress goes to stderr as JSON lines).",
    )(f)


def env_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--env NAME`: which environment (stack) to act on."""
    return click.option(
        "--env",
        "env_name",
        required=True,
        metavar="NAME",
        help="Environment from edgeship.toml (local, dev, staging, prod, ...).",
    )(f)


def stack_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options of every command that drives the Pulumi engine."""
    f = click.option(
        "--backend",
        metavar="URL",
        default=None,
        help="State backend (file://DIR, s3://BUCKET/PREFIX, https://api.pulumi.com). "
        "Default: PULUMI_BACKEND_URL, then edgeship.toml, then .edgeship/state.",
    )(f)
    f = click.option(
        "--program",
        metavar="MODULE:FUNC",
        default=None,
        hidden=False,
        help="Inline Pulumi program to run instead of the serving stack (programs.serving:program).",
    )(f)
    return env_option(f)


@click.group(epilog=EXIT_CODES_TEXT, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path to edgeship.toml (default: the nearest one above the current directory).",
)
@click.version_option(package_name="edgeship")
@click.pass_context
def main(click_ctx: click.Context, config: Path | None) -> None:
    """Ship ML models to the AWS edge and roll them out safely.

    \b
    Typical flow:
      orchestrator envs                     list environments
      orchestrator preview --env dev        what `up` would change
      orchestrator up --env dev             deploy the stack (publishes a version)
      orchestrator outputs --env dev        edge URL, function, versions
      orchestrator promote --env dev        gated blue/green rollout of a new version
      orchestrator status --env dev         versions, weights, promotion in flight
      orchestrator destroy --env dev --yes  tear it down

    --env local rehearses all of it on this machine: an AWS API emulator and a local
    edge that runs the deployed code, no AWS account needed.

    Every command takes --json for machine-readable output.
    """
    click_ctx.ensure_object(Ctx).config = config


def _target(ctx: Ctx, env_name: str, backend: str | None, program: str | None = None) -> Any:
    """The environment's stack, as releases and stack commands use it (one path for all)."""
    from orchestrator.targets import open_environment

    settings = ctx.settings()
    env = settings.environment(env_name)
    return open_environment(settings, env, reporter=ctx.reporter(), backend=backend, program=program)


def _changes_line(result: dict[str, Any]) -> str:
    from orchestrator.progress import counts

    changes = counts(result["changes"])
    return f"{result['operation']} {result['stack']}: {changes} ({result['duration_s']:.1f}s)"


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
            }
            for e in settings.environments.values()
        ]

    def human(rows: list[dict[str, Any]]) -> str:
        head = f"{'ENV':<10} {'REGION':<12} {'ACCOUNT':<13} {'SCHEDULE':<12} {'MEMORY':>6}  ARCH"
        body = [
            f"{r['name']:<10} {r['region']:<12} {r['account_id']:<13} {r['schedule']:<12} {r['memory_mb']:>6}  {r['architecture']}"
            for r in rows
        ]
        return "\n".join([head, *body])

    _run(ctx, action, human)


@main.command()
@stack_options
@json_option
@click.pass_obj
def preview(ctx: Ctx, env_name: str, backend: str | None, program: str | None) -> None:
    """Show what `up` would change in an environment, changing nothing."""
    _run(ctx, lambda: _asdict(_target(ctx, env_name, backend, program).preview()), _changes_line)


@main.command()
@stack_options
@json_option
@click.pass_obj
def up(ctx: Ctx, env_name: str, backend: str | None, program: str | None) -> None:
    """Create or update an environment's stack. Ctrl-C cancels cleanly.

    Publishes a new version when the code, the model or the function's config changed
    (`live` stays where releases put it; `candidate` follows the new version). Refused
    (exit 4) while a promotion holds the environment's lease or was interrupted.

    For --env local this first starts the AWS API emulator if needed, and reads back
    what a restarted emulator or a stopped edge lost, so `up` recreates it.
    """

    def action() -> dict[str, Any]:
        if program is None:  # a promotion owns the function while its lease is live
            _release(ctx, env_name, backend).guard_stack_change("up")
        return _asdict(_target(ctx, env_name, backend, program).up())

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
    """List the stack's recent updates."""
    from orchestrator.progress import counts

    def human(rows: list[dict[str, Any]]) -> str:
        lines = [
            f"{r['started']}  {r['kind']:<8} {r['result']:<10} {counts(r['changes'], with_same=False)}"
            + (f"  (#{r['version']})" if r["version"] else "")
            for r in rows
        ]
        return "\n".join(lines) or "(no updates)"

    _run(ctx, lambda: _target(ctx, env_name, backend, program).history(limit), human)


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
    job), run it again: it finishes that rotation. Refused (exit 4) while a promotion
    holds the environment.

    \b
    Example:
      orchestrator rotate-origin-secret --env prod
    """

    def action() -> dict[str, Any]:
        from orchestrator import rotation

        release = _release(ctx, env_name, backend)
        release.guard_stack_change("rotate-origin-secret")
        target = release.target
        return rotation.rotate(target, ctx.reporter(), settle_s=target.cloud.origin_settle_s)

    _run(
        ctx, action, lambda r: f"origin secret rotated: {r['from']} -> {r['to']} ({len(r['stages'])} stages)"
    )


@main.command()
@stack_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Required to destroy prod.")
@click.option("--remove", is_flag=True, help="Also delete the stack and its history.")
@json_option
@click.pass_obj
def destroy(
    ctx: Ctx, env_name: str, backend: str | None, program: str | None, yes: bool, force: bool, remove: bool
) -> None:
    """Delete every resource of an environment. Asks first unless --yes; prod needs --force.

    For --env local this also stops the emulator and the edge and removes the stack (the
    emulator forgets everything when it stops, so there is no history worth keeping).
    """

    def action() -> dict[str, Any]:
        if env_name == "prod" and not force:
            raise RefusedError(
                "refusing to destroy prod without --force", fix="add --force if you really mean it"
            )
        if not yes and not (sys.stdin.isatty() and click.confirm(f"Destroy every resource in {env_name!r}?")):
            raise RefusedError(f"destroy of {env_name!r} not confirmed", fix="answer yes, or pass --yes")
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
        from orchestrator.clouds import build_package

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

        from orchestrator import stacks

        settings = ctx.settings()
        settings.environment(env_name)
        url = stacks.resolve_backend(backend, settings.backend, os.environ, settings.root)
        removed = stacks.unlock(url, settings.project, env_name, force=force)
        return {"stack": env_name, "removed": [str(p) for p in removed]}

    _run(ctx, action, lambda r: f"removed {len(r['removed'])} lock(s) from {r['stack']}")


# -- releases --------------------------------------------------------------------------------


def _release(ctx: Ctx, env_name: str, backend: str | None) -> Any:
    from orchestrator.release import Release

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


def _report_text(report: dict[str, Any]) -> str:
    if report.get("dry_run"):
        slo = report["slo"]
        return "\n".join(
            [
                f"plan for {report['env']}: v{report['blue']} -> {report['green']}",
                f"  schedule {report['schedule']}: green at {', '.join(f'{w}%' for w in report['steps'])}",
                f"  gates: {report['gates']} (1 pre-traffic + 1 per step), bake {report['bake_s']:g}s"
                + _late_metrics(report)
                + f"load {report['load']['users']} users x {report['load']['duration_s']:g}s",
                f"  thresholds: p95 <= {slo['p95_ms']:g} ms, p99 <= {slo['p99_ms']:g} ms, errors <= {slo['max_error_ratio']:.1%}, "
                f">= {slo['min_rps']:g} rps, >= {slo['min_samples']} samples, p95 <= blue x {slo['relative_p95_factor']:g}",
                "  watched through every bake: green's Lambda Errors, Throttles, Duration"
                + (f"; alarms {', '.join(slo['alarms'])}" if slo.get("alarms") else ""),
                *(f"  hook ({h['on']}): {h['run']}" for h in report.get("hooks", [])),
                *([f"  pause after the gate at {report['pause_at']}%"] if report.get("pause_at") else []),
                f"  expected duration: {report['expected_duration_s']:.0f}s if every gate passes"
                + (" (plus the pause)" if report.get("pause_at") else ""),
            ]
        )
    lines = [
        f"{report['outcome']}: {report['env']} v{report['blue']} -> v{report['green']} {report.get('reason') or ''}".rstrip()
    ]
    if report.get("directory"):
        lines.append(f"report: {report['directory']}/report.md")
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
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
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
    backend: str | None,
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
    Exit 7 gate failed, 9 aborted (live back on blue), 130 interrupted (live back on
    blue), 8 rollback incomplete (live may be split: run `orchestrator abort`), 4 another
    run holds the lease or an interrupted promotion needs --resume or --rollback.
    """
    from orchestrator.release import PromoteOptions

    if resume and roll_back:
        raise click.UsageError("--resume and --rollback exclude each other")
    if pause_at is not None and (resume or roll_back):
        raise click.UsageError(
            "--pause-at applies to a new promotion (a resumed one keeps its recorded pause)"
        )
    options = PromoteOptions(schedule, dry_run, resume, roll_back, function_dir, model, pause_at)

    def action() -> dict[str, Any]:
        release = _release(ctx, env_name, backend)
        if dry_run:
            return dict(release.dry_run(options))
        return dict(release.promote(options).to_dict())

    _run(ctx, action, _report_text)


@main.command()
@env_option
@click.option("--backend", metavar="URL", default=None, help="State backend (as for `up`).")
@json_option
@click.pass_obj
def rollback(ctx: Ctx, env_name: str, backend: str | None) -> None:
    """Put `live` back on blue: of an interrupted promotion, or of the last one.

    Takes the promotion lease first: refused (exit 4) while a live driver holds it; use
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
@json_option
@click.pass_obj
def abort(ctx: Ctx, env_name: str, backend: str | None, wait_s: float | None) -> None:
    """Stop a promotion from any machine and put `live` back on blue.

    \b
    - a running driver sees the request at its next heartbeat (about a second),
      rolls back and exits 9;
    - a driver that is gone (killed, cancelled CI job): abort waits until its lease
      expires, takes the lease and rolls back itself;
    - an interrupted rollback (record `rolling_back`) is finished.

    Exit 0 once live is on blue at 100 % (or when nothing was in flight), 8 if the
    rollback could not complete, 4 if the driver kept the lease past the wait.
    """
    _run(ctx, lambda: _release(ctx, env_name, backend).abort(wait_s), _recovered_text)


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
    weights = ", ".join(f"v{v} {w:.0%}" for v, w in r.get("weights", {}).items())
    live = f"live v{r['live']}" + (f" + {weights}" if weights else " at 100%")
    return f"resumed: promotion {r['promotion']} of {r['env']} is {r['phase']}; {live}"


def _recovered_text(r: dict[str, Any]) -> str:
    weights = ", ".join(f"v{v} {w:.0%}" for v, w in r.get("weights", {}).items())
    live = f"live v{r['live']}" + (f" + {weights}" if weights else " at 100%")
    promotion = f" (promotion {r['promotion']})" if r.get("promotion") else ""
    return f"{r['outcome']}: {r['env']} {live}{promotion}"


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

    return asdict(result)


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
        from orchestrator.errors import UsageError
        from orchestrator.modelpack import PackRequest, pack

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
    default="pypi",
    show_default=True,
    metavar="pypi|WHEEL|git+https://...@REF",
    help="Where the workflow installs edgeship from: this release from PyPI, a wheel committed "
    "in the repository, or a git URL at a pinned ref (the workflow's EDGESHIP_INSTALL).",
)
@json_option
@click.pass_obj
def init(ctx: Ctx, directory: Path, name: str | None, force: bool, install_from: str) -> None:
    """Start shipping a model from this repository (or DIRECTORY).

    \b
    Writes:
      edgeship.toml                          environments local, dev, staging, prod
      .github/workflows/edgeship-deploy.yml  previews, deploys, approvals, recovery
      models/model.tar.gz                    the sample model (replace it: `model pack`)
    appends a short section to README.md, and adds what edgeship writes (.edgeship/,
    .tools/, reports/, .venv/) to .gitignore. Refuses to overwrite any of those files
    unless --force (exit 6). Then: `orchestrator up --env local`.
    """

    def action() -> dict[str, Any]:
        from orchestrator.scaffold import install_spec, project_name, write

        root = directory.resolve()
        project = name or project_name(root)
        install = install_spec(install_from, root)
        root.mkdir(parents=True, exist_ok=True)
        return {
            "directory": str(root),
            "project": project,
            "install": install,
            **write(root, project, force=force, install=install),
        }

    _run(
        ctx,
        action,
        lambda r: (
            "\n".join(f"wrote {p}" for p in r["written"] + r["readme"] + r["gitignore"])
            + "\nnext: orchestrator up --env local"
        ),
    )


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
        from orchestrator import toolchain

        where = target or (ctx.settings().root / ".tools" / "pulumi")
        toolchain.install(where)
        return {"pulumi_root": str(where), "version": toolchain.pulumi_version(where)}

    _run(ctx, action, lambda r: f"pulumi {r['version']} in {r['pulumi_root']}/bin")
