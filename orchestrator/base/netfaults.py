"""Network faults at the AWS-call boundary: a test tool, inert unless armed.

    EDGESHIP_NETFAULT="s3:PutObject[lock.json]@2=lost"      the 2nd lease write lands, its answer is lost
    EDGESHIP_NETFAULT="lambda:UpdateAlias@3+=5xx(1)"         from the 3rd alias write on, a 500 once each
    EDGESHIP_NETFAULT_LOG=/tmp/fired.jsonl                   one JSON line per fault that fired

The syntax is orchestrator/base/faults.py's (`point=action(arg)`, terms joined by `;`), with an
AWS operation as the point: `service:Operation` (botocore's names: `s3:PutObject`,
`lambda:UpdateAlias`), optionally `[text]` (only calls whose Key or Name contains `text`,
e.g. `[lock.json]` for the lease, `[current.json]` for the record, `[history/]` for its
copy) and `@N` (the Nth matching call of this process, the default 1) or `@N+` (every
matching call from the Nth). Faults:

    unsent    the request never reaches the server (a connection error)
    lost      the server applies the request, then the answer is lost (a read timeout)
    timeout   the server never sees the request; the client sees a read timeout, as for `lost`
    5xx       the server answers 500 InternalError
    throttle  the server answers 503 SlowDown (S3) / 429 TooManyRequestsException (others)

A fault hits every attempt botocore makes for the chosen call, so the call fails as a whole
after botocore's own retries (each retry of a `lost` call reaches the server too, as a real
retry would); `fault(K)` hits only the first K attempts, so botocore's retry K+1 gets
through. `timeout(Ns)` (or `lost(Ns)`, `timeout(K,Ns)`) takes N seconds per attempt before
the read timeout, as a real one does: a partitioned S3 fails slowly, not at once. The faults are raised inside botocore's send (the `before-send` event), so its
real retry logic runs on them. A fault that fires is appended to EDGESHIP_NETFAULT_LOG
(when set) so a test can check that its fault fired; `fired` keeps them in-process too.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from orchestrator.base.errors import ConfigError

ENV_VAR = "EDGESHIP_NETFAULT"
LOG_VAR = "EDGESHIP_NETFAULT_LOG"
FAULTS = ("unsent", "lost", "timeout", "5xx", "throttle")

_TERM = re.compile(
    r"^\s*(?P<service>[a-z0-9-]+):(?P<operation>[A-Za-z0-9]+)"
    r"(?:\[(?P<match>[^\]]+)\])?"
    r"(?:@(?P<nth>\d+)(?P<on>\+)?)?"
    r"\s*[=]\s*(?P<fault>[a-z0-9]+)(?:\((?P<arg>[^)]*)\))?\s*$"
)


@dataclass(frozen=True)
class Term:
    """One armed fault: which calls (operation, key filter, occurrence) and what happens."""

    operation: str  # "s3:PutObject"
    match: str  # "" or a substring of the call's Key / Name
    nth: int  # the first matching call it hits (1-based)
    onwards: bool  # every matching call from the nth, not only the nth
    fault: str
    attempts: int  # attempts hit per call; 0: all of them
    delay_s: float = 0.0  # `timeout`/`lost`: how long each attempt waits before its read timeout

    def hits(self, call: int) -> bool:
        """Whether the `call`th matching call is faulted (pure)."""
        return call >= self.nth if self.onwards else call == self.nth


def parse(spec: str) -> list[Term]:
    """`op[match]@N+=fault(K);...` -> terms; a ConfigError for anything unreadable (a typo
    must not make a fault test pass by testing nothing). Pure."""
    terms = []
    for text in filter(str.strip, spec.split(";")):
        m = _TERM.match(text)
        if not m:
            raise ConfigError(
                f"{ENV_VAR}: cannot read {text!r}",
                fix="write service:Operation[key]@N=fault, e.g. s3:PutObject[lock.json]@2=lost",
            )
        if m["fault"] not in FAULTS:
            raise ConfigError(
                f"{ENV_VAR}: unknown fault {m['fault']!r}", fix=f"use one of: {', '.join(FAULTS)}"
            )
        attempts, delay_s = _arg(m["fault"], m["arg"] or "")
        nth = int(m["nth"] or 1)
        if nth < 1:
            raise ConfigError(f"{ENV_VAR}: occurrences count from 1 in {text!r}", fix="e.g. @1")
        terms.append(
            Term(
                f"{m['service']}:{m['operation']}",
                m["match"] or "",
                nth,
                bool(m["on"]),
                m["fault"],
                attempts,
                delay_s,
            )
        )
    return terms


def _arg(fault: str, arg: str) -> tuple[int, float]:
    """`K`, `Ns` or `K,Ns` -> (attempts hit, seconds per attempt); pure."""
    attempts, delay_s = 0, 0.0
    for part in filter(None, (p.strip() for p in arg.split(","))):
        if part.isdigit():
            attempts = int(part)
        elif part.endswith("s") and fault in ("timeout", "lost") and _number(part[:-1]):
            delay_s = float(part[:-1])
        else:
            raise ConfigError(
                f"{ENV_VAR}: {fault}({arg}) needs a number of attempts"
                + (" and/or seconds per attempt" if fault in ("timeout", "lost") else ""),
                fix="e.g. lost(1), timeout(2s), timeout(1,2s)",
            )
    return attempts, delay_s


def _number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


_terms: list[Term] = parse(os.environ.get(ENV_VAR, ""))
_calls: Counter[Term] = Counter()  # matching calls seen so far, per term (this process)
_lock = threading.Lock()
_current = threading.local()  # the faults of the call this thread is making, and attempts left
fired: list[dict[str, Any]] = []


def arm(spec: str) -> None:
    """Replace the armed faults (in-process tests; subprocesses use the environment variable).
    Only clients made after arming carry the hooks."""
    global _terms
    with _lock:
        _terms = parse(spec)
        _calls.clear()
        fired.clear()


def install(client: Any) -> Any:
    """Hook the armed faults into a boto3 client (returned as is). Nothing is registered
    when none are armed: unarmed, the client is botocore's own."""
    if not _terms:
        return client
    _say_armed()
    http = client._endpoint.http_session  # the client's own connection pool: `lost` sends for real
    events = client.meta.events
    events.register("before-parameter-build", _on_call)
    events.register("before-send", lambda request, **kw: _on_send(http, request, **kw))
    return client


