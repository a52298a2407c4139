"""The machine's tables are the whole policy (issue 28), and docs/architecture.md shows them.

1. The section of docs/architecture.md between its markers is exactly what
   orchestrator/release/machine_doc.py renders from the tables: a table changed without the
   document (or the reverse) fails here, with the command that mends it.
2. Nothing outside machine.py decides on a phase, a lease holder, a record as found or a
   situation: an AST scan of every module for a comparison or a `match` on one (an enum
   member of those kinds, a `.phase`, `["phase"]` ...). The sites that compare for another
   reason are listed, each with that reason, and the list must be exact: a site gone is a
   stale entry, a new one must be justified here or moved into a table."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.release import machine as m
from orchestrator.release import machine_doc

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"

# -- 1. the document equals the tables ---------------------------------------------------------


def test_the_architecture_document_shows_the_tables_as_they_are() -> None:
    shown = machine_doc.section(ARCHITECTURE.read_text())
    assert shown, f"docs/architecture.md has no section between {machine_doc.BEGIN!r} and {machine_doc.END!r}"
    assert shown == machine_doc.render(), (
        "docs/architecture.md shows other tables than machine.py's: run "
        "`.venv/bin/python -m orchestrator.release.machine_doc --write`"
    )


def test_every_phase_command_and_verdict_is_in_the_rendering() -> None:
    text = machine_doc.render()
    for phase in m.Phase:
        assert f"| {phase.value} |" in text, phase
    for command in m.Command:
        assert f"| {command.value} |" in text or f"{command.value}, " in text, command
    for verdict in set(m.COMMANDS.values()):
        assert f"| {verdict.value} |" in text, verdict


def test_a_changed_table_changes_the_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    before = machine_doc.render()
    rows = list(m.COMMANDS.rows)
    command, holder, found, _ = rows[0]
    rows[0] = (command, holder, found, m.Verdict.REFUSE_RUNNING)
    changed = m.Table(m.COMMANDS)
    changed.rows = tuple(rows)
    monkeypatch.setattr(m, "COMMANDS", changed)
    after = machine_doc.render()
    assert after != before
    assert "| promote | any but ours | not deployed | refuse_running |" in after
    assert machine_doc.replaced(f"intro\n{before}outro\n") == f"intro\n{after}outro\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (m.Phase.ROLLING_BACK, "rolling_back"),
        (True, "yes"),
        (False, "no"),
        (None, "none"),
        (frozenset({True, False}), "either"),
        (frozenset(m.Found), "any"),
        (frozenset(m.Holder) - {m.Holder.OURS}, "any but ours"),
        (frozenset({m.Holder.NONE, m.Holder.STALE}), "none, stale"),  # in the enum's order
        (frozenset({m.Holder.STALE, m.Holder.NONE, m.Holder.OURS}), "none, stale, ours"),
        (frozenset({None, *m.Outcome}), "any"),
        (m.Recorded("then", m.Phase.ROLLED_BACK), "the record's `then` (else rolled_back)"),
        (m.Recorded("phase"), "the record's `phase`"),
    ],
)
def test_a_cell_reads_as_the_table_means_it(value: object, shown: str) -> None:
    assert machine_doc.cell(value) == shown


def test_the_document_is_rewritten_in_place_and_refused_without_markers() -> None:
    assert machine_doc.section("no markers here") == ""
    with pytest.raises(ValueError, match="no section"):
        machine_doc.replaced("no markers here")


# -- 2. no decision on phases outside machine.py -------------------------------------------------

# The kinds a decision would be about. Verdicts, outcomes, endings and courses are the tables'
# answers: carrying one out is what the code outside machine.py is for.
DECIDED_ON = frozenset({"Phase", "Family", "Found", "Holder", "Situation", "Waiting", "Ends"})
FIELDS = frozenset({"phase", "situation"})  # record.phase, machine.situation(...), s["phase"]

# (module, function, what it compares) -> why that is not a decision of the policy
ALLOWED: dict[tuple[str, str, str], str] = {
    ("orchestrator.release.driver", "run", "Phase.SHIFTING"):
        "measurement: a step's overhead timer starts when its shift begins",
    ("orchestrator.release.driver", "run", "Phase.GATING"):
        "measurement: ... and stops once its gate is done",
    ("orchestrator.release.driver", "_try_write", "Phase.SHIFTING"):
        "the fault point `write-after-shift`: the write that says live has just moved",
    ("orchestrator.release.driver", "_try_write", "Phase.BAKING"): "the same fault point",
    ("orchestrator.release.driver", "_announce", "Phase.SHIFTING"): "progress text for a shift",
    ("orchestrator.release.driver", "_announce", "Phase.ROLLING_BACK"): "progress text for a rollback",
    ("orchestrator.release.operations", "status", "Situation.INTERRUPTED"):
        "status's JSON `interrupted`, a view of the situation it also prints",
    ("orchestrator.release.operations", "_finish_interrupted_rollback", "Found.ROLLING_BACK"):
        "an assertion of what COMMANDS chose (TAKE_OVER_FINISH), not a choice",
    ("orchestrator.release.operations", "_refuse", "Holder.STACK_CHANGE"):
        "the wording of REFUSE_RUNNING (the verdict COMMANDS gave) names the holder",
    ("orchestrator.release.operations", "_refuse", "Holder.PUBLISHING"): "the same wording",
    ("orchestrator.release.report", "timeline", '["phase"]'): "the report's chart of green's weight over time",
    ("orchestrator.cli", "status.human", '["phase"]'):
        "the status text names the command that goes on from a pause (`resume-promotion`)",
}  # fmt: skip


def compared(source: str) -> Iterator[tuple[str, str]]:
    """(function, what) for every comparison or `match` in `source` on a member of DECIDED_ON's
    kinds or a FIELDS attribute or key; `function` is the dotted path of defs around it."""

    def walk(node: ast.AST) -> Iterator[ast.AST]:
        # A call's arguments are its inputs, not what is compared: `course(S3_AWAY, nxt.phase)
        # is Course.X` compares the table's answer
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(node, ast.Call) or child is node.func:
                yield from walk(child)

    def about(node: ast.AST) -> set[str]:
        found: set[str] = set()
        for n in walk(node):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in DECIDED_ON:
                found.add(f"{n.value.id}.{n.attr}")
            elif (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Attribute)
                and n.value.attr in DECIDED_ON
            ):
                found.add(f"{n.value.attr}.{n.attr}")  # machine.Phase.X
            elif isinstance(n, ast.Attribute) and n.attr in FIELDS:
                found.add(f".{n.attr}")
            elif (
                isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value in FIELDS
            ):
                found.add(f'["{n.slice.value}"]')
        if any("." in f and not f.startswith(".") for f in found):
            found = {f for f in found if not f.startswith(".")}  # `x.phase == Phase.Y`: named by Y
        return found

    def visit(node: ast.AST, where: tuple[str, ...]) -> Iterator[tuple[str, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, (*where, child.name))
                continue
            if isinstance(child, ast.Compare):
                yield from ((".".join(where), what) for what in sorted(about(child)))
            elif isinstance(child, ast.Match):
                parts = [child.subject, *(case.pattern for case in child.cases)]
                yield from ((".".join(where), what) for what in sorted(set().union(*map(about, parts))))
            yield from visit(child, where)

    yield from visit(ast.parse(source), ())


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package but machine.py and the payload (which knows no phases)."""
    root = REPO / "orchestrator"
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in ("programs", "loadtests") or parts == ("release", "machine"):
            continue
        name = ".".join(("orchestrator", *parts)).removesuffix(".__init__")
        # the CLI is one package of command modules: a site is allowed wherever in it it sits
        yield ("orchestrator.cli" if name.startswith("orchestrator.cli") else name), path


def test_the_scan_finds_a_decision_on_a_phase() -> None:
    source = """
def go(record, found, s):
    if record.phase == Phase.PAUSED:
        pass
    match found.holder:
        case machine.Holder.OURS:
            pass
    return s["phase"] in ("paused",) or record.phase is not None
"""
    assert set(compared(source)) == {("go", "Phase.PAUSED"), ("go", "Holder.OURS"), ("go", '["phase"]'),
                                     ("go", ".phase")}  # fmt: skip
    assert list(compared("def f(step):\n    return step.outcome == Outcome.DONE\n")) == []
    assert list(compared("def f(r):\n    return course(S3_AWAY, r.phase) is Course.RECORD\n")) == []


def test_nothing_outside_the_machine_decides_on_a_phase_a_holder_or_a_situation() -> None:
    sites = {
        (module, function, what)
        for module, path in modules()
        for function, what in compared(path.read_text())
    }
    undecided = sorted(sites - set(ALLOWED))
    assert not undecided, (
        "a comparison on a phase, holder, found or situation outside machine.py: make it a row of a "
        f"table there, or say in ALLOWED why it decides nothing: {undecided}"
    )
    assert sorted(set(ALLOWED) - sites) == [], "stale entries in ALLOWED"
