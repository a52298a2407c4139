"""Imports run downward (issue 28): every module of orchestrator/, programs/ and loadtests/ sits in
a layer by concern (LAYERS below: one package of orchestrator/ each) and imports only from its own layer or a lower one, with no cycle among modules. The
payload folders programs/ and loadtests/ are the packages `orchestrator.programs` and
`orchestrator.loadtests` (orchestrator/programs and orchestrator/loadtests are symlinks to them):
their modules are named so here, and nothing may import a top-level `programs` or `loadtests`.

An AST scan, not an import: it sees every import statement, at the top of a module, inside a
function (a lazy import is still a dependency, and breaks the order as surely when its function
runs) and under `if TYPE_CHECKING:` (the types a module names are part of what it depends on).
Dynamic imports (`importlib.import_module(name)`) are not edges: stacks/engine.py loads the Pulumi
program by name that way, a downward edge. The check for the retired top-level names reads
those too, where the name is a literal (`import_module("x")`, `"-m", "x"`, `"x:function"`)."""

from __future__ import annotations

import ast
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
# folder -> the package it is. The real folders, each once: the scan does not enter the symlinks
# orchestrator/programs and orchestrator/loadtests (it would see every payload module twice).
SCANNED: Mapping[str, str] = {
    "orchestrator": "orchestrator",
    "programs": "orchestrator.programs",
    "loadtests": "orchestrator.loadtests",
}
# Top-level names the payload folders would have if imported from a checkout's root: refused
# by their __init__.py, so no module may import them (the wheel ships no such names either).
RETIRED = ("programs", "loadtests")
# Checked for the retired names too (check 3): the code that imports edgeship's modules.
ALSO_CHECKED: Mapping[str, str] = {"tests": "tests", "bench": "bench", "scripts": "scripts"}
# ... except where a test runs a user's own package of that name, on purpose.
USERS_OWN = {"tests.test_wheel": "`python -m programs` runs the team repository's own package"}


class Layer(NamedTuple):
    number: int
    names: tuple[str, ...]  # a module's name covers it alone; `pkg.*` the package and all under it
    why: str


# Bottom to top: each package of orchestrator/ is one layer, named by the first word of its `why`.
# The longest name that covers a module decides its layer; a module may import from its own layer
# or below, never above.
LAYERS: list[Layer] = [
    Layer(0, ("orchestrator", "orchestrator.programs", "orchestrator.programs.function.*",
              "orchestrator.programs.authorizer.*", "orchestrator.loadtests.*"),
          "payload: the version string, the Lambda code, the Locust file: they import nothing of ours"),
    Layer(1, ("orchestrator.base.*",),
          "base: errors, subprocesses, output, paths and fault points that everything above uses"),
    Layer(2, ("orchestrator.config.*",),
          "config: edgeship.toml read and checked; resource names (settings needs them)"),
    Layer(3, ("orchestrator.build.*",),
          "build: what ships (the zip, the model archive, its contract); the local edge runs it"),
    Layer(4, ("orchestrator.local.*",),
          "local: the emulator and the local edge, daemons the local stack's resources run"),
    Layer(5, ("orchestrator.programs.serving", "orchestrator.programs.local", "orchestrator.programs.emulated",
              "orchestrator.programs.origin_secret", "orchestrator.programs.lifecycle", "orchestrator.programs.modelship",
              "orchestrator.programs.rotation"),
          "programs: the Pulumi programs and what they call (model delivery, the secret's rotation)"),
    Layer(6, ("orchestrator.gates.*",),
          "gates: load, metrics and the judgement on them (stacks use watch's timing)"),
    Layer(7, ("orchestrator.stacks.*",),
          "stacks: the Pulumi engine, the clouds and an environment as its stack describes it"),
    Layer(8, ("orchestrator.release.*",),
          "release: a promotion, its state machine, record, lease, traffic moves and reports"),
    Layer(9, ("orchestrator.project.*",),
          "project: the operator's tools around stacks and releases"),
    Layer(10, ("orchestrator.cli.*", "orchestrator.demo", "orchestrator.__main__"),
          "app: the entry points, which may import anything"),
]  # fmt: skip


# --- the scanner (pure: module sources in, import edges out) -----------------------------------


@dataclass(frozen=True)
class Source:
    text: str
    package: bool  # an __init__.py: its relative imports start from the module itself


