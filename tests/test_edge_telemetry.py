"""The local edge's CloudWatch metrics: MetricData building (pure), a sandbox's answers
(awslambdaric), the edge's recording of invocations, errors and throttles, and publishing to a
real moto server. Nothing is mocked."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.local import code, daemon, emulator, runtime, telemetry, worker
from orchestrator.local.authorizer import Authorizer
from orchestrator.local.edge import Routing, Throttled, VersionPool
from orchestrator.local.origin import Origin, read_origin, write_origin
from orchestrator.local.telemetry import Batch, Counts, Telemetry
from orchestrator.stacks.targets import sigv4_headers
from tests.conftest import LocalProject, Moto, bare_edge, wait_for

AT = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
F = "edgeship-fn"


def dims(alias: str, version: str, function: str = F) -> list[dict[str, str]]:
    return [
        {"Name": "FunctionName", "Value": function},
        {"Name": "Resource", "Value": f"{function}:{alias}"},
        {"Name": "ExecutedVersion", "Value": version},
    ]


# --- (a) MetricData building ---------------------------------------------------------------


def test_one_version_gives_lambdas_four_metrics_with_exact_dimensions() -> None:
    counts = Counts(invocations=3, errors=1)
    for ms in (1.5, 1.5, 12.0):
        counts.add_duration(ms)
    items = telemetry.metric_data(F, Batch(AT, {("live", "7"): counts}))
    base = {"Dimensions": dims("live", "7"), "Timestamp": AT}
    assert items == [
        {**base, "MetricName": "Invocations", "Unit": "Count", "Value": 3},
        {**base, "MetricName": "Errors", "Unit": "Count", "Value": 1},
        {**base, "MetricName": "Throttles", "Unit": "Count", "Value": 0},
        {
            **base,
            "MetricName": "Duration",
            "Unit": "Milliseconds",
            "StatisticValues": {"SampleCount": 3.0, "Sum": 15.0, "Minimum": 1.5, "Maximum": 12.0},
        },
    ]


def test_throttles_are_not_invocations_and_have_no_duration() -> None:
    t = Telemetry(None, F)
    for _ in range(2):
        t.record("live", "2", duration_ms=None, error=False, throttled=True)
    t.record("live", "1", duration_ms=4.04, error=False, throttled=False)
    t.record("live", "1", duration_ms=3.96, error=True, throttled=False)
    t.record("candidate", "2", duration_ms=None, error=True, throttled=False)  # a sandbox that crashed
    items = telemetry.metric_data(F, Batch(AT, t._current))
    by = {(i["MetricName"], i["Dimensions"][1]["Value"], i["Dimensions"][2]["Value"]): i for i in items}
    assert set(by) == {
        ("Invocations", f"{F}:candidate", "2"),
        ("Errors", f"{F}:candidate", "2"),
        ("Throttles", f"{F}:candidate", "2"),
        ("Invocations", f"{F}:live", "1"),
        ("Errors", f"{F}:live", "1"),
        ("Throttles", f"{F}:live", "1"),
        ("Duration", f"{F}:live", "1"),
        ("Throttles", f"{F}:live", "2"),  # throttled only: no Invocations, Errors or Duration
    }
    assert by[("Throttles", f"{F}:live", "2")]["Value"] == 2
    assert by[("Invocations", f"{F}:live", "1")]["Value"] == 2
    assert by[("Errors", f"{F}:live", "1")]["Value"] == 1
    assert by[("Duration", f"{F}:live", "1")]["StatisticValues"] == {
        "SampleCount": 2.0, "Sum": 8.0, "Minimum": 3.96, "Maximum": 4.04,
    }  # fmt: skip
    assert by[("Invocations", f"{F}:candidate", "2")]["Value"] == 1
    assert by[("Errors", f"{F}:candidate", "2")]["Value"] == 1


def test_more_than_1000_items_are_split_into_calls() -> None:
    counts = {("live", str(v)): Counts(invocations=1) for v in range(334)}  # 3 items each
    items = telemetry.metric_data(F, Batch(AT, counts))
    assert len(items) == 1002
    assert [len(call) for call in telemetry.calls(items)] == [1000, 2]
    assert telemetry.calls([]) == []


def test_batches_older_than_five_minutes_are_dropped() -> None:
    old, young = (
        Batch(AT - datetime.timedelta(seconds=301), {}),
        Batch(AT - datetime.timedelta(seconds=299), {}),
    )
    assert telemetry.recent([old, young], AT) == [young]


HANDLER = """
import json, os, time

