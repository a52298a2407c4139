"""Local sandboxes run what ships, as Lambda runs it: the zip `package` builds, unpacked
read-only, under the official runtime interface client (awslambdaric) with the runtime's
own interpreter (python3.12), speaking the Lambda Runtime API to the edge; events as API
Gateway's HTTP API sends them, checked against the AWS SAM CLI's sample event
(tests/data/sam, Apache-2.0). Real processes, nothing mocked."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build import packaging
from orchestrator.local import code, payload, runtime, worker
from orchestrator.local.edge import InitFailed, Routing, TimedOut, VersionPool
from orchestrator.local.telemetry import Telemetry
from tests.conftest import REPO, bare_edge
from tests.test_edge_telemetry import signed

SAM = REPO / "tests" / "data" / "sam"
MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"
RUNTIME = "python3.12"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:fn:1"
SETOSA = [5.1, 3.5, 1.4, 0.2]


# --- the SAM CLI's sample event, rendered as `sam local generate-event` renders it ----------


def sam_event(method: str, path: str, body: str | None, query: str = "") -> dict[str, Any]:
    """`sam local generate-event apigateway http-api-proxy --method M --path P --body B`,
    then the query string (the template's is fixed) and, without a body, no body key."""
    tags = json.loads((SAM / "event-mapping.json").read_text())["http-api-proxy"]["tags"]
    values = {name.replace("-", "_"): str(spec.get("default", "")) for name, spec in tags.items()}
    values.update(method=method, path=path.lstrip("/"), body=base64.b64encode((body or "").encode()).decode())
    text = (SAM / "HttpApi.json").read_text()
    for name, value in values.items():
        text = text.replace("{{{" + name + "}}}", value)
    event: dict[str, Any] = json.loads(text)
    event["rawQueryString"] = query
    if query:
        params: dict[str, str] = {}
        for key, value in (pair.split("=", 1) for pair in query.split("&")):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    else:
        del event["queryStringParameters"]
    if body is None:
        del event["body"]
        event["isBase64Encoded"] = False
    return event


def test_the_edges_events_have_the_fields_api_gateway_sends() -> None:
    reference = sam_event("POST", "/infer", "{}", "a=1")
    at = datetime.datetime(2026, 3, 12, 19, 3, 58, tzinfo=datetime.UTC)
    api = payload.Api.for_function("fn", "eu-west-1", "123456789012")
    headers = [("Content-Type", "application/json"), ("Cookie", "a=1; b=2"), ("X-Many", "1"), ("x-many", "2")]
    ours = payload.event(
        api, "POST", "/infer", "x=1&x=2&y=%2C", headers, b"{}", authorizer={"lambda": None},
        route_key="POST /infer", now=at,
    )  # fmt: skip
    # every field but the ones our API has none of: path parameters, stage variables,
    # mutual TLS (`authentication`)
    assert set(ours) == set(reference) - {"pathParameters", "stageVariables"}
    assert set(ours["requestContext"]) == set(reference["requestContext"]) - {"authentication"}
    assert set(ours["requestContext"]["http"]) == set(reference["requestContext"]["http"])
    context = ours["requestContext"]
    assert (context["apiId"], context["domainPrefix"]) == (api.api_id, api.api_id) and len(api.api_id) == 10
    assert context["domainName"] == f"{api.api_id}.execute-api.eu-west-1.amazonaws.com"
    assert context["time"] == "12/Mar/2026:19:03:58 +0000"  # the SAM event's format
    assert re.fullmatch(
        r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", reference["requestContext"]["time"]
    )
    assert context["timeEpoch"] == int(at.timestamp() * 1000) and context["accountId"] == "123456789012"
    assert ours["cookies"] == ["a=1", "b=2"] and "cookie" not in ours["headers"]
    assert ours["headers"] == {"content-type": "application/json", "x-many": "1,2"}
    assert ours["queryStringParameters"] == {"x": "1,2", "y": ","}  # decoded, repeats comma-joined
    assert (ours["body"], ours["isBase64Encoded"]) == ("{}", False)
    bare = payload.event(api, "GET", "/healthz", "", {}, b"", authorizer={}, route_key="GET /healthz")
    assert "body" not in bare and "queryStringParameters" not in bare and "cookies" not in bare
    binary = payload.event(api, "POST", "/infer", "", {"content-type": "application/octet-stream"}, b"\xff",
                           authorizer={}, route_key="POST /infer")  # fmt: skip
    assert (binary["body"], binary["isBase64Encoded"]) == ("/w==", True)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"statusCode": 201, "headers": {"A": 1}, "body": "x"}, (201, [("a", "1")], b"x")),
        ({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True}, (200, [], b"hi")),
        ({"statusCode": 204, "cookies": ["c=1"]}, (204, [("set-cookie", "c=1")], b"")),
        ({"predictions": [1]}, (200, [("content-type", "application/json")], b'{"predictions":[1]}')),
        ("text", (200, [("content-type", "application/json")], b'"text"')),
    ],
)
def test_answers_become_responses_as_api_gateway_reads_them(answer: Any, expected: Any) -> None:
    assert payload.response(answer) == expected


