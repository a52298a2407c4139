"""The reports folder (reports/<env>/<promotion id>/): kept bounded, listed and shown.

A promotion id starts with its UTC start time (`20261206T231500-ab12cd`), so names sort in
time order; `to_prune` (pure) picks the oldest beyond `reports.keep`, never the promotion
that just wrote its own. `listing`/`show` read report.json as `orchestrator report` prints it.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
from pathlib import Path
from typing import Any

from orchestrator.base.errors import UsageError

# A promotion's folder: the id PromotionRecord.new makes.
ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{6}$")


def to_prune(names: list[str], keep: int, current: str | None = None) -> list[str]:
    """The promotion folders to delete, oldest first: all but the newest `keep` (at least one
    is always kept, and `current` never goes). Folders not named as promotions are left alone."""
    ids = sorted(n for n in names if ID.match(n))
    doomed = ids[: max(0, len(ids) - max(1, keep))]
    return [n for n in doomed if n != current]


def prune(env_dir: Path, keep: int, current: str | None = None) -> list[Path]:
    """Delete the environment's oldest promotion folders beyond `keep`; returns what went."""
    if not env_dir.is_dir():
        return []
    gone = []
    for name in to_prune([p.name for p in env_dir.iterdir() if p.is_dir()], keep, current):
        shutil.rmtree(env_dir / name)
        gone.append(env_dir / name)
    return gone


def when(ts: float | None, tz: datetime.tzinfo | None = None) -> str:
    """A time as the reports show it, with its zone (default: this machine's)."""
    if ts is None:
        return "?"
    moment = datetime.datetime.fromtimestamp(ts, datetime.UTC).astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment.tzname() else moment.isoformat()


def _started(report: dict[str, Any], name: str) -> float | None:
    """When it started: the report's own time, else the id's UTC stamp (older reports)."""
    if report.get("started_at") is not None:
        return float(report["started_at"])
    try:
        stamp = datetime.datetime.strptime(name[:15], "%Y%m%dT%H%M%S").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None
    return stamp.timestamp()


def _row(directory: Path, report: dict[str, Any]) -> dict[str, Any]:
    started = _started(report, directory.name)
    html = directory / "report.html"
    return {
        "id": directory.name,
        "env": report.get("env") or directory.parent.name,
        "started_at": started,
        "started": when(started),
        "outcome": report.get("outcome", "?"),
        "blue": report.get("blue"),
        "green": report.get("green"),
        "reason": report.get("reason", ""),
        "directory": str(directory),
        "html": str(html) if html.exists() else None,
    }


def _read(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "report.json").read_text())
    except (OSError, ValueError):
        return None  # a promotion still running, or a folder that is not a report
    return data if isinstance(data, dict) else None


def listing(root: Path, env: str | None = None) -> list[dict[str, Any]]:
    """Every report under `root` (of one environment, or all), newest first."""
    if env:
        env_dirs = [root / env]
    else:
        env_dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    rows = []
    for env_dir in env_dirs:
        if not env_dir.is_dir():
            continue
        for directory in env_dir.iterdir():
            report = _read(directory) if ID.match(directory.name) else None
            if report is not None:
                rows.append(_row(directory, report))
    return sorted(rows, key=lambda r: (r["id"], r["env"]), reverse=True)


def show(root: Path, env: str | None, wanted: str) -> dict[str, Any]:
    """One report (report.json with where its files are), by id or a unique prefix of it
    (`latest`: the newest)."""
    rows = listing(root, env)
    if wanted == "latest":
        matches = rows[:1]
    else:
        matches = [r for r in rows if r["id"] == wanted] or [r for r in rows if r["id"].startswith(wanted)]
    if len(matches) != 1:
        where = f"reports/{env}" if env else "reports/"
        known = ", ".join(r["id"] for r in rows[:5]) or "none"
        raise UsageError(
            f"{'no' if not matches else 'more than one'} report {wanted!r} in {where} (newest: {known})",
            fix="run `orchestrator report` to list them, and give a whole id",
        )
    row = matches[0]
    report = _read(Path(row["directory"])) or {}
    return {**report, **row}


def listing_text(rows: list[dict[str, Any]]) -> str:
    """`orchestrator report` without an id: one line per promotion."""
    if not rows:
        return "(no reports)"
    head = f"{'ID':<23} {'ENV':<8} {'STARTED':<27} {'OUTCOME':<19} VERSIONS"
    lines = [
        f"{r['id']:<23} {r['env']:<8} {r['started']:<27} {r['outcome']:<19} v{r['blue']} -> v{r['green']}"
        for r in rows
    ]
    return "\n".join([head, *lines])


def show_text(report: dict[str, Any]) -> str:
    """`orchestrator report ID`: the promotion in a few lines, then one line per gate."""
    lines = [
        f"promotion {report['id']} on {report['env']}: {report.get('outcome', '?')}",
        f"  v{report.get('blue')} -> v{report.get('green')}, schedule {report.get('schedule', '?')}, "
        f"started {report['started']}"
        + (f", took {report['ended_at'] - report['started_at']:.0f} s" if report.get("ended_at") else ""),
    ]
    if report.get("reason"):
        lines.append(f"  reason: {report['reason']}")
    for step in report.get("steps", []):
        green, blue = step.get("green") or {}, step.get("blue") or {}
        weight = "alone" if step["name"] == "pre-traffic" else f"{step['weight']}%"
        versus = f"; blue p95 {blue.get('p95_ms', 0):.1f} ms" if blue else ""
        lines.append(
            f"  {step['name']:<12} green {weight:<6} {step['verdict']:<12} green p50 {green.get('p50_ms', 0):.1f} ms, "
            f"p95 {green.get('p95_ms', 0):.1f} ms, errors {green.get('error_ratio', 0):.2%}{versus}"
        )
    for bake in report.get("bakes", []):
        lines.append(f"  {bake['name']:<12} bake {bake['seconds']:.0f} s: {bake['verdict']}")
    pages = (
        ("report.html", "report.md", "report.json") if report.get("html") else ("report.md", "report.json")
    )
    lines.append(f"  files: {report['directory']}/{', '.join(pages)}")
    return "\n".join(lines)