def handler(event, context):
    body = event.get("body") or ""
    if body == "who":  # what reached the function: the origin header, the route's authorization
        seen = {"origin": event["headers"].get("x-origin-verify"), "authorizer": event["requestContext"]["authorizer"]}
        return {"statusCode": 200, "headers": {"x-function-version": "1"}, "body": json.dumps(seen)}
    if body == "raise":
        raise RuntimeError("boom")
    if body == "exit":
        os._exit(3)
    if body == "sleep":
        time.sleep(30)
    return {"statusCode": 500 if body == "500" else 200, "headers": {"x-function-version": "1"}, "body": body}
"""


def _launch(tmp_path: Path, handler: str = HANDLER) -> worker.Launch:
    """The test handler as a local sandbox runs it: unpacked read-only, under awslambdaric."""
    state = tmp_path / "state"
    source = tmp_path / "fn"
    source.mkdir(exist_ok=True)
    (source / "handler.py").write_text(handler)
    _, sha = code.store(code.source_zip(source, state), state)
    env = worker.lambda_environment(
        function=F, version="1", memory_mb=128, region=REGION, runtime="python3.12",
        handler=worker.HANDLER, configured={}, access={},
    )  # fmt: skip
    return worker.Launch(
        runtime.interpreter("python3.12"), code.unpacked(state, sha), runtime.runtime_dir("python3.12"), env
    )


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[VersionPool]:
    pool = VersionPool("1", _launch(tmp_path), size=1).warm()
    yield pool
    pool.close()


def test_pool_answers_carry_error_and_duration_and_a_busy_pool_throttles(pool: VersionPool) -> None:
    failed = pool.invoke({"body": "raise"})
    assert failed["error"] is True and failed["response"]["errorType"] == "RuntimeError"
    returned = pool.invoke({"body": "500"})
    assert returned["error"] is False and returned["response"]["statusCode"] == 500
    assert isinstance(returned["duration_ms"], float) and returned["duration_ms"] >= 0
    held = pool.idle.get_nowait()  # the only sandbox is busy
    pool.wait_s = 0.01
    try:
        with pytest.raises(Throttled):
            pool.invoke({"body": ""})
    finally:
        pool.idle.put(held)


# --- Edge.handle records what Lambda would count ---------------------------------------------


REGION = "eu-west-1"
JSON = {"content-type": "application/json"}  # API Gateway's answers carry no function headers
INTERNAL_ERROR = (500, JSON, b'{"message":"Internal Server Error"}')


def signed(method: str, target: str, body: bytes, host: str = "127.0.0.1:8787") -> dict[str, str]:
    """Headers of a candidate request signed as the local target signs it, as received."""
    from orchestrator.stacks.targets import sigv4_headers

    keys = {k: emulator.CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    headers = sigv4_headers(method, f"http://{host}{target}", REGION, body, credentials=keys)
    return {"host": host, **{k.lower(): v for k, v in headers.items()}}


def test_edge_records_invocations_errors_and_throttles_per_alias(
    pool: VersionPool, origin_authorizer: Authorizer
) -> None:
    metrics = Telemetry(None, F)
    edge = bare_edge({"1": pool}, Routing("1", {}, "1"), metrics, origin_authorizer)
    returned = edge.handle("POST", "/infer", {}, b"500")  # returned 500: not an error, its own headers
    assert returned[0] == 500 and returned[1]["x-function-version"] == "1"
    assert edge.handle("POST", "/infer", {}, b"raise") == INTERNAL_ERROR  # raised: a function error
    assert edge.handle("GET", "/infer?x=1", {}, b"")[0] == 200
    assert edge.handle("GET", "/infer?x=1", {}, b"")[1]["x-cache"].startswith("Hit")  # not an invocation
    unsigned = edge.handle("POST", "/candidate/infer", {"host": "127.0.0.1:8787"}, b"")
    assert unsigned == (403, JSON, b'{"message":"Forbidden"}')  # refused: not an invocation
    assert edge.handle("POST", "/candidate/infer", signed("POST", "/candidate/infer", b""), b"")[0] == 200
    held = pool.idle.get_nowait()
    pool.wait_s = 0.01
    try:
        assert edge.handle("POST", "/infer", {}, b"") == (
            429,
            {"content-type": "application/json"},  # API Gateway's answer: no function headers
            b'{"message":"Too Many Requests"}',
        )
    finally:
        pool.idle.put(held)
    died = edge.handle("POST", "/candidate/infer", signed("POST", "/candidate/infer", b"exit"), b"exit")
    assert died == INTERNAL_ERROR  # the sandbox died (and was replaced)
    live, cand = metrics._current[("live", "1")], metrics._current[("candidate", "1")]
    assert (live.invocations, live.errors, live.throttles, live.timed) == (3, 1, 1, 3)
    assert (cand.invocations, cand.errors, cand.throttles, cand.timed) == (2, 1, 0, 1)


def test_the_api_refuses_what_did_not_come_through_cloudfront_before_any_sandbox(
    pool: VersionPool, origin_authorizer: Authorizer
) -> None:
    metrics = Telemetry(None, F)
    edge = bare_edge({"1": pool}, Routing("1", {}, "1"), metrics, origin_authorizer)
    # straight to the API (the stack's apiUrl, under /api): no header 401, a wrong one 403
    assert edge.handle("POST", "/api/infer", {}, b"who") == (401, JSON, b'{"message":"Unauthorized"}')
    wrong = edge.handle("POST", "/api/infer", {"x-origin-verify": "guess"}, b"who")
    assert wrong == (403, JSON, b'{"message":"Forbidden"}')
    assert ("live", "1") not in metrics._current  # refused before the function: no invocation
    # any accepted value passes (both, mid-rotation)
    for value in ("now", "next"):
        status, _, body = edge.handle("POST", "/api/infer", {"x-origin-verify": value}, b"who")
        assert (status, json.loads(body)["origin"]) == (200, value)
    # through CloudFront: its value replaces whatever a viewer sent
    status, _, body = edge.handle("POST", "/infer", {"x-origin-verify": "guess"}, b"who")
    assert status == 200 and json.loads(body) == {"origin": "now", "authorizer": {"lambda": None}}
    # the candidate route: IAM, whose context the function sees (and no origin header needed)
    target = "/api/candidate/infer"
    status, _, body = edge.handle("POST", target, signed("POST", target, b"who"), b"who")
    assert status == 200 and set(json.loads(body)["authorizer"]) == {"iam"}
    # fail closed: an edge whose origin file is unreadable accepts nothing
    edge.origin = Origin("")
    assert edge.handle("POST", "/infer", {}, b"who")[0] == 401


def test_origin_values_are_written_owner_only_and_read_back(tmp_path: Path) -> None:
    write_origin(tmp_path, "a")
    assert read_origin(tmp_path) == Origin("a")
    assert (tmp_path / "origin.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "origin.json").write_text("{not json")
    assert read_origin(tmp_path) == Origin("")


def test_a_function_past_its_timeout_gets_504_and_counts_as_an_error(
    tmp_path: Path, origin_authorizer: Authorizer
) -> None:
    slow = VersionPool("1", _launch(tmp_path), size=1, timeout_s=1.0).warm()
    try:
        metrics = Telemetry(None, F)
        edge = bare_edge({"1": slow}, Routing("1", {}, "1"), metrics, origin_authorizer)
        (sleeper,) = [w.proc for w in list(slow.idle.queue)]
        assert edge.handle("POST", "/infer", {}, b"sleep") == (
            504,
            JSON,
            b'{"message":"Service Unavailable"}',
        )
        assert sleeper.wait(timeout=10) is not None  # the timed-out sandbox was killed
        slow.warm()
        (fresh,) = [w.proc for w in list(slow.idle.queue)]
        assert fresh.pid != sleeper.pid and fresh.poll() is None  # and replaced
        assert edge.handle("POST", "/infer", {}, b"ok")[2] == b"ok"  # the new sandbox answers
        live = metrics._current[("live", "1")]
        assert (live.invocations, live.errors, live.throttles, live.timed) == (2, 1, 0, 2)
        assert live.duration_max == 1000.0  # a timeout's Duration is the whole timeout
    finally:
        slow.close()


def test_the_cache_is_emptied_on_invalidation_and_when_live_changes(
    pool: VersionPool, origin_authorizer: Authorizer
) -> None:
    edge = bare_edge({"1": pool}, Routing("1", {}, "1"), Telemetry(None, F), origin_authorizer)

    def cache_of(target: str) -> str:
        return edge.handle("GET", target, {}, b"")[1]["x-cache"]

    assert [cache_of("/infer?x=1"), cache_of("/infer?x=1")] == [
        "Miss from edgeship-local",
        "Hit from edgeship-local",
    ]
    assert edge.invalidate() == 1
    assert cache_of("/infer?x=1") == "Miss from edgeship-local"
    edge.route(Routing("1", {}, "2"))  # only the candidate moved: cached live answers stand
    assert cache_of("/infer?x=1") == "Hit from edgeship-local"
    edge.route(Routing("1", {"2": 0.1}, "2"))  # live split: what was cached may be of the wrong version
    assert edge.cache == {}
    edge.route(Routing("2", {}, "2"))
    assert edge.cache == {}


# --- (b), (c) publishing to a real moto server -----------------------------------------------


def read(cloudwatch: Any, function: str, alias: str, version: str) -> dict[str, list[float]]:
    """Each metric's statistics for one version, over one period that spans the test."""
    now = datetime.datetime.now(datetime.UTC)
    wanted = [
        ("Invocations", "Sum"),
        ("Errors", "Sum"),
        ("Throttles", "Sum"),
        ("Duration", "SampleCount"),
        ("Duration", "Sum"),
        ("Duration", "Average"),
        ("Duration", "Maximum"),
    ]
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": name,
                    "Dimensions": dims(alias, version, function),
                },
                "Period": 3600,
                "Stat": stat,
            },
        }
        for i, (name, stat) in enumerate(wanted)
    ]
    result = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - datetime.timedelta(minutes=30),
        EndTime=now + datetime.timedelta(minutes=30),
    )
    values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}
    return {f"{name} {stat}": values[f"q{i}"] for i, (name, stat) in enumerate(wanted)}


