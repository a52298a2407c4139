"""`history`: stack updates and promotions on one timeline, times in ISO 8601 with their zone.

Stack updates come from the engine's history (Pulumi gives UTC times without a zone);
promotions from the promotion records' history copies (record.py), timed by their
transitions (Unix seconds). Both are shown in UTC with an explicit `+00:00`, newest first.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from orchestrator.release.machine import PromotionRecord


def iso(value: str | float | datetime.datetime | None) -> str | None:
    """ISO 8601 with its offset: Unix seconds, a datetime or an ISO string; one without a
    zone is taken as UTC (the Automation API parses Pulumi's `...Z` times into naive ones)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
    elif isinstance(value, datetime.datetime):
        moment = value
    else:
        moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


def update_row(update: dict[str, Any]) -> dict[str, Any]:
    """A stack update (stacks.history's entry) as a timeline row."""
    started, ended = iso(update.get("started")), iso(update.get("ended"))
    duration = _seconds(started, ended)
    return {**update, "type": "stack", "started": started, "ended": ended, "duration_s": duration}


def promotion_row(record: PromotionRecord, report: Path | None) -> dict[str, Any]:
    """A promotion as a timeline row: outcome (its phase), versions, duration, report."""
    times = [t.at for t in record.transitions]
    started = iso(times[0]) if times else None
    ended = iso(times[-1]) if times and not record.in_flight else None
    return {
        "type": "promotion",
        "id": record.id,
        "started": started,
        "ended": ended,
        "duration_s": round(times[-1] - times[0], 1) if len(times) > 1 else 0.0 if times else None,
        "outcome": str(record.phase),
        "blue": record.blue,
        "green": record.green,
        "reason": record.reason,
        "report": str(report) if report else None,
    }


def merge(
    updates: list[dict[str, Any]], promotions: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Both kinds of rows, newest first, `limit` in all."""
    rows = [*updates, *promotions]
    rows.sort(key=lambda r: r["started"] or "", reverse=True)
    return rows[:limit]


def report_of(reports_root: Path, env: str, promotion: str) -> Path | None:
    """Where this machine keeps the promotion's report (operations.py writes it there), if it does."""
    directory = reports_root / env / promotion
    return directory if directory.is_dir() else None


def _seconds(started: str | None, ended: str | None) -> float | None:
    if not started or not ended:
        return None
    delta = datetime.datetime.fromisoformat(ended) - datetime.datetime.fromisoformat(started)
    return round(delta.total_seconds(), 1)
