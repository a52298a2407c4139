"""The deploy workflows, executed: `init`'s rendered workflow in a new repository, and this
repository's own deploy.yml, each run by tests/workflow_harness.py with real bash, the real
Pulumi CLI, the local environment (moto server and local edge) standing in for AWS, real
Locust gates.

The workflows deploy `dev`; the harness maps that stack onto the local environment
(`Runner.env_names`: `--env dev` and EDGESHIP_ENV=dev become `local`, counted per step and
asserted here), so the YAML runs unchanged and edgeship's environments stay what users get.
The user's edgeship.toml keeps init's local environment with shorter gates (as the other
end-to-end tests do); `.edgeship/` (the emulator's state: AWS here) survives between jobs,
everything else is reset to the event's commit as on a fresh runner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.local import daemon, emulator, runtime
from orchestrator.stacks.toolchain import PULUMI_VERSION
from tests.conftest import LOCAL_TOML, SAMPLE_MODEL, Wheel
from tests.workflow_harness import Cancel, Run, Runner, StandIn, Workflow, dispatch, push

REPO = Path(__file__).resolve().parents[1]

# init's local environment made conftest's (short gates, thresholds only a fault fails: the
# release machinery is what runs here), with 3 s gates
FAST_LOCAL = LOCAL_TOML[LOCAL_TOML.index("[environments.local]") :].format(duration=3)


@pytest.fixture(scope="module")
def toolcache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hosted runner's Pythons and Pulumi, made once for both workflows."""
    return tmp_path_factory.mktemp("toolcache")


def _runner(root: Path, toolcache: Path, **env: str) -> Runner:
    base = getattr(sys, "_base_executable", sys.executable)
    return Runner(
        toolcache=toolcache,
        pythons={"3.11": base, "3.12": runtime.interpreter("python3.12")},
        pulumi=(REPO / ".tools" / "pulumi" / "bin" / "pulumi").resolve(),
        pulumi_version=PULUMI_VERSION,
        aws={k: v for k, v in emulator.CREDENTIALS.items() if k.startswith("AWS_")},
        root=root,
        # the Lambda runtime's packages this checkout installed (users': a per-user cache)
        env={"EDGESHIP_LAMBDA_RUNTIME_DIR": str(REPO / ".tools" / "lambda-runtime"), **env},
        env_names={"dev": "local"},
    )


def _git(repo: Path, *args: str) -> str:
    argv = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _expect(run: Run, results: dict[str, str]) -> None:
    selected = {name: r for name, r in run.results().items() if r != "skipped"}
    assert selected == results, run.describe()
    # the engine finds the launcher it expects beside the CLI install-pulumi linked: no
    # "using pulumi-resource-pulumi-python from $PATH" in any step of any job
    warned = [
        f"{job}: {step.name}"
        for job, result in run.jobs.items()
        for step in getattr(result, "steps", [])
        if "pulumi-resource-pulumi-python from $PATH" in step.log
    ]
    assert warned == [], warned


def _stop_local(repo: Path) -> None:
    state = repo / ".edgeship" / "local"
    daemon.stop(state / "edge.json")
    emulator.stop(state)


def _durations(label: str, run: Run, into: list[str]) -> None:
    into.append(f"{label}: " + ", ".join(f"{n} {j.seconds:.0f}s" for n, j in run.jobs.items() if j.seconds))
    for job in run.jobs.values():
        into.extend(f"    {job.name} / {s.name}: {s.seconds:.1f}s" for s in job.steps if s.seconds >= 1)


@pytest.fixture
def durations() -> list[str]:
    kept: list[str] = []
    yield kept
    print("\n" + "\n".join(kept))