def test_flush_publishes_lambdas_metrics_per_version(moto: Moto) -> None:
    cloudwatch = emulator.client("cloudwatch", moto.url)
    metrics = Telemetry(cloudwatch, "fn-b")
    for duration in (10.0, 20.0, 30.0):
        metrics.record("live", "1", duration_ms=duration, error=False, throttled=False)
    metrics.record("live", "1", duration_ms=None, error=False, throttled=True)
    metrics.record("live", "2", duration_ms=5.0, error=True, throttled=False)
    metrics.record("live", "2", duration_ms=7.0, error=False, throttled=False)
    assert metrics.flush() == 4 + 4
    assert metrics.flush() == 0  # nothing new, nothing sent again
    assert read(cloudwatch, "fn-b", "live", "1") == {
        "Invocations Sum": [3.0],
        "Errors Sum": [0.0],
        "Throttles Sum": [1.0],
        "Duration SampleCount": [3.0],
        "Duration Sum": [60.0],
        "Duration Average": [20.0],
        "Duration Maximum": [30.0],
    }
    assert read(cloudwatch, "fn-b", "live", "2") == {
        "Invocations Sum": [2.0],
        "Errors Sum": [1.0],
        "Throttles Sum": [0.0],
        "Duration SampleCount": [2.0],
        "Duration Sum": [12.0],
        "Duration Average": [6.0],
        "Duration Maximum": [7.0],
    }
    assert read(cloudwatch, "fn-b", "candidate", "1")["Invocations Sum"] == []


