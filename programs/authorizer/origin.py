"""The API's origin authorizer (an HTTP API Lambda REQUEST authorizer, simple responses).

API Gateway calls it with the `x-origin-verify` header CloudFront adds, and caches the
answer per header value (the stack sets the TTL), so the inference function is never
invoked for a request that went around the edge. A request without the header is refused
by API Gateway itself (401), without calling this function.

The accepted values are a SecureString parameter (JSON list), not an environment variable:
they change during a rotation without a new version of anything, and no one with only
`lambda:GetFunctionConfiguration` can read them. Read at most every CACHE_S; rotation
(`orchestrator rotate-origin-secret`) waits longer than that before the edge sends a new
value. Any failure to read them refuses the request: it fails closed.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import time
from typing import Any

HEADER = "x-origin-verify"
CACHE_S = 30.0

_cache: tuple[float, tuple[str, ...]] = (0.0, ())


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    headers = event.get("headers") if isinstance(event, dict) else None
    supplied = headers.get(HEADER, "") if isinstance(headers, dict) else ""
    if not isinstance(supplied, str) or not supplied:
        return {"isAuthorized": False}
    try:
        values = accepted()
    except Exception as exc:  # no list, no entry: a broken parameter must not open the API
        print(json.dumps({"event": "origin_secrets_unreadable", "error": repr(exc)}), file=sys.stderr)
        return {"isAuthorized": False}
    return {"isAuthorized": authorized(supplied, values)}


def authorized(supplied: str, values: tuple[str, ...]) -> bool:
    """Whether the header's value is one of the accepted ones (none accepted: never). The
    local edge's API part decides with this same function."""
    # compare_digest against every value: how long it takes says nothing about which matched
    matches = [hmac.compare_digest(supplied.encode(), value.encode()) for value in values]
    return bool(supplied) and any(matches)


def accepted(now: float | None = None) -> tuple[str, ...]:
    """The accepted values, read from the parameter at most every CACHE_S."""
    global _cache
    now = time.monotonic() if now is None else now
    read_at, values = _cache
    if values and now - read_at < CACHE_S:
        return values
    import boto3  # in the Lambda runtime; imported on first use only

    raw = boto3.client("ssm").get_parameter(Name=os.environ["ORIGIN_SECRETS_PARAMETER"], WithDecryption=True)
    values = tuple(v for v in json.loads(raw["Parameter"]["Value"]) if isinstance(v, str) and v)
    _cache = (now, values)
    return values