def test_inits_workflow_tests_previews_deploys_promotes_and_recovers_a_cancelled_promotion(
    tmp_path: Path, wheel: Wheel, toolcache: Path, durations: list[str]
) -> None:
    repo = tmp_path / "fraud-model"
    (repo / "dist").mkdir(parents=True)
    shutil.copy2(wheel.path, repo / "dist" / wheel.path.name)
    _git(repo, "init", "--quiet", "-b", "main")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "init", str(repo), "--install-from", f"dist/{wheel.path.name}", "--json"],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["install"] == f"./dist/{wheel.path.name}"
    config = repo / "edgeship.toml"
    text = config.read_text()
    config.write_text(
        re.sub(r"\[environments\.local\].*?(?=\[environments\.dev\])", FAST_LOCAL, text, flags=re.S)
    )
    _commit(repo, "init")
    bucket = tmp_path / "state-bucket"  # PULUMI_BACKEND_URL: the state outlives each runner
    bucket.mkdir()
    workflow = Workflow(
        repo / ".github" / "workflows" / "edgeship-deploy.yml",
        repo,
        # uv.lock's versions: the install resolves what this checkout tested
        _runner(tmp_path / "runner", toolcache, UV_CONSTRAINT=str(wheel.constraints)),
        vars={
            "PULUMI_BACKEND_URL": bucket.as_uri(),
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/dev",
            "AWS_REGION": "us-east-1",
        },
        secrets={"PULUMI_CONFIG_PASSPHRASE": "harness-passphrase"},
        repository="octo/fraud-model",
    )
    try:
        # dev exists already, serving the sample model as v1 (`up` from this checkout: the
        # first deploy through a workflow is deploy.yml's test below)
        started = time.monotonic()
        env = {
            **os.environ,
            "PULUMI_BACKEND_URL": bucket.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "harness-passphrase",
        }
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "up", "--env", "local", "--yes", "--json"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        durations.append(f"up before the workflow: {time.monotonic() - started:.0f}s")

        # 1. a new model pushed to main: the tests, dev's preview, dev deployed and promoted;
        # the runner vanishes once the first gate reported
        (repo / "models" / "model.tar.gz").unlink()
        from orchestrator.demo import model_version

        model_version(SAMPLE_MODEL, "2", repo / "models" / "model.tar.gz")
        second = _commit(repo, "model v2")
        reports = repo / "reports"
        cancel = Cancel(
            "dev", "Promote", when=lambda: reports.exists() and any(reports.rglob("*.stats.json"))
        )
        run = workflow.run(push("refs/heads/main", second), cancel=cancel)
        _durations("push main, promotion cancelled", run, durations)
        _expect(run, {"tests": "success", "preview-dev": "success", "dev": "cancelled"})
        preview = run.jobs["preview-dev"]
        # the summary once, from `preview` itself; the workflow's copy is for the PR comment
        assert preview.step("Preview").rewrites == 1 and preview.summary.count("### edgeship preview") == 1
        assert "### edgeship preview `local`" in preview.summary
        comment = (run.artifacts / "preview-dev" / "preview.md").read_text()
        assert comment.startswith("<!-- edgeship-preview:local -->\n### edgeship preview: local\n")
        dev = run.jobs["dev"]
        assert dev.step("Deploy").rewrites == 1 and dev.step("Deploy").outcome == "success"
        # credentials as long as the job's 60 minutes (the harness refuses an invalid session)
        assert [s.log for s in dev.steps if "a 3600 s session" in s.log], dev.describe()
        # the runner is lost: neither the abort step nor the upload ran
        assert [s.outcome for s in dev.steps][-3:] == ["cancelled", "skipped", "skipped"]

        # 3. recover: resume the interrupted promotion from its record
        run = workflow.run(dispatch("refs/heads/main", second, environment="dev", action="resume"))
        _durations("dispatch resume", run, durations)
        _expect(run, {"recover": "success"})
        assert run.jobs["recover"].step("Finish the interrupted promotion").rewrites == 1
        report = json.loads((run.artifacts / "gate-reports-recover" / "promotion.json").read_text())
        assert report["outcome"] == "promoted", report
        durations.append(f"init's workflow, all runs: {time.monotonic() - started:.0f}s")
    finally:
        _stop_local(repo)


def test_this_repositorys_deploy_workflow_previews_deploys_and_promotes(
    tmp_path: Path, toolcache: Path, durations: list[str]
) -> None:
    repo = tmp_path / "edgeship"
    repo.mkdir()
    # this checkout's files as they are (committed or not), in a repository of their own
    listed = _git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name, follow_symlinks=False)
    config = repo / "edgeship.toml"
    config.write_text(
        re.sub(
            r"\[environments\.local\].*?(?=\[environments\.dev\])", FAST_LOCAL, config.read_text(), flags=re.S
        )
    )
    _git(repo, "init", "--quiet", "-b", "main")
    sha = _commit(repo, "checkout")
    bucket = tmp_path / "state-bucket"
    bucket.mkdir()
    workflow = Workflow(
        repo / ".github" / "workflows" / "deploy.yml",
        repo,
        _runner(tmp_path / "runner", toolcache),
        vars={
            "PULUMI_BACKEND_URL": bucket.as_uri(),
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/dev",
            "AWS_REGION": "us-east-1",
        },
        secrets={"PULUMI_CONFIG_PASSPHRASE": "harness-passphrase"},
        # ci.yml is the whole suite, which is what runs this test: not again inside it
        stand_ins={"./.github/workflows/ci.yml": StandIn("the suite running this test is ci.yml's job")},
        repository="octo/edgeship",
    )
    try:
        started = time.monotonic()
        run = workflow.run(push("refs/heads/main", sha))
        _durations("deploy.yml push main", run, durations)
        _expect(run, {"tests": "success", "preview-dev": "success", "dev": "success"})
        assert run.jobs["tests"].stand_in is not None
        dev = run.jobs["dev"]
        assert dev.step("Deploy").rewrites == 1 and "nothing to promote" in dev.step("Promote").log
        assert [s.log for s in dev.steps if "a 3600 s session" in s.log], dev.describe()

        # a new model pushed to main: deployed, then promoted through its gates, the report
        # and promotion.json uploaded as the job's artifact
        from orchestrator.demo import model_version

        sample = repo / "programs" / "function" / "sample" / "model.tar.gz"
        original = sample.read_bytes()
        sample.unlink()
        model_version(SAMPLE_MODEL, "2", sample)
        assert sample.read_bytes() != original
        run = workflow.run(push("refs/heads/main", _commit(repo, "model v2")))
        _durations("deploy.yml push main, model v2", run, durations)
        _expect(run, {"tests": "success", "preview-dev": "success", "dev": "success"})
        promoted = json.loads((run.artifacts / "gate-reports-dev" / "promotion.json").read_text())
        assert (promoted["outcome"], promoted["blue"], promoted["green"]) == ("promoted", "1", "2"), promoted
        assert list((run.artifacts / "gate-reports-dev" / "reports").rglob("report.html"))
        durations.append(f"deploy.yml, all runs: {time.monotonic() - started:.0f}s")
    finally:
        _stop_local(repo)