def test_due_holds_back_what_is_younger_than_the_delay() -> None:
    young, old = Batch(AT, {}), Batch(AT - datetime.timedelta(seconds=5), {})
    assert telemetry.due([old, young], AT, 0.0) == ([old, young], [])
    assert telemetry.due([old, young], AT, 5.0) == ([old], [young])
    assert telemetry.due([old, young], AT, 5.1) == ([], [old, young])


def test_delayed_metrics_keep_the_time_of_the_invocations_and_become_visible_late(moto: Moto) -> None:
    """As Lambda's on AWS: a datapoint is stamped with when the invocations happened and
    shows up `delay_s` later; the bake's coverage query (LambdaMetrics.newest) then finds
    it at its own time, not at the time it arrived."""
    import time

    from orchestrator.gates.cloudwatch import LambdaMetrics

    cloudwatch = emulator.client("cloudwatch", moto.url)
    happened = float(int(time.time()) - 30)  # a whole second, half a minute ago
    clock = [happened + 0.5]
    metrics = Telemetry(cloudwatch, "fn-d", clock=lambda: clock[0], delay_s=10.0)
    reader = LambdaMetrics(cloudwatch, "fn-d", percentiles=False, resolution_s=1)
    metrics.record("live", "2", duration_ms=4.0, error=False, throttled=False)
    metrics.record("live", "2", duration_ms=6.0, error=True, throttled=False)
    assert metrics.flush() == 0  # the interval closed, its datapoints are not due yet
    clock[0] = happened + 9.0
    metrics.record("live", "2", duration_ms=5.0, error=False, throttled=False)
    assert metrics.flush() == 0
    assert read(cloudwatch, "fn-d", "live", "2")["Invocations Sum"] == []
    assert reader.newest("2", happened - 5, happened + 20) is None
    clock[0] = happened + 10.5  # the first interval is 10 s old: it is published, the second is not
    assert metrics.flush() == 4
    assert read(cloudwatch, "fn-d", "live", "2")["Invocations Sum"] == [2.0]
    assert reader.newest("2", happened - 5, happened + 20) == happened  # stamped when it happened
    clock[0] = happened + 20.0
    assert metrics.flush() == 4
    assert read(cloudwatch, "fn-d", "live", "2")["Invocations Sum"] == [3.0]
    assert reader.newest("2", happened - 5, happened + 20) == happened + 9
    assert reader.newest("2", happened + 15, happened + 20) is None  # none from there on
    assert reader.newest("1", happened - 5, happened + 20) is None  # another version's: none


