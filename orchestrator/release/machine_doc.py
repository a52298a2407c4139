"""The machine's tables as Markdown: the section of docs/architecture.md between its two markers
is this module's output, rendered from the tables themselves (tests/test_machine_doc.py keeps the
two equal). `python -m orchestrator.release.machine_doc` prints it; `--write` puts it in
docs/architecture.md of this checkout.

Pure: the tables in, text out. Rows are shown as they are written in machine.py (a set of
values in one cell stands for each of them); a set is named by what it leaves out when that is
shorter ("any but ours")."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

from orchestrator.release import machine as m

BEGIN = "<!-- BEGIN machine tables: `python -m orchestrator.release.machine_doc --write`; tests/test_machine_doc.py -->"
END = "<!-- END machine tables -->"

# (table, its heading, what it decides, the names of its key columns and its verdict's)
DECISIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("COMMANDS", "What a command does with what it finds",
     "Every command looks (the lease, then the record), asks its row here, and once it holds the "
     "lease reads again and asks the row of the lease `ours`.",
     ("command", "lease", "found", "verdict")),
    ("RESUME_PAUSED", "`promote --resume` of the promotion `resume-promotion` found paused",
     "Under the lease: by what the look found, and whether it is that promotion.",
     ("found", "the paused one?", "verdict")),
    ("ABORT_WAIT", "`abort`, waiting for the driver it asked",
     "By the lease against the one asked, the record, and whether the record is the promotion asked.",
     ("lease", "found", "the one asked?", "verdict")),
    ("ABORT_GAVE_UP", "`abort`'s wait ran out", "By what the last look found.", ("found", "verdict")),
    ("RESUME_WAIT", "`resume-promotion`, waiting for the paused driver to go on",
     "By the lease, the record, and whether it is the paused promotion.",
     ("lease", "found", "the paused one?", "verdict")),
    ("START_LIVE", "A new promotion, under the lease, green published",
     "By how `live` reads, whether Lambda's move was waited for already, and whether live serves green.",
     ("live", "waited?", "on green?", "verdict")),
    ("UNSPLIT", "`abort` with nothing in flight",
     "By how `live` reads and where the last record says live ends.", ("live", "the record ends on", "verdict")),
    ("UNSPLIT_HELD", "... and under the abort lease",
     "By the record read again, and whether it is still that ended promotion.",
     ("found", "the same promotion?", "verdict")),
    ("ABORT_TO_HELD", "`abort --to VERSION` under its lease",
     "By the record, and whether it already ends on VERSION.", ("found", "ends on VERSION?", "verdict")),
    ("ENDINGS", "How a driven promotion's command ends",
     "By the final record's phase and the outcome that began its rollback.",
     ("final phase", "cause", "the command ends")),
)  # fmt: skip


def cell(value: Any) -> str:
    """One value as a table shows it: an enum by its value, a bool as yes/no, a set by its
    members (or `any`, or `any but ...`), a recorded value by its field."""
    if isinstance(value, frozenset | set):
        return members(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, m.Recorded):
        otherwise = f" (else {cell(value.otherwise)})" if value.otherwise is not None else ""
        return f"the record's `{value.name}`{otherwise}"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def members(values: Iterable[Any]) -> str:
    chosen = set(values)
    if chosen == {True, False}:
        return "either"
    kinds = {type(v) for v in chosen if v is not None}
    if len(kinds) != 1 or not issubclass(kind := kinds.pop(), Enum):
        return ", ".join(sorted(cell(v) for v in chosen))
    universe: list[Any] = [*kind, *([None] if None in chosen else [])]
    left_out = [v for v in universe if v not in chosen]
    if not left_out:
        return "any"
    inside = [v for v in universe if v in chosen]
    if len(left_out) < len(inside) and len(inside) > 2:
        return "any but " + ", ".join(cell(v) for v in left_out)
    return ", ".join(cell(v) for v in inside)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def phases() -> list[str]:
    return table(
        (
            "phase",
            "family",
            "act",
            "then the hooks",
            "a stop ends it?",
            "resume restarts at",
            "what the act does",
        ),
        ((p, r.family, r.act, r.hooks, r.stoppable, r.resume_at, r.does) for p, r in m.PHASES.items()),
    )


def transitions() -> list[str]:
    def step(change: m.StepChange) -> str:
        return "" if change is m.StepChange.KEEP else cell(change)

    rows = []
    for r in m.TRANSITIONS:
        to = "stays (the driver stops, exit 8)" if r.edge.to is m.STAY else cell(r.edge.to)
        rows.append(
            (
                r.source,
                r.outcomes,
                r.when,
                to,
                step(r.edge.step),
                r.edge.then or "",
                f"`{r.edge.note}`" if r.edge.note else "",
            )
        )
    return table(("from", "outcome", "when", "to", "step", "the rollback ends", "log"), rows)


def by_family(name: str, decision: Mapping[tuple[m.Family, bool], Any], yes: str, no: str) -> list[str]:
    rows = [(f, decision[(f, True)], decision[(f, False)]) for f in m.Family]
    return table((f"the next record's family ({name})", yes, no), rows)


def decisions() -> list[str]:
    out: list[str] = []
    for name, heading, says, header in DECISIONS:
        rows: Sequence[Sequence[Any]] = getattr(m, name).rows
        out += ["", f"#### {heading} (`{name}`)", "", says, "", *table(header, rows)]
    return out


def render() -> str:
    """The generated section, markers included."""
    lines = [
        BEGIN,
        "",
        "### Phases (`PHASES`)",
        "",
        *phases(),
        "",
        "### Every successor (`TRANSITIONS`)",
        "",
        "A phase's rows for an outcome are tried in order; the first whose guard holds is taken. A phase "
        "with no row for an outcome has ended: `advance` refuses it.",
        "",
        *transitions(),
        "",
        "### The driver around an act",
        "",
        "A stop request ends only a phase whose row says so, as the outcome below, a signal first "
        "(`STOP_PRIORITY`):",
        "",
        *table(("stop", "the act's outcome"), m.STOP_PRIORITY),
        "",
        "The next record's write failed (`AFTER_WRITE_FAILURE`), or S3 did not answer the lease read "
        "before an alias write (`S3_AWAY`):",
        "",
        *by_family("write failed", m.AFTER_WRITE_FAILURE, "lease held", "lease not held"),
        "",
        *by_family("S3 away", m.S3_AWAY, "lease valid", "lease not valid"),
        "",
        "What a stop for a failed write (exit 8) tells to run, by the family of the phase the write "
        "carried (`FIX_AFTER_FAILED_WRITE`), and where `abort --to` ends the rollback it records "
        "(`RETARGET`):",
        "",
        *table(
            ("family", "fix", "`abort --to` ends in", "with cause"),
            ((f, m.FIX_AFTER_FAILED_WRITE[f], *m.RETARGET[f]) for f in m.Family),
        ),
        "",
        "### What each command does (`COMMANDS` and the tables beside it)",
        "",
        "The lease, as a look finds it: " + ", ".join(f"`{h.value}`" for h in m.Holder) + "; the record: "
        + ", ".join(f"`{f.value}`" for f in m.Found) + ". The verdicts are `machine.Verdict`; "
        "orchestrator/release/operations.py carries each out (`match verdict`).",
        *decisions(),
        "",
        END,
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def section(document: str) -> str:
    """The generated section of `document`, markers included ("" when it has none)."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < 0:
        return ""
    return document[start : end + len(END)] + "\n"


def replaced(document: str) -> str:
    """`document` with its generated section rendered again."""
    old = section(document)
    if not old:
        raise ValueError(f"no section between {BEGIN!r} and {END!r}")
    return document.replace(old, render(), 1)


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        from orchestrator.base.paths import CHECKOUT

        doc = CHECKOUT / "docs" / "architecture.md"
        doc.write_text(replaced(doc.read_text()))
        print(f"wrote {doc}")
        return 0
    if argv:
        print("usage: python -m orchestrator.release.machine_doc [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
