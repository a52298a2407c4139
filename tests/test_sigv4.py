"""The local edge's SigV4 check (orchestrator/local/sigv4.py), table-tested against requests
signed by botocore as the gate, the health check and hooks sign them. Nothing is mocked: the
clock is the `now` argument."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orchestrator.local import emulator, sigv4
from orchestrator.targets import sigv4_headers

BASE = "http://127.0.0.1:8787"
TARGET = "/candidate/infer?x=1"
BODY = b'{"inputs": [5.1, 3.5, 1.4, 0.2]}'
KEYS = {k: emulator.CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
REGION = "eu-west-1"
JSON = "application/json"


class Request:
    """One request as the edge receives it: method, target, lower-cased headers, body."""

    def __init__(self, *, secret: str = KEYS["AWS_SECRET_ACCESS_KEY"], key: str = KEYS["AWS_ACCESS_KEY_ID"],
                 region: str = REGION, method: str = "POST", target: str = TARGET, body: bytes = BODY) -> None:  # fmt: skip
        # as the locustfile signs: its content-type among the signed headers
        request = AWSRequest(method=method, url=BASE + target, data=body, headers={"content-type": JSON})
        SigV4Auth(Credentials(key, secret), "execute-api", region).add_auth(request)
        signed = dict(request.headers.items())
        self.method, self.target, self.body = method, target, body
        # what an HTTP client adds: Host (signed by botocore from the URL), an unsigned User-Agent
        self.headers = {
            "host": "127.0.0.1:8787",
            "user-agent": "client/1",
            **{k.lower(): v for k, v in signed.items()},
        }
        self.signed_at = datetime.datetime.strptime(self.headers["x-amz-date"], sigv4.STAMP).replace(
            tzinfo=datetime.UTC
        )


def check(request: Request, at: datetime.timedelta = datetime.timedelta(0)) -> str | None:
    return sigv4.verify(
        request.method, BASE + request.target, request.headers, request.body,
        access_key=KEYS["AWS_ACCESS_KEY_ID"], secret_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        region=REGION, now=request.signed_at + at,
    )  # fmt: skip


def _set(**changes: Any) -> Callable[[Request], None]:
    def change(request: Request) -> None:
        for name, value in changes.items():
            setattr(request, name, value)

    return change


def _header(name: str, value: str | None) -> Callable[[Request], None]:
    def change(request: Request) -> None:
        if value is None:
            request.headers.pop(name)
        else:
            request.headers[name] = value

    return change


MINUTE = datetime.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("signing", "change", "at", "expected"),
    [
        ({}, None, 0 * MINUTE, None),
        ({}, None, 5 * MINUTE, None),  # the allowed skew, both ways
        ({}, None, -5 * MINUTE, None),
        ({"method": "GET", "body": b""}, None, 0 * MINUTE, None),
        ({}, _header("user-agent", "someone-else/2"), 0 * MINUTE, None),  # not signed: free to change
        ({}, _header("authorization", None), 0 * MINUTE, "Forbidden"),  # unsigned
        ({"secret": "not-the-secret"}, None, 0 * MINUTE, sigv4.MISMATCH),
        ({"key": "AKIDSOMEONEELSE"}, None, 0 * MINUTE, sigv4.UNKNOWN_KEY),
        ({"region": "us-west-2"}, None, 0 * MINUTE, sigv4.MISMATCH),
        ({}, _set(body=BODY.replace(b"5.1", b"9.9")), 0 * MINUTE, sigv4.MISMATCH),  # tampered body
        ({}, _set(target="/candidate/healthz?x=1"), 0 * MINUTE, sigv4.MISMATCH),  # tampered path
        ({}, _set(target="/candidate/infer?x=2"), 0 * MINUTE, sigv4.MISMATCH),  # tampered query
        ({}, _header("content-type", "text/plain"), 0 * MINUTE, sigv4.MISMATCH),  # a signed header
        ({}, _header("host", "127.0.0.1:9999"), 0 * MINUTE, sigv4.MISMATCH),
        ({}, _header("x-amz-date", None), 0 * MINUTE, sigv4.NO_DATE),
        ({}, _header("authorization", "Bearer abc"), 0 * MINUTE, sigv4.MALFORMED),
    ],
    ids=[
        "valid", "skew-5min-late", "skew-5min-early", "valid-get", "unsigned-header-changed", "unsigned",
        "wrong-secret", "unknown-key", "other-region", "tampered-body", "tampered-path", "tampered-query",
        "signed-header-changed", "other-host", "no-date", "malformed",
    ],
)  # fmt: skip
def test_verify(
    signing: dict[str, Any],
    change: Callable[[Request], None] | None,
    at: datetime.timedelta,
    expected: str | None,
) -> None:
    request = Request(**signing)
    if change is not None:
        change(request)
    assert check(request, at) == expected


def test_stale_and_future_dates_are_refused_with_api_gateways_wording() -> None:
    request = Request()
    stamp = request.headers["x-amz-date"]

    def fmt(moment: datetime.datetime) -> str:
        return moment.strftime(sigv4.STAMP)

    late = request.signed_at + 5 * MINUTE + datetime.timedelta(seconds=1)
    assert check(request, late - request.signed_at) == (
        f"Signature expired: {stamp} is now earlier than {fmt(late - 5 * MINUTE)} ({fmt(late)} - 5 min.)"
    )
    early = request.signed_at - 5 * MINUTE - datetime.timedelta(seconds=1)
    assert check(request, early - request.signed_at) == (
        f"Signature not yet current: {stamp} is still later than {fmt(early + 5 * MINUTE)} ({fmt(early)} + 5 min.)"
    )


def test_a_declared_payload_hash_must_be_the_bodys() -> None:
    """A client may sign x-amz-content-sha256 instead of hashing the body itself: the body
    that arrived must still be the one signed."""
    import hashlib

    declared = {"x-amz-content-sha256": hashlib.sha256(BODY).hexdigest()}
    request = AWSRequest(method="POST", url=BASE + TARGET, data=BODY, headers=declared)
    credentials = Credentials(KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(credentials, "execute-api", REGION).add_auth(request)
    received = Request()
    received.headers = {"host": "127.0.0.1:8787", **{k.lower(): v for k, v in request.headers.items()}}
    assert "x-amz-content-sha256" in received.headers["authorization"]
    assert check(received) is None
    received.body = b"{}"
    assert check(received) == sigv4.MISMATCH


def test_what_the_health_check_signs_passes() -> None:
    """targets.sigv4_headers with explicit credentials (the local candidate's) signs as the edge checks."""
    headers = sigv4_headers("GET", BASE + "/candidate/healthz", REGION, credentials=KEYS)
    received = {"host": "127.0.0.1:8787", **{k.lower(): v for k, v in headers.items()}}
    now = datetime.datetime.now(datetime.UTC)
    verdict = sigv4.verify(
        "GET", BASE + "/candidate/healthz", received, b"", access_key=KEYS["AWS_ACCESS_KEY_ID"],
        secret_key=KEYS["AWS_SECRET_ACCESS_KEY"], region=REGION, now=now,
    )  # fmt: skip
    assert verdict is None
