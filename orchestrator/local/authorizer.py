"""The HTTP API's origin authorizer on the local edge, as API Gateway and Lambda run it.

- API Gateway's authorizer result cache: answers keyed on the identity source's values
  (the `x-origin-verify` header), kept for the stack's result TTL
  (programs/serving.py AUTHORIZER_RESULT_TTL_S), denies included. An authorizer that
  raised, timed out or answered nonsense gets 500 and nothing is cached. No header: 401
  without calling the authorizer.
- The authorizer itself is the shipped code (programs/authorizer/origin.py) run in a
  sandbox process, reading the accepted values from the emulator's SSM parameter with the
  environment Lambda gives it. One sandbox, one invocation at a time (a Lambda sandbox's
  rule); it is replaced when it dies or runs past the function's timeout. It starts with
  the edge and imports boto3 before its first invocation: the cold start of Lambda's
  first sandbox is not emulated (its first read of SSM is). Its init has Lambda's 10 s
  (INIT_S), apart from the function's 5 s timeout for each invocation, as on Lambda.
- Lambda freezes a sandbox between invocations, and `time.monotonic()` does not advance
  while it is frozen (the wall clock does). The sandbox process gets both clocks offset
  accordingly (`SandboxClock`): with freezing on, its monotonic clock advances only while
  it runs an invocation. On by default, as on Lambda; EDGESHIP_AUTHORIZER_FROZEN=0 in the
  edge's environment turns it off.
- Tests move this part of the edge through time: POST /_edgeship/authorizer with
  {"advance_s": s} makes s seconds pass for the result cache and for the sandbox's clocks
  (its monotonic clock only when not frozen) without waiting them out; {"frozen": bool}
  freezes or thaws the sandbox. Nothing else on the edge sees that time.

The authorizer is called only on a result-cache miss, so none of this is on the hot path.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from orchestrator.local import payload
from orchestrator.local.emulator import ACCOUNT
from orchestrator.programs.authorizer import origin

HEADER = origin.HEADER
CODE = Path(origin.__file__).resolve()  # the file the stack ships as the authorizer's zip
HANDLER = "handler"
RESULT_TTL_S = 300.0  # programs/serving.py AUTHORIZER_RESULT_TTL_S; the stack passes its own
TIMEOUT_S = 5.0  # the authorizer function's Timeout in programs/serving.py
INIT_S = 10.0  # Lambda's limit on a function's init, which its Timeout does not count
FROZEN_ENV = "EDGESHIP_AUTHORIZER_FROZEN"
Refusal = tuple[int, str]


@dataclass
class ResultCache:
    """API Gateway's authorizer result cache: identity source values -> allowed, for `ttl_s`
    from the answer (0: no caching). Times are the caller's (monotonic) seconds."""

    ttl_s: float
    entries: dict[tuple[str, ...], tuple[float, bool]] = field(default_factory=dict)

    def get(self, key: tuple[str, ...], now: float) -> bool | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def put(self, key: tuple[str, ...], allowed: bool, now: float) -> None:
        if self.ttl_s > 0:
            self.entries = {k: v for k, v in self.entries.items() if v[0] > now}  # expired ones go
            self.entries[key] = (now + self.ttl_s, allowed)


@dataclass
class SandboxClock:
    """How far a sandbox's monotonic clock lags the real one: by the idle time it spent
    frozen. `now` is the caller's monotonic time (the edge's, plus any time advanced)."""

    frozen: bool = True
    frozen_s: float = 0.0  # idle time the sandbox's monotonic clock never saw
    idle_since: float | None = None  # when its last invocation ended; None: running or new

    def thaw(self, now: float) -> None:
        """An invocation starts: the idle time since the last one is lost when frozen."""
        if self.frozen and self.idle_since is not None:
            self.frozen_s += max(0.0, now - self.idle_since)
        self.idle_since = None

    def idle(self, now: float) -> None:
        """An invocation ended."""
        self.idle_since = now

    def set_frozen(self, frozen: bool, now: float) -> None:
        """From now on, idle time is lost (frozen) or counted."""
        if self.idle_since is not None:
            self.thaw(now)
            self.idle(now)
        self.frozen = frozen