def test_a_failed_flush_keeps_the_data_for_the_next_one() -> None:
    server = Moto()
    server.start()
    cloudwatch = emulator.client("cloudwatch", server.url)
    metrics = Telemetry(cloudwatch, "fn-c")
    metrics.record("live", "1", duration_ms=3.0, error=False, throttled=False)
    server.stop()
    try:
        with pytest.raises(Exception, match="Could not connect"):
            metrics.flush()
        metrics.record("live", "1", duration_ms=5.0, error=True, throttled=False)
        server.start()  # the emulator restarted (empty)
        assert metrics.flush() == 2 * 4  # both intervals, each its own batch
        stats = read(cloudwatch, "fn-c", "live", "1")
        assert stats["Invocations Sum"] == [2.0] and stats["Errors Sum"] == [1.0]
        assert stats["Duration Sum"] == [8.0] and stats["Duration Maximum"] == [5.0]
    finally:
        server.stop()


# --- end to end: the edge daemon publishes to the emulator's CloudWatch ----------------------


def test_the_edge_daemon_publishes_invocations_to_the_emulator(local_project: LocalProject) -> None:
    code, up = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, up
    running = daemon.read(local_project.state / "emulator.json")
    assert running is not None
    cloudwatch = emulator.client("cloudwatch", running.url, local_project.state / "tls" / "cert.pem")
    lam = emulator.client("lambda", running.url, local_project.state / "tls" / "cert.pem")
    (function,) = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    body = json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]}).encode()
    candidate = up["outputs"]["edgeUrl"] + "/candidate/infer"
    # the candidate route wants SigV4 with the emulator's credentials: unsigned is refused
    refused = urllib.request.Request(candidate, data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(refused, timeout=10)
    assert unsigned.value.code == 403 and unsigned.value.read() == b'{"message":"Forbidden"}'
    assert "x-function-version" not in unsigned.value.headers
    for _ in range(7):
        with urllib.request.urlopen(
            urllib.request.Request(up["outputs"]["edgeUrl"] + "/infer", data=body), timeout=10
        ) as r:
            assert r.status == 200
    for _ in range(2):
        keys = {k: emulator.CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        region = "us-east-1"  # the project's
        headers = sigv4_headers("POST", candidate, region, body, credentials=keys)
        with urllib.request.urlopen(urllib.request.Request(candidate, body, headers), timeout=10) as r:
            assert r.status == 200 and r.headers["x-function-version"] == "1"

    def published(alias: str, n: int) -> bool:
        return read(cloudwatch, function, alias, "1")["Invocations Sum"] == [float(n)]

    wait_for(lambda: published("live", 7) and published("candidate", 2), timeout=30)
    live = read(cloudwatch, function, "live", "1")
    assert live["Errors Sum"] == [0.0] and live["Duration SampleCount"] == [7.0]


def test_the_bake_reads_back_what_the_edge_published(moto: Moto) -> None:
    """orchestrator/gates/cloudwatch.py against the same real server: green's figures only, from
    the window's start on, and the alarm states (missing ones as None)."""
    import time

    from orchestrator.gates.cloudwatch import LambdaMetrics
    from orchestrator.gates.watch import VersionMetrics

    cloudwatch = emulator.client("cloudwatch", moto.url)
    since = time.time()
    metrics = Telemetry(cloudwatch, "fn-w")
    for ms in (10.0, 30.0):
        metrics.record("live", "2", duration_ms=ms, error=False, throttled=False)
    metrics.record("live", "2", duration_ms=5.0, error=True, throttled=False)
    metrics.record("live", "2", duration_ms=None, error=False, throttled=True)
    metrics.record("live", "1", duration_ms=1.0, error=True, throttled=False)  # blue's: not green's
    metrics.record("candidate", "2", duration_ms=1.0, error=True, throttled=False)  # not behind live
    metrics.flush()
    reader = LambdaMetrics(cloudwatch, "fn-w", percentiles=False)
    assert reader.version("2", since, time.time()) == VersionMetrics(3, 1, 1, 15.0, "Average")
    assert reader.version("2", time.time() + 1, time.time() + 2) == VersionMetrics(0, 0, 0, None, "Average")

    cloudwatch.put_metric_alarm(
        AlarmName="fn-w-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="fn-w-errors", StateValue="ALARM", StateReason="test")
    assert reader.alarms(("fn-w-errors", "no-such-alarm")) == {"fn-w-errors": "ALARM", "no-such-alarm": None}
