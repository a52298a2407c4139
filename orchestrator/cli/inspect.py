"""The inspect commands: history, invoke, logs: see and touch what runs. (status, with the models
each routed version serves, is in release.py; doctor, which checks this machine, in project.py.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from orchestrator.base.errors import EdgeshipError, ExitCode
from orchestrator.cli.base import Ctx, _run, _target, env_option, json_option, main, stack_options


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
