"""The local edge: plays CloudFront + API Gateway (HTTP API) + Lambda on 127.0.0.1.

For each request it picks a version of the `live` alias by its routing weights (as
Lambda does), runs that version's deployed zip in a sandbox as Lambda runs it (worker.py:
unpacked read-only, the runtime's own interpreter under awslambdaric, speaking the Runtime
API to an endpoint the edge serves; Lambda's environment, a 10 s init deadline), converts
HTTP to an API Gateway payload-2.0 event and back (payload.py), and serves
cacheable GETs from a TTL cache, as the CloudFront cache policy does. `/candidate/*`
reaches the `candidate` alias and, like the AWS_IAM routes of the HTTP API, needs a valid
SigV4 signature (service execute-api, the environment's region) made with the emulator's
credentials (sigv4.py). The other routes, like the HTTP API behind its origin authorizer,
need the origin header (origin.py): the CloudFront part adds it; the API's origin
authorizer, with API Gateway's result cache, judges it (authorizer.py: the shipped
authorizer code against the emulator's SSM parameter); requests sent to the API directly
(under /api, the stack's apiUrl) without it are refused before any sandbox runs. The cache
is emptied whenever `live` changes and on POST /_edgeship/invalidate (what a CloudFront
invalidation does on AWS).

Platform errors are answered as API Gateway answers them, with none of the function's
headers (so the gate charges them to green): a function error (it raised, or its answer is
not JSON: the sandbox serves on), an init that failed or passed 10 s, a runtime that exited
or an answer API Gateway cannot read 500, a version at its concurrency limit 429, a
function past its configured Timeout 504 (its sandbox is killed and replaced, as Lambda
does).

Alias state is read from the emulated Lambda API by a poller every 250 ms and at once on
POST /_edgeship/refresh, so a traffic shift takes effect before the next request.

Like Lambda, the edge publishes Invocations, Errors, Throttles and Duration per alias and
executed version to the emulator's CloudWatch every second (see telemetry.py), so a bake
watches real-traffic metrics with the same queries as on AWS. A version whose sandboxes
stay busy for THROTTLE_WAIT_S answers 429, as Lambda does at its concurrency limit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.local import authorizer, emulator, payload, runtime, sigv4
from orchestrator.local.code import hex_of, unpacked
from orchestrator.local.origin import HEADER as ORIGIN_HEADER
from orchestrator.local.origin import read_origin
from orchestrator.local.telemetry import Telemetry
from orchestrator.local.worker import (
    HANDLER,
    INIT_TIMEOUT_S,
    Answer,
    InitFailed,
    Launch,
    Sandbox,
    SandboxDied,
    SandboxTimedOut,
    lambda_environment,
)

ROUTES = {("POST", "/infer"), ("GET", "/infer"), ("GET", "/healthz")}
CANDIDATE_PREFIX = "/candidate"
# Requests under this prefix go to the HTTP API directly (the stack's apiUrl), not
# through CloudFront: without its origin header they are refused, as on AWS.
API_PREFIX = "/api"
# What the release may expect of a running edge; a daemon left running by an older
# edgeship (2: SigV4 on the candidate route, no token; 3: the origin authorizer, apiUrl
# under /api; 4: the authorizer's values in SSM, its result cache) is replaced, not reused.
REVISION = 4
# How soon a shift made outside edgeship (the AWS CLI, the console) reaches the edge; the
# driver's own writes are pushed at once (POST /_edgeship/refresh). On AWS an alias update is
# eventually consistent too, visible after a moment rather than instantly.
POLL_S = 0.5
# Idle sandboxes of versions no alias routes to are closed after this. Tests shorten it
# (EDGESHIP_EDGE_RETIRE_S) to see blue start cold again after a promotion without waiting.
RETIRE_S = float(os.environ.get("EDGESHIP_EDGE_RETIRE_S") or 30.0)
THROTTLE_WAIT_S = 10.0  # a request waits this long for a free sandbox before it is throttled
JSON = "application/json"
DEFAULT_TIMEOUT_S = 3.0  # Lambda's default when a version's configuration names none
DEFAULT_RUNTIME = "python3.12"
# What a function that ran past its Timeout gets: an HTTP API answers an integration
# timeout with 504 (AWS documents 504 for HTTP APIs as for REST APIs) and the body
# {"message":"Service Unavailable"}; we use that pair. (On AWS the integration timeout is
# 1 s above the function's, programs/serving.py, so Lambda's own timeout may fire first and
# surface as a 500: both are header-less failures the gate charges to green.)
TIMEOUT_STATUS, TIMEOUT_MESSAGE = 504, "Service Unavailable"


class Throttled(Exception):
    """No sandbox of the version became free in time (Lambda's concurrency limit)."""


class TimedOut(Exception):
    """The function ran past its configured Timeout; its sandbox was replaced."""

    def __init__(self, version: str, timeout_s: float) -> None:
        super().__init__(f"version {version}: no answer within {timeout_s:g} s")
        self.timeout_s = timeout_s


def gateway_answer(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's own answer: its JSON message and none of the function's headers (no
    x-function-version: the gate charges such failures to green)."""
    return status, {"content-type": JSON}, json.dumps({"message": message}, separators=(",", ":")).encode()


class InitFailure:
    """An init that failed, queued where a ready sandbox would be: a request waiting for
    that sandbox gets the failure (API Gateway's 500) instead of waiting to be throttled."""

    def __init__(self, error: InitFailed) -> None:
        self.error, self.at = error, time.monotonic()


class VersionPool:
    """Warm sandboxes of one version; requests borrow one at a time.

    `size` sandboxes start side by side when the pool is made, as Lambda's do for a burst
    (a cold version costs one init, not `size`). One that timed out or exited is replaced at
    once; one whose init failed, by the next request (each request after a failed init
    initialises anew, as on Lambda). Inits run on threads of their own: nothing waits for
    one holding a lock, so other versions keep serving."""

    def __init__(
        self,
        version: str,
        launch: Launch,
        size: int,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        arn: str = "",
    ) -> None:
        self.version, self.launch, self.timeout_s, self.arn = version, launch, timeout_s, arn
        self.wait_s = THROTTLE_WAIT_S
        self.init_timeout_s = INIT_TIMEOUT_S
        self.size = size
        self.idle: queue.Queue[Sandbox | InitFailure] = queue.Queue()
        self.lock = threading.Lock()
        self.count = 0  # sandboxes ready, busy or initialising
        self.initialising = 0
        self.last_started: Sandbox | None = None  # the newest sandbox (for tests)
        self.closed = False
        self.last_used = time.monotonic()
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        with self.lock:
            if self.closed or self.count >= self.size:
                return
            self.count += 1
            self.initialising += 1
        threading.Thread(target=self._init_one, daemon=True, name=f"init-{self.version}").start()

    def _init_one(self) -> None:
        # A thread's top level: whatever goes wrong is logged and queued as a failed init,
        # and the counters come down in `finally`, or the pool stays a sandbox short for good.
        item: Sandbox | InitFailure | None = None
        try:
            self.last_started = Sandbox(self.version, self.launch)
            item = self.last_started.ready(self.init_timeout_s)
        except Exception as exc:
            error = exc if isinstance(exc, InitFailed) else InitFailed(f"version {self.version}: {exc}")
            print(json.dumps({"ts": round(time.time(), 3), "event": "sandbox_init_failed", "version": self.version, "error": str(error)}),
                  file=sys.stderr)  # fmt: skip
            item = InitFailure(error)
        finally:
            with self.lock:
                self.initialising -= 1
                if not isinstance(item, Sandbox):
                    self.count -= 1
        self._return(item)

    def _return(self, item: Sandbox | InitFailure) -> None:
        """Queue a ready sandbox (or a failed init) unless the pool is closed. Checked and
        put under the lock `close` takes: a sandbox put after close drained the queue would
        keep its process and Runtime API thread until the edge exits."""
        with self.lock:
            if not self.closed:
                self.idle.put(item)
                return
        if isinstance(item, Sandbox):
            item.close()

    def warm(self) -> VersionPool:
        """Wait until every sandbox finished its init (tests; a request never needs to)."""
        deadline = time.monotonic() + self.init_timeout_s + 5
        while self.initialising and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def _borrow(self) -> Sandbox:
        arrived = time.monotonic()
        deadline = arrived + self.wait_s
        while True:
            if self.idle.empty():
                self._spawn()  # a sandbox that ended is replaced when it is needed
            # While inits run, wait for them (they end within the init deadline): a
            # request that started a cold version is not throttled by its own init.
            limit = deadline + (self.init_timeout_s if self.initialising else 0.0)
            try:
                item = self.idle.get(timeout=max(0.0, limit - time.monotonic()))
            except queue.Empty:
                if self.initialising and time.monotonic() < deadline + self.init_timeout_s:
                    continue
                raise Throttled(f"version {self.version}: all {self.size} sandboxes busy") from None
            if isinstance(item, InitFailure):
                if item.at < arrived:
                    continue  # an init that failed before this request came: try anew
                raise item.error
            if item.alive:
                return item
            item.close()
            with self.lock:
                self.count -= 1

    def invoke(self, event: dict[str, Any], arn: str | None = None) -> Answer:
        """Run one event in a free sandbox. Throttled when none frees up within `wait_s`;
        InitFailed when the sandbox's init failed or passed its deadline; TimedOut past
        `timeout_s` and SandboxDied when the runtime exited (the sandbox ends; another
        replaces it). A function error is an answer with `error` set: the sandbox stays."""
        self.last_used = time.monotonic()
        sandbox = self._borrow()
        try:
            answer = sandbox.invoke(event, self.timeout_s, arn or self.arn)
        except SandboxTimedOut:
            self._ended()
            raise TimedOut(self.version, self.timeout_s) from None
        except SandboxDied:
            self._ended()
            raise
        self._return(sandbox)  # closed if the pool was retired while this request ran
        return answer

    def _ended(self) -> None:
        with self.lock:
            self.count -= 1
        self._spawn()  # Lambda resets a sandbox after a timeout: the next one starts now

    def close(self) -> None:
        with self.lock:  # after this, nothing is put in `idle` (`_return`)
            self.closed = True
            drained = []
            while not self.idle.empty():
                drained.append(self.idle.get_nowait())
        for item in drained:  # outside the lock: each close waits for its process
            if isinstance(item, Sandbox):
                item.close()


@dataclass
class Routing:
    """The aliases as last read from the emulator."""

    live_version: str | None = None
    live_weights: dict[str, float] = field(default_factory=dict)
    candidate_version: str | None = None
    read_at: float = 0.0

    def pick_live(self, rng: random.Random) -> str | None:
        """A version for one request, with Lambda's weighted routing."""
        draw = rng.random()
        for version, weight in self.live_weights.items():
            if draw < weight:
                return version
            draw -= weight
        return self.live_version


class Edge:
    """Routing, sandboxes and cache; the HTTP layer is `_Handler`."""

    def __init__(
        self, state_dir: Path, emulator_url: str, function: str, cache_ttl_s: float, workers: int, region: str,
        origin_parameter: str = "", authorizer_ttl_s: float = authorizer.RESULT_TTL_S,
    ) -> None:  # fmt: skip
        self.state_dir, self.function, self.cache_ttl_s, self.workers, self.region = (
            state_dir, function, cache_ttl_s, workers, region,
        )  # fmt: skip
        self.emulator_url = emulator_url
        self.ca = state_dir / "tls" / "cert.pem"
        self.lam = emulator.client("lambda", emulator_url, self.ca)
        self.telemetry = Telemetry(emulator.client("cloudwatch", emulator_url, self.ca), function)
        self.routing = Routing()
        self.pools: dict[str, VersionPool] = {}
        self.pool_lock = threading.Lock()
        self.cache: dict[str, tuple[float, int, dict[str, str], bytes]] = {}
        # Bumped by every invalidation: an answer computed before one is not cached after it.
        self.cache_generation = 0
        self.cache_lock = threading.Lock()
        self.rng = random.Random()
        self.origin = read_origin(state_dir)
        self.authorizer = authorizer.Authorizer(
            authorizer.sandbox_env(emulator_url, self.ca, region, origin_parameter, emulator.CREDENTIALS),
            authorizer_ttl_s, frozen=authorizer.frozen_from_env(),
            api=payload.Api.for_function(function, region, emulator.ACCOUNT),
        )  # fmt: skip
        self.refresh()

    def refresh(self) -> None:
        """Re-read both aliases from the emulated Lambda API, in one ListAliases call: the
        poller runs for as long as the environment does, and each call costs the edge and
        the emulator a few ms of CPU (two GetAlias calls every 0.25 s were ~6 % of a core
        per idle environment, on a CI machine running five of them)."""
        pages = self.lam.get_paginator("list_aliases").paginate(FunctionName=self.function)
        aliases = {alias["Name"]: alias for page in pages for alias in page["Aliases"]}
        missing = sorted({"live", "candidate"} - set(aliases))
        if missing:
            raise LookupError(f"function {self.function} has no alias {' or '.join(missing)}")
        live, candidate = aliases["live"], aliases["candidate"]
        weights = {
            str(k): float(v)
            for k, v in (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}).items()
        }
        self.route(Routing(live["FunctionVersion"], weights, candidate["FunctionVersion"], time.monotonic()))

    def route(self, routing: Routing) -> None:
        """Take a new view of the aliases. When live changed, the cache is emptied: an answer
        cached from a version live moved away from must not outlive the move."""
        before, self.routing = self.routing, routing  # first: requests from now on route anew
        if (before.live_version, before.live_weights) != (routing.live_version, routing.live_weights):
            self.invalidate()

    def invalidate(self) -> int:
        """Empty the cache, as a CloudFront invalidation of /infer* does; how many entries went."""
        with self.cache_lock:
            self.cache_generation += 1
            dropped = len(self.cache)
            self.cache.clear()
        return dropped

    def poll_forever(self) -> None:
        """Background refresh, so shifts made by anyone show up within POLL_S."""
        while True:
            time.sleep(POLL_S)
            try:
                self.refresh()
            except Exception as exc:  # the emulator may be restarting; keep serving the last view
                print(
                    json.dumps(
                        {"ts": round(time.time(), 3), "event": "alias_refresh_failed", "error": str(exc)}
                    ),
                    file=sys.stderr,
                )
            self.keep_live_warm()
            self.retire_idle()

    def keep_live_warm(self) -> None:
        """Start sandboxes for the versions `live` routes to when none run. On AWS real users
        keep live's versions warm; here nobody calls live between promotions, and a step's
        gate would measure blue's cold start instead of the step (seen: a gate with 6
        answers, all waiting on blue's inits). The candidate stays cold until called, as
        green is on AWS at its pre-traffic gate."""
        routing = self.routing
        routed = {v for v in (routing.live_version, *routing.live_weights) if v is not None}
        for version in sorted(routed - set(self.pools)):
            try:
                self.pool(version)  # its inits run on threads of their own
            except Exception as exc:  # the next poll tries again; requests start it too
                print(json.dumps({"ts": round(time.time(), 3), "event": "warm_failed", "version": version, "error": str(exc)}),
                      file=sys.stderr)  # fmt: skip

    def retire_idle(self) -> None:
        """Close the sandboxes of versions no alias routes to and nobody called for a while,
        as Lambda reclaims idle sandboxes (a long session would otherwise keep every version's)."""
        routing = self.routing
        routed = {routing.live_version, routing.candidate_version, *routing.live_weights}
        now = time.monotonic()
        with self.pool_lock:
            idle = [v for v, p in self.pools.items() if v not in routed and now - p.last_used > RETIRE_S]
            retired = [self.pools.pop(v) for v in idle]
        for pool in retired:
            pool.close()

    def pool(self, version: str) -> VersionPool:
        """Warm sandboxes for a version, started on first use. The version's configuration
        is read and its code unpacked outside the lock, and the pool's inits run on their
        own threads: a cold version never holds up requests to the others."""
        pool = self.pools.get(version)
        if pool is not None:
            return pool
        launch, timeout_s, arn = self._launch(version)
        with self.pool_lock:
            if version not in self.pools:
                self.pools[version] = VersionPool(version, launch, self.workers, timeout_s, arn)
            return self.pools[version]

    def _launch(self, version: str) -> tuple[Launch, float, str]:
        """How the version's sandboxes start, as Lambda starts them: its zip unpacked
        read-only, the runtime's interpreter and packages, Lambda's environment."""
        config = self.lam.get_function_configuration(FunctionName=self.function, Qualifier=version)
        runtime_name = str(config.get("Runtime") or DEFAULT_RUNTIME)
        handler = str(config.get("Handler") or HANDLER)
        environment = lambda_environment(
            function=self.function, version=version, memory_mb=int(config.get("MemorySize") or 128),
            region=self.region, runtime=runtime_name, handler=handler,
            configured=(config.get("Environment") or {}).get("Variables", {}),
            access={**emulator.CREDENTIALS, "AWS_ENDPOINT_URL": self.emulator_url, "AWS_CA_BUNDLE": str(self.ca)},
        )  # fmt: skip
        launch = Launch(
            python=runtime.interpreter(runtime_name),
            task_root=unpacked(self.state_dir, hex_of(config["CodeSha256"])),
            # Never installs (a request must not wait on pip): the stack's deploy did.
            runtime_dir=runtime.runtime_dir(runtime_name, install_missing=False),
            environment=environment,
            handler=handler,
        )
        arn = f"arn:aws:lambda:{self.region}:{emulator.ACCOUNT}:function:{self.function}:{version}"
        return launch, float(config.get("Timeout") or DEFAULT_TIMEOUT_S), arn

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request -> (status, headers, body). Under API_PREFIX it goes straight to the
        HTTP API (its execute-api URL); anything else comes through CloudFront first."""
        if target == API_PREFIX or target.startswith(API_PREFIX + "/"):
            return self.api(method, target[len(API_PREFIX) :] or "/", headers, body, addressed=target)
        # CloudFront: its origin header replaces any a viewer sent, then its cache.
        headers = {**headers, ORIGIN_HEADER: self.origin.sent}
        cacheable = method == "GET" and urlsplit(target).path == "/infer" and self.cache_ttl_s > 0
        if cacheable:
            hit = self.cache.get(target)
            if hit and hit[0] > time.monotonic():
                return hit[1], {**hit[2], "x-cache": "Hit from edgeship-local"}, hit[3]
        generation = self.cache_generation
        status, out_headers, data = self.api(method, target, headers, body, addressed=target)
        if cacheable and status == 200:
            with self.cache_lock:
                if generation == self.cache_generation:
                    self.cache[target] = (
                        time.monotonic() + self.cache_ttl_s,
                        status,
                        dict(out_headers),
                        data,
                    )
            out_headers["x-cache"] = "Miss from edgeship-local"
        return status, out_headers, data

    def api(
        self, method: str, target: str, headers: dict[str, str], body: bytes, *, addressed: str
    ) -> tuple[int, dict[str, str], bytes]:
        """The HTTP API: route, authorize (IAM on /candidate/*, the origin authorizer on
        the rest), invoke the alias's version."""
        parts = urlsplit(target)
        path, query = parts.path, parts.query
        candidate = path.startswith(CANDIDATE_PREFIX + "/")
        route = (method, path[len(CANDIDATE_PREFIX) :] if candidate else path)
        if route not in ROUTES:
            return gateway_answer(404, "Not Found")
        if candidate:
            refused = self._unsigned(method, addressed, headers, body)
            if refused is not None:
                return gateway_answer(403, refused)
        else:
            denied = self.authorizer.refusal(method, path, query, headers)
            if denied is not None:
                return gateway_answer(*denied)
        routing = self.routing
        version = routing.candidate_version if candidate else routing.pick_live(self.rng)
        if version is None:
            return gateway_answer(503, "no version deployed")
        alias = "candidate" if candidate else "live"
        try:
            pool = self.pool(version)
            event = self._event(method, path, query, headers, body, signed=candidate)
            answer = pool.invoke(event, arn=f"{pool.arn.rsplit(':', 1)[0]}:{alias}")
        except Throttled:
            self.telemetry.record(alias, version, duration_ms=None, error=False, throttled=True)
            return gateway_answer(429, "Too Many Requests")
        except TimedOut as timed_out:
            # Lambda counts a timeout in Errors, with the whole timeout as its Duration.
            ms = timed_out.timeout_s * 1000
            self.telemetry.record(alias, version, duration_ms=ms, error=True, throttled=False)
            return gateway_answer(TIMEOUT_STATUS, TIMEOUT_MESSAGE)
        except Exception as exc:  # an init that failed or timed out, a runtime that exited: API Gateway's 500
            # Lambda counts a runtime that exits or fails init as a function error.
            self.telemetry.record(alias, version, duration_ms=None, error=True, throttled=False)
            print(
                json.dumps(
                    {
                        "ts": round(time.time(), 3),
                        "event": "sandbox_failed",
                        "version": version,
                        "error": str(exc),
                    }
                ),
                file=sys.stderr,
            )
            return gateway_answer(500, "Internal Server Error")
        self.telemetry.record(
            alias, version, duration_ms=answer["duration_ms"], error=answer["error"], throttled=False
        )
        if answer["error"]:  # the handler raised, or its answer was not JSON: API Gateway answers
            return gateway_answer(500, "Internal Server Error")
        try:
            status, out_headers, data = payload.response(answer["response"])
        except payload.MalformedResponse as exc:
            print(json.dumps({"ts": round(time.time(), 3), "event": "malformed_response", "version": version, "error": str(exc)}),
                  file=sys.stderr)  # fmt: skip
            return gateway_answer(500, "Internal Server Error")
        merged: dict[str, str] = {}
        for key, value in out_headers:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return status, merged, data

    def _unsigned(self, method: str, target: str, headers: dict[str, str], body: bytes) -> str | None:
        """Why a candidate request is refused (API Gateway's message), or None when it is signed
        with the emulator's credentials. The URL is the one the client addressed (its Host)."""
        return sigv4.verify(
            method, f"http://{headers.get('host', '127.0.0.1')}{target}", headers, body,
            access_key=emulator.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=emulator.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region=self.region, now=datetime.datetime.now(datetime.UTC),
        )  # fmt: skip

    def _event(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, *, signed: bool
    ) -> dict[str, Any]:
        """API Gateway's payload-2.0 event (payload.py), with what the route's authorization
        left in the request: the caller's IAM identity on the candidate routes, the origin
        authorizer's (empty) context on the others."""
        authorizer: dict[str, Any] = (
            {
                "iam": {
                    "accessKey": emulator.CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "accountId": emulator.ACCOUNT,
                    "callerId": emulator.CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": f"arn:aws:iam::{emulator.ACCOUNT}:user/edgeship-local",
                    "userId": emulator.CREDENTIALS["AWS_ACCESS_KEY_ID"],
                }
            }
            if signed
            else {"lambda": None}
        )
        api = payload.Api.for_function(self.function, self.region, emulator.ACCOUNT)
        return payload.event(
            api, method, path, query, headers, body, authorizer=authorizer, route_key=f"{method} {path}"
        )

    def status(self) -> dict[str, Any]:
        """What the edge routes to right now."""
        r = self.routing
        return {
            "revision": REVISION,
            "pid": os.getpid(),  # how whoever started the edge knows it is theirs on this port
            "live": r.live_version,
            "weights": r.live_weights,
            "candidate": r.candidate_version,
            "warm": sorted(self.pools),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as load-test clients expect
    edge: Edge

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # per-request logging would cost more than the request

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_edgeship/"):
            status, headers, data = self._control(body)
        else:
            headers_in = sigv4.received(self.headers.items())  # a repeated header: its values, comma-joined
            status, headers, data = self.edge.handle(self.command, self.path, headers_in, body)
        self.send_response(status)
        for key, value in headers.items():
            if key not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _control(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/_edgeship/refresh" and self.command == "POST":
            self.edge.refresh()
        elif self.path == "/_edgeship/origin" and self.command == "POST":
            self.edge.origin = read_origin(self.edge.state_dir)  # one assignment: requests see old or new
        elif self.path == "/_edgeship/authorizer" and self.command == "POST":  # tests: authorizer.py
            try:
                state = self.edge.authorizer.control(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:  # not a JSON object of numbers
                return gateway_answer(400, f"expected {{frozen: bool, advance_s: seconds}}: {exc}")
            return 200, {"content-type": JSON}, json.dumps(state).encode()
        elif self.path == "/_edgeship/invalidate" and self.command == "POST":
            dropped = self.edge.invalidate()
            return 200, {"content-type": JSON}, json.dumps({"invalidated": dropped}).encode()
        elif self.path != "/_edgeship/status":
            return gateway_answer(404, "Not Found")
        return 200, {"content-type": JSON}, json.dumps(self.edge.status()).encode()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes its connection early (a load test's users stopping, a
        # timed-out request) is normal traffic, not news: no traceback, no line. Anything
        # else is a bug of the edge and keeps its traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve(edge: Edge, port: int) -> None:
    """Serve on 127.0.0.1:port until killed."""
    server = _Server(("127.0.0.1", port), type("Handler", (_Handler,), {"edge": edge}))
    threading.Thread(target=edge.poll_forever, daemon=True, name="alias-poller").start()
    threading.Thread(target=edge.telemetry.run_forever, daemon=True, name="metrics-flusher").start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        for pool in edge.pools.values():
            pool.close()
        edge.authorizer.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the edge daemon."""
    parser = argparse.ArgumentParser(description="edgeship local edge")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--function", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cache-ttl", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--region", default=emulator.REGION, help="the region candidate requests are signed for"
    )
    parser.add_argument(
        "--metric-delay", type=float, default=0.0, help="seconds before Lambda's metrics become visible"
    )
    parser.add_argument(
        "--origin-parameter", default="", help="the SSM parameter of the accepted origin values"
    )
    parser.add_argument("--authorizer-ttl", type=float, default=authorizer.RESULT_TTL_S)
    args = parser.parse_args(argv)
    edge = Edge(
        args.state_dir, args.emulator, args.function, args.cache_ttl, args.workers, args.region,
        args.origin_parameter, args.authorizer_ttl,
    )  # fmt: skip
    edge.telemetry.delay_s = args.metric_delay  # as late as AWS's arrive (traffic.metric_delay_s)
    serve(edge, args.port)


if __name__ == "__main__":
    main()
