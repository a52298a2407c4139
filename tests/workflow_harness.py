"""Runs a GitHub Actions workflow's jobs on this machine, as a hosted runner would.

For one event (push, pull_request, workflow_dispatch with inputs, a tag push) it checks the
workflow triggers on it, orders the jobs by `needs`, evaluates every job's and step's `if:`
and every `${{ }}` with GitHub's contexts (tests/workflow_expr.py), and runs each job's
`run:` steps in order with `bash --noprofile --norc -eo pipefail` in a throwaway repository,
honouring GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH and GITHUB_STEP_SUMMARY as the runner does.
`uses:` steps are emulated by what they do (ACTIONS below); a reusable workflow needs a
declared stand-in. Anything it cannot emulate or evaluate (an action, a shell, a context,
`strategy`, `services`) fails the run with HarnessError: nothing is skipped silently.

What differs from a hosted runner, on purpose:
  * one workspace for every job: before each job it is reset to the event's commit with
    `git clean -ffdx`, except `Runner.persist` (the local environment's `.edgeship/`, which
    plays AWS's part: an emulator that outlives the job, as AWS outlives the runner);
  * the hosted Pythons are `Runner.pythons` (the default one a virtualenv of its own, so
    `pip install` in a job never writes into this machine's interpreter), `pulumi/actions`
    links `Runner.pulumi`, `configure-aws-credentials` exports `Runner.aws`;
  * `Runner.env_names` maps GitHub environments' stacks onto stand-ins (`{"dev": "local"}`):
    `--env dev` in a script and an `EDGESHIP_ENV` variable of `dev` become `local`, counted
    per step (`StepResult.rewrites`) so a test can see the stand-in was used;
  * a cancel (`Cancel`) is simulated at a step: a hard one kills the step's process group
    (the runner vanished: no later step runs), a soft one is GitHub's (SIGINT, SIGTERM
    after 7.5 s, SIGKILL after 2.5 s more; then the cancelled()/always() steps run).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.spawn import dispositions
from tests.workflow_expr import Contexts, ExpressionError, condition, render, to_string


class HarnessError(Exception):
    """The workflow uses something the harness cannot run faithfully."""


@dataclass(frozen=True)
class Event:
    """What triggers a run."""

    name: str  # push | pull_request | workflow_dispatch
    ref: str  # refs/heads/main, refs/tags/v1.0.0, refs/pull/7/merge
    sha: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


def push(ref: str, sha: str) -> Event:
    return Event("push", ref, sha, payload={"ref": ref, "after": sha})


def pull_request(sha: str, number: int = 7, *, head_repo: str = "octo/repo", base: str = "main") -> Event:
    pr = {"number": number, "head": {"ref": "feature", "sha": sha, "repo": {"full_name": head_repo}},
          "base": {"ref": base}}  # fmt: skip
    return Event(
        "pull_request", f"refs/pull/{number}/merge", sha, payload={"number": number, "pull_request": pr}
    )


def dispatch(ref: str, sha: str, **inputs: Any) -> Event:
    return Event("workflow_dispatch", ref, sha, inputs=inputs, payload={"ref": ref, "inputs": inputs})


@dataclass(frozen=True)
class StandIn:
    """What a reusable workflow's job stands for in a run, and why it is not run."""

    reason: str
    result: str = "success"
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    """Cancel the run while `job`'s step `step` (name or id) runs, once `when()` is true."""

    job: str
    step: str
    when: Callable[[], bool]
    hard: bool = True  # the runner vanished; False: GitHub's cancel signals


