"""The release commands: promote, rollback, abort, resume-promotion, status, report, and the text
they print (a promotion's plan and report, where `live` is, the models status shows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.base import Ctx, _asdict, _confirm, _release, _run, env_option, json_option, main


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
