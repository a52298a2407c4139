"""The gate's load shape: POST /infer with payloads built from the model's metadata.

Standalone:  locust -f loadtests/locustfile.py --host http://127.0.0.1:8787
From a gate: the orchestrator runs it headless in its own process (Locust's gevent
patching breaks boto3 and gRPC in-process) and reads the per-version statistics file
written at quit: Locust's --json has no percentiles and its CSV lags at shutdown.

Options (Locust command-line options, each also read from the environment variable shown;
the gate sets the variables):
  --edgeship-path        EDGESHIP_PATH: request path (default /infer; gates on green use
                         /candidate/infer)
  --edgeship-headers     EDGESHIP_HEADERS: extra request headers as a JSON object
  --edgeship-example     EDGESHIP_EXAMPLE: one input row as a JSON list (the gate passes
                         green's, from its metadata); else from EDGESHIP_MODEL, a
                         model.tar.gz whose metadata.json shapes the payload (default: sample)
  --edgeship-late-ms     EDGESHIP_LATE_MS: the p99 budget: a request still unanswered this
                         long after it was sent, when the run ends (the gate lets requests in
                         flight finish for up to this long: --stop-timeout), is a timeout
  --edgeship-get-share   EDGESHIP_GET_SHARE: share of requests sent as cacheable
                         GET /infer?x=... (default 0), the query
                         percent-encoded as SigV4 canonicalises it
  --edgeship-sigv4-region  EDGESHIP_SIGV4_REGION: sign requests with SigV4 for API Gateway
                         IAM auth in this region, with the credentials in AWS_ACCESS_KEY_ID/
                         AWS_SECRET_ACCESS_KEY (the emulator's, for the local edge) or else
                         the ambient ones (a remote worker's: its machine's own role)
  EDGESHIP_STATS_FILE    where to write per-version statistics (JSON) at quit; while the
                         test runs, the same statistics so far go to `<file>.live.json`
                         about every second (atomic replace), with `elapsed_s`: what a
                         sequential gate (orchestrator/gates/sequential.py) looks at

Distributed (`load.workers` > 1, or `load.remote_workers`): the orchestrator runs this file
as a master and N workers. Locust forwards the master's options to every worker when the
test starts, so a worker on another machine needs only
`locust -f locustfile.py --worker --master-host HOST --master-port PORT`. Each worker sends
the master what it measured since its last report, with Locust's own reports; the master
merges them and writes the file, with the number of workers whose last report never came
(`workers_lost`).

Statistics: per version, the latencies of successful requests and the count of failed
ones (a fast error must not make a version look fast); failures without a version header
(`unattributed`); and requests still unanswered after the stop grace that had waited longer
than the p99 budget (`in_flight`, timeouts). The gate charges the last two to green. And
how late each load-generating process ran (`generator_lag_ms`): a timer due every 10 ms,
and how late it fired. An answer waits for the process to get to it too, so that delay is
in the latencies measured (a lower bound on what the generator adds: docs/performance.md);
the gate says so when it is large.
"""

from __future__ import annotations

import json
import os
import random
import signal
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from locust import FastHttpUser, constant, events, task

VERSION_HEADER = "x-function-version"
SAMPLE_MODEL = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"


def _die_with_parent() -> None:
    """Started by a gate: have the kernel SIGKILL us when the driver dies, even by kill -9."""
    parent = int(os.environ.get("EDGESHIP_PARENT_PID") or 0)
    if not parent:
        return  # standalone `locust -f`: nothing to follow
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the driver's group kill on every exit path still applies
    if os.getppid() != parent:  # the driver died before we got here
        os._exit(1)


_die_with_parent()


def _example_of(model: str) -> list[float]:
    with tarfile.open(model or SAMPLE_MODEL, "r:gz") as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        return [float(v) for v in json.load(member)["input"]["example"]]


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    def option(name: str, default: str, help_text: str) -> None:
        variable = "EDGESHIP_" + name.upper().replace("-", "_")
        parser.add_argument(
            f"--edgeship-{name}", env_var=variable, default=default, help=help_text, include_in_web_ui=False
        )

    option("path", "/infer", "request path")
    option("headers", "{}", "extra request headers, a JSON object")
    option("example", "", "one input row, a JSON list (default: from EDGESHIP_MODEL's metadata)")
    option("late-ms", "0", "the p99 budget: unanswered this long at the end is a timeout")
    option("get-share", "0", "share of requests sent as cacheable GETs")
    option("sigv4-region", "", "sign requests with SigV4 for this region")