class SandboxFailed(Exception):
    """The authorizer raised, timed out, died or answered something API Gateway rejects.
    `fatal`: the sandbox is gone (died, or was stopped past its timeout)."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class Sandbox:
    """One authorizer sandbox: a process running the authorizer's code, its clocks offset
    by what the caller passes with each invocation."""

    def __init__(self, code: Path, env: dict[str, str]) -> None:
        self.code, self.env = code, env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.local.authorizer", str(code)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdin and self.proc.stdout
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        self.initialised = False

    def _await_init(self) -> None:
        """Wait for the sandbox's init (its first line) for up to INIT_S, as Lambda does before
        the first invocation: a busy machine's slow init is not the handler's timeout (on a
        starved CI runner an init over TIMEOUT_S failed the first request with a 500)."""
        readable, _, _ = select.select([self.stdout], [], [], INIT_S)
        line = self.stdout.readline() if readable else b""
        if not line or not json.loads(line).get("ready"):
            raise SandboxFailed(
                "init failed" if readable else f"init timed out after {INIT_S:g} s", fatal=True
            )
        self.initialised = True

    def invoke(self, event: dict[str, Any], wall_offset: float, monotonic_offset: float) -> Any:
        """The handler's answer; SandboxFailed when it raised, or no answer came in TIMEOUT_S."""
        if not self.initialised:
            self._await_init()
        frame = {"event": event, "wall": wall_offset, "monotonic": monotonic_offset}
        try:
            self.stdin.write(json.dumps(frame).encode() + b"\n")
            self.stdin.flush()
        except (OSError, ValueError) as exc:
            raise SandboxFailed(f"the sandbox is gone: {exc}", fatal=True) from exc
        # select on the pipe is exact: the sandbox writes one line at init, then one per invocation.
        readable, _, _ = select.select([self.stdout], [], [], TIMEOUT_S)
        line = self.stdout.readline() if readable else b""
        if not line:
            raise SandboxFailed("died" if readable else f"timed out after {TIMEOUT_S:g} s", fatal=True)
        answer = json.loads(line)
        if "error" in answer:
            raise SandboxFailed(str(answer["error"]))
        return answer["response"]

    def close(self) -> None:
        try:
            self.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class Authorizer:
    """The API's origin authorizer path: result cache, then the sandbox."""

    def __init__(
        self,
        env: dict[str, str],
        ttl_s: float,
        *,
        frozen: bool,
        code: Path = CODE,
        api: payload.Api | None = None,
    ) -> None:
        self.env, self.code = env, code
        # The HTTP API whose requests it authorizes (its id, region, account in the events).
        self.api = api or payload.Api.for_function("edgeship-local", env.get("AWS_REGION", ""), ACCOUNT)
        self.results = ResultCache(ttl_s)
        self.clock = SandboxClock(frozen)
        self.advanced_s = 0.0  # time made to pass by POST /_edgeship/authorizer
        self.invocations = 0
        self.lock = threading.Lock()  # one invocation at a time; guards the cache and clock
        # Started with the edge, so its init (an interpreter, boto3) is done before the first
        # request: on a machine busy with a load test a cold sandbox took ~3 s, every
        # request waiting on it. Lambda's cold start is not what this emulates.
        self.sandbox: Sandbox | None = Sandbox(code, env)

    def now(self) -> float:
        return time.monotonic() + self.advanced_s

    def refusal(self, method: str, path: str, query: str, headers: dict[str, str]) -> Refusal | None:
        """API Gateway's answer to a request its authorizer refuses, or None to let it through."""
        supplied = headers.get(HEADER)
        if not supplied:
            return 401, "Unauthorized"  # an identity source missing: no call, no cache
        key = (supplied,)
        allowed = self.results.get(key, self.now())
        if allowed is None:
            with self.lock:
                allowed = self.results.get(key, self.now())  # answered while we waited
                if allowed is None:
                    try:
                        allowed = self._invoke(_event(self.api, method, path, query, headers, supplied))
                    except SandboxFailed as exc:
                        print(
                            json.dumps(
                                {"ts": round(time.time(), 3), "event": "authorizer_failed", "error": str(exc)}
                            ),
                            file=sys.stderr,
                        )
                        return 500, "Internal Server Error"
                    self.results.put(key, allowed, self.now())
        return None if allowed else (403, "Forbidden")

    def _invoke(self, event: dict[str, Any]) -> bool:
        if self.sandbox is None:
            self.sandbox = Sandbox(self.code, self.env)  # a cold start
        self.clock.thaw(self.now())
        self.invocations += 1
        try:
            response = self.sandbox.invoke(event, self.advanced_s, self.advanced_s - self.clock.frozen_s)
        except SandboxFailed as failed:
            if failed.fatal:  # dead or timed out: Lambda starts a new sandbox, which starts cold
                self.sandbox.proc.kill()
                self.sandbox.close()
                self.sandbox, self.clock = None, SandboxClock(self.clock.frozen)
            raise
        finally:
            if self.sandbox is not None:
                self.clock.idle(self.now())
        allowed = response.get("isAuthorized") if isinstance(response, dict) else None
        if not isinstance(allowed, bool):
            raise SandboxFailed(f"not a simple response: {response!r}")
        return allowed

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """Freeze or thaw the sandbox, make time pass; the state after."""
        with self.lock:
            if "frozen" in request:
                self.clock.set_frozen(bool(request["frozen"]), self.now())
            self.advanced_s += max(0.0, float(request.get("advance_s") or 0.0))
            return {
                "frozen": self.clock.frozen,
                "advanced_s": self.advanced_s,
                "frozen_s": self.clock.frozen_s,
                "invocations": self.invocations,
                "ttl_s": self.results.ttl_s,
            }

    def close(self) -> None:
        with self.lock:
            if self.sandbox is not None:
                self.sandbox.close()
                self.sandbox = None