@pytest.mark.parametrize(
    "bad", [{"statusCode": "200"}, {"statusCode": 99}, {"statusCode": 200, "headers": []}]
)
def test_answers_api_gateway_cannot_read_are_malformed(bad: Any) -> None:
    with pytest.raises(payload.MalformedResponse):
        payload.response(bad)


def test_the_environment_is_lambdas() -> None:
    env = worker.lambda_environment(
        function="fn", version="7", memory_mb=512, region="eu-west-1", runtime=RUNTIME,
        handler="handler.handler", configured={"MODEL_URI": "s3://b/k", "AWS_REGION": "nope"},
        access={"AWS_ENDPOINT_URL": "https://127.0.0.1:1"},
    )  # fmt: skip
    assert env == {
        "MODEL_URI": "s3://b/k",
        "AWS_ENDPOINT_URL": "https://127.0.0.1:1",
        "AWS_REGION": "eu-west-1",  # reserved: the configured value does not win
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_FORMAT": "Text",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "handler.handler",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }


# --- sandboxes -----------------------------------------------------------------------------


def _task_root(state: Path, package: Path) -> Path:
    _, sha = code.store(package, state)
    return code.unpacked(state, sha)


def _launch(task_root: Path, configured: dict[str, str] | None = None) -> worker.Launch:
    env = worker.lambda_environment(
        function="fn", version="1", memory_mb=1024, region="eu-west-1", runtime=RUNTIME,
        handler=worker.HANDLER, configured=configured or {}, access={},
    )  # fmt: skip
    return worker.Launch(runtime.interpreter(RUNTIME), task_root, runtime.runtime_dir(RUNTIME), env)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip `package` builds for python3.12/x86_64 (from the per-user cache when built before)."""
    out = tmp_path_factory.mktemp("build") / "function.zip"

    def build() -> Path:
        spec = packaging.PackageSpec(runtime=RUNTIME, architecture="x86_64")
        return packaging.build(spec, out, runtime.user_cache() / "pip").artifact.path

    kept, _ = code.cached_package(packaging.FUNCTION_DIR, RUNTIME, "x86_64", build)
    return kept


@pytest.fixture(scope="module")
def shipped_pool(shipped: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VersionPool]:
    state = tmp_path_factory.mktemp("state")
    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    launch = _launch(_task_root(state, shipped), {"MODEL_URI": MODEL.as_uri(), "MODEL_SHA256": sha})
    pool = VersionPool("1", launch, size=1, timeout_s=10.0, arn=ARN).warm()
    yield pool
    pool.close()


def _call(pool: VersionPool, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    answer = pool.invoke(event)
    assert answer["error"] is False, answer
    status, headers, body = payload.response(answer["response"])
    return status, dict(headers), json.loads(body)


def test_the_shipped_zip_answers_sam_events_under_awslambdaric(shipped_pool: VersionPool) -> None:
    status, headers, body = _call(shipped_pool, sam_event("POST", "/infer", json.dumps({"inputs": SETOSA})))
    assert status == 200 and body["predictions"][0]["label"] == "setosa"
    assert headers == {"content-type": "application/json", "x-function-version": "1", "x-model-version": "1"}
    batch = json.dumps({"instances": [SETOSA, [6.7, 3.0, 5.2, 2.3]]})
    status, _, body = _call(shipped_pool, sam_event("POST", "/infer", batch))
    assert status == 200 and [p["label"] for p in body["predictions"]] == ["setosa", "virginica"]
    status, _, body = _call(shipped_pool, sam_event("GET", "/infer", None, "x=5.1,3.5,1.4,0.2"))
    assert status == 200 and body["predictions"][0]["label"] == "setosa"
    status, _, body = _call(shipped_pool, sam_event("GET", "/healthz", None))
    assert (status, body["status"], body["model"]["name"]) == (200, "ok", "iris-classifier")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/infer", None, 400, "missing_body"),
        ("POST", "/infer", "{not json", 400, "malformed_json"),
        ("POST", "/infer", '{"rows": []}', 400, "bad_shape"),
        ("POST", "/infer", '{"inputs": [1, 2]}', 400, "bad_shape"),
        ("POST", "/infer", '{"inputs": [NaN, 1, 2, 3]}', 400, "not_finite"),
        ("POST", "/infer", '{"inputs": [1, "x", 2, 3]}', 400, "bad_type"),
        ("POST", "/infer", json.dumps({"instances": [SETOSA] * 257}), 413, "batch_too_large"),
        ("GET", "/infer", None, 400, "missing_input"),
        ("DELETE", "/infer", None, 405, "method_not_allowed"),
        ("GET", "/nowhere", None, 404, "not_found"),
    ],
)
def test_the_shipped_zip_answers_malformed_sam_events_with_4xx_json(
    shipped_pool: VersionPool, method: str, path: str, body: str | None, status: int, error: str
) -> None:
    got, headers, answer = _call(shipped_pool, sam_event(method, path, body))
    assert (got, answer["error"]) == (status, error) and headers["x-function-version"] == "1"
    assert answer["detail"]  # says what to fix


PROBE = """
import json, os, sys, time
if os.environ.get("INIT_SLEEP"):
    time.sleep(float(os.environ["INIT_SLEEP"]))
if os.environ.get("INIT_FAIL"):
    raise RuntimeError("init failed on purpose")

def handler(event, context):
    what = event.get("do")
    if what == "raise":
        raise ValueError("on purpose")
    if what == "unserialisable":
        return {"value": object()}
    if what == "sleep":
        time.sleep(60)
    if what == "write":
        try:
            open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "new.txt"), "w").close()
            return "written"
        except OSError as exc:
            return type(exc).__name__
    try:
        import orchestrator
        host = orchestrator.__file__
    except ImportError:
        host = None
    return {
        "pid": os.getpid(), "python": list(sys.version_info[:2]), "no_bytecode": sys.dont_write_bytecode,
        "request_id": context.aws_request_id, "remaining_ms": context.get_remaining_time_in_millis(),
        "arn": context.invoked_function_arn, "version": context.function_version,
        "env": dict(os.environ), "orchestrator": host, "path": sys.path, "cwd": os.getcwd(),
        "task_mode": os.stat(os.environ["LAMBDA_TASK_ROOT"]).st_mode & 0o777,
    }
