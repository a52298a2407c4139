"""Two pytest options for running the suite in shards, in CI or in `make unit`'s streams.

--part=I/N       keep every N-th test from the I-th on, in collection order: one shard split
                 over N CI jobs (the fault matrix's cases run one after another on one local
                 environment; two jobs halve its time). Deterministic: the same checkout
                 collects the same list, so N jobs run each test exactly once.
--failed-artifacts=DIR
                 when a test fails (set-up, call or tear-down), copy what explains it into
                 DIR/<test id>/: the failure text, and from each temporary project it used
                 (its tmp_path, any fixture value with a `root` folder: `project`,
                 `local_project`, the matrix's project) the emulator's and the edge's logs
                 (`.edgeship/**/*.log`) and the gate reports (`reports/`: Locust's logs,
                 statistics, report.json/.md) written while the test ran (a module's
                 project, such as the matrix's, holds every earlier case's reports too).
                 CI uploads DIR; otherwise these live in pytest's temporary folders, which
                 the next run deletes.

Loaded by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MAX_FILE_BYTES = 8 * 1024 * 1024  # a long log is cut to its last 8 MiB
STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeship shards")
    group.addoption("--part", default=None, metavar="I/N", help="run every N-th test from the I-th on")
    group.addoption(
        "--failed-artifacts",
        default=None,
        metavar="DIR",
        help="copy a failed test's logs and gate reports into DIR/<test id>/",
    )


def parse_part(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3); anything else is a usage error naming the form."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise pytest.UsageError(f"--part={text!r}: expected I/N with 1 <= I <= N, e.g. --part=1/2")
    return int(match.group(1)), int(match.group(2))


def in_part(position: int, part: tuple[int, int]) -> bool:
    """Whether the test collected at `position` (from 0) is in part (I, N): every N-th from the I-th."""
    index, count = part
    return position % count == index - 1


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("failed_artifacts", None)
    if directory:  # only this run's failures: a stale folder would blame tests that passed
        shutil.rmtree(directory, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    part = config.getoption("part", None)
    if not part:
        return
    chosen = parse_part(part)
    kept = [item for i, item in enumerate(items) if in_part(i, chosen)]
    deselected = [item for i, item in enumerate(items) if not in_part(i, chosen)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = kept


def project_roots(item: pytest.Item) -> list[Path]:
    """The temporary folders a test worked in: its tmp_path and its projects' roots."""
    found = set()
    for value in getattr(item, "funcargs", {}).values():
        root = value if isinstance(value, Path) else getattr(value, "root", None)
        if isinstance(root, Path) and root.is_dir():
            found.add(root.resolve())
    # a project inside tmp_path is copied with it, once
    return sorted(r for r in found if not any(o != r and r.is_relative_to(o) for o in found))


def evidence(root: Path, since: float) -> Iterator[Path]:
    """Logs anywhere under a project's .edgeship (emulator.log, edge.log, ...) and everything
    under reports/ (gate reports, Locust logs), in the project or in a folder of it, written
    at or after `since` (seconds since the epoch)."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.stat().st_mtime < since:
            continue
        parts = path.relative_to(root).parts
        if "reports" in parts or (".edgeship" in parts and path.suffix == ".log"):
            yield path


def safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", nodeid)[:200]


def copy_evidence(item: pytest.Item, report: pytest.TestReport, directory: Path) -> Path:
    target = directory / safe_name(item.nodeid)
    target.mkdir(parents=True, exist_ok=True)
    with (target / "failure.txt").open("a") as out:
        out.write(f"{item.nodeid} failed in {report.when}\n\n{report.longreprtext}\n\n")
    since = item.stash.get(STARTED, 0.0) - 1.0  # mtimes may be coarser than the clock
    for n, root in enumerate(project_roots(item)):
        for path in evidence(root, since):
            dest = target / f"project{n}" / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            with path.open("rb") as src, dest.open("wb") as out:
                if size > MAX_FILE_BYTES:
                    src.seek(size - MAX_FILE_BYTES)
                shutil.copyfileobj(src, out)
        (target / f"project{n}.path").write_text(f"{root}\n")
    return target


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "setup":
        item.stash[STARTED] = call.start
    directory = item.config.getoption("failed_artifacts", None)
    if directory and report.failed:
        copy_evidence(item, report, Path(directory))
    return report
