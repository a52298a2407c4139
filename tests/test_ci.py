"""This repository's own CI, as GitHub runs it (.github/workflows/ci.yml, called by deploy.yml)
and as .ci/run runs it (`make test`): the Makefile's shards hold every test file exactly once,
CI runs every shard and `make unit` every shard in one of its streams, the suite runs once per
event and before anything deploys, and a failed test leaves its logs where CI uploads them
(tests/ci_plugin.py). docs/ci.md says why each holds."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci_plugin import in_part, parse_part

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
CI_FILE = "./.github/workflows/ci.yml"
LATENCY_JUDGING = {"gates", "recovery", "timing"}  # the shards whose tests judge latency or beat a clock
STRICT = ("strict", "recovery")  # the streams that run them, at normal priority


def _make(*args: str) -> str:
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _listing(kind: str) -> dict[str, list[str]]:
    """`make shards`: 'shard NAME: files...' and 'stream NAME: shards...' lines."""
    found: dict[str, list[str]] = {}
    for line in _make("shards").splitlines():
        word, _, rest = line.partition(" ")
        if word == kind:
            name, _, items = rest.partition(":")
            assert name not in found, f"{kind} {name} listed twice"
            found[name] = items.split()
    return found


SHARDS = _listing("shard")
STREAMS = _listing("stream")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _on(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on") or workflow.get(True)  # PyYAML reads the key `on` as True
    return {name: {} for name in on} if isinstance(on, list) else {k: v or {} for k, v in on.items()}


CI = _load("ci.yml")


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


# --- the shards ----------------------------------------------------------------------------


def test_every_test_file_is_in_exactly_one_shard() -> None:
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py"))
    listed = sorted(f for shard in SHARDS.values() for f in shard)
    assert sorted(set(listed)) == listed, (
        f"in two shards: {sorted({f for f in listed if listed.count(f) > 1})}"
    )
    assert set(files) - set(listed) == set(), "test files in no shard of the Makefile (add each to one)"
    assert set(listed) - set(files) == set(), "the Makefile's shards name files that do not exist"


def test_make_unit_runs_every_shard_once_and_the_latency_judging_ones_at_normal_priority() -> None:
    in_streams = sorted(s for shards in STREAMS.values() for s in shards)
    assert in_streams == sorted(SHARDS)
    # every latency-judging shard at normal priority, and beside them only the pure unit shard
    # (after them in their stream: it judges no clock, and nothing else waits for it)
    normal = [s for stream in STRICT for s in STREAMS[stream]]
    assert set(normal) - {"unit"} == LATENCY_JUDGING
    assert "unit" not in normal or STREAMS["strict"][-1] == "unit"
    assert STREAMS["matrix"] == ["matrix"]
    recipe = _make("-n", "unit")  # the commands, printed, not run
    starts = {line.split()[1]: line for line in recipe.splitlines() if line.strip().startswith("timed ")}
    # the matrix stream runs as two processes, each every 2nd test (tests/ci_plugin.py --part)
    assert set(starts) == {*STREAMS, "matrix2"}
    assert "--part=1/2" in starts["matrix"] and "--part=2/2" in starts["matrix2"]
    for stream in STRICT:
        assert " nice " not in starts[stream] and "tests/test_fault_matrix.py" not in starts[stream]
    assert (
        "nice -n 15" in starts["matrix"]
        and "nice -n 15" in starts["matrix2"]
        and "nice -n 19" in starts["blind"]
        and "nice -n 19" in starts["stacks"]
    )


def test_ci_runs_every_shard_and_every_part_of_a_split_one() -> None:
    lint = CI["jobs"]["lint"]
    assert "make test-shard SHARD=unit" in [str(s.get("run", "")) for s in _steps(lint)]
    test = CI["jobs"]["test"]
    parts: dict[str, list[str]] = {}
    for entry in test["strategy"]["matrix"]["include"]:
        parts.setdefault(entry["shard"], []).append(entry.get("part", ""))
    assert {"unit", *parts} == set(SHARDS) and "unit" not in parts
    for shard, listed in parts.items():
        if listed != [""]:
            n = len(listed)
            assert sorted(listed) == [f"{i}/{n}" for i in range(1, n + 1)], (shard, listed)
    assert test["strategy"]["fail-fast"] is False
    run = next(s for s in _steps(test) if "make test-shard" in str(s.get("run", "")))
    assert run["run"] == 'make test-shard SHARD="$SHARD" PART="$PART"'
    assert run["env"] == {"SHARD": "${{ matrix.shard }}", "PART": "${{ matrix.part }}"}


def test_a_failed_shard_uploads_its_junit_and_its_failed_tests_logs() -> None:
    assert "RESULTS := .edgeship/test-results" in (REPO / "Makefile").read_text()
    for name, job in CI["jobs"].items():
        uploads = [s for s in _steps(job) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
        assert len(uploads) == 1 and uploads[0]["if"] == "failure()", name
        assert uploads[0]["with"]["path"].split() == [
            ".edgeship/test-results/*/junit.xml",
            ".edgeship/test-results/*/failed/",
        ], name


# --- once per event, before any deploy ------------------------------------------------------


def _triggered(workflow: dict[str, Any], event: str, ref: str) -> bool:
    on = _on(workflow)
    if event not in on:
        return False
    if event != "push":
        return True
    filters = on["push"]
    if not filters:
        return True
    if ref.startswith("refs/tags/"):
        return any(fnmatch.fnmatchcase(ref.removeprefix("refs/tags/"), t) for t in filters.get("tags", []))
    return any(fnmatch.fnmatchcase(ref.removeprefix("refs/heads/"), b) for b in filters.get("branches", []))


def _suite_runs(event: str, ref: str) -> int:
    """How many times one event runs the suite: ci.yml's own trigger, plus each job of a
    triggered workflow that calls it."""
    runs = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        if not _triggered(workflow, event, ref):
            continue
        runs += path.name == "ci.yml"
        runs += sum(job.get("uses") == CI_FILE for job in workflow["jobs"].values())
    return runs


@pytest.mark.parametrize(
    ("event", "ref"),
    [("pull_request", "refs/pull/7/merge"), ("push", "refs/heads/main"), ("push", "refs/tags/v1.2.0")],
)
def test_the_suite_runs_once_per_event(event: str, ref: str) -> None:
    assert _suite_runs(event, ref) == 1


def test_ci_has_no_trigger_of_its_own_that_deploy_yml_also_has() -> None:
    assert set(_on(CI)) == {"workflow_call", "workflow_dispatch"}
    deploy = _load("deploy.yml")
    assert deploy["jobs"]["tests"]["uses"] == CI_FILE
    assert {"pull_request", "push"} <= set(_on(deploy)) and not _on(deploy)["pull_request"]


def test_every_job_that_deploys_needs_the_tests_to_have_passed() -> None:
    jobs = _load("deploy.yml")["jobs"]
    deploying = [
        name
        for name, job in jobs.items()
        if job.get("environment") in ("dev", "staging", "prod")
        or any("orchestrator up " in str(s.get("run", "")) for s in _steps(job))
    ]
    assert {"dev", "staging", "prod"} <= set(deploying)
    for name in deploying:
        assert "tests" in jobs[name]["needs"], name
        assert "needs.tests.result == 'success'" in jobs[name]["if"], name


def test_only_superseded_pull_request_runs_are_cancelled_and_no_group_deadlocks() -> None:
    concurrency = CI["concurrency"]
    # a literal prefix: called from deploy.yml, github.workflow is deploy's name
    assert concurrency["group"].startswith("ci-") and "github.workflow" not in concurrency["group"]
    # pull requests share a group per ref; anything else has one of its own (never replaced)
    assert (
        concurrency["group"] == "ci-${{ github.event_name == 'pull_request' && github.ref || github.run_id }}"
    )
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_installs_are_cached_once_and_restored_by_the_shards() -> None:
    def caches(job: str, action: str) -> list[dict[str, Any]]:
        return [s for s in _steps(CI["jobs"][job]) if str(s.get("uses", "")).startswith(action)]

    saved, restored = caches("lint", "actions/cache@"), caches("test", "actions/cache/restore@")
    assert [(s["with"], s.get("if")) for s in saved] == [(s["with"], s.get("if")) for s in restored]
    assert not caches("test", "actions/cache@")
    tools, deps, go_caches = (s["with"] for s in saved)
    assert tools["path"] == ".tools"
    for pinned_by in ("scripts/install-pulumi.sh", "scripts/install-tools.sh", "Makefile"):
        assert pinned_by in tools["key"]
    assert "uv.lock" in deps["key"] and "~/.cache/uv" in deps["path"].split()
    assert "~/.cache/go-build" in go_caches["path"].split()
    missed = "steps.tools.outputs.cache-hit != 'true'"
    for job in ("lint", "test"):
        go = caches(job, "actions/setup-go@")
        assert len(go) == 1 and go[0]["if"] == missed  # Go builds only what .tools lacks
        major, minor = (int(x) for x in str(go[0]["with"]["go-version"]).split(".")[:2])
        assert (major, minor) >= (1, 26)  # Pulumi pkg/v3 v3.260.0's go.mod: go 1.26.6
    assert saved[2]["if"] == missed


# --- tests/ci_plugin.py ---------------------------------------------------------------------

DEMO = """
import os
import pytest
from pathlib import Path

