"""One local Lambda sandbox: the function's unpacked zip run as Lambda runs it.

The process is `python3.12 -B -S -m awslambdaric handler.handler` (the runtime's own
interpreter, no bytecode writes, no site-packages of this machine) in the read-only code
directory, with the runtime's packages (runtime.py) after the code on its path and
nothing of the host's environment. It speaks the Lambda Runtime API to an endpoint this
module serves for it on 127.0.0.1 (AWS_LAMBDA_RUNTIME_API), as Lambda's own does:

    GET  /2018-06-01/runtime/invocation/next          the next event (long poll), with the
                                                      request id, deadline, invoked ARN, trace id
    POST /2018-06-01/runtime/invocation/{id}/response  the handler's answer
    POST /2018-06-01/runtime/invocation/{id}/error     a function error (it raised; an answer
                                                      that is not JSON: Runtime.MarshalError)
    POST /2018-06-01/runtime/init/error                the init failed (then the process exits)

The init ends when the runtime first asks for an event; it has INIT_TIMEOUT_S, Lambda's
10 s. A function error leaves the sandbox serving (as on Lambda); a timeout or an exit ends
it (the pool starts another). `Duration` is Lambda's: from the event handed out to the
answer posted, so it excludes the framing on both sides.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import queue
import secrets
import socket
import socketserver
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

API = "/2018-06-01/runtime"
INIT_TIMEOUT_S = 10.0  # Lambda's: an init that takes longer fails
HANDLER = "handler.handler"


class Answer(TypedDict):
    """What one invocation gave: the answer's JSON (or the error's), whether it is a
    function error as Lambda counts it in `Errors` (the handler raised or its answer could
    not be serialised; a returned statusCode 500 is not one), and Lambda's Duration."""

    response: Any
    error: bool
    duration_ms: float


class InitFailed(Exception):
    """The sandbox's init failed, timed out, or the runtime exited before asking for an event."""


class SandboxTimedOut(Exception):
    """No answer within the function's timeout (the sandbox is stopped)."""


class SandboxDied(Exception):
    """The runtime exited during an invocation (Lambda's Runtime.ExitError)."""


@dataclass(frozen=True)
class Launch:
    """How a version's sandboxes start: its code, interpreter, runtime packages, environment."""

    python: str
    task_root: Path
    runtime_dir: Path
    environment: Mapping[str, str]  # lambda_environment(...), without the per-sandbox parts
    handler: str = HANDLER


def lambda_environment(
    *,
    function: str,
    version: str,
    memory_mb: int,
    region: str,
    runtime: str,
    handler: str,
    configured: Mapping[str, str],
    access: Mapping[str, str],
) -> dict[str, str]:
    """The variables Lambda gives a sandbox of this version (the reserved ones win over the
    version's configured Environment.Variables, which Lambda refuses to set anyway), plus
    `access`: the endpoint, CA and credentials that reach the emulator (AWS's execution role
    credentials are in the same variables). Per-sandbox parts (the Runtime API address, the
    log stream, the code and runtime paths) are added by `Sandbox`."""
    return {
        **configured,
        **access,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_FORMAT": "Text",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
    }


def _sandbox_environment(launch: Launch, api_address: str, version: str) -> dict[str, str]:
    task, runtime = str(launch.task_root), str(launch.runtime_dir)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    return {
        **launch.environment,
        "AWS_LAMBDA_RUNTIME_API": api_address,
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[{version}]{secrets.token_hex(16)}",
        "LAMBDA_TASK_ROOT": task,
        "LAMBDA_RUNTIME_DIR": runtime,
        # As on Lambda: the code first (it may carry its own boto3), then the runtime's packages.
        "PYTHONPATH": f"{task}:{runtime}",
        "LD_LIBRARY_PATH": f"{task}:{task}/lib",
        "PATH": f"{Path(launch.python).parent}:/usr/local/bin:/usr/bin:/bin",
    }


@dataclass
class _Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    arn: str
    handed_at: float = 0.0