@dataclass
class Runner:
    """What the hosted runner provides."""

    pythons: Mapping[str, str]  # "3.11" -> interpreter; the first is made the writable default
    pulumi: Path  # the `pulumi` executable pulumi/actions installs
    pulumi_version: str  # what it reports, without the v
    aws: Mapping[str, str]  # credentials configure-aws-credentials exports
    root: Path  # the runner's own directory (temp, artifacts)
    toolcache: Path  # where the hosted Pythons and Pulumi are made (may be shared by runners)
    env: Mapping[str, str] = field(default_factory=dict)  # the machine's variables, added
    env_names: Mapping[str, str] = field(default_factory=dict)
    persist: tuple[str, ...] = (".edgeship/",)
    _toolcache: dict[str, Path] = field(default_factory=dict)

    def python_bin(self, version: str) -> Path:
        """A directory holding python<version> (and, for the first, python/python3/pip in a
        virtualenv of its own), made once per runner."""
        if version not in self.pythons:
            raise HarnessError(
                f"setup-python: this runner has no Python {version} (it has {', '.join(self.pythons)})"
            )
        if version not in self._toolcache:
            place = self.toolcache / f"python{version}"
            if version == next(iter(self.pythons)):
                if not (place / "bin" / "python").exists():
                    # uv makes it (with pip) in a second where `python -m venv` takes ten
                    uv = Path(__file__).resolve().parents[1] / ".tools" / "uv" / "bin" / "uv"
                    argv = [
                        str(uv),
                        "venv",
                        "--quiet",
                        "--seed",
                        "--python",
                        self.pythons[version],
                        str(place),
                    ]
                    subprocess.run(argv, check=True)
                self._toolcache[version] = place / "bin"
            else:
                (place / "bin").mkdir(parents=True, exist_ok=True)
                for name in (f"python{version}",):
                    link = place / "bin" / name
                    if not link.exists():
                        link.symlink_to(self.pythons[version])
                self._toolcache[version] = place / "bin"
        return self._toolcache[version]


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | cancelled | skipped
    conclusion: str
    exit_code: int | None = None
    seconds: float = 0.0
    log: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    rewrites: int = 0


@dataclass
class JobResult:
    name: str
    result: str  # success | failure | cancelled | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    seconds: float = 0.0
    stand_in: str | None = None

    def step(self, name: str) -> StepResult:
        found = [s for s in self.steps if s.name == name]
        assert len(found) == 1, f"{self.name}: no step {name!r} in {[s.name for s in self.steps]}"
        return found[0]

    def describe(self) -> str:
        lines = [f"job {self.name}: {self.result} ({self.seconds:.1f} s)"]
        for s in self.steps:
            lines.append(f"  {s.name}: {s.outcome} exit={s.exit_code} ({s.seconds:.1f} s)")
            if s.outcome == "failure":
                lines.append("    " + s.log[-3000:].replace("\n", "\n    "))
        return "\n".join(lines)


@dataclass
class Run:
    jobs: dict[str, JobResult]
    artifacts: Path
    cancelled: bool

    def results(self) -> dict[str, str]:
        return {name: job.result for name, job in self.jobs.items()}

    def describe(self) -> str:
        return "\n".join(job.describe() for job in self.jobs.values())


