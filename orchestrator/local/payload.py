"""API Gateway HTTP API's Lambda proxy integration, payload format 2.0, both ways (pure).

`event` builds what API Gateway sends the function for one request, with the fields it
sends and without the ones it leaves out: no `body` key when the request has none, no
`pathParameters` (our routes have none) nor `stageVariables` (the stage has none),
`cookies` split out of the Cookie header, `queryStringParameters` decoded with repeated
keys comma-joined, headers lower-cased with repeats comma-joined, and the request context
(account, API id and domain, request id, time in both forms, the route's authorization).
The SAM CLI's sample event (tests/data/sam) is the reference it is tested against.

`response` turns what the function answered into the HTTP response, as API Gateway
interprets a 2.0 answer: a dict with `statusCode` is the response; anything else valid
JSON is a 200 with that JSON as its body; `cookies` become Set-Cookie headers. What it
cannot interpret is a MalformedResponse (API Gateway answers 500).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

# Bodies API Gateway passes as text; anything else arrives base64-encoded.
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")  # fmt: skip


class MalformedResponse(Exception):
    """The function's answer is not a response API Gateway can send (it answers 500)."""


@dataclass(frozen=True)
class Api:
    """The HTTP API the event comes through."""

    api_id: str
    region: str
    account: str
    stage: str = "$default"

    @property
    def domain(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @staticmethod
    def for_function(function: str, region: str, account: str) -> Api:
        """A stable 10-character API id, like the ones API Gateway assigns."""
        digest = hashlib.sha256(function.encode()).digest()
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return Api("".join(alphabet[b % len(alphabet)] for b in digest[:10]), region, account)


def event(
    api: Api,
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    body: bytes,
    *,
    authorizer: dict[str, Any],
    route_key: str,
    source_ip: str = "127.0.0.1",
    now: datetime.datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The payload-2.0 event of one request (headers as received, repeats allowed)."""
    now = now or datetime.datetime.now(datetime.UTC)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    out: dict[str, Any] = {"version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query}
    if cookies:
        out["cookies"] = cookies
    out["headers"] = joined
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        out["queryStringParameters"] = params
    out["requestContext"] = {
        "accountId": api.account,
        "apiId": api.api_id,
        "authorizer": authorizer,
        "domainName": api.domain,
        "domainPrefix": api.api_id,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id or _request_id(),
        "routeKey": route_key,
        "stage": api.stage,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if body:
        text = _as_text(body, joined.get("content-type"))
        out["body"] = text if text is not None else base64.b64encode(body).decode()
        out["isBase64Encoded"] = text is None
    else:
        out["isBase64Encoded"] = False
    return out


def _as_text(body: bytes, content_type: str | None) -> str | None:
    if content_type is not None and not any(t in content_type.lower() for t in TEXT_TYPES):
        return None
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


def _request_id() -> str:
    """API Gateway's request ids look like 'JKJaXmPLvHcESHA=' (base64 of 10 bytes)."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


def response(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP response for a 2.0 answer: (status, headers with lower-case names, body)."""
    if isinstance(answer, dict) and "statusCode" in answer:
        status = answer["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise MalformedResponse(f"statusCode {status!r} is not an HTTP status")
        raw_headers = {} if answer.get("headers") is None else answer["headers"]
        if not isinstance(raw_headers, dict):
            raise MalformedResponse("headers is not an object")
        headers = [(str(k).lower(), _header_value(v)) for k, v in raw_headers.items()]
        cookies = [] if answer.get("cookies") is None else answer["cookies"]
        if not isinstance(cookies, list):
            raise MalformedResponse("cookies is not a list")
        headers += [("set-cookie", str(c)) for c in cookies]
        raw = answer.get("body")
        if raw is None:
            data = b""
        elif answer.get("isBase64Encoded"):
            try:
                data = base64.b64decode(str(raw), validate=True)
            except ValueError:
                raise MalformedResponse("isBase64Encoded but the body is not base64") from None
        else:
            data = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
        return status, headers, data
    # Any other JSON value: API Gateway answers 200 with it as a JSON body.
    return 200, [("content-type", "application/json")], json.dumps(answer, separators=(",", ":")).encode()


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