class Sandbox:
    """One runtime process and its Runtime API endpoint. Used by one request at a time (the
    pool's idle queue guarantees it); the endpoint's threads report to `self._outcomes`."""

    def __init__(self, version: str, launch: Launch) -> None:
        self.version, self.launch = version, launch
        self._outcomes: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._events: queue.Queue[_Invocation | None] = queue.Queue()
        self._current: _Invocation | None = None
        self._closed = False
        self.server = _Server(("127.0.0.1", 0), _api_handler(self))
        address = f"127.0.0.1:{self.server.server_address[1]}"
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [launch.python, "-B", "-S", "-m", "awslambdaric", launch.handler],
                cwd=launch.task_root,
                env=_sandbox_environment(launch, address, version),
                stdin=subprocess.DEVNULL,  # its output goes where the edge's goes (edge.log), as Lambda's to its log
            )
        except BaseException:
            # No interpreter, no code directory: each request after a failed init tries
            # anew, so an endpoint left open here would leak a socket per request.
            self.server.server_close()
            raise
        # Served only once the runtime exists (the socket already listens: the runtime's
        # first request waits in its backlog), so a failed spawn has no thread to stop.
        threading.Thread(target=self.server.serve_forever, daemon=True, name=f"runtime-api-{version}").start()
        threading.Thread(target=self._watch, daemon=True, name=f"sandbox-{self.proc.pid}").start()

    def _watch(self) -> None:
        code = self.proc.wait()
        self._outcomes.put(("exit", code))

    def ready(self, timeout_s: float = INIT_TIMEOUT_S) -> Sandbox:
        """Wait for the init to end (the runtime's first /next); InitFailed, and the sandbox
        stopped, when it fails, exits or takes longer than `timeout_s`."""
        deadline = self.started + timeout_s
        reported: Any = None
        while True:
            try:
                kind, detail = self._outcomes.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise InitFailed(
                    f"version {self.version}: init did not finish within {timeout_s:g} s (Lambda's limit)"
                ) from None
            if kind == "next":
                return self
            if kind == "init_error":
                reported = detail  # the runtime exits next
            elif kind == "exit":
                self.close()
                why = f": {reported.get('errorType')}: {reported.get('errorMessage')}" if reported else ""
                raise InitFailed(f"version {self.version}: init failed (runtime exit {detail}){why}")

    def invoke(self, event: Any, timeout_s: float, arn: str) -> Answer:
        """One event; SandboxTimedOut past `timeout_s` (the sandbox is stopped: Lambda resets
        it), SandboxDied when the runtime exits."""
        invocation = _Invocation(
            str(uuid.uuid4()),
            json.dumps(event, separators=(",", ":")).encode(),
            int((time.time() + timeout_s) * 1000),
            arn,
        )
        self._events.put(invocation)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                kind, detail = self._outcomes.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                raise SandboxTimedOut(f"version {self.version}: no answer within {timeout_s:g} s") from None
            if kind == "exit":
                self.close()
                raise SandboxDied(f"version {self.version}: the runtime exited (code {detail})")
            if kind in ("response", "error") and detail[0] == invocation.request_id:
                _, body, duration_ms = detail
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = body.decode("utf-8", "replace")
                return {"response": parsed, "error": kind == "error", "duration_ms": duration_ms}

    @property
    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def close(self) -> None:
        """Stop the runtime and its endpoint (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._events.put(None)  # wakes a /next waiting for an event
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        # The endpoint's loop notices a shutdown only at its next poll: not on the caller's time
        # (a timed-out request's 504 must not wait for it).
        threading.Thread(target=self._stop_endpoint, daemon=True).start()

    def _stop_endpoint(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- called by the endpoint's threads --------------------------------------------------

    def _next(self) -> _Invocation | None:
        self._outcomes.put(("next", None))
        while not self._closed:
            try:
                invocation = self._events.get(timeout=1.0)
            except queue.Empty:
                continue
            if invocation is None:
                return None
            invocation.handed_at = time.perf_counter()
            self._current = invocation
            return invocation
        return None

    def _answered(self, kind: str, request_id: str, body: bytes) -> bool:
        now = time.perf_counter()
        current = self._current
        if current is None or current.request_id != request_id:
            return False
        self._current = None
        self._outcomes.put((kind, (request_id, body, (now - current.handed_at) * 1000)))
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a runtime killed mid-request (a timeout, close()) is not news


_LINE_MAX = 65536  # longer request or header lines end the connection
_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 404: b"Not Found",
            500: b"Internal Server Error", 501: b"Not Implemented"}  # fmt: skip
_Reply = tuple[int, bytes, Mapping[str, str]]


def _api_handler(sandbox: Sandbox) -> type[socketserver.StreamRequestHandler]:
    """The Runtime API's four routes over HTTP/1.1 keep-alive. A few lines of framing rather
    than http.server, whose header parsing (the email package) and separate writes cost more
    than the rest of an invocation: every request crosses this endpoint twice."""

    class RuntimeApi(socketserver.StreamRequestHandler):
        def setup(self) -> None:
            super().setup()
            # Each reply is one write, but the runtime's requests are not: without NODELAY a
            # delayed ACK can hold a reply back ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def handle(self) -> None:
            while self._one():
                pass

        def _one(self) -> bool:
            """Serve one request; False when the connection ends."""
            request = self.rfile.readline(_LINE_MAX)
            if not request:
                return False
            parts = request.split()
            if len(parts) != 3 or not request.endswith(b"\n"):
                self._send((400, b'{"errorType":"InvalidRequest"}', {}), keep=False)
                return False
            method, target, version = parts
            headers: dict[bytes, bytes] = {}
            while True:
                line = self.rfile.readline(_LINE_MAX)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if headers.get(b"expect", b"").lower() == b"100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                body = self._chunked()
            else:
                length = int(headers.get(b"content-length") or 0)
                body = self.rfile.read(length) if length else b""
            keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
            self._send(self._route(method, target.decode("latin-1"), body), keep=keep)
            return keep

        def _chunked(self) -> bytes:
            pieces: list[bytes] = []
            while True:
                size = int(self.rfile.readline(_LINE_MAX).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_LINE_MAX) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline(_LINE_MAX)

        def _send(self, reply: _Reply, *, keep: bool) -> None:
            status, body, headers = reply
            head = [b"HTTP/1.1 %d %s" % (status, _REASONS[status])]
            head += [f"{key}: {value}".encode("latin-1") for key, value in headers.items()]
            head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
            if not keep:
                head.append(b"Connection: close")
            self.wfile.write(b"\r\n".join(head) + b"\r\n\r\n" + body)  # one write, one segment

        def _route(self, method: bytes, path: str, body: bytes) -> _Reply:
            if method == b"GET":
                if path != f"{API}/invocation/next":
                    return 404, b'{"errorType":"InvalidRequest"}', {}
                invocation = sandbox._next()
                if invocation is None:  # the sandbox is closing
                    return 500, b'{"errorType":"Sandbox.Closed"}', {}
                return 200, invocation.body, {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.arn,
                    "Lambda-Runtime-Trace-Id": _trace_id(),
                }  # fmt: skip
            if method != b"POST":
                return 501, b'{"errorType":"InvalidRequest"}', {}
            if path == f"{API}/init/error":
                try:
                    sandbox._outcomes.put(("init_error", json.loads(body)))
                except ValueError:
                    sandbox._outcomes.put(("init_error", {"errorType": "Runtime.Unknown"}))
                return 202, b'{"status":"OK"}', {}
            parts = path.removeprefix(f"{API}/invocation/").split("/")
            if len(parts) == 2 and parts[1] in ("response", "error"):
                if sandbox._answered(parts[1], parts[0], body):
                    return 202, b'{"status":"OK"}', {}
                return 400, b'{"errorType":"InvalidRequestID"}', {}
            return 404, b'{"errorType":"InvalidRequest"}', {}

    return RuntimeApi


def _trace_id() -> str:
    """An X-Ray trace header as Lambda passes one (not sampled: nothing records it here)."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
