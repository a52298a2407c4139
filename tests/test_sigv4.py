"""The local edge's SigV4 check (orchestrator/local/sigv4.py), table-tested against requests
signed by botocore as the gate, the health check and hooks sign them. Nothing is mocked: the
clock is the `now` argument."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from orchestrator.base.errors import EdgeshipError
from orchestrator.config.settings import LoadSettings
from orchestrator.gates import loadrun
from orchestrator.local import emulator, sigv4
from orchestrator.stacks.targets import Endpoint, health, sigv4_headers

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


@pytest.mark.parametrize(
    ("sent", "canonical", "encoded"),
    [
        ("x=5.1,3.5,1.4,0.2", "x=5.1%2C3.5%2C1.4%2C0.2", False),  # what the gate sent before
        ("x=5.1%2C-3.5%2C1e-05", "x=5.1%2C-3.5%2C1e-05", True),  # what it sends now
        ("x=1e+20", "x=1e%2B20", False),  # '+' is not a space in SigV4: %2B
        ("x=1e%2B20", "x=1e%2B20", True),
        ("x=a%2cb", "x=a%2Cb", False),  # lower-case hex: API Gateway canonicalises to upper
        ("b=2&a=1&a=0", "a=0&a=1&b=2", True),  # sorted by key, then value
        ("flag&x=", "flag=&x=", True),  # no '=': an empty value
        ("a=b=c", "a=b%3Dc", False),
        ("", "", True),
    ],
)
def test_queries_canonicalised_and_whether_sent_encoded(sent: str, canonical: str, encoded: bool) -> None:
    assert sigv4.canonical_query(sent) == canonical
    assert sigv4.is_encoded(sent) is encoded


def test_host_must_be_signed() -> None:
    request = AWSRequest(method="GET", url=BASE + "/candidate/healthz")
    SigV4Auth(
        Credentials(KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"]), "execute-api", REGION
    ).add_auth(request)
    signed = {k.lower(): v for k, v in request.headers.items()}
    fields = dict(p.strip().split("=", 1) for p in signed["authorization"].split(" ", 1)[1].split(","))
    assert fields["SignedHeaders"] == "host;x-amz-date"
    # the same signature over x-amz-date alone, re-computed as a client leaving Host out would
    scope = f"{signed['x-amz-date'][:8]}/{REGION}/execute-api/aws4_request"
    creq = sigv4.canonical_request(
        "GET", "/candidate/healthz", "", signed, ["x-amz-date"], hashlib.sha256(b"").hexdigest()
    )
    signature = sigv4.signature(
        KEYS["AWS_SECRET_ACCESS_KEY"], scope, sigv4.string_to_sign(signed["x-amz-date"], scope, creq)
    )
    credential = fields["Credential"]
    hostless = {
        "host": "127.0.0.1:8787", "x-amz-date": signed["x-amz-date"],
        "authorization": f"{sigv4.ALGORITHM} Credential={credential}, SignedHeaders=x-amz-date, Signature={signature}",
    }  # fmt: skip
    verdict = sigv4.verify(
        "GET", BASE + "/candidate/healthz", hostless, b"", access_key=KEYS["AWS_ACCESS_KEY_ID"],
        secret_key=KEYS["AWS_SECRET_ACCESS_KEY"], region=REGION, now=_at(signed),
    )  # fmt: skip
    assert verdict == sigv4.MISMATCH


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


# --- AWS's published SigV4 test suite (tests/data/aws4_testsuite, from boto/botocore) -------

SUITE = Path(__file__).parent / "data" / "aws4_testsuite"
SUITE_KEYS = {"access_key": "AKIDEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
SUITE_REGION, SUITE_SERVICE = "us-east-1", "service"
SUITE_NOW = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)  # the vectors' X-Amz-Date
# The session tokens the suite's temporary credentials were issued with (its readme's, and the
# one get-vanilla-with-session-token signs).
STS_TOKEN = (SUITE / "post-sts-token" / "readme.txt").read_text().split()[-1]
TOKENS = {
    "get-vanilla-with-session-token": "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
    "post-sts-header-before": STS_TOKEN,
    "post-sts-header-after": STS_TOKEN,  # the token added after signing: not among the signed headers
}
# A vector whose .sreq is not what its .creq/.sts/.authz sign; each is still checked, both ways.
BAD_SREQ = {
    # its .sreq carries get-vanilla's signature (made without the token), not the .authz one
    "get-vanilla-with-session-token": "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
}
VECTORS = sorted(p.parent for p in SUITE.rglob("*.sreq"))


@dataclass
class Vector:
    """One suite request, its header block read by the parser the edge's HTTP server uses."""

    name: str
    method: str
    target: str
    headers: list[tuple[str, str]]  # as received, repeats and folded lines included
    body: bytes

    @classmethod
    def read(cls, directory: Path, suffix: str = "sreq") -> Vector:
        raw = (directory / f"{directory.name}.{suffix}").read_bytes()
        head, _, body = raw.partition(b"\n\n")
        request_line, _, block = head.partition(b"\n")
        method, _, rest = request_line.decode().partition(" ")
        target = rest.rsplit(" ", 1)[0]  # "/example space/" is one target
        parsed = http.client.parse_headers(io.BytesIO(block.replace(b"\n", b"\r\n") + b"\r\n\r\n"))
        return cls(directory.name, method, target, list(parsed.items()), body)

    def url(self) -> str:
        return "http://example.amazonaws.com" + self.target

    def authorized(self, authorization: str) -> list[tuple[str, str]]:
        unsigned = [(k, v) for k, v in self.headers if k.lower() != "authorization"]
        return [*unsigned, ("Authorization", authorization)]

    def verify(self, headers: list[tuple[str, str]], *, token: str | None) -> str | None:
        return sigv4.verify(
            self.method, self.url(), headers, self.body, **SUITE_KEYS, region=SUITE_REGION,
            service=SUITE_SERVICE, now=SUITE_NOW, session_token=token,
        )  # fmt: skip