@dataclass(frozen=True)
class Shape:
    """What each request looks like, from the options (a worker's arrive from the master)."""

    path: str = "/infer"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    example: tuple[float, ...] = ()
    late_ms: float = 0.0
    get_share: float = 0.0
    sigv4_region: str = ""  # set for IAM-protected routes (the candidate route)

    @classmethod
    def of(cls, options: Any) -> Shape:
        example = options.edgeship_example
        return cls(
            path=options.edgeship_path,
            headers={"content-type": "application/json", **json.loads(options.edgeship_headers or "{}")},
            example=tuple(float(v) for v in json.loads(example)),
            late_ms=float(options.edgeship_late_ms or 0),
            get_share=float(options.edgeship_get_share or 0),
            sigv4_region=options.edgeship_sigv4_region,
        )


SHAPE = Shape()


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    global _environment
    _environment = environment
    options = environment.parsed_options
    if options is not None and not options.edgeship_example and not getattr(options, "worker", False):
        # Resolved where the model file is (alone, or the master): workers get the row itself.
        options.edgeship_example = json.dumps(_example_of(os.environ.get("EDGESHIP_MODEL", "")))


# version -> latencies (ms) of successes and the error count; failures without the header
# are `unattributed`; requests sent and not yet answered are counted in `_in_flight`.
_versions: dict[str, dict[str, Any]] = {}
_unattributed = {"failures": 0, "ok": 0}
_in_flight: dict[int, float] = {}  # id of the request -> when it was sent
_late = 0  # unanswered past the p99 budget once the users had stopped: timeouts
_started = time.monotonic()
_environment: Any = None  # Locust's Environment: the runner says master, worker or alone
_final_reports: dict[str, float] = {}  # master: worker -> its load window, once its last report came
_window: float | None = None  # worker: seconds from its test start to its users' stop
_lag_ms: list[float] = []  # how late the lag probe's timer fired, each time (see _probe_lag)
_probe: Any = None  # the lag probe's greenlet, while users run here
LAG_PROBE_S = 0.01


def _row() -> list[float]:
    # Jitter keeps every request distinct, as real traffic is.
    return [round(v * random.uniform(0.9, 1.1), 3) for v in SHAPE.example]


class InferenceUser(FastHttpUser):
    """One client calling the inference endpoint back to back."""

    wait_time = constant(0)

    @task
    def infer(self) -> None:
        token = object()
        _in_flight[id(token)] = time.monotonic()  # until the answer: one cut off at stop stays here
        shape = SHAPE
        if shape.get_share and random.random() < shape.get_share:
            target, headers = _get(self.host or "", _row())
            self.client.get(target, headers=headers, name=f"GET {shape.path}")
        else:
            body, headers = _post(self.host or "", _row())
            # bytes: what SigV4 signed, sent as they are. Locust annotates `data` as str|dict
            # only, but its docstring and geventhttpclient take bytes.
            self.client.post(shape.path, data=body, headers=headers, name=shape.path)  # type: ignore[arg-type]
        del _in_flight[id(token)]


def _get(host: str, row: list[float]) -> tuple[str, dict[str, str]]:
    """GET's target and headers for one row. The query goes out already in SigV4's encoding
    (',' as %2C): a signer takes a query as sent, API Gateway canonicalises it, and the two
    agree only when they are the same bytes (a raw comma was refused on AWS)."""
    target = f"{SHAPE.path}?x={quote(','.join(str(v) for v in row), safe='-_.~')}"
    return target, (_signed(host, "GET", target, b"") if SHAPE.sigv4_region else SHAPE.headers)


def _post(host: str, row: list[float]) -> tuple[bytes, dict[str, str]]:
    """POST's body and headers for one row."""
    body = json.dumps({"inputs": row}).encode()
    return body, (_signed(host, "POST", SHAPE.path, body) if SHAPE.sigv4_region else SHAPE.headers)


_credentials: Any = None  # botocore credentials, resolved at test start when signing


def _resolve_credentials() -> Any:
    # botocore is imported here, after Locust's gevent patching, never before it. The
    # environment's credential chain: the gate puts the emulator's keys in our environment
    # for the local edge; on AWS they are the job's. Resolved once, before users start: a
    # session per request costs ~15 ms of CPU, and the first import far more, which a
    # one-second gate would spend without sending a request.
    from botocore.session import get_session

    global _credentials
    if _credentials is None:
        _credentials = get_session().get_credentials()
    return _credentials