def _event(
    api: payload.Api, method: str, path: str, query: str, headers: dict[str, str], supplied: str
) -> dict[str, Any]:
    """A payload-2.0 REQUEST authorizer event, as API Gateway sends it to the function: the
    request as the function would see it (payload.py), without a body or an authorizer
    context, plus the route's ARN and the identity source's values."""
    request = payload.event(
        api, method, path, query, headers, b"", authorizer={}, route_key=f"{method} {path}"
    )
    del request["isBase64Encoded"], request["requestContext"]["authorizer"]
    arn = f"arn:aws:execute-api:{api.region}:{api.account}:{api.api_id}/{api.stage}/{method}{path}"
    return {**request, "type": "REQUEST", "routeArn": arn, "identitySource": [supplied]}


def sandbox_env(
    emulator_url: str, ca: Path | None, region: str, parameter: str, credentials: dict[str, str]
) -> dict[str, str]:
    """What the sandbox runs with: Lambda's variables for the function, the emulator's
    endpoint (and its certificate, `ca`, when it serves HTTPS)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        **credentials,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": emulator_url,
        **({"AWS_CA_BUNDLE": str(ca)} if ca else {}),
        "AWS_LAMBDA_FUNCTION_NAME": "origin-authorizer",
        "ORIGIN_SECRETS_PARAMETER": parameter,
    }


def frozen_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """EDGESHIP_AUTHORIZER_FROZEN: 0 (or false, no, off) thaws; anything else, or unset, freezes."""
    return environ.get(FROZEN_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# -- the sandbox process ----------------------------------------------------------------------


def _sandbox_main(code: str) -> None:
    """Load the authorizer's module from its file (as Lambda loads `origin.handler`) with the
    process's clocks offset by what each invocation brings, then answer line by line."""
    import importlib.util
    import traceback

    offsets = {"wall": 0.0, "monotonic": 0.0}
    real_time, real_monotonic = time.time, time.monotonic
    # Before the module loads: whichever way it reaches the clocks, it reads the sandbox's.
    time.time = lambda: real_time() + offsets["wall"]
    time.monotonic = lambda: real_monotonic() + offsets["monotonic"]
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # what the code prints (at init too) is logs, not answers
    # Lambda's runtime has boto3; importing it and loading SSM's model here, before the
    # first invocation, keeps that cost out of the first request (see Authorizer).
    import boto3

    boto3.client("ssm")
    spec = importlib.util.spec_from_file_location(Path(code).stem, code)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handler = getattr(module, HANDLER)
    out.write(json.dumps({"ready": True}).encode() + b"\n")  # init done: invocations are timed from here
    out.flush()
    for line in sys.stdin.buffer:
        frame = json.loads(line)
        offsets["wall"], offsets["monotonic"] = float(frame["wall"]), float(frame["monotonic"])
        try:
            answer: dict[str, Any] = {"response": handler(frame["event"], None)}
        except Exception as exc:  # a function error: API Gateway's 500, the sandbox lives on
            traceback.print_exc()
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    _sandbox_main(sys.argv[1])