def _expected(directory: Path, suffix: str) -> str:
    return (directory / f"{directory.name}.{suffix}").read_text()


def test_the_suite_is_all_here() -> None:
    """Every vector of the suite is run below (none skipped): 34 requests (normalize-path and
    post-sts-token hold theirs in subdirectories)."""
    assert len(VECTORS) == 34
    assert {p.name for p in VECTORS} >= {"get-vanilla-utf8-query", "get-vanilla-with-session-token",
                                         "get-header-value-multiline", "post-x-www-form-urlencoded",
                                         "get-slashes", "get-space", "post-sts-header-after"}  # fmt: skip


@pytest.mark.parametrize("directory", VECTORS, ids=[p.name for p in VECTORS])
def test_suite_vector_canonical_request_string_to_sign_and_signature(directory: Path) -> None:
    vector = Vector.read(directory)
    authz = _expected(directory, "authz")
    fields = dict(part.strip().split("=", 1) for part in authz.split(" ", 1)[1].split(","))
    signed = fields["SignedHeaders"].split(";")
    parts = urlsplit(vector.url())
    creq = sigv4.canonical_request(
        vector.method, parts.path, parts.query, sigv4.received(vector.headers), signed,
        hashlib.sha256(vector.body).hexdigest(),
    )  # fmt: skip
    assert creq == _expected(directory, "creq")
    scope = f"20150830/{SUITE_REGION}/{SUITE_SERVICE}/aws4_request"
    sts = sigv4.string_to_sign("20150830T123600Z", scope, creq)
    assert sts == _expected(directory, "sts")
    assert sigv4.signature(SUITE_KEYS["secret_key"], scope, sts) == fields["Signature"]


@pytest.mark.parametrize("directory", VECTORS, ids=[p.name for p in VECTORS])
def test_suite_vector_signed_request_is_accepted_and_a_tampered_one_refused(directory: Path) -> None:
    vector = Vector.read(directory)
    token = TOKENS.get(vector.name)
    signed = vector.authorized(_expected(directory, "authz"))
    assert vector.verify(signed, token=token) is None
    if vector.name in BAD_SREQ:
        assert BAD_SREQ[vector.name] in dict(vector.headers)["Authorization"]
        assert vector.verify(vector.headers, token=token) == sigv4.MISMATCH
    else:
        assert vector.verify(vector.headers, token=token) is None  # the .sreq as published
    # the same request one byte off, in its query or path, or its body: refused
    tampered = replace(vector, target=vector.target + ("&x=1" if "?" in vector.target else "?x=1"))
    assert tampered.verify(signed, token=token) == sigv4.MISMATCH
    assert replace(vector, body=vector.body + b" ").verify(signed, token=token) == sigv4.MISMATCH
    if token:  # temporary credentials: the token is theirs, or the request is refused
        assert vector.verify(signed, token=None) == sigv4.UNKNOWN_KEY
        assert vector.verify(signed, token=token + "x") == sigv4.UNKNOWN_KEY
    else:  # long-term keys: a request carrying a token is not theirs
        assert vector.verify([*signed, ("X-Amz-Security-Token", "abc")], token=None) == sigv4.UNKNOWN_KEY