"""


@pytest.fixture
def probe_root(tmp_path: Path) -> Path:
    source = tmp_path / "fn"
    source.mkdir()
    (source / "handler.py").write_text(PROBE)
    return _task_root(tmp_path / "state", code.source_zip(source, tmp_path / "state"))


def test_context_environment_and_isolation_are_lambdas(probe_root: Path) -> None:
    pool = VersionPool("1", _launch(probe_root), size=1, timeout_s=3.0, arn=ARN).warm()
    try:
        first, second = pool.invoke({}), pool.invoke({})
    finally:
        pool.close()
    seen = first["response"]
    assert first["error"] is False and seen["python"] == [3, 12] and seen["no_bytecode"] is True
    assert seen["request_id"] != second["response"]["request_id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", seen["request_id"])
    assert 0 < seen["remaining_ms"] <= 3000  # from the deadline the Runtime API gave
    assert (seen["arn"], seen["version"]) == (ARN, "1")
    env = seen["env"]
    assert env["LAMBDA_TASK_ROOT"] == str(probe_root) == seen["cwd"]
    assert env["_HANDLER"] == "handler.handler" and env["TZ"] == ":UTC" and env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(tuple("0123456789abcdef"))
    assert env["PYTHONPATH"] == f"{probe_root}:{runtime.runtime_dir(RUNTIME)}"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    # nothing of the host: not its venv, its packages, nor its PYTHONPATH
    assert seen["orchestrator"] is None and not any(
        ".venv" in p or "site-packages" in p for p in seen["path"]
    )
    assert seen["task_mode"] == 0o555  # read-only, as /var/task


def test_a_function_error_and_an_unserialisable_answer_leave_the_sandbox_serving(probe_root: Path) -> None:
    pool = VersionPool("1", _launch(probe_root), size=1, timeout_s=3.0, arn=ARN).warm()
    try:
        pid = pool.invoke({})["response"]["pid"]
        raised = pool.invoke({"do": "raise"})
        assert raised["error"] is True and raised["response"]["errorType"] == "ValueError"
        marshal = pool.invoke({"do": "unserialisable"})
        assert marshal["error"] is True and marshal["response"]["errorType"] == "Runtime.MarshalError"
        assert pool.invoke({})["response"]["pid"] == pid  # the same sandbox answers on
    finally:
        pool.close()


def test_a_timeout_replaces_the_sandbox(probe_root: Path) -> None:
    pool = VersionPool("1", _launch(probe_root), size=1, timeout_s=1.0, arn=ARN).warm()
    try:
        (old,) = list(pool.idle.queue)
        assert isinstance(old, worker.Sandbox)
        with pytest.raises(TimedOut):
            pool.invoke({"do": "sleep"})
        assert old.proc.wait(timeout=10) is not None  # stopped, as Lambda resets a timed-out sandbox
        fresh = pool.invoke({})
        assert fresh["error"] is False and fresh["response"]["pid"] != old.proc.pid
    finally:
        pool.close()


def test_an_init_error_fails_the_request_and_the_next_one_initialises_again(probe_root: Path) -> None:
    pool = VersionPool("1", _launch(probe_root, {"INIT_FAIL": "1"}), size=1, timeout_s=3.0, arn=ARN)
    try:
        with pytest.raises(InitFailed, match="init failed on purpose"):
            pool.invoke({})
        with pytest.raises(InitFailed):
            pool.invoke({})
    finally:
        pool.close()


def test_an_init_that_raises_anything_leaves_the_pool_whole(probe_root: Path) -> None:
    # Popen refuses an environment value that is not a string (TypeError, neither InitFailed
    # nor OSError): the init fails as any other, and the pool is not left a sandbox short.
    bad = _launch(probe_root)
    bad = worker.Launch(bad.python, bad.task_root, bad.runtime_dir, {**bad.environment, "BAD": 1})  # type: ignore[dict-item]
    pool = VersionPool("1", bad, size=1, timeout_s=3.0, arn=ARN)
    pool.wait_s = pool.init_timeout_s = 1.0  # a stuck counter would make the next request wait, then throttle
    try:
        for _ in range(3):
            with pytest.raises(InitFailed, match="expected str"):
                pool.invoke({})
        pool.warm()
        assert (pool.count, pool.initialising) == (0, 0)
    finally:
        pool.close()


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_spawn_that_fails_leaves_no_socket_nor_thread(probe_root: Path, tmp_path: Path) -> None:
    missing = worker.Launch(str(tmp_path / "no-python3.12"), probe_root, probe_root, {})
    pool = VersionPool("1", missing, size=1, timeout_s=3.0, arn=ARN)
    try:
        pool.warm()
        with pytest.raises(InitFailed, match=r"no-python3\.12"):
            pool.invoke({})
        threads, files = threading.active_count(), _open_files()
        for _ in range(20):  # each request after a failed init initialises anew
            with pytest.raises(InitFailed, match=r"no-python3\.12"):
                pool.invoke({})
        pool.warm()
        settled = time.monotonic() + 10  # the last init thread may still be on its way out
        while threading.active_count() > threads and time.monotonic() < settled:
            time.sleep(0.05)
        assert threading.active_count() <= threads and _open_files() <= files
    finally:
        pool.close()


class _RacingQueue(queue.Queue[Any]):
    """A queue whose put lets a close() run just before it, as a retiring poller may."""

    def __init__(self, pool: VersionPool) -> None:
        super().__init__()
        self.pool, self.closer = pool, threading.Thread(target=pool.close)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, worker.Sandbox) and not self.closer.is_alive() and not self.pool.closed:
            self.closer.start()
            self.closer.join(timeout=0.5)  # a close that can drain now would finish here
        super().put(item, block, timeout)


def test_a_sandbox_returned_while_the_pool_closes_is_stopped(probe_root: Path) -> None:
    pool = VersionPool("1", _launch(probe_root), size=1, timeout_s=3.0, arn=ARN).warm()
    racing = _RacingQueue(pool)
    racing.queue.extend(pool.idle.queue)
    pool.idle = racing
    sandbox = pool.last_started
    assert sandbox is not None
    try:
        assert pool.invoke({})["error"] is False  # its sandbox goes back while close() runs
        racing.closer.join(timeout=10)
        assert pool.closed and pool.idle.empty()
        assert sandbox.proc.wait(timeout=10) is not None  # not left running until the edge exits
    finally:
        pool.close()


def test_an_init_past_ten_seconds_is_stopped_and_the_edge_answers_500_while_others_serve(
    shipped: Path,
    probe_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    origin_authorizer: Any,
) -> None:
    """The shipped zip fetches its model from S3 with the runtime's boto3 at init; an S3 that
    accepts the connection and never answers holds the init past Lambda's 10 s: the sandbox
    is stopped and the request fails as a platform error, while another version serves."""
    assert worker.INIT_TIMEOUT_S == 10.0  # Lambda's
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never answers
    hanging = {
        "MODEL_URI": "s3://models/model.tar.gz", "MODEL_SHA256": "0" * 64,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
    }  # fmt: skip
    slow = VersionPool("2", _launch(_task_root(tmp_path / "state", shipped), hanging), size=1, arn=ARN)
    fast = VersionPool("1", _launch(probe_root), size=1, timeout_s=3.0, arn=ARN).warm()
    edge = bare_edge({"1": fast, "2": slow}, Routing("1", {}, "2"), Telemetry(None, "fn"), origin_authorizer)
    try:
        answers: list[Any] = []
        green = signed("GET", "/candidate/healthz", b"")
        request = threading.Thread(
            target=lambda: answers.append(edge.handle("GET", "/candidate/healthz", green, b""))
        )
        request.start()
        # while green's init runs (holding no lock), live keeps answering
        assert slow.initialising == 1 and edge.handle("GET", "/healthz", {}, b"")[0] == 200
        request.join(timeout=30)
        assert answers == [
            (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
        ]
        assert slow.last_started is not None and slow.last_started.proc.poll() is not None  # stopped
        assert "version 2: init did not finish within 10 s" in capsys.readouterr().err  # the edge's log
        first = slow.last_started
        slow.init_timeout_s = 0.5  # (a shorter wait here)
        with pytest.raises(InitFailed, match=r"init did not finish within 0\.5 s"):
            slow.invoke(sam_event("GET", "/healthz", None))
        assert slow.last_started is not first  # the next request initialised anew
    finally:
        slow.close()
        fast.close()
        silent.close()


def test_a_zip_whose_prune_removed_a_needed_module_fails_locally(
    shipped: Path, tmp_path: Path, origin_authorizer: Any
) -> None:
    pruned = tmp_path / "pruned.zip"
    with zipfile.ZipFile(shipped) as full, zipfile.ZipFile(pruned, "w", zipfile.ZIP_DEFLATED) as out:
        for item in full.infolist():
            if not item.filename.startswith(("orjson/", "orjson-")):
                out.writestr(item, full.read(item))
    task = _task_root(tmp_path / "state", pruned)
    # The host's venv has orjson: the old sandboxes (host Python, host packages) hid the hole.
    hidden = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(task)!r}); import orjson"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert hidden.returncode == 0
    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    launch = _launch(task, {"MODEL_URI": MODEL.as_uri(), "MODEL_SHA256": sha})
    pool = VersionPool("1", launch, size=1, timeout_s=10.0, arn=ARN)
    edge = bare_edge({"1": pool}, Routing("1", {}, "1"), Telemetry(None, "fn"), origin_authorizer)
    try:
        with pytest.raises(InitFailed, match=r"Runtime\.ImportModuleError.*No module named 'orjson'"):
            pool.invoke(sam_event("GET", "/healthz", None))
        # through the edge: API Gateway's header-less 500, charged to green by the gate
        status, headers, _ = edge.handle("GET", "/healthz", {}, b"")
        assert (status, headers) == (500, {"content-type": "application/json"})
    finally:
        pool.close()


def test_unpacked_code_is_read_only_and_removable(tmp_path: Path) -> None:
    source = tmp_path / "fn"
    source.mkdir()
    (source / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    task = _task_root(tmp_path / "state", code.source_zip(source, tmp_path / "state"))
    assert (task / "handler.py").stat().st_mode & 0o777 == 0o444 and task.stat().st_mode & 0o777 == 0o555
    assert code.unpacked(tmp_path / "state", task.name) == task  # once per sha256
    code.remove_tree(tmp_path / "state" / "versions")
    assert not (tmp_path / "state" / "versions").exists()
    shutil.rmtree(tmp_path / "state")


def test_the_edge_never_installs_the_runtime_on_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout without `make install`, an empty per-user cache: the edge's lookup says
    # what to run instead of running pip while a request waits.
    monkeypatch.delenv("EDGESHIP_LAMBDA_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(runtime, "CHECKOUT_TOOLS", tmp_path / "checkout")
    monkeypatch.setenv("EDGESHIP_CACHE_DIR", str(tmp_path / "cache"))

    def no_pip(*_args: Any) -> Path:
        raise AssertionError("pip ran on the request path")

    monkeypatch.setattr(runtime, "install", no_pip)
    with pytest.raises(runtime.RuntimeMissing, match="not installed") as missing:
        runtime.runtime_dir(RUNTIME, install_missing=False)
    assert "make install" in missing.value.fix
    assert not (tmp_path / "cache").exists()


def test_a_pip_install_that_hangs_is_stopped_with_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "PIP_TIMEOUT_S", 0.01)  # pip cannot even start in that time
    with pytest.raises(runtime.RuntimeMissing, match=r"took over 0\.01 s") as hung:
        runtime.install(RUNTIME, tmp_path / "runtime" / RUNTIME)
    assert "make install" in hung.value.fix
    assert not (tmp_path / "runtime" / RUNTIME).exists()


def test_threads_storing_one_zip_at_once_each_get_it_whole(tmp_path: Path) -> None:
    package = tmp_path / "function.zip"
    package.write_bytes(os.urandom(4 << 20))  # big enough for the copies to overlap
    state = tmp_path / "state"
    start = threading.Barrier(8)
    results: list[tuple[Path, str]] = []
    errors: list[BaseException] = []

    def store() -> None:
        start.wait()
        try:
            results.append(code.store(package, state))
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 8
    (kept,) = {path for path, _ in results}
    assert kept.read_bytes() == package.read_bytes()
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]  # no partial file left


def test_the_runtime_api_serves_its_routes_over_one_keep_alive_connection() -> None:
    # The endpoint alone (no runtime process): what awslambdaric's client may send, framed
    # by http.client (keep-alive, chunked bodies, Expect: 100-continue).
    import http.client

    sandbox = worker.Sandbox.__new__(worker.Sandbox)
    sandbox._outcomes, sandbox._events, sandbox._current, sandbox._closed = (
        queue.Queue(),
        queue.Queue(),
        None,
        False,
    )
    server = worker._Server(("127.0.0.1", 0), worker._api_handler(sandbox))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    api = "/2018-06-01/runtime"
    try:
        sandbox._events.put(worker._Invocation("req-1", b'{"a":1}', 123, ARN))
        conn.request("GET", f"{api}/invocation/next")
        got = conn.getresponse()
        assert (got.status, got.read()) == (200, b'{"a":1}')
        assert got.headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
        assert (
            got.headers["Lambda-Runtime-Deadline-Ms"],
            got.headers["Lambda-Runtime-Invoked-Function-Arn"],
        ) == (
            "123",
            ARN,
        )
        assert sandbox._outcomes.get_nowait() == ("next", None)
        conn.request("POST", f"{api}/invocation/req-1/response", b'{"ok":true}', {"Expect": "100-continue"})
        posted = conn.getresponse()
        assert (posted.status, posted.read()) == (202, b'{"status":"OK"}')
        kind, (request_id, body, _ms) = sandbox._outcomes.get_nowait()
        assert (kind, request_id, body) == ("response", "req-1", b'{"ok":true}')
        conn.request("POST", f"{api}/invocation/req-1/response", b"{}")  # answered already
        again = conn.getresponse()
        assert (again.status, again.read()) == (400, b'{"errorType":"InvalidRequestID"}')
        conn.request("POST", f"{api}/init/error", iter([b'{"errorType":', b'"Boom"}']))  # chunked
        init = conn.getresponse()
        assert (init.status, init.read()) == (202, b'{"status":"OK"}')
        assert sandbox._outcomes.get_nowait() == ("init_error", {"errorType": "Boom"})
        conn.request("GET", f"{api}/elsewhere")
        missing = conn.getresponse()
        assert (missing.status, missing.read()) == (404, b'{"errorType":"InvalidRequest"}')
        assert conn.sock is not None  # all of it on one connection, kept alive
    finally:
        conn.close()
        server.shutdown()
        server.server_close()