def _signed(host: str, method: str, target: str, body: bytes) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = _resolve_credentials()
    request = AWSRequest(method=method, url=host.rstrip("/") + target, data=body, headers=SHAPE.headers)
    # get_frozen_credentials refreshes expiring (assumed-role) credentials when due.
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", SHAPE.sigv4_region).add_auth(request)
    return dict(request.headers.items())


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    # Before any user starts; on a worker, the master's options have arrived by now.
    global _started, SHAPE, _probe, _live
    options = environment.parsed_options
    if options is not None:
        SHAPE = Shape.of(options)
    sends = not getattr(options, "master", False)  # a master sends nothing
    if SHAPE.sigv4_region and sends:
        import botocore.auth  # noqa: F401  (warm: see _resolve_credentials)

        _resolve_credentials()
    _quiet_gc()
    _started = time.monotonic()
    import gevent

    if sends:
        _probe = gevent.spawn(_probe_lag)
    if os.environ.get("EDGESHIP_STATS_FILE"):  # alone or the master: the one that writes the file
        _live = gevent.spawn(_write_live)
        gevent.signal_handler(signal.SIGUSR1, _end_early)


def _end_early() -> None:
    """SIGUSR1 from a sequential gate that has decided: end the test as its --run-time end
    does (users stopped with --stop-timeout, then the final statistics). SIGTERM would write
    the file first and stop the users after, losing the requests of the last moments."""
    import gevent

    if _environment is not None and _environment.runner is not None:
        gevent.spawn(_environment.runner.quit)


_live: Any = None  # the live snapshot's greenlet, while the test runs
LIVE_EVERY_S = 1.0


def _write_live() -> None:
    """Every second, the statistics so far to `<stats file>.live.json` (atomic replace).

    The same shape as the final file, raw latencies included: the gate that looks needs the
    exceedance counts against its budgets and the final judge reads the final file anyway.
    Serialising is the cost (about 1 ms per 10 000 latencies); when it grows, the interval
    grows with it (at most a tenth of this process's time goes to snapshots). On a master
    the view is the workers' reports so far (each reports every few seconds)."""
    import gevent

    target = os.environ["EDGESHIP_STATS_FILE"] + ".live.json"
    while True:
        gevent.sleep(LIVE_EVERY_S)
        began = time.monotonic()
        data = _snapshot(late_only=True)
        data["elapsed_s"] = round(began - _started, 3)
        _write_atomic(target, data)
        gevent.sleep(max(0.0, 9 * (time.monotonic() - began)))


def _probe_lag() -> None:
    """How late this process gets to what is due: a response ready on its socket waits behind
    the same work (other users', a collection, a busy core) as this timer does."""
    import gevent

    while True:
        due = time.monotonic() + LAG_PROBE_S
        gevent.sleep(LAG_PROBE_S)
        _lag_ms.append(round(max(0.0, time.monotonic() - due) * 1000, 3))


FINAL_REPORTS_SLACK_S = 10.0  # beyond --stop-timeout, for a worker on a starved CPU
# Heartbeats a worker may miss (one a second) before the master counts it missing. Locust's
# 3 is shorter than a busy CI runner can starve a worker: the master then took a stalled
# worker for gone, and when the other one quit it had "no worker left" and stopped before the
# stalled one's last report, whose requests were lost (seen in CI: `workers_lost` 1 of 2). A
# worker that really died is still found: its last report never comes (`workers_lost`).
HEARTBEAT_LIVENESS = 10


def _patient_master() -> None:
    """Applied at import, before Locust builds its runner (the master reads the value for each
    heartbeat it receives, and at each worker's registration)."""
    from locust import runners

    runners.HEARTBEAT_LIVENESS = max(runners.HEARTBEAT_LIVENESS, HEARTBEAT_LIVENESS)


_patient_master()


def _expected_workers() -> int:
    options = getattr(_environment, "parsed_options", None)
    return int(getattr(options, "expect_workers", 0) or 0) if getattr(options, "master", False) else 0


@events.test_stop.add_listener
def _on_stop(**_: Any) -> None:
    global _probe, _live
    if _live is not None:
        _live.kill(block=False)
        _live = None
    if _probe is not None:  # users stopped: an idle loop is no measure of the load's
        _probe.kill(block=False)
        _probe = None
    expected = _expected_workers()
    if expected:
        _collect_final_reports(expected)


def _collect_final_reports(expected: int) -> None:
    """Master: tell the workers to quit now and wait for each one's last report.

    A headless master's quit sends the workers `quit`, then waits 0.5 s for their last
    reports before it stops listening; a worker lets its requests in flight finish first
    (--stop-timeout) and, on a busy CPU, answers later than that: its last numbers were
    lost (seen in CI: `workers_lost` 1 of 2). This runs inside the master's stop, before
    its own `quit` (which then reaches workers already gone: dropped), and waits for as long
    as a worker may take. gevent.sleep lets the master's receiver take the reports meanwhile.
    """
    import gevent
    from locust.rpc import Message

    runner = _environment.runner
    for client in list(runner.clients.all):
        runner.server.send_to_client(Message("quit", None, client.id))
    stop_timeout = float(getattr(_environment, "stop_timeout", 0) or 0)
    deadline = time.monotonic() + stop_timeout + FINAL_REPORTS_SLACK_S
    while len(_final_reports) < expected and time.monotonic() < deadline:
        gevent.sleep(0.05)


