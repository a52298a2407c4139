"""Shared fixtures: a throwaway edgeship project and the real Pulumi CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# --part (a shard split over CI jobs) and --failed-artifacts (a failed test's logs and gate
# reports, kept for CI to upload): tests/ci_plugin.py
pytest_plugins = ["tests.ci_plugin"]

ENGINE_TOML = """
[project]
name = "enginetest"
backend = "{backend}"

[environments.test]
region = "us-east-1"
account_id = "123456789012"
[environments.test.function]
memory_mb = {memory}

[environments.prod]
region = "us-east-1"
account_id = "123456789012"
"""


@pytest.fixture(scope="session")
def pulumi_root() -> Path:
    """The Pulumi CLI built by `make install`. Missing means a broken install: fail, never skip."""
    from orchestrator.stacks import toolchain

    root = toolchain.pulumi_root(REPO)
    assert toolchain.pulumi_version(root) == f"v{toolchain.PULUMI_VERSION}"
    return root


@dataclass(frozen=True)
class Wheel:
    """edgeship's wheel built from this checkout, and uv.lock's versions as constraints."""

    path: Path
    constraints: Path


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Wheel:
    """Built once per session (tests/test_wheel.py, tests/test_workflow_runs.py)."""
    uv = REPO / ".tools" / "uv" / "bin" / "uv"
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([str(uv), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(REPO)], check=True)
    (built,) = dist.glob("edgeship-*.whl")
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-hashes", "--no-emit-project", "--quiet"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    constraints = dist / "constraints.txt"
    constraints.write_text(exported.stdout)
    return Wheel(built, constraints)


class Project:
    """A temporary edgeship project with a file backend, driven through the real CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend = root / "state"
        self.config = root / "edgeship.toml"
        self.set_memory(512)

    def set_memory(self, memory: int) -> None:
        self.config.write_text(ENGINE_TOML.format(backend=self.backend.as_uri(), memory=memory))

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": "test-passphrase", **extra}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "orchestrator", "--config", str(self.config), *args]

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env(**extra), capture_output=True, text=True, timeout=300
        )

    def popen(self, *args: str, sigint_ignored: bool = False, **extra: str) -> subprocess.Popen[str]:
        """The CLI as a process; `sigint_ignored`: started as a non-interactive shell's
        background job is (SIGINT ignored from the start), whatever this test run's own."""
        import signal

        from tests.spawn import dispositions

        disposition = signal.SIG_IGN if sigint_ignored else signal.SIG_DFL
        with dispositions({signal.SIGINT: disposition}):  # no preexec_fn: tests/spawn.py says why
            return subprocess.Popen(
                self.argv(*args),
                env=self.env(**extra),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )


@pytest.fixture
def project(tmp_path: Path, pulumi_root: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return Project(tmp_path)


def infer(edge: str, row: list[float]) -> dict[str, Any]:
    """One POST /infer of `row` through an edge (the local one, or any URL that serves it)."""
    import json
    import urllib.request

    request = urllib.request.Request(
        edge + "/infer",
        data=json.dumps({"inputs": row}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def wait_for(predicate: Any, timeout: float = 120.0) -> None:
    """Poll until predicate() is true; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


LOCAL_TOML = """
[project]
name = "e2e"
model = "{model}"

[environments.local]
region = "us-east-1"
account_id = "123456789012"
[environments.local.traffic]
schedule = "canary"
canary_weight = 20
bake_s = 0
lease_s = 3
[environments.local.load]
# 2 users: these tests judge the release machinery, not capacity, and a gate's load at full
# speed is most of the suite's CPU (2 cores, five test processes)
users = 2
spawn_rate = 2
duration_s = {duration}
# Sequential gates look every second but end no gate before min_duration_s: with gates of a
# few seconds they run their full duration_s (a test that needs that, e.g. to land a kill in
# a gate, sets sequential = false itself: tests/test_local_release.py).
sequential = true
min_duration_s = 5
# Gates sized by seconds alone (the product's default holds the load on until green answered
# 1000 requests): these tests judge the release machinery, in gates of a few seconds. The
# sizing itself is tested by tests/test_local_gate_size.py.
min_green_requests = 0
# Thresholds that only a fault fails: these tests judge the release machinery, and a 2-core
# CI machine running two test streams has seen a healthy green's p95 above 150 ms, and a
# starved gate end with a few requests in flight past p99_ms (charged to green as timeouts:
# 4 in 292, 1.4 %). The faults under test fail by far more: 9 % and 20 % of green's requests.
# The test of a slow green sets its own latency thresholds (tests/test_local_release.py).
[environments.local.slo]
p95_ms = 1000
p99_ms = 2000
max_error_ratio = 0.05
min_rps = 5
min_samples = 30
relative_p95_factor = 0
"""

SAMPLE_MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"


class LocalProject(Project):
    """A temporary project whose local environment (emulator + edge) is its own."""

    def __init__(self, root: Path, duration: float = 3) -> None:
        self.root = root
        self.config = root / "edgeship.toml"
        self.config.write_text(LOCAL_TOML.format(model=SAMPLE_MODEL, duration=duration))
        self.state = root / ".edgeship" / "local"

    def env(self, **extra: str) -> dict[str, str]:
        # The local stack's own passphrase (edgeship's fixed one), as for a user: the same
        # stack is read in this process too (`target()`).
        env = super().env(**extra)
        if "PULUMI_CONFIG_PASSPHRASE" not in extra:
            env.pop("PULUMI_CONFIG_PASSPHRASE", None)
        return env

    def model(self, version: str) -> Path:
        from orchestrator.demo import model_version

        return model_version(SAMPLE_MODEL, version, self.root / f"model-v{version}.tar.gz")

    def json(self, *args: str, **extra: str) -> tuple[int, Any]:
        import json

        done = self.cli(*args, "--json", **extra)
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {done.returncode}): {done.stdout}\n{done.stderr}") from None

    def target(self) -> Any:
        """The environment's target, in this process (the code the CLI runs)."""
        from orchestrator.config import settings
        from orchestrator.stacks.targets import open_environment

        loaded = settings.load(self.config)
        return open_environment(loaded, loaded.environment("local"))

    def stop(self) -> None:
        """Stop the edge and the emulator without the engine: the stack's state goes with
        the temporary directory (`destroy` itself is tested in test_local_stack.py)."""
        from orchestrator.local import daemon, emulator

        daemon.stop(self.state / "edge.json")
        emulator.stop(self.state)


@pytest.fixture
def local_project(tmp_path: Path) -> Any:
    project = LocalProject(tmp_path)
    yield project
    project.stop()


class Viewers:
    """Viewers posting `body` to the edge's /infer from `threads` threads, `pause_s` apart,
    until the `with` block ends. `answers` holds every status; a connection that failed is
    recorded as the error's repr (a refused or reset connection is a failed request too)."""

    def __init__(self, url: str, body: bytes, threads: int = 1, pause_s: float = 0.0) -> None:
        import threading

        self.url, self.body, self.pause_s = url, body, pause_s
        self.stop = threading.Event()
        self.answers: list[int | str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Viewers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _run(self) -> None:
        import urllib.error
        import urllib.request

        while not self.stop.wait(self.pause_s):
            request = urllib.request.Request(
                self.url + "/infer", self.body, {"content-type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.answers.append(response.status)
            except urllib.error.HTTPError as error:
                self.answers.append(error.code)
            except OSError as error:
                self.answers.append(repr(error))


def locusts_of(root: Path) -> list[int]:
    """Pids of Locust processes still running for a project: a single process, a master or a
    worker (its environment names the run's statistics file, under the project's reports, or
    the run's file)."""
    pids = []
    under = str(root).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"locust" not in argv:
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        named = (b"EDGESHIP_WORKER_OF=" + under, b"EDGESHIP_STATS_FILE=" + under)
        if any(arg.startswith(under) for arg in argv) or any(e.startswith(named) for e in environ):
            pids.append(int(proc.name))
    return pids


def classifier_onnx(path: Path, features: int, classes: int) -> Path:
    """A small softmax classifier as an ONNX file (no training needed): outputs the label
    ([N] int64) and the probabilities ([N, classes] float), as skl2onnx exports without ZipMap."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(features * 100 + classes)
    weights = numpy_helper.from_array(rng.normal(size=(features, classes)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        ],
        "classifier",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, classes]),
        ],
        initializer=[weights, bias],
    )
    return _saved(graph, path)


def _saved(graph: Any, path: Path) -> Path:
    """The graph as a checked ONNX model file (opset 17), as exporters write them."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def regressor_onnx(path: Path, features: int) -> Path:
    """A small linear regressor as an ONNX file: one [N, 1] float output."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(features)
    weights = numpy_helper.from_array(rng.normal(size=(features, 1)).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.asarray([0.5], dtype=np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["y0"]),
            helper.make_node("Add", ["y0", "B"], ["variable"]),
        ],
        "regressor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        initializer=[weights, bias],
    )
    return _saved(graph, path)


def onnx_classifier(out: Path, features: int, classes: int, version: str = "1") -> Path:
    """A model archive of a small softmax classifier built in the test (no training needed):
    `features` inputs, `classes` labels, the outputs the handler expects (label, probabilities)."""
    import numpy as np

    from orchestrator.build.artifacts import build_model_archive

    rng = np.random.default_rng(features * 100 + classes)
    onnx_path = classifier_onnx(out.with_suffix(".onnx"), features, classes)
    metadata = {
        "framework": "onnxruntime",
        "name": f"classifier-{features}x{classes}",
        "version": version,
        "input": {
            "name": "X",
            "dtype": "float32",
            "features": [f"f{i}" for i in range(features)],
            "example": [round(float(v), 3) for v in rng.normal(size=features)],
        },
        "output": {"labels": [f"class-{c}" for c in range(classes)], "probabilities": "probabilities"},
    }
    build_model_archive(onnx_path, metadata, out)
    onnx_path.unlink()
    return out


class Moto:
    """A moto server on a fixed loopback port (plain HTTP), restartable on that port."""

    def __init__(self, module: str = "moto.server") -> None:
        """`module`: moto's own server, or the emulator's (orchestrator.local.motoserver: moto
        with what the local environment adds, such as AWS's alias RevisionIds)."""
        from orchestrator.local import daemon

        self.port = daemon.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from orchestrator.local import daemon

        argv = [sys.executable, "-m", self.module, "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: daemon.healthy(self.url + "/moto-api/", timeout=0.5), timeout=30)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:  # a starved (nice 19) moto once took more than 10 s to shut down
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def origin_authorizer(moto: Moto) -> Iterator[Any]:
    """The origin authorizer's real code in its sandbox, mid-rotation: two values accepted
    ("now" is what bare_edge's CloudFront part sends)."""
    import json

    from orchestrator.local import emulator
    from orchestrator.local.authorizer import Authorizer, sandbox_env

    parameter = "/edge-test/origin-secrets"
    emulator.client("ssm", moto.url).put_parameter(
        Name=parameter, Type="SecureString", Value=json.dumps(["now", "next"]), Overwrite=True
    )
    authorizer = Authorizer(
        sandbox_env(moto.url, None, emulator.REGION, parameter, emulator.CREDENTIALS), 300, frozen=True
    )
    yield authorizer
    authorizer.close()


def bare_edge(
    pools: dict[str, Any], routing: Any, metrics: Any, authorizer: Any = None, *, cache_ttl_s: float = 60.0
) -> Any:
    """An Edge over ready pools, without an emulator to read aliases from; it sends the
    origin value "now". Without an authorizer only the candidate route (IAM) can be called."""
    import random
    import threading

    from orchestrator.local.edge import Edge
    from orchestrator.local.origin import Origin

    edge = Edge.__new__(Edge)
    edge.function, edge.cache_ttl_s, edge.region, edge.cache = "edgeship-fn", cache_ttl_s, "eu-west-1", {}
    edge.cache_generation, edge.cache_lock = 0, threading.Lock()
    edge.routing, edge.rng = routing, random.Random(0)
    edge.pools, edge.pool_lock, edge.telemetry = pools, threading.Lock(), metrics
    edge.origin, edge.authorizer = Origin("now"), authorizer
    return edge
