"""SigV4 verification for the local edge's IAM-protected route, as API Gateway does it.

The signature is recomputed with botocore's own signer (canonical request, string to sign,
signing key) from what arrived: the method, the URL as the client addressed it, only the
headers the Authorization header lists as signed, and the body; then compared in constant
time. A refusal carries API Gateway's message for the case.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
SKEW = datetime.timedelta(minutes=5)  # API Gateway accepts X-Amz-Date within 5 minutes of its clock
STAMP = "%Y%m%dT%H%M%SZ"
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


def verify(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime.datetime,
) -> str | None:
    """None when the request is signed by `access_key`/`secret_key` for execute-api in `region`
    within the allowed skew of `now`; else API Gateway's message for the refusal.
    `headers` are lower-cased, as received."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = headers.get("authorization")
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
    stamp = headers.get("x-amz-date", "")
    try:
        at = datetime.datetime.strptime(stamp, STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return NO_DATE
    clock = now.strftime(STAMP)
    if at < now - SKEW:
        return f"Signature expired: {stamp} is now earlier than {(now - SKEW).strftime(STAMP)} ({clock} - 5 min.)"
    if at > now + SKEW:
        return f"Signature not yet current: {stamp} is still later than {(now + SKEW).strftime(STAMP)} ({clock} + 5 min.)"
    if credential.split("/", 1)[0] != access_key:
        return UNKNOWN_KEY
    names = signed.split(";")
    if any(name not in headers for name in names):
        return MISMATCH  # a signed header that did not arrive cannot have been signed as sent
    # A declared payload hash is what the signature covers: it must be this body's.
    declared = headers.get("x-amz-content-sha256")
    if "x-amz-content-sha256" in names and declared != hashlib.sha256(body).hexdigest():
        return MISMATCH
    request = AWSRequest(method=method, url=url, data=body, headers={n: headers[n] for n in names})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(access_key, secret_key), SERVICE, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if hmac.compare_digest(expected, given) else MISMATCH