# --- what edgeship's signers send: the gate (the locustfile) and the health check -----------

# A gate's rows: commas between values, negative numbers, exponents (str() of a float).
ROWS = [[5.1, 3.5, 1.4, 0.2], [-1.5, 2e-07, 1e20, 0.0], [-0.001, 12345.678, -3e-10, 7.0]]
SIGN_WITH_THE_GATE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("gate_locustfile", sys.argv[1])
gate = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # as Locust loads it
spec.loader.exec_module(gate)
host, region, rows = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
gate.SHAPE = gate.Shape(path="/candidate/infer", sigv4_region=region)
sent = []
for row in rows:
    target, headers = gate._get(host, row)
    sent.append(["GET", target, "", headers])
    body, headers = gate._post(host, row)
    sent.append(["POST", gate.SHAPE.path, body.decode(), headers])
print(json.dumps(sent))
"""


def _credentials_env() -> dict[str, str]:
    ambient = {k: v for k, v in os.environ.items() if k not in ("AWS_SESSION_TOKEN", "AWS_PROFILE")}
    return {**ambient, **KEYS}


def _received(headers: dict[str, str]) -> dict[str, str]:
    """What the edge receives: the signed headers and the Host the client sends."""
    return {"host": "127.0.0.1:8787", **{k.lower(): v for k, v in headers.items()}}


def _at(headers: dict[str, str]) -> datetime.datetime:
    return datetime.datetime.strptime(headers["x-amz-date"], sigv4.STAMP).replace(tzinfo=datetime.UTC)


def test_what_the_gate_sends_is_encoded_and_accepted() -> None:
    """The locustfile's own request builders (in a process of their own: Locust's gevent
    patching must come before botocore's import), for GETs with commas, negative numbers
    and exponents, and POSTs: the query goes out encoded and the verifier accepts each."""
    out = subprocess.run(
        [sys.executable, "-c", SIGN_WITH_THE_GATE, str(loadrun.LOCUSTFILE), BASE, REGION, json.dumps(ROWS)],
        env=_credentials_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    sent = json.loads(out.stdout)
    assert [method for method, *_ in sent] == ["GET", "POST"] * len(ROWS)
    for (method, target, body, headers), row in zip(sent, [r for r in ROWS for _ in (0, 1)], strict=True):
        if method == "GET":
            # '+' (1e+20) encoded too: parse_qs would read a raw one as a space
            assert target == "/candidate/infer?x=" + "%2C".join(str(v) for v in row).replace("+", "%2B")
        received = _received(headers)
        assert sigv4.verify(
            method, BASE + target, received, body.encode(), access_key=KEYS["AWS_ACCESS_KEY_ID"],
            secret_key=KEYS["AWS_SECRET_ACCESS_KEY"], region=REGION, now=_at(received),
        ) is None, (method, target)  # fmt: skip


def test_a_query_signed_as_sent_with_raw_commas_is_refused() -> None:
    """What the gate did before: botocore signs a raw query as already encoded; API Gateway
    (and the verifier) canonicalise ',' as %2C, so the signature cannot match."""
    request = Request(method="GET", target="/candidate/infer?x=5.1,3.5,1.4,0.2", body=b"")
    assert check(request) == sigv4.MISMATCH
    encoded = Request(method="GET", target="/candidate/infer?x=5.1%2C3.5%2C1.4%2C0.2", body=b"")
    assert check(encoded) is None


def test_the_health_check_signer_takes_only_an_encoded_query() -> None:
    query = sigv4.encode_query([("x", "5.1,-3.5,1e-05")])
    assert query == "x=5.1%2C-3.5%2C1e-05"
    url = f"{BASE}/candidate/healthz?{query}"
    received = _received(sigv4_headers("GET", url, REGION, credentials=KEYS))
    verdict = sigv4.verify(
        "GET", url, received, b"", access_key=KEYS["AWS_ACCESS_KEY_ID"],
        secret_key=KEYS["AWS_SECRET_ACCESS_KEY"], region=REGION, now=_at(received),
    )  # fmt: skip
    assert verdict is None
    with pytest.raises(EdgeshipError, match="not percent-encoded as SigV4 signs it"):
        sigv4_headers("GET", f"{BASE}/candidate/healthz?x=5.1,3.5", REGION, credentials=KEYS)


# --- through the local edge's HTTP layer ----------------------------------------------------

ECHO = """
def handler(event, context):  # what the function saw of the query
    return {"statusCode": 200, "headers": {"x-function-version": "1"}, "body": event["rawQueryString"]}