def _on(workflow: Mapping[Any, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True


def triggers(workflow: Mapping[Any, Any], event: Event) -> bool:
    """Whether the workflow runs for the event (event names, branch and tag filters)."""
    on = _on(workflow)
    if isinstance(on, str):
        on = {on: None}
    elif isinstance(on, list):
        on = dict.fromkeys(on)
    if event.name not in on:
        return False
    spec = on[event.name] or {}
    unknown = set(spec) - {"branches", "tags", "inputs", "types", "paths", "branches-ignore"}
    if unknown or "paths" in spec or "branches-ignore" in spec:
        raise HarnessError(
            f"on.{event.name}: filters {sorted(set(spec) - {'branches', 'tags', 'inputs', 'types'})} are not emulated"
        )
    if event.name == "push":
        kind, name = ("tags", event.ref.removeprefix("refs/tags/")) if event.ref.startswith("refs/tags/") else (
            "branches", event.ref.removeprefix("refs/heads/"))  # fmt: skip
        if "branches" not in spec and "tags" not in spec:
            return True
        return any(fnmatch.fnmatchcase(name, p) for p in spec.get(kind, []))
    if event.name == "pull_request" and "branches" in spec:
        base = event.payload["pull_request"]["base"]["ref"]
        return any(fnmatch.fnmatchcase(base, p) for p in spec["branches"])
    return True


def dispatch_inputs(workflow: Mapping[Any, Any], event: Event) -> dict[str, Any]:
    """The inputs context: a dispatch's inputs checked against their declarations, defaults applied."""
    if event.name != "workflow_dispatch":
        return {}
    declared = (_on(workflow).get("workflow_dispatch") or {}).get("inputs") or {}
    unknown = set(event.inputs) - set(declared)
    if unknown:
        raise HarnessError(f"workflow_dispatch has no inputs {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        value = event.inputs.get(name, spec.get("default"))
        if value is None and spec.get("required"):
            raise HarnessError(f"workflow_dispatch input {name!r} is required")
        kind = spec.get("type", "string")
        if kind == "choice" and value not in spec["options"]:
            raise HarnessError(f"input {name}={value!r} is not one of {spec['options']}")
        if kind == "boolean":
            value = value in (True, "true")
        values[name] = "" if value is None else value
    return values


def declared_inputs(workflow: Mapping[Any, Any]) -> frozenset[str]:
    on = _on(workflow)
    dispatch_spec = on.get("workflow_dispatch") if isinstance(on, dict) else None
    return frozenset(((dispatch_spec or {}).get("inputs") or {}).keys())


def job_order(jobs: Mapping[str, Any]) -> list[str]:
    """Jobs in an order that runs each after its needs (declaration order among equals)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise HarnessError(f"jobs depend on each other in a cycle through {name!r}")
        if name not in jobs:
            raise HarnessError(f"a job needs {name!r}, which is not a job of this workflow")
        visiting.add(name)
        for need in _needs(jobs[name]):
            visit(need)
        visiting.discard(name)
        order.append(name)

    for name in jobs:
        visit(name)
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


ENV_FLAG = re.compile(r"(--env[ =])([A-Za-z0-9_-]+)\b")


class Workflow:
    """One workflow file, run against a workspace (a git repository) on a Runner."""

    def __init__(
        self,
        path: Path,
        workspace: Path,
        runner: Runner,
        *,
        vars: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        stand_ins: Mapping[str, StandIn] | None = None,
        repository: str = "octo/repo",
    ) -> None:
        self.path, self.workspace, self.runner = path, workspace, runner
        self.spec = yaml.safe_load(path.read_text())
        self.vars, self.stand_ins, self.repository = dict(vars or {}), dict(stand_ins or {}), repository
        self.secrets = {"GITHUB_TOKEN": "ghs_harness", **(secrets or {})}

    # --- contexts ----------------------------------------------------------------------

    def _github(self, event: Event, job: str, run_id: str) -> dict[str, Any]:
        ref = event.ref
        ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
        ref_name = ref.split("/", 2)[2] if ref.count("/") >= 2 else ref
        pr = event.payload.get("pull_request")
        return {
            "event_name": event.name, "event": dict(event.payload), "ref": ref, "ref_name": ref_name,
            "ref_type": ref_type, "sha": event.sha, "repository": self.repository,
            "repository_owner": self.repository.split("/")[0], "run_id": run_id, "run_number": "1",
            "run_attempt": "1", "server_url": "https://github.com", "api_url": "https://api.github.com",
            "graphql_url": "https://api.github.com/graphql", "workflow": self.spec.get("name", self.path.name),
            "workflow_ref": f"{self.repository}/{self.path.name}@{ref}", "job": job, "actor": "octocat",
            "triggering_actor": "octocat", "head_ref": pr["head"]["ref"] if pr else "",
            "base_ref": pr["base"]["ref"] if pr else "", "workspace": str(self.workspace),
            "token": self.secrets["GITHUB_TOKEN"], "action": "", "retention_days": "90",
        }  # fmt: skip

    def _contexts(self, values: dict[str, Any], status: Callable[[str], bool] | None = None) -> Contexts:
        return Contexts(
            values,
            strict=frozenset({"vars", "secrets", "needs", "inputs", "steps"}),
            status=status,
            workspace=self.workspace,
            allowed_missing={"inputs": self._inputs_declared, "steps": self._step_ids},
        )

    # --- a run -----------------------------------------------------------------------------

    def run(self, event: Event, *, cancel: Cancel | None = None, execute: bool = True) -> Run:
        """Every job for the event, in `needs` order. With execute=False nothing runs: each
        job the conditions select succeeds (which jobs an event runs, and in what order)."""
        if not triggers(self.spec, event):
            raise HarnessError(f"{self.path.name} does not run on {event.name} of {event.ref}")
        for key in self.spec:
            if key not in (
                "name",
                "on",
                True,
                "permissions",
                "env",
                "jobs",
                "concurrency",
                "defaults",
                "run-name",
            ):
                raise HarnessError(f"workflow key {key!r} is not emulated")
        if "defaults" in self.spec:
            raise HarnessError("workflow defaults: are not emulated")
        self._inputs_declared = declared_inputs(self.spec)
        self._step_ids: frozenset[str] = frozenset()
        inputs = dispatch_inputs(self.spec, event)
        run_id = str(int(time.time() * 1000) % 10_000_000_000)
        artifacts = self.runner.root / f"artifacts-{run_id}"
        artifacts.mkdir(parents=True)
        jobs = self.spec["jobs"]
        results: dict[str, JobResult] = {}
        state = {"cancelled": False}
        for name in job_order(jobs):
            job = jobs[name]
            github = self._github(event, name, run_id)
            needs = {
                n: {"result": results[n].result, "outputs": dict(results[n].outputs)} for n in _needs(job)
            }

            def job_status(which: str, needs: dict[str, Any] = needs) -> bool:
                if which == "cancelled":
                    return state["cancelled"]
                if which == "failure":
                    return any(n["result"] == "failure" for n in needs.values())
                return not state["cancelled"] and all(n["result"] == "success" for n in needs.values())

            base = {"github": github, "inputs": inputs, "vars": self.vars, "needs": needs}
            try:
                chosen = condition(job.get("if"), self._contexts(dict(base), job_status))
            except ExpressionError as error:
                raise HarnessError(f"job {name}: if: {error}") from None
            if not chosen:
                results[name] = JobResult(name, "skipped")
                continue
            if "uses" in job:
                results[name] = self._stand_in(name, job)
                continue
            if not execute:
                results[name] = JobResult(name, "success")
                continue
            results[name] = self._run_job(name, job, base, event, artifacts, cancel, state)
        return Run(results, artifacts, state["cancelled"])

    def _stand_in(self, name: str, job: Mapping[str, Any]) -> JobResult:
        stand_in = self.stand_ins.get(job["uses"])
        if stand_in is None:
            raise HarnessError(
                f"job {name} calls {job['uses']}: declare a StandIn for it (reusable workflows are not run)"
            )
        return JobResult(name, stand_in.result, outputs=dict(stand_in.outputs), stand_in=stand_in.reason)

    # --- one job -----------------------------------------------------------------------------

    JOB_KEYS = frozenset({"name", "needs", "if", "runs-on", "timeout-minutes", "environment", "concurrency",
                          "permissions", "env", "steps", "outputs", "continue-on-error"})  # fmt: skip

    def _run_job(
        self, name: str, job: Mapping[str, Any], base: dict[str, Any], event: Event, artifacts: Path,
        cancel: Cancel | None, state: dict[str, bool],
    ) -> JobResult:  # fmt: skip
        unknown = set(job) - self.JOB_KEYS
        if unknown:
            raise HarnessError(f"job {name}: {sorted(unknown)} are not emulated")
        started = time.monotonic()
        self._reset_workspace(event.sha)
        temp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.runner.root))
        runner_ctx = {"os": "Linux", "arch": "X64", "name": "harness", "temp": str(temp),
                      "tool_cache": str(self.runner.toolcache), "environment": "github-hosted"}  # fmt: skip
        env_ctx: dict[str, str] = {}
        workflow_level = {"github": base["github"], "inputs": base["inputs"], "vars": self.vars,
                          "secrets": self.secrets}  # fmt: skip
        try:
            env_ctx.update(_strings(render(self.spec.get("env", {}), self._contexts(dict(workflow_level)))))
            job_values = {**base, "secrets": self.secrets, "env": dict(env_ctx), "runner": runner_ctx,
                          "strategy": {}, "matrix": {}}  # fmt: skip
            env_ctx.update(_strings(render(job.get("env", {}), self._contexts(dict(job_values)))))
            render(job.get("environment"), self._contexts({**base}))
            render(job.get("concurrency"), self._contexts({**base}))
        except ExpressionError as error:
            raise HarnessError(f"job {name}: {error}") from None
        timeout = float(job.get("timeout-minutes", 360)) * 60
        steps_ctx: dict[str, Any] = {}
        path_extra: list[str] = []
        result = JobResult(name, "success")
        job_env = dict(env_ctx)
        specs = list(job.get("steps", []))
        self._step_ids = frozenset(s["id"] for s in specs if "id" in s)
        summary = temp / "step_summary.md"
        for index, step in enumerate(specs):
            step_name = str(
                step.get("name") or step.get("uses") or f"Run {str(step.get('run', '')).splitlines()[0]}"
            )
            step_id = step.get("id", f"__{index}")
            failed = any(s.outcome == "failure" and s.conclusion == "failure" for s in result.steps)

            def step_status(which: str, failed: bool = failed) -> bool:
                if which == "cancelled":
                    return state["cancelled"]
                if which == "failure":
                    return failed
                return not failed and not state["cancelled"]

            values = {**base, "secrets": self.secrets, "env": dict(job_env), "runner": runner_ctx,
                      "steps": steps_ctx, "job": {"status": "cancelled" if state["cancelled"] else
                                                  ("failure" if failed else "success")},
                      "strategy": {}, "matrix": {}}  # fmt: skip
            try:
                run_it = condition(step.get("if"), self._contexts(values, step_status))
            except ExpressionError as error:
                raise HarnessError(f"job {name}, step {step_name}: if: {error}") from None
            if self._runner_lost(state, cancel, name) or not run_it:
                result.steps.append(StepResult(step_name, "skipped", "skipped"))
                if "id" in step:
                    steps_ctx[step_id] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                continue
            remaining = timeout - (time.monotonic() - started)
            ctx = self._contexts(values)
            files = {k: temp / f"{k.lower()}-{index}" for k in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH")}
            for file in files.values():
                file.write_text("")
            environ = self._environ(job_env, path_extra, event, name, runner_ctx, files, summary, step_id)
            if "run" in step:
                here = (
                    cancel is not None and cancel.job == name and cancel.step in (step_name, step.get("id"))
                )
                outcome = self._run_step(
                    step, step_name, ctx, environ, remaining, cancel if here else None, state
                )
            elif "uses" in step:
                outcome = self._use(step, step_name, ctx, environ, path_extra, job_env, artifacts)
            else:
                raise HarnessError(f"job {name}: a step with neither run nor uses")
            # what the step asked the runner to carry on (GITHUB_ENV, GITHUB_PATH) and its outputs
            job_env.update(_read_pairs(files["GITHUB_ENV"]))
            path_extra[:0] = [
                line for line in reversed(files["GITHUB_PATH"].read_text().splitlines()) if line
            ]
            outcome.outputs.update(_read_pairs(files["GITHUB_OUTPUT"]))
            if outcome.outcome == "failure" and _truthy_setting(step.get("continue-on-error"), ctx):
                outcome.conclusion = "success"
            result.steps.append(outcome)
            if "id" in step:
                steps_ctx[step_id] = {"outcome": outcome.outcome, "conclusion": outcome.conclusion,
                                      "outputs": dict(outcome.outputs)}  # fmt: skip
        result.summary = summary.read_text() if summary.exists() else ""
        if state["cancelled"] and any(s.outcome == "cancelled" for s in result.steps):
            result.result = "cancelled"
        elif any(s.conclusion == "failure" for s in result.steps):
            result.result = "failure"
        try:
            outputs_ctx = self._contexts({**base, "secrets": self.secrets, "env": dict(job_env), "steps": steps_ctx,
                                          "runner": runner_ctx, "strategy": {}, "matrix": {}})  # fmt: skip
            result.outputs = _strings(render(job.get("outputs", {}), outputs_ctx))
        except ExpressionError as error:
            raise HarnessError(f"job {name}: outputs: {error}") from None
        result.seconds = time.monotonic() - started
        return result

    def _runner_lost(self, state: dict[str, bool], cancel: Cancel | None, job: str) -> bool:
        return bool(state.get("runner_lost")) and cancel is not None and cancel.job == job

    def _reset_workspace(self, sha: str) -> None:
        git = ["git", "-C", str(self.workspace)]
        subprocess.run([*git, "checkout", "--quiet", "--force", "--detach", sha], check=True)
        excluded = [arg for pattern in self.runner.persist for arg in ("-e", pattern)]
        subprocess.run([*git, "clean", "-ffdxq", *excluded], check=True)

    def _environ(
        self, job_env: Mapping[str, str], path_extra: list[str], event: Event, job: str,
        runner_ctx: Mapping[str, str], files: Mapping[str, Path], summary: Path, step_id: str,
    ) -> dict[str, str]:  # fmt: skip
        system_path = [
            p
            for p in os.environ.get("PATH", "").split(os.pathsep)
            if "/.venv/" not in p and "/.tools/" not in p
        ]
        inherited = {
            k: v for k, v in os.environ.items()
            if k in ("HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR", "SSL_CERT_FILE", "PIP_CERT", "PYENV_ROOT")
            or k.startswith(("UV_", "PIP_"))
        }  # fmt: skip
        github = self._github(event, job, "0")
        environ = {
            **inherited,
            **self.runner.env,
            "PATH": os.pathsep.join([*path_extra, *system_path]),
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_EVENT_NAME": event.name, "GITHUB_REF": event.ref, "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_REF_TYPE": github["ref_type"], "GITHUB_SHA": event.sha, "GITHUB_REPOSITORY": self.repository,
            "GITHUB_SERVER_URL": github["server_url"], "GITHUB_JOB": job, "GITHUB_ACTION": step_id,
            "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "RUNNER_TEMP": runner_ctx["temp"],
            "RUNNER_TOOL_CACHE": runner_ctx["tool_cache"], "GITHUB_STEP_SUMMARY": str(summary),
            **{k: str(v) for k, v in files.items()},
            **job_env,
        }  # fmt: skip
        return environ

    def _run_step(
        self, step: Mapping[str, Any], name: str, ctx: Contexts, environ: dict[str, str], timeout: float,
        cancel: Cancel | None, state: dict[str, bool],
    ) -> StepResult:  # fmt: skip
        shell = step.get("shell", "bash")
        if shell != "bash":
            raise HarnessError(f"step {name}: shell {shell!r} is not emulated")
        unknown = set(step) - {"name", "id", "if", "run", "env", "shell", "working-directory",
                               "continue-on-error", "timeout-minutes"}  # fmt: skip
        if unknown:
            raise HarnessError(f"step {name}: {sorted(unknown)} are not emulated")
        try:
            script = to_string(render(step["run"], ctx))
            step_env = _strings(render(step.get("env", {}), ctx))
            cwd = self.workspace / to_string(render(step.get("working-directory", "."), ctx))
        except ExpressionError as error:
            raise HarnessError(f"step {name}: {error}") from None
        environ = {**environ, **step_env}
        script, rewrites = self._stand_in_envs(script, environ)
        if "timeout-minutes" in step:
            timeout = min(timeout, float(step["timeout-minutes"]) * 60)
        script_file = Path(environ["RUNNER_TEMP"]) / f"{uuid.uuid4().hex}.sh"
        script_file.write_text(script)
        log_file = script_file.with_suffix(".log")
        started = time.monotonic()
        with log_file.open("w") as log, dispositions(RUNNER_SIGNALS):  # no preexec_fn: tests/spawn.py
            proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
                cwd=cwd, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            outcome = self._wait(proc, timeout, cancel, state)
        result = StepResult(name, outcome, outcome, proc.returncode, time.monotonic() - started,
                            log_file.read_text(errors="replace"), rewrites=rewrites)  # fmt: skip
        return result

    def _wait(
        self, proc: subprocess.Popen[bytes], timeout: float, cancel: Cancel | None, state: dict[str, bool]
    ) -> str:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                _signal(proc, signal.SIGKILL)
                proc.wait()
                return "failure"  # timed out: GitHub fails the job
            if cancel is not None and not state["cancelled"] and cancel.when():
                state["cancelled"] = True
                if cancel.hard:
                    state["runner_lost"] = True
                    _signal(proc, signal.SIGKILL)
                else:  # GitHub: SIGINT, then SIGTERM after 7.5 s, then SIGKILL after 2.5 s more
                    for sig, grace in ((signal.SIGINT, 7.5), (signal.SIGTERM, 2.5), (signal.SIGKILL, 30.0)):
                        _signal(proc, sig)
                        try:
                            proc.wait(timeout=grace)
                            break
                        except subprocess.TimeoutExpired:
                            continue
                proc.wait()
                return "cancelled"
            time.sleep(0.1)
        return "success" if proc.returncode == 0 else "failure"

    def _stand_in_envs(self, script: str, environ: dict[str, str]) -> tuple[str, int]:
        """`--env dev` and EDGESHIP_ENV=dev onto the runner's stand-in environments."""
        rewrites = 0
        names = self.runner.env_names

        def swap(match: re.Match[str]) -> str:
            nonlocal rewrites
            if match.group(2) in names:
                rewrites += 1
                return match.group(1) + names[match.group(2)]
            return match.group(0)

        script = ENV_FLAG.sub(swap, script)
        if environ.get("EDGESHIP_ENV") in names:
            environ["EDGESHIP_ENV"] = names[environ["EDGESHIP_ENV"]]
            rewrites += 1
        return script, rewrites

    # --- actions -----------------------------------------------------------------------------

    def _use(
        self, step: Mapping[str, Any], name: str, ctx: Contexts, environ: dict[str, str], path_extra: list[str],
        job_env: dict[str, str], artifacts: Path,
    ) -> StepResult:  # fmt: skip
        uses = str(step["uses"])
        action = uses.split("@", 1)[0]
        unknown = set(step) - {"name", "id", "if", "uses", "with", "continue-on-error", "env"}
        if unknown:
            raise HarnessError(f"step {name}: {sorted(unknown)} are not emulated")
        try:
            inputs = {k: to_string(v) for k, v in render(step.get("with", {}) or {}, ctx).items()}
        except ExpressionError as error:
            raise HarnessError(f"step {name}: with: {error}") from None
        emulate = ACTIONS.get(action)
        if emulate is None:
            raise HarnessError(f"step {name}: action {action} is not emulated")
        allowed = ACTION_INPUTS[action]
        if set(inputs) - allowed:
            raise HarnessError(
                f"step {name}: {action} inputs {sorted(set(inputs) - allowed)} are not emulated"
            )
        started = time.monotonic()
        try:
            log = emulate(self, inputs, path_extra, job_env, artifacts)
        except ActionFailed as failure:
            return StepResult(name, "failure", "failure", 1, time.monotonic() - started, str(failure))
        return StepResult(name, "success", "success", 0, time.monotonic() - started, log)


class ActionFailed(Exception):
    """An emulated action failed as the real one would (a missing file, a bad input)."""


def _checkout(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    return f"the workspace is at {wf.workspace} (reset to the event's commit before the job)"


def _setup_python(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    versions = inputs.get("python-version", "").split()
    if not versions or inputs.get("cache"):
        raise HarnessError("setup-python: needs python-version, and cache is not emulated")
    for version in versions:  # the last listed ends first on PATH: the default python
        path.insert(0, str(wf.runner.python_bin(version)))
    default = wf.runner.python_bin(versions[-1])
    if not (default / "python").exists():
        raise HarnessError(
            f"setup-python: the default Python must be the runner's first ({next(iter(wf.runner.pythons))})"
        )
    env["pythonLocation"] = str(default.parent)
    return f"python {', '.join(versions)} on PATH"


def _setup_go(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    go = shutil.which("go")
    if go is None:
        raise ActionFailed("setup-go: this runner has no go")
    path.insert(0, str(Path(go).parent))
    return f"go from {go}"


def _pulumi(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    wanted = inputs.get("pulumi-version", "").removeprefix("v")
    if wanted != wf.runner.pulumi_version:
        raise HarnessError(
            f"pulumi/actions: this runner has pulumi {wf.runner.pulumi_version}, not {wanted!r}"
        )
    place = wf.runner.toolcache / "pulumi" / "bin"
    place.mkdir(parents=True, exist_ok=True)
    if not (place / "pulumi").exists():
        (place / "pulumi").symlink_to(wf.runner.pulumi)
    # The release archive the action unpacks carries the language hosts and the dynamic
    # providers' launcher beside the CLI, all on PATH: a launcher other than the one
    # `install-pulumi` binds to .venv, which the engine must neither use nor warn about.
    launcher = place / "pulumi-resource-pulumi-python"
    if not launcher.exists():
        launcher.write_text('#!/bin/sh\nexec python3 -u -m pulumi.dynamic "$@"\n')
        launcher.chmod(0o755)
    path.insert(0, str(place))
    return f"pulumi {wanted} on PATH"


def _aws(wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path) -> str:
    if not inputs.get("role-to-assume") or not inputs.get("aws-region"):
        raise ActionFailed(
            "configure-aws-credentials: role-to-assume and aws-region are required (empty here)"
        )
    seconds = session_seconds(inputs.get("role-duration-seconds"))
    env.update(wf.runner.aws)
    env |= {"AWS_REGION": inputs["aws-region"], "AWS_DEFAULT_REGION": inputs["aws-region"]}
    return f"credentials of the stand-in for {inputs['role-to-assume']}, a {seconds} s session"


# configure-aws-credentials' default session (OIDC), and the range AssumeRole's DurationSeconds
# accepts (AWS caps it further at the role's MaxSessionDuration, which the stand-in has none of).
DEFAULT_SESSION_SECONDS = 3600
SESSION_SECONDS = range(900, 43200 + 1)


def session_seconds(value: str | None) -> int:
    """The session `role-duration-seconds` asks for. The real action parses it with parseInt
    and silently falls back to 1 h on anything else, and AWS refuses a duration outside its
    range only at run time: here both fail the run, loudly."""
    if value is None or value == "":
        return DEFAULT_SESSION_SECONDS
    if not re.fullmatch(r"[0-9]+", value) or int(value) not in SESSION_SECONDS:
        raise HarnessError(
            f"configure-aws-credentials: role-duration-seconds {value!r} is not a whole number of "
            f"seconds from {SESSION_SECONDS.start} to {SESSION_SECONDS.stop - 1} (AssumeRole's range)"
        )
    return int(value)


def _upload(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    target = artifacts / inputs["name"]
    if target.exists():
        raise ActionFailed(
            f"upload-artifact: an artifact named {inputs['name']!r} already exists in this run"
        )
    found = []
    for pattern in (p.strip() for p in inputs["path"].splitlines()):
        if pattern:
            found += [p for p in wf.workspace.glob(pattern.rstrip("/")) if p.exists()]
    if not found:
        if inputs.get("if-no-files-found", "warn") == "error":
            raise ActionFailed(f"upload-artifact: no files at {inputs['path']!r}")
        return "no files (nothing uploaded)"
    for source in found:
        dest = target / source.relative_to(wf.workspace)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
    return f"uploaded {len(found)} paths as {inputs['name']}"


def _download(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    source = artifacts / inputs["name"]
    if not source.exists():
        raise ActionFailed(f"download-artifact: no artifact named {inputs['name']!r} in this run")
    shutil.copytree(source, wf.workspace / inputs.get("path", "."), dirs_exist_ok=True)
    return f"downloaded {inputs['name']}"


def _cache(
    wf: Workflow, inputs: dict[str, str], path: list[str], env: dict[str, str], artifacts: Path
) -> str:
    return f"cache miss for {inputs['key']} (the harness keeps no cache)"


ACTIONS: dict[str, Callable[[Workflow, dict[str, str], list[str], dict[str, str], Path], str]] = {
    "actions/checkout": _checkout,
    "actions/setup-python": _setup_python,
    "actions/setup-go": _setup_go,
    "pulumi/actions": _pulumi,
    "aws-actions/configure-aws-credentials": _aws,
    "actions/upload-artifact": _upload,
    "actions/download-artifact": _download,
    "actions/cache": _cache,
}
ACTION_INPUTS = {
    "actions/checkout": {"persist-credentials", "fetch-depth"},
    "actions/setup-python": {"python-version"},
    "actions/setup-go": {"go-version", "cache"},
    "pulumi/actions": {"pulumi-version"},
    "aws-actions/configure-aws-credentials": {"role-to-assume", "aws-region", "role-duration-seconds"},
    "actions/upload-artifact": {"name", "path", "retention-days", "if-no-files-found"},
    "actions/download-artifact": {"name", "path"},
    "actions/cache": {"path", "key"},
}


# A step starts with the signal dispositions a hosted runner gives it. A test run as a
# shell's background job (`make unit`'s niced streams, CI wrappers) inherits SIGINT and
# SIGQUIT ignored, and bash cannot trap a signal ignored at its start: a step's
# `trap ... INT` would never see GitHub's cancel.
RUNNER_SIGNALS = {signal.SIGINT: signal.SIG_DFL, signal.SIGQUIT: signal.SIG_DFL}


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _strings(values: Any) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise HarnessError(f"expected a mapping, got {values!r}")
    return {str(k): to_string(v) for k, v in values.items()}


def _truthy_setting(value: Any, ctx: Contexts) -> bool:
    from tests.workflow_expr import truthy

    return truthy(render(value, ctx)) if value is not None else False


def _read_pairs(file: Path) -> dict[str, str]:
    """NAME=value lines and NAME<<DELIMITER blocks, as GITHUB_ENV and GITHUB_OUTPUT hold them."""
    pairs: dict[str, str] = {}
    lines = file.read_text().splitlines()
    at = 0
    while at < len(lines):
        line = lines[at]
        at += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            while at < len(lines) and lines[at] != delimiter:
                block.append(lines[at])
                at += 1
            if at == len(lines):
                raise HarnessError(f"{file.name}: {key} has no closing {delimiter!r}")
            at += 1
            pairs[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
        else:
            raise HarnessError(f"{file.name}: cannot read line {line!r}")
    return pairs