def _quiet_gc() -> None:
    """Keep the garbage collector from stalling the requests the gate times.

    A collection stops every user at once, and each request in flight then carries the pause
    in its latency: the gate would judge the load generator. Everything alive now (Locust,
    gevent, the imports) lives as long as the process: frozen, no collection walks it again.
    Collecting young objects 30x less often leaves fewer, shorter pauses; the cycles a run
    makes are still collected. Measured (bench/load_scaling.py): one process sends 2x the
    load it could before while its p95 stays within 10% of the server's.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


@events.request.add_listener
def _on_request(response_time: float, response: Any, exception: Any, **_: Any) -> None:
    version = None
    if response is not None and getattr(response, "headers", None) is not None:
        version = response.headers.get(VERSION_HEADER)
    status = getattr(response, "status_code", 0) or 0
    failed = exception is not None or status >= 400 or status == 0
    if not version:
        _unattributed["failures" if failed else "ok"] += 1
        return
    entry = _versions.setdefault(version, {"latencies_ms": [], "errors": 0})
    if failed:
        entry["errors"] += 1
    else:
        entry["latencies_ms"].append(round(float(response_time), 3))


def _count_late() -> int:
    """Once the users are stopped: requests in flight at the end had --stop-timeout (the p99
    budget) to finish and were measured if they did. One still unanswered had waited past
    the budget and would have failed the gate anyway; dropping it would hide the slowest
    request of all."""
    now = time.monotonic()
    budget = SHAPE.late_ms
    late = sum(1 for sent in _in_flight.values() if budget and (now - sent) * 1000 >= budget)
    _in_flight.clear()
    return late


@events.report_to_master.add_listener
def _on_report_to_master(data: dict[str, Any], **_: Any) -> None:
    # Worker: hand over what was measured since the last report. The report sent after the
    # worker's users stopped is its last ("final"): its late requests are counted then.
    from locust.runners import STATE_STOPPED

    global _versions, _unattributed, _window, _lag_ms
    final = _environment is not None and _environment.runner.state == STATE_STOPPED
    if final and _window is None:
        _window = time.monotonic() - _started
    data["edgeship"] = {
        "versions": _versions,
        "unattributed": _unattributed,
        "in_flight": _count_late() if final else 0,
        "final": final,
        "window_s": _window,
        "lag_ms": _lag_ms,
    }
    _versions, _unattributed, _lag_ms = {}, {"failures": 0, "ok": 0}, []


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    # Master: merge a worker's numbers into the ones this process writes at quit.
    global _late
    part = data.get("edgeship")
    if not part:
        return
    for version, entry in part["versions"].items():
        mine = _versions.setdefault(version, {"latencies_ms": [], "errors": 0})
        mine["latencies_ms"].extend(entry["latencies_ms"])
        mine["errors"] += entry["errors"]
    for key in _unattributed:
        _unattributed[key] += part["unattributed"][key]
    _late += part["in_flight"]
    _lag_ms.extend(part.get("lag_ms", ()))
    if part["final"]:
        _final_reports[client_id] = float(part["window_s"] or 0)


@events.quitting.add_listener
def _on_quit(**_: Any) -> None:
    target = os.environ.get("EDGESHIP_STATS_FILE")
    if not target:
        return  # a worker, or standalone without a file
    _write_atomic(target, _snapshot(late_only=False))


def _snapshot(*, late_only: bool) -> dict[str, Any]:
    """The statistics file's content. While running (`late_only`), requests in flight count
    only once they have waited past the p99 budget, and stay in flight (not cleared)."""
    expected = _expected_workers()
    if late_only:
        now, budget = time.monotonic(), SHAPE.late_ms
        waiting = sum(1 for sent in list(_in_flight.values()) if budget and (now - sent) * 1000 >= budget)
    else:
        waiting = _count_late()
    return {
        # The load's length: with workers, theirs (the master's own clock also runs while it
        # hands out users and collects the last reports, which would understate requests/s).
        "duration_s": round(max(_final_reports.values(), default=0) or time.monotonic() - _started, 3),
        "path": SHAPE.path,
        "unattributed": _unattributed,
        "in_flight": _late + waiting,
        "versions": _versions,
        "workers": expected,
        "workers_lost": max(0, expected - len(_final_reports)),
        "generator_lag_ms": _lag_ms,
    }


def _write_atomic(target: str, data: dict[str, Any]) -> None:
    tmp = Path(target + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, target)  # atomic: the gate never reads a half-written file
