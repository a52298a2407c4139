"""SigV4 verification for the local edge's IAM-protected route, as API Gateway does it.

Written from the Signature Version 4 specification, not with a client's signer: a verifier
that recomputed with the clients' own library would agree with any mistake they share (a
query signed as sent instead of as canonicalised was exactly that). From what arrived:

- canonical URI: the path as sent, dot segments removed and duplicate slashes collapsed
  (every service but S3), then each segment URI-encoded (so a path sent encoded is encoded
  again, as the spec wants for non-S3 services);
- canonical query: each key and value decoded, then encoded (RFC 3986 unreserved characters
  `A-Za-z0-9-_.~` kept, everything else %XX in upper case), sorted by key then value;
- canonical headers: only those the Authorization header lists as signed, names lower-cased
  and trimmed, values trimmed with sequential whitespace (folded lines too) collapsed to one
  space, a repeated header's values joined with commas;
- the payload's SHA-256; then the string to sign over this region's and service's scope, the
  derived signing key, and a constant-time compare.

A session token (x-amz-security-token, what temporary credentials carry, e.g. a CI job's
OIDC role) is accepted signed or added after signing, as the spec's test suite has both; it
must be the one those credentials were issued with. A refusal carries API Gateway's message.
The suite's vectors (tests/data/aws4_testsuite) pin every rule above (tests/test_sigv4.py).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
SKEW = datetime.timedelta(minutes=5)  # API Gateway accepts X-Amz-Date within 5 minutes of its clock
STAMP = "%Y%m%dT%H%M%SZ"
TOKEN = "x-amz-security-token"
FORBIDDEN = "Forbidden"  # no Authorization header at all: API Gateway's bare 403
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY = "The security token included in the request is invalid."
MALFORMED = (
    "Authorization header requires 'Credential' parameter. Authorization header requires "
    "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."
)
NO_DATE = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."

_UNRESERVED = "-_.~"  # with A-Za-z0-9, which quote() always keeps
_SPACES = re.compile(r"\s+")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def uri_encode(raw: str | bytes, *, keep_slash: bool = False) -> str:
    """SigV4's URI encoding: unreserved characters kept, every other byte (of the UTF-8
    text) as %XX with upper-case hex; '/' kept only in a path."""
    return quote(raw, safe=_UNRESERVED + ("/" if keep_slash else ""))


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string to send, already in SigV4's encoding: what a client signs is then
    byte for byte what it sends, whichever signer it uses."""
    return "&".join(f"{uri_encode(key)}={uri_encode(value)}" for key, value in pairs)


def _pairs(query: str) -> list[tuple[bytes, bytes]]:
    pieces = (piece.partition("=") for piece in query.split("&") if piece)
    return [(unquote_to_bytes(key), unquote_to_bytes(value)) for key, _, value in pieces]


def is_encoded(query: str) -> bool:
    """True when every key and value of `query` is already in SigV4's encoding, so the query
    as sent and as canonicalised hold the same bytes (up to order)."""
    sent = [(key, value) for key, _, value in (piece.partition("=") for piece in query.split("&") if piece)]
    return sent == [(uri_encode(key), uri_encode(value)) for key, value in _pairs(query)]


def canonical_query(query: str) -> str:
    """The canonical query string of a raw (as sent) query: decoded, re-encoded, sorted."""
    encoded = sorted((uri_encode(key), uri_encode(value)) for key, value in _pairs(query))
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_path(path: str) -> str:
    """The canonical URI of a path as sent: dot segments removed, empty segments dropped
    (a trailing slash kept), each segment URI-encoded."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    trailing = bool(kept) and segments[-1] in ("", ".", "..")
    return uri_encode("/" + "/".join(kept) + ("/" if trailing else ""), keep_slash=True)


def received(headers: Headers) -> dict[str, str]:
    """Headers as API Gateway reads them: names lower-cased and trimmed; a repeated header's
    values (each trimmed) joined with commas, in the order they came."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    joined: dict[str, list[str]] = {}
    for name, value in items:
        joined.setdefault(name.strip().lower(), []).append(value.strip())
    return {name: ",".join(values) for name, values in joined.items()}


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], signed: list[str], payload_hash: str
) -> str:
    """The canonical request over `signed` header names (as listed), `headers` as `received`."""
    lines = [f"{name}:{_SPACES.sub(' ', headers[name]).strip()}" for name in signed]
    return "\n".join(
        [method, canonical_path(path), canonical_query(query), *lines, "", ";".join(signed), payload_hash]
    )


def string_to_sign(stamp: str, scope: str, creq: str) -> str:
    return "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(creq.encode()).hexdigest()])


def signature(secret_key: str, scope: str, sts: str) -> str:
    """HMAC-SHA256 of the string to sign with the key derived along the scope
    (date, region, service, 'aws4_request')."""
    key = ("AWS4" + secret_key).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def verify(
    method: str,
    url: str,
    headers: Headers,
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime.datetime,
    session_token: str | None = None,
    service: str = SERVICE,
) -> str | None:
    """None when the request is signed by `access_key`/`secret_key` (with `session_token`
    when these are temporary credentials) for `service` in `region` within the allowed skew
    of `now`; else API Gateway's message for the refusal. `url` is as the client addressed
    it (its path and query as sent); `headers` as received, a mapping or (name, value) pairs."""
    seen = received(headers)
    authorization = seen.get("authorization")
    if not authorization:
        return FORBIDDEN
    scheme, _, rest = authorization.partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    credential, signed, given = fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
    if scheme != ALGORITHM or not credential or not signed or not given:
        return MALFORMED
    stamp = seen.get("x-amz-date", "")
    try:
        at = datetime.datetime.strptime(stamp, STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return NO_DATE
    clock = now.strftime(STAMP)
    if at < now - SKEW:
        return f"Signature expired: {stamp} is now earlier than {(now - SKEW).strftime(STAMP)} ({clock} - 5 min.)"
    if at > now + SKEW:
        return f"Signature not yet current: {stamp} is still later than {(now + SKEW).strftime(STAMP)} ({clock} + 5 min.)"
    if credential.split("/", 1)[0] != access_key or seen.get(TOKEN) != session_token:
        return UNKNOWN_KEY  # AWS's word for a token that is missing, extra or not this key's
    names = signed.split(";")
    if "host" not in names or any(name not in seen for name in names):
        # The spec signs Host always; a signed header that did not arrive cannot have been
        # signed as sent.
        return MISMATCH
    payload_hash = hashlib.sha256(body).hexdigest()
    # A declared payload hash is what the signature covers: it must be this body's.
    if "x-amz-content-sha256" in names and seen["x-amz-content-sha256"] != payload_hash:
        return MISMATCH
    parts = urlsplit(url)
    creq = canonical_request(method, parts.path, parts.query, seen, names, payload_hash)
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    expected = signature(secret_key, scope, string_to_sign(stamp, scope, creq))
    return None if hmac.compare_digest(expected, given) else MISMATCH
