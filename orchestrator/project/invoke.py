"""`invoke`: one request to an environment's edge, as a client sends it, and what answered.

The live route is the edge (CloudFront on AWS) and needs nothing; the candidate route is
the HTTP API's IAM-protected `/candidate/infer`, so the request is SigV4-signed as the
health check and the gates sign theirs (targets.sigv4_headers, with the environment's
signing credentials: the emulator's locally, the ambient ones on AWS). The version that
answered is the function's `x-function-version` header; a platform error (API Gateway's
own 403/429/500/504) carries none, and says so.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from orchestrator.base.errors import EdgeshipError, UsageError
from orchestrator.stacks.targets import Endpoint, sigv4_headers

ROUTES = ("live", "candidate")
VERSION_HEADER = "x-function-version"
MODEL_HEADER = "x-model-version"


@dataclass(frozen=True)
class Call:
    """One request, ready to send."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    """What came back."""

    route: str
    url: str
    status: int
    version: str | None  # the function version that answered (None: the platform answered)
    model_version: str | None
    body: Any  # parsed JSON when it is JSON, else the text
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route, "url": self.url, "status": self.status, "version": self.version,
            "model_version": self.model_version, "body": self.body, "latency_ms": self.latency_ms,
        }  # fmt: skip


def body_of(data: str | None, example: tuple[float, ...], features: int) -> bytes:
    """The request body: `data` as given (it must be JSON), else one row of the model's example
    (zeros when its archive declares none)."""
    if data is None:
        row = list(example) or [0.0] * features
        return json.dumps({"inputs": row}).encode()
    try:
        json.loads(data)
    except ValueError as exc:
        raise UsageError(
            f"--data is not JSON: {exc}", fix="e.g. --data '{\"inputs\": [5.1, 3.5, 1.4, 0.2]}'"
        ) from None
    return data.encode()


def call_for(endpoint: Endpoint, body: bytes) -> Call:
    """POST `body` to the endpoint's inference path, signed when the endpoint needs it."""
    url = endpoint.url + endpoint.path
    headers = {"content-type": "application/json", **(endpoint.headers or {})}
    if endpoint.sigv4_region:
        signed = sigv4_headers("POST", url, endpoint.sigv4_region, body, credentials=endpoint.credentials)
        headers.update(signed)
    return Call("POST", url, headers, body)


def send(call: Call, route: str, timeout_s: float = 30.0) -> Answer:
    """Send the call; an HTTP error status is an answer too (only a dead connection raises)."""
    request = urllib.request.Request(call.url, call.body, call.headers, method=call.method)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    except OSError as exc:  # refused, reset, timed out: nothing answered
        raise EdgeshipError(
            f"no answer from {call.url}: {getattr(exc, 'reason', exc)}",
            fix="see `orchestrator status` and `orchestrator logs` for the environment "
            "(locally, `orchestrator up --env local` starts the edge again)",
        ) from None
    latency = round((time.perf_counter() - started) * 1000, 1)
    text = raw.decode(errors="replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return Answer(
        route, call.url, status, headers.get(VERSION_HEADER), headers.get(MODEL_HEADER), parsed, latency
    )