_said = False


def _say_armed() -> None:
    """Once per process, on stderr: faults armed against whatever these clients reach (a
    stray EDGESHIP_NETFAULT in a real job's environment must not fail calls silently)."""
    global _said
    if not _said:
        _said = True
        spec = os.environ.get(ENV_VAR, "") or "(armed in-process)"
        print(f"edgeship: network faults armed for testing ({ENV_VAR}={spec})", file=sys.stderr)


def _key_of(params: dict[str, Any]) -> str:
    return str(params.get("Key") or params.get("Name") or params.get("FunctionName") or "")


def _on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    """Once per API call (before botocore's retries): decide which fault, if any, it meets."""
    operation = f"{model.service_model.service_id.hyphenize()}:{model.name}"
    key = _key_of(params)
    chosen: tuple[Term, int] | None = None
    with _lock:
        for term in _terms:
            if term.operation != operation or term.match not in key:
                continue
            _calls[term] += 1
            if chosen is None and term.hits(_calls[term]):
                chosen = (term, _calls[term])
    _current.call = (
        None if chosen is None else {"term": chosen[0], "call": chosen[1], "key": key, "attempt": 0}
    )


def _on_send(http: Any, request: Any, **_: Any) -> Any:
    """Once per attempt: act out the fault of the current call, if it still has attempts to hit."""
    call = getattr(_current, "call", None)
    if call is None:
        return None
    term: Term = call["term"]
    call["attempt"] += 1
    if term.attempts and call["attempt"] > term.attempts:
        return None  # this retry gets through
    _record(term, call)
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    if term.fault == "unsent":
        raise EndpointConnectionError(endpoint_url=request.url)
    if term.fault == "lost":
        real = http.send(request)  # the server applies it ...
        _ = real.content  # ... and answers in full
        time.sleep(term.delay_s)
        raise ReadTimeoutError(endpoint_url=request.url)  # ... but the answer never arrives
    if term.fault == "timeout":
        time.sleep(term.delay_s)
        raise ReadTimeoutError(endpoint_url=request.url)
    return _error_response(request.url, term)


def _error_response(url: str, term: Term) -> Any:
    """A server's error answer in the wire format of the operation's service."""
    from botocore.awsrequest import AWSResponse

    s3 = term.operation.startswith("s3:")
    if term.fault == "5xx":
        status, code = 500, ("InternalError" if s3 else "ServiceException")
    else:
        status, code = (503, "SlowDown") if s3 else (429, "TooManyRequestsException")
    message = f"injected by {ENV_VAR}"
    if s3:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/json", "x-amzn-errortype": code}
    return AWSResponse(url, status, cast(Any, headers), _Raw(body))


class _Raw:
    """The raw body botocore reads from an AWSResponse."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _record(term: Term, call: dict[str, Any]) -> None:
    entry = {
        "operation": term.operation,
        "key": call["key"],
        "call": call["call"],
        "attempt": call["attempt"],
        "fault": term.fault,
        "pid": os.getpid(),
    }
    with _lock:
        fired.append(entry)
        path = os.environ.get(LOG_VAR)
        if path:
            with open(path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The faults recorded in an EDGESHIP_NETFAULT_LOG file (none when it does not exist)."""
    try:
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        return []
