"""How the CLI writes for whoever reads it: a terminal, a log file, or a GitHub Actions runner.

A log (stdout/stderr not a terminal) gets one message per line, no colours, no trailing
spaces: a renderer that wraps at a guessed width (rich assumes 80 columns without a
terminal) breaks `green p95 11.2 ms` across lines and pads them. On GitHub Actions
(`GITHUB_ACTIONS=true`) errors and warnings also become workflow commands, which the
runner shows as annotations on the run and the pull request, and commands append Markdown
to `$GITHUB_STEP_SUMMARY`.

The decisions (`mode`, `escape_data`, `escape_property`, `command`, the summaries) are pure;
`Printer` is the only part that writes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class Mode:
    """How to write to one stream."""

    terminal: bool  # a person at a terminal: rich may style and fit lines to its width
    color: bool
    github: bool  # workflow commands (::error::, ::warning::, ::group::) are understood


def mode(environ: Mapping[str, str], isatty: bool) -> Mode:
    """Colours only on a terminal and never with NO_COLOR set (https://no-color.org: any
    non-empty value); workflow commands only where GitHub Actions reads them."""
    no_color = bool(environ.get("NO_COLOR"))
    return Mode(
        terminal=isatty,
        color=isatty and not no_color and environ.get("TERM") != "dumb",
        github=environ.get("GITHUB_ACTIONS") == "true",
    )


def escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped as GitHub's toolkit does
    (`%` first, so an escape already in the text survives as text)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (`title=`): also `:` and `,`, which end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> str:
    """One workflow-command line, e.g. `::error title=gate failed::p95 300 ms > 250 ms`."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def plain(text: str) -> str:
    """A message as lines of a log: trailing spaces gone, continuation lines indented so a
    reader (or grep) sees where one message ends."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()] or [""]
    return "\n".join([lines[0], *(f"    {line}" if line else "" for line in lines[1:])])


class Printer:
    """Writes messages to one stream as its `Mode` says."""

    def __init__(self, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.stream = stream or sys.stderr
        isatty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = mode(os.environ if environ is None else environ, isatty)
        self._console: Any = None

    def line(self, text: str, style: str | None = None) -> None:
        """One message. A terminal gets rich's styling; anything else the bare text."""
        if self.mode.terminal:
            if self._console is None:
                from rich.console import Console

                self._console = Console(
                    file=self.stream, highlight=False, no_color=not self.mode.color, soft_wrap=True
                )
            self._console.print(text, style=style if self.mode.color else None, markup=False)
            return
        self.stream.write(plain(text) + "\n")
        self.stream.flush()

    def annotate(self, level: str, message: str, title: str = "") -> None:
        """An `::error::` / `::warning::` / `::notice::` on GitHub Actions; nothing elsewhere
        (the message itself is printed by `line`)."""
        if self.mode.github:
            self.stream.write(command(level, message, title=title) + "\n")
            self.stream.flush()

    def group(self, title: str) -> None:
        """Start a foldable group of lines in the GitHub Actions log (groups do not nest:
        an open one is ended first)."""
        if self.mode.github:
            self.end_group()
            self.stream.write(command("group", title) + "\n")
            self.stream.flush()
            _GROUP_OPEN.add(id(self.stream))

    def in_group(self) -> bool:
        return id(self.stream) in _GROUP_OPEN

    def end_group(self) -> None:
        """End the open group, if any (an error must never be folded away in one)."""
        if id(self.stream) in _GROUP_OPEN:
            _GROUP_OPEN.discard(id(self.stream))
            self.stream.write("::endgroup::\n")
            self.stream.flush()


# Streams with a ::group:: open: a process-wide fact, as the log is (the reporter opens a
# group, the CLI's error printer must close it).
_GROUP_OPEN: set[int] = set()


def error(message: str, fix: str | None, *, title: str = "edgeship") -> None:
    """An edgeship error as the CLI reports it on stderr: `error:` and `fix:` lines (red on a
    terminal), and an `::error::` annotation carrying both on GitHub Actions."""
    printer = Printer(sys.stderr)
    printer.end_group()
    printer.annotate("error", message + (f"\nfix: {fix}" if fix else ""), title=title)
    printer.line(f"error: {message}", style="red")
    if fix:
        printer.line(f"fix: {fix}")


def warning(message: str, *, title: str = "edgeship") -> None:
    """A warning on stderr (yellow on a terminal), an `::warning::` annotation on GitHub."""
    printer = Printer(sys.stderr)
    printer.annotate("warning", message, title=title)
    printer.line(f"warning: {message}", style="yellow")


# -- the step summary -------------------------------------------------------------------------


def append_summary(markdown: str, environ: Mapping[str, str] | None = None) -> bool:
    """Append to `$GITHUB_STEP_SUMMARY` when the runner set it (False when it did not)."""
    path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")
    return True


def stack_summary(result: Mapping[str, Any]) -> str:
    """Markdown for `up` / `preview` / `refresh` / `destroy`: what changed, per operation."""
    changes = {op: n for op, n in sorted((result.get("changes") or {}).items()) if n}
    verb = str(result.get("operation", "update"))
    lines = [
        f"### edgeship {verb} `{result.get('stack', '?')}`: "
        + (", ".join(f"{n} {op}" for op, n in changes.items()) or "no changes"),
        "",
        *([str(result["note"]), ""] if result.get("note") else []),
    ]
    if changes:
        lines += [
            "| operation | resources |",
            "|---|---:|",
            *(f"| {op} | {n} |" for op, n in changes.items()),
        ]
    if result.get("duration_s") is not None:
        lines += ["", f"Took {float(result['duration_s']):.1f} s."]
    return "\n".join(lines)
