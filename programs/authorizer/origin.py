"""The API's origin authorizer (an HTTP API Lambda REQUEST authorizer, simple responses).

API Gateway calls it with the `x-origin-verify` header CloudFront adds, and caches the
answer per header value for AUTHORIZER_RESULT_TTL_S (programs/serving.py), denies
included, so the inference function is never invoked for a request that went around the
edge. A request without the header is refused by API Gateway itself (401), without
calling this function. Because every request through CloudFront carries the same value,
one wrong deny here is served to ALL edge traffic for the whole TTL: the rules below exist
so that this function never denies a value the stack accepts.

The accepted values are a SecureString parameter (JSON list), not an environment variable:
they change during a rotation without a new version of anything, and no one with only
`lambda:GetFunctionConfiguration` can read them. How a sandbox reads them (`must_read`,
`verdict`, table-tested in tests/test_authorizer.py):

- Cached at most CACHE_S, aged by the wall clock. Lambda freezes an idle sandbox and
  `time.monotonic()` does not advance while it is frozen: a monotonic age would keep a
  stale list for as long as the sandbox sat idle.
- A value not in the cached list is re-read before it is denied: a rotation's new value
  (`accepting`, programs/rotation.py) is known the first time the edge sends it, even
  to a sandbox that read the list a second before the parameter changed... provided the
  rotation waits at least RECHECK_S after `accepting` (it waits longer, clouds.py).
- At most one read per RECHECK_S per sandbox, whatever arrives: a flood of made-up values
  (each a distinct cache key, so each reaches this function) costs SSM one GetParameter per
  second per sandbox, not one per request. A per-value bound would not stop that flood.
- A failed read answers from the last list read successfully, however old: an SSM outage
  or throttling must not deny the value everyone sends. A value not in that list, or no
  list at all (a sandbox whose every read failed), cannot be judged: the function raises.
  API Gateway answers that request 500 and has no answer to cache, where a deny would be
  cached for the TTL; either way the request does not reach the inference function, so it
  still fails closed.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

HEADER = "x-origin-verify"
CACHE_S = 30.0
RECHECK_S = 1.0


class SecretsUnreadable(Exception):
    """The accepted values could not be read and the supplied one is not among the last read."""


@dataclass(frozen=True)
class Cache:
    """What one sandbox knows of the accepted values. Times are wall-clock seconds."""

    values: tuple[str, ...] = ()
    read_at: float | None = None  # when `values` were read; None: never read successfully
    tried_at: float | None = None  # when a read was last attempted, whatever came of it
    failed: bool = False  # whether that attempt failed

    def read(self, values: tuple[str, ...], now: float) -> Cache:
        return Cache(values, now, now, False)

    def failure(self, now: float) -> Cache:
        return replace(self, tried_at=now, failed=True)


def must_read(cache: Cache, supplied: str, now: float) -> bool:
    """Whether to read the parameter before answering `supplied` at wall-clock `now`."""
    if cache.tried_at is not None and 0 <= now - cache.tried_at < RECHECK_S:
        return False  # one read per RECHECK_S at most, whatever the values
    if cache.read_at is None or not 0 <= now - cache.read_at < CACHE_S:
        return True  # never read, stale, or the clock went back
    return not authorized(supplied, cache.values)  # maybe a value accepted since the last read


def verdict(cache: Cache, supplied: str) -> bool | None:
    """Whether `supplied` is accepted; None when that cannot be told (the last read failed
    and the value is not among those read before)."""
    if authorized(supplied, cache.values):
        return True
    return None if cache.failed or cache.read_at is None else False


def authorized(supplied: str, values: tuple[str, ...]) -> bool:
    """Whether the header's value is one of the accepted ones (none accepted: never)."""
    # compare_digest against every value: how long it takes says nothing about which matched
    matches = [hmac.compare_digest(supplied.encode(), value.encode()) for value in values]
    return bool(supplied) and any(matches)


_cache = Cache()


def handler(event: dict[str, Any], context: Any) -> dict[str, bool]:
    global _cache
    headers = event.get("headers") if isinstance(event, dict) else None
    supplied = headers.get(HEADER, "") if isinstance(headers, dict) else ""
    if not isinstance(supplied, str) or not supplied:
        return {"isAuthorized": False}
    now = time.time()
    if must_read(_cache, supplied, now):
        try:
            _cache = _cache.read(read_accepted(), now)
        except Exception as exc:  # SSM down, throttled, denied, the parameter gone or garbled
            _cache = _cache.failure(now)
            _log("origin_secrets_unreadable", error=repr(exc), last_read_at=_cache.read_at)
    answer = verdict(_cache, supplied)
    if answer is None:
        _log("origin_secret_not_judged", last_read_at=_cache.read_at)
        raise SecretsUnreadable("the accepted origin values could not be read; refusing without a verdict")
    return {"isAuthorized": answer}


def read_accepted() -> tuple[str, ...]:
    """The accepted values, from the parameter. A client per read: reads are rare (every
    CACHE_S, or for an unknown value), and its timeouts keep a read well inside the
    function's 5 s."""
    import boto3  # in the Lambda runtime; imported on first use only
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 2})
    raw = boto3.client("ssm", config=config).get_parameter(
        Name=os.environ["ORIGIN_SECRETS_PARAMETER"], WithDecryption=True
    )
    values = json.loads(raw["Parameter"]["Value"])
    if not isinstance(values, list):
        raise ValueError("the origin secrets parameter is not a JSON list")
    return tuple(v for v in values if isinstance(v, str) and v)


def _log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), file=sys.stderr)