"""


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    """The local edge (its Edge and HTTP handler) over one echoing sandbox pool, on a free
    port; yields its URL and every answer it sent: (method, target, status)."""
    from orchestrator.local.edge import Routing, VersionPool, _Handler
    from orchestrator.local.telemetry import Telemetry
    from tests.conftest import bare_edge
    from tests.test_edge_telemetry import _launch

    pool = VersionPool("1", _launch(tmp_path, ECHO), size=2).warm()
    answers: list[tuple[str, str, int]] = []

    class Recording(_Handler):
        edge = bare_edge({"1": pool}, Routing("1", {}, "1"), Telemetry(None, "edgeship-fn"))

        def send_response(self, code: int, message: str | None = None) -> None:
            answers.append((self.command, self.path, code))
            super().send_response(code, message)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        pool.close()


def _send(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_the_edge_accepts_a_spec_signed_get_with_commas_and_refuses_it_tampered(
    edge: tuple[str, list[tuple[str, str, int]]],
) -> None:
    """Signed independently of edgeship's code: botocore's signer given a URL whose query is
    already encoded (it then signs exactly what is sent)."""
    base, _ = edge
    url = f"{base}/candidate/infer?" + sigv4.encode_query([("x", "5.1,-3.5,1e-05,0.2")])
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(
        Credentials(KEYS["AWS_ACCESS_KEY_ID"], KEYS["AWS_SECRET_ACCESS_KEY"]), "execute-api", REGION
    ).add_auth(request)
    headers = dict(request.headers.items())
    # the function sees the query as sent; parse_qs (the handler's) decodes the commas
    assert _send(url, headers) == (200, b"x=5.1%2C-3.5%2C1e-05%2C0.2")
    refused = (403, json.dumps({"message": sigv4.MISMATCH}, separators=(",", ":")).encode())
    assert _send(url.replace("0.2", "0.3"), headers) == refused  # tampered query
    assert _send(url, {**headers, "X-Amz-Date": "20260101T000000Z"})[0] == 403  # tampered date


def test_the_gates_load_with_gets_on_the_candidate_route_is_not_refused(
    edge: tuple[str, list[tuple[str, str, int]]], tmp_path: Path
) -> None:
    """The real gate: Locust with the locustfile, half GETs, signing for the candidate route
    with the emulator's credentials, against the local edge: no request refused, and each
    GET went out with its commas encoded. (Before: every GET refused by a spec verifier.)"""
    base, answers = edge
    load = LoadSettings(users=2, spawn_rate=2, duration_s=2, get_share=0.5)
    loadrun.run(
        base, load, tmp_path / "gate", "gate", path="/candidate/infer", sigv4_region=REGION, credentials=KEYS,
        example=[5.1, -3.5, 1e-05, 0.2],
    )  # fmt: skip
    gets = [target for method, target, _ in answers if method == "GET"]
    posts = [target for method, target, _ in answers if method == "POST"]
    assert gets and posts
    assert [a for a in answers if a[2] == 403] == []
    assert all("%2C" in target and "," not in target for target in gets)


def test_the_health_check_passes_the_edge(edge: tuple[str, list[tuple[str, str, int]]]) -> None:
    base, answers = edge
    assert health(Endpoint(base, "/candidate/infer", sigv4_region=REGION, credentials=KEYS)) is None
    assert answers == [("GET", "/candidate/healthz", 200)]