class Proj:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / ".edgeship" / "local").mkdir(parents=True)
        (root / ".edgeship" / "local" / "edge.log").write_text("edge says why\\n")
        (root / ".edgeship" / "local" / "state.json").write_text("{}")
        (root / "reports" / "p1").mkdir(parents=True)
        (root / "reports" / "p1" / "green.locust.log").write_text("locust says why\\n")
        (root / "model.tar.gz").write_bytes(b"not evidence")
        earlier = root / "reports" / "p0" / "blue.locust.log"  # an earlier test's promotion
        earlier.parent.mkdir()
        earlier.write_text("old news\\n")
        os.utime(earlier, (1e9, 1e9))

@pytest.fixture
def proj(tmp_path: Path) -> Proj:
    return Proj(tmp_path / "project")

def test_passes(proj: Proj) -> None:
    pass

def test_fails(proj: Proj) -> None:
    assert 1 == 2, "the gate failed"
"""


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, "-m", "pytest", "-p", "tests.ci_plugin", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # this folder is the rootdir, not the repo
    (tmp_path / "test_demo.py").write_text(DEMO)
    return tmp_path


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_the_parts_of_a_shard_hold_each_test_exactly_once(count: int) -> None:
    for position in range(3 * count + 1):
        assert [i for i in range(1, count + 1) if in_part(position, parse_part(f"{i}/{count}"))] == [
            position % count + 1
        ]


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_part_that_is_not_i_of_n_is_a_usage_error(bad: str) -> None:
    with pytest.raises(pytest.UsageError, match="expected I/N with 1 <= I <= N"):
        parse_part(bad)


def test_a_failed_test_leaves_its_projects_logs_and_reports_and_a_passed_one_nothing(demo: Path) -> None:
    out = demo / "failed"
    (out / "stale-from-an-earlier-run").mkdir(parents=True)
    done = _pytest(demo, f"--failed-artifacts={out}", f"--basetemp={demo / 'tmp'}", "test_demo.py")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [p.name for p in out.iterdir()] == ["test_demo.py_test_fails"]
    kept = out / "test_demo.py_test_fails"
    files = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert files == [
        "failure.txt",
        "project0.path",
        "project0/project/.edgeship/local/edge.log",
        "project0/project/reports/p1/green.locust.log",
    ]
    assert "the gate failed" in (kept / "failure.txt").read_text()
    assert (kept / "project0/project/reports/p1/green.locust.log").read_text() == "locust says why\n"
