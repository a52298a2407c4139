"""Engine events -> progress a person can follow, or JSON lines a machine can parse."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import IO, Any, ClassVar, Protocol


@dataclass(frozen=True)
class ProgressEvent:
    """One thing worth reporting while long work runs."""

    kind: str  # "resource" | "diagnostic" | "summary" | "step" | "info"
    message: str
    urn: str | None = None
    op: str | None = None
    status: str | None = None  # "started" | "done" | "failed"
    data: dict[str, Any] | None = None


class Reporter(Protocol):
    """Where progress goes. The CLI picks one; the release machinery only calls it."""

    def event(self, event: ProgressEvent) -> None: ...


class JsonLinesReporter:
    """One JSON object per line on stderr, so stdout stays a single JSON result (and, on GitHub
    Actions only, the workflow commands of failures and warnings)."""

    def __init__(self, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
        from orchestrator.base.output import Printer

        self.stream = stream or sys.stderr
        # On GitHub Actions the workflows run `promote --json > promotion.json`: stderr is the
        # log, so failures are annotated there too (lines starting `::` are not JSON).
        self.printer = Printer(self.stream, environ)

    def event(self, event: ProgressEvent) -> None:
        record = {"ts": round(time.time(), 3), **{k: v for k, v in asdict(event).items() if v is not None}}
        annotation = _annotation(event)
        if annotation:
            self.printer.annotate(*annotation)
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class ConsoleReporter:
    """Readable lines on stderr: coloured on a terminal; one plain line per message when
    piped or logged (no wrapping, no trailing spaces: see output.py); on GitHub Actions,
    failures and warnings also as annotations and the engine's resource lines folded."""

    _STYLE: ClassVar[dict[str, str]] = {"started": "cyan", "done": "green", "failed": "bold red"}
    # Piped output has no colours: the suffix tells a resource's start from its end.
    _SUFFIX: ClassVar[dict[str, str]] = {"started": " ...", "done": ": done", "failed": ": FAILED"}

    def __init__(self, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
        from orchestrator.base.output import Printer

        self.printer = Printer(stream or sys.stderr, environ)

    def event(self, event: ProgressEvent) -> None:
        style = self._STYLE.get(event.status or "", "")
        if event.kind == "resource":
            if not self.printer.in_group():  # the engine's resource lines fold into one group on GitHub
                self.printer.group(f"pulumi: {event.op or 'update'} ...")
            text = f"  {event.op or ''} {event.message}{self._SUFFIX.get(event.status or '', '')}"
        elif event.kind == "diagnostic":
            style = "yellow" if event.status != "failed" else "bold red"
            text = f"  ! {event.message}"
        else:
            text = event.message
        if event.kind != "resource":
            self.printer.end_group()
        annotation = _annotation(event)
        if annotation:
            self.printer.annotate(*annotation)
        self.printer.line(text, style=style or None)


def _annotation(event: ProgressEvent) -> tuple[str, str, str] | None:
    """(level, message, title) of the GitHub annotation an event deserves, if any: engine
    errors and failed resources, warnings, a gate that failed or stayed inconclusive."""
    if event.kind == "diagnostic":
        level = "error" if event.status == "failed" else "warning"
        return level, event.message, "edgeship" if level == "warning" else "edgeship error"
    if event.kind == "resource" and event.status == "failed":
        return "error", f"{event.op or 'operation'} of {event.message} failed", "pulumi"
    if event.kind == "gate":
        verdict = str((event.data or {}).get("verdict", ""))
        if verdict == "fail" or "breached" in event.message:
            return "error", event.message, "gate failed"
        if verdict == "void":
            return "error", event.message, "gate void: blue failed the load"
        if verdict == "inconclusive":
            return "warning", event.message, "gate inconclusive"
    return None


class NullReporter:
    """Swallows progress (library use and tests)."""

    def event(self, event: ProgressEvent) -> None:
        return None


def from_engine_event(raw: Any) -> ProgressEvent | None:
    """Map a pulumi.automation EngineEvent to a ProgressEvent (None: not worth showing)."""
    if raw.resource_pre_event is not None:
        meta = raw.resource_pre_event.metadata
        if op_name(meta.op) == "same":
            return None
        return ProgressEvent(
            "resource", _short(meta.urn), urn=meta.urn, op=op_name(meta.op), status="started"
        )
    if raw.res_outputs_event is not None:
        meta = raw.res_outputs_event.metadata
        if op_name(meta.op) == "same":
            return None
        return ProgressEvent("resource", _short(meta.urn), urn=meta.urn, op=op_name(meta.op), status="done")
    if raw.res_op_failed_event is not None:
        meta = raw.res_op_failed_event.metadata
        return ProgressEvent("resource", _short(meta.urn), urn=meta.urn, op=op_name(meta.op), status="failed")
    if raw.diagnostic_event is not None:
        diag = raw.diagnostic_event
        if diag.severity not in ("warning", "error") or diag.ephemeral:
            return None
        message = (diag.message or "").strip()
        return ProgressEvent(
            "diagnostic", message, urn=diag.urn, status="failed" if diag.severity == "error" else None
        )
    if raw.summary_event is not None:
        changes = {op_name(k): v for k, v in (raw.summary_event.resource_changes or {}).items()}
        return ProgressEvent("summary", f"changes: {counts(changes)}", data={"changes": changes})
    return None


def _short(urn: str) -> str:
    # urn:pulumi:stack::project::type::name -> "type name" (a dynamic resource's type
    # without the dynamic provider's prefix: "edgeship:Function function")
    parts = urn.split("::")
    kind = parts[-2].removeprefix("pulumi-python:dynamic/") if len(parts) >= 4 else ""
    return f"{kind} {parts[-1]}" if len(parts) >= 4 else urn


def counts(changes: dict[str, int], *, with_same: bool = True) -> str:
    """'1 replace, 2 update, 6 same' (without the unchanged ones unless `with_same`)."""
    shown = [f"{n} {op}" for op, n in sorted(changes.items()) if n and (with_same or op != "same")]
    return ", ".join(shown) or "no changes"


def op_name(op: Any) -> str:
    """The engine's word for an operation (\"create\", \"same\", ...)."""
    # OpType is a str Enum; its value is the word the CLI prints ("create", "same", ...).
    return str(getattr(op, "value", op))
