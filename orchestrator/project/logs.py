"""`logs`: the function's log lines, where the environment keeps them.

    AWS    CloudWatch Logs, log group /aws/lambda/<function> (FilterLogEvents), every stream
    local  .edgeship/local/edge.log: the edge's own events and its sandboxes' stdout/stderr
           (worker.py hands them the edge's output, as Lambda hands a sandbox's to its log)

The local file has no time per line as CloudWatch does: the edge's events and the
handler's log lines are JSON with a `ts` (Unix seconds); anything else (a traceback the
runtime printed) belongs with the timed lines around it, so `--since` keeps such a line
when the timed line before or after it is in the window.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.base.errors import UsageError
from orchestrator.release.timeline import iso

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_SINCE = "10m"


@dataclass(frozen=True)
class LogLine:
    """One line of the function's log."""

    at: float | None  # Unix seconds, when the line says
    text: str
    stream: str = ""  # CloudWatch's log stream (one per sandbox); empty locally

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": iso(self.at) if self.at is not None else None,
            "stream": self.stream,
            "text": self.text,
        }

    def render(self) -> str:
        when = iso(self.at) if self.at is not None else ""
        return f"{when:<25} {self.text}"


def since_seconds(text: str) -> float:
    """`10m` -> 600.0: seconds, minutes, hours or days (a bare number is seconds)."""
    found = _SINCE.match(text)
    if not found:
        raise UsageError(f"--since {text!r} is not a duration", fix="e.g. --since 30s, 10m, 2h or 1d")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def line_time(text: str) -> float | None:
    """The `ts` of a JSON log line (edge events, the handler's lines), else None."""
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    ts = data.get("ts") if isinstance(data, dict) else None
    return float(ts) if isinstance(ts, int | float) else None


def window(texts: list[str], since: float | None) -> list[LogLine]:
    """The lines at or after `since` (all with None). A line without a time is kept when the
    nearest timed line before or after it is in the window (or there is none after it: it
    is among the newest)."""
    times = [line_time(t) for t in texts]
    after: list[float | None] = [None] * len(texts)
    following: float | None = None
    for i in range(len(texts) - 1, -1, -1):
        after[i] = following
        if times[i] is not None:
            following = times[i]
    kept, before = [], None
    for text, at, nxt in zip(texts, times, after, strict=True):
        if at is not None:
            before = at
        if since is None:
            keep = True
        elif at is not None:
            keep = at >= since
        else:
            keep = nxt is None or nxt >= since or (before is not None and before >= since)
        if keep:
            kept.append(LogLine(at, text))
    return kept


def read_local(path: Path, offset: int = 0) -> tuple[list[str], int]:
    """Complete lines of the file from `offset`, and the offset after the last of them (a
    line still being written is left for the next read)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode(errors="replace").splitlines()
    return [line for line in lines if line.strip()], offset + end


def follow_local(path: Path, offset: int, poll_s: float = 0.5) -> Iterator[LogLine]:
    """Lines appended to the file from `offset` on, until interrupted."""
    while True:
        texts, offset = read_local(path, offset)
        for text in texts:
            yield LogLine(line_time(text), text)
        if not texts:
            time.sleep(poll_s)


def log_group(function: str) -> str:
    """The log group Lambda writes the function's output to."""
    return f"/aws/lambda/{function}"


def read_cloudwatch(logs: Any, group: str, since: float, seen: set[str] | None = None) -> list[LogLine]:
    """Every event of the group's streams from `since` on, oldest first (`seen`: event ids
    already shown, skipped and added to)."""
    seen = set() if seen is None else seen
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int(since * 1000), "interleaved": True}
    lines: list[LogLine] = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(**kwargs)
        for page in pages:
            for event in page.get("events", ()):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                text = str(event["message"]).rstrip("\n")
                lines.append(LogLine(event["timestamp"] / 1000, text, str(event.get("logStreamName", ""))))
    except logs.exceptions.ResourceNotFoundException:
        raise UsageError(
            f"log group {group} does not exist (yet)",
            fix="Lambda creates it at the function's first invocation: call it once (`orchestrator invoke`)",
        ) from None
    lines.sort(key=lambda line: line.at or 0.0)
    return lines


def follow_cloudwatch(logs: Any, group: str, since: float, poll_s: float = 2.0) -> Iterator[LogLine]:
    """New events of the group as they arrive, until interrupted (ids dedupe the overlap
    between polls: events can arrive late, so each poll looks back a little)."""
    seen: set[str] = set()
    newest = since
    while True:
        lines = read_cloudwatch(logs, group, max(since, newest - 30), seen)
        for line in lines:
            newest = max(newest, line.at or newest)
            yield line
        if not lines:
            time.sleep(poll_s)