@dataclass(frozen=True)
class Edge:
    source: str
    line: int
    target: str
    kind: str  # "top" | "lazy" (inside a function) | "typing" (under `if TYPE_CHECKING:`)

    def __str__(self) -> str:
        return f"{self.source}@{self.line} -> {self.target}" + (
            "" if self.kind == "top" else f" ({self.kind})"
        )


def module_name(path: Path, root: Path, package: str) -> tuple[str, bool]:
    """The module a file under `root` (the folder of `package`) is: `x.py` -> ("<package>.x",
    False); `__init__.py` -> ("<package>", True)."""
    parts = (*package.split("."), *path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def python_files(folder: Path) -> Iterator[Path]:
    """Every .py file under `folder`, sorted, without entering a symlinked folder (os.walk's
    default): orchestrator/programs leads back to programs/, which is scanned as itself."""
    for here, folders, files in os.walk(folder):
        folders.sort()
        folders[:] = [f for f in folders if f != "__pycache__"]
        yield from (Path(here) / f for f in sorted(files) if f.endswith(".py"))


def imported(name: str, source: Source, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The absolute names an import statement of module `name` imports: `import a.b` -> a.b;
    `from .x import y` -> <package>.x.y (y may be a module or a name in x: the caller decides)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name if source.package else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def edges(modules: Mapping[str, Source]) -> list[Edge]:
    """Every import of one scanned module by another, with the line and where it sits."""

    def resolve(dotted: str) -> str | None:
        # The longest scanned module the name starts with: `from orchestrator.base import errors` is
        # orchestrator.base.errors, `from orchestrator.release.report import markdown` is orchestrator.release.report,
        # and a name of no scanned module (the standard library, a dependency) is nothing.
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if (name := ".".join(parts[:end])) in modules:
                return name
        return None

    def targets(name: str, source: Source, node: ast.Import | ast.ImportFrom) -> list[str]:
        return list(dict.fromkeys(t for dotted in imported(name, source, node) if (t := resolve(dotted))))

    def visit(name: str, source: Source, body: list[ast.stmt], kind: str) -> Iterator[Edge]:
        # Statements only: an import is one, so the walk need not enter a single expression.
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield from (
                    Edge(name, node.lineno, t, kind) for t in targets(name, source, node) if t != name
                )
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(name, source, node.body, "lazy")
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(name, source, node.body, "typing" if kind == "top" else kind)
                yield from visit(name, source, node.orelse, kind)
            else:
                for block in _blocks(node):
                    yield from visit(name, source, block, kind)

    return [
        edge
        for name, source in sorted(modules.items())
        for edge in visit(name, source, ast.parse(source.text, filename=name).body, "top")
    ]


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists inside a statement: a class's body, an if's or a loop's branches, a
    with's body, a try's handlers, a match's cases."""
    for field in ("body", "orelse", "finalbody"):
        if isinstance(value := getattr(node, field, None), list):
            yield value
    for part in [*getattr(node, "handlers", []), *getattr(node, "cases", [])]:
        yield part.body


# A module name given as a literal: `import_module("x")`, `__import__("x")`, `"-m", "x"` in an
# argument list, a `module:function` reference (`--program`, stacks.DEFAULT_PROGRAM).
_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.\w+)*:\w+")


def named_modules(name: str, source: Source) -> Iterator[tuple[int, str]]:
    """(line, module name) of every module a module names: its import statements (relative ones
    resolved) and the literal names it imports or runs dynamically."""
    for node in ast.walk(ast.parse(source.text, filename=name)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from ((node.lineno, dotted) for dotted in imported(name, source, node))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = (
                node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            )
            if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value
        elif isinstance(node, ast.List | ast.Tuple):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            yield from (
                (node.lineno, after)
                for flag, after in itertools.pairwise(values)
                if flag == "-m" and isinstance(after, str)
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _REFERENCE.fullmatch(node.value)
        ):
            yield node.lineno, node.value.partition(":")[0]


def retired(modules: Mapping[str, Source], names: Iterable[str]) -> list[str]:
    """Where a module names a module under one of the top-level `names`, as `module@line -> name`."""
    tops = set(names)
    return [
        f"{module}@{line} -> {dotted}"
        for module, source in sorted(modules.items())
        for line, dotted in sorted(set(named_modules(module, source)))
        if dotted.split(".")[0] in tops
    ]


def covers(entry: str, module: str) -> bool:
    """Whether a name of the layer table covers a module: `x` covers x, `x.*` x and all under it."""
    stem = entry.removesuffix(".*")
    return module == stem or (entry.endswith(".*") and module.startswith(stem + "."))


def layer_of(module: str, layers: list[Layer]) -> int | None:
    """The layer of the longest name in `layers` that covers `module`; None: no name does."""
    # Longest stem first; on the same stem, the module's own name before its package's `.*`.
    found = [
        (len(entry.removesuffix(".*")), not entry.endswith(".*"), layer.number)
        for layer in layers
        for entry in layer.names
        if covers(entry, module)
    ]
    return max(found)[2] if found else None


def upward(found: list[Edge], layers: list[Layer]) -> list[str]:
    """The edges from a lower layer to a higher one, as `a@3 -> b (lazy) [layer 1 -> 2]`."""
    bad = []
    for edge in found:
        low, high = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if low is not None and high is not None and high > low:
            bad.append(f"{edge} [layer {low} -> {high}]")
    return bad


def cycles(found: list[Edge]) -> list[list[Edge]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each the
    shortest way from the component's first module around and back to it."""
    graph: dict[str, list[Edge]] = {}
    for edge in found:
        graph.setdefault(edge.source, []).append(edge)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found_cycles = []
    for component in components:
        if len(component) < 2:
            continue
        start = min(component)
        # Breadth first inside the component, from start back to start: the shortest cycle through it.
        paths: dict[str, list[Edge]] = {start: []}
        queue = [start]
        cycle: list[Edge] | None = None
        while queue and cycle is None:
            node = queue.pop(0)
            for edge in graph[node]:
                if edge.target == start:
                    cycle = [*paths[node], edge]
                    break
                if edge.target in component and edge.target not in paths:
                    paths[edge.target] = [*paths[node], edge]
                    queue.append(edge.target)
        assert cycle is not None, component  # a strongly connected component has one
        found_cycles.append(cycle)
    return sorted(found_cycles, key=lambda c: c[0].source)


def cycle_text(cycle: list[Edge]) -> str:
    """`a@3 -> b@12 (lazy) -> a`: each module with the line of its import of the next."""
    hops = [f"{e.source}@{e.line}" + ("" if e.kind == "top" else f" ({e.kind})") for e in cycle]
    return " -> ".join([*hops, cycle[0].source])


# --- this project ---------------------------------------------------------------------------------


def read(folders: Mapping[str, str]) -> dict[str, Source]:
    """The modules of these folders (folder -> the package it is), by module name."""
    modules = {}
    for folder, package in folders.items():
        for path in python_files(REPO / folder):
            name, is_package = module_name(path, REPO / folder, package)
            assert name not in modules, f"{path} is {name} a second time"
            modules[name] = Source(path.read_text(encoding="utf-8"), is_package)
    return modules


@cache
def project() -> tuple[dict[str, Source], list[Edge]]:
    modules = read(SCANNED)
    return modules, edges(modules)


def test_no_module_imports_from_a_higher_layer() -> None:
    _, found = project()
    bad = upward(found, LAYERS)
    assert not bad, (
        "imports from a lower layer to a higher one (move the code down, or the module up; "
        "LAYERS in tests/test_layers.py says why each layer is where it is):\n  " + "\n  ".join(bad)
    )


def test_no_import_cycle_among_modules_lazy_imports_included() -> None:
    _, found = project()
    assert not (loops := cycles(found)), "import cycles (module@line of each import):\n  " + "\n  ".join(
        cycle_text(c) for c in loops
    )


def test_nothing_imports_a_top_level_programs_or_loadtests() -> None:
    """Their __init__.py refuses those names when imported; this finds a leftover before any
    process runs it (the engine's provider process, a Locust worker, the edge, the CLI)."""
    modules, _ = project()
    everything = {**modules, **read(ALSO_CHECKED)}
    assert set(USERS_OWN) <= set(everything)  # no stale exemption
    names = {m: s for m, s in everything.items() if m not in USERS_OWN}
    assert not (found := retired(names, RETIRED)), (
        "imports of edgeship's payload by its retired top-level names (import "
        "orchestrator.programs / orchestrator.loadtests, or relatively inside them):\n  " + "\n  ".join(found)
    )
    # the scan saw the payload under its package's name, and each module once
    assert {"orchestrator.programs.serving", "orchestrator.loadtests.locustfile"} <= set(modules)
    assert not any(m.split(".")[0] in RETIRED for m in modules)


def test_every_module_has_a_layer() -> None:
    modules, _ = project()
    unplaced = sorted(m for m in modules if layer_of(m, LAYERS) is None)
    assert not unplaced, (
        f"modules in no layer (add each to one row of LAYERS in tests/test_layers.py): {unplaced}"
    )


def test_every_name_of_the_layer_table_is_a_module_and_listed_once() -> None:
    modules, _ = project()
    names = [entry for layer in LAYERS for entry in layer.names]
    stale = [n for n in names if not any(covers(n, m) for m in modules)]
    assert not stale, f"LAYERS names what no module is (renamed or removed? update the row): {stale}"
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"LAYERS lists these in more than one place: {twice}"
    numbers = [layer.number for layer in LAYERS]
    assert numbers == sorted(set(numbers)), "LAYERS: one row per layer, bottom to top"


# --- the checks themselves, on a made-up project: each can fail ---------------------------------

TOY = {
    "app": Source('"""The package: its layer is 0."""\n', package=True),
    "app.core": Source("import json\nfrom . import util\nfrom .util import helper\n", package=False),
    "app.util": Source(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from app.core import Thing\n"
        "def helper():\n"
        "    import app.top.cmd\n",
        package=False,
    ),
    "app.top": Source("from .. import core\nfrom app import util\n", package=True),
    "app.top.cmd": Source("from ..util import helper\n", package=False),
}
TOY_LAYERS = [
    Layer(0, ("app",), "the package itself"),
    Layer(1, ("app.core", "app.util"), "the bottom"),
    Layer(2, ("app.top.*",), "the top"),
]


def test_the_scanner_resolves_relative_submodule_lazy_and_type_checking_imports() -> None:
    assert [str(e) for e in edges(TOY)] == [
        "app.core@2 -> app.util",  # relative, from a module: its package's sibling
        "app.core@3 -> app.util",  # `from .util import helper`: the module, helper being a name in it
        "app.top@1 -> app.core",  # relative from a package's __init__: `..` is its parent
        "app.top@2 -> app.util",  # `from app import util`: the submodule, not the package
        "app.top.cmd@1 -> app.util",
        "app.util@3 -> app.core (typing)",
        "app.util@5 -> app.top.cmd (lazy)",  # `import a.b.c` is the deepest module named
    ]


def test_an_upward_edge_and_a_cycle_are_reported_with_their_lines() -> None:
    found = edges(TOY)
    assert upward(found, TOY_LAYERS) == ["app.util@5 -> app.top.cmd (lazy) [layer 1 -> 2]"]
    assert [cycle_text(c) for c in cycles(found)] == [
        # app.core -> app.util -> (typing) app.core, and through app.top.cmd back to app.util
        "app.core@2 -> app.util@3 (typing) -> app.core"
    ]
    assert layer_of("app.top", TOY_LAYERS) == 2 and layer_of("app.other", TOY_LAYERS) is None
    # the longest name decides: app.top's own row beats its package's
    assert layer_of("app.top", [*TOY_LAYERS, Layer(3, ("app.top",), "")]) == 3


def test_a_retired_name_is_found_in_each_form_it_can_take() -> None:
    text = (
        "import programs.serving\n"
        "from programs import names\n"
        "from . import emulated\n"  # the package's own: fine
        "import programster\n"  # another name that starts alike: fine
        "def run():\n"
        "    importlib.import_module('loadtests.locustfile')\n"
        "    subprocess.run([sys.executable, '-m', 'programs.local', 'x'])\n"
        "    load_program('programs.serving:program')\n"
        "    return 'programs/function/handler.py', 'programs.serving is a module'\n"  # paths, prose: fine
    )
    found = retired({"app.programs.serving": Source(text, package=False)}, RETIRED)
    assert found == [
        "app.programs.serving@1 -> programs.serving",
        "app.programs.serving@2 -> programs.names",
        "app.programs.serving@6 -> loadtests.locustfile",
        "app.programs.serving@7 -> programs.local",
        "app.programs.serving@8 -> programs.serving",
    ]


def test_module_names_follow_the_package_a_folder_is() -> None:
    root = Path("/repo/programs")
    assert module_name(root / "x.py", root, "orchestrator.programs") == ("orchestrator.programs.x", False)
    assert module_name(root / "__init__.py", root, "orchestrator.programs") == ("orchestrator.programs", True)
    assert module_name(root / "a" / "__init__.py", root, "orchestrator.programs") == (
        "orchestrator.programs.a",
        True,
    )


def test_a_graph_without_cycles_has_none() -> None:
    chain = {"a": Source("import b\n", False), "b": Source("import c\n", False), "c": Source("", False)}
    assert [str(e) for e in edges(chain)] == ["a@1 -> b", "b@1 -> c"]
    assert cycles(edges(chain)) == []
