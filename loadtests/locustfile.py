"""The gate's load shape: POST /infer with payloads built from the model's metadata.

Standalone:  locust -f loadtests/locustfile.py --host http://127.0.0.1:8787
From a gate: the orchestrator runs it headless in its own process (Locust's gevent
patching breaks boto3 and gRPC in-process) and reads the per-version statistics file
written at quit: Locust's --json has no percentiles and its CSV lags at shutdown.

Environment:
  EDGESHIP_STATS_FILE  where to write per-version statistics (JSON) at quit
  EDGESHIP_PATH        request path (default /infer; gates on green use /candidate/infer)
  EDGESHIP_HEADERS     extra request headers as a JSON object
  EDGESHIP_MODEL       model.tar.gz whose metadata.json shapes the payload (default: sample)
  EDGESHIP_SIGV4_REGION  sign requests with SigV4 for API Gateway IAM auth in this region
"""

from __future__ import annotations

import json
import os
import random
import tarfile
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

VERSION_HEADER = "x-function-version"
SAMPLE_MODEL = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"


def _metadata() -> dict[str, Any]:
    with tarfile.open(os.environ.get("EDGESHIP_MODEL") or SAMPLE_MODEL, "r:gz") as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        return dict(json.load(member))


METADATA = _metadata()
EXAMPLE = [float(v) for v in METADATA["input"]["example"]]
PATH = os.environ.get("EDGESHIP_PATH", "/infer")
HEADERS = {"content-type": "application/json", **json.loads(os.environ.get("EDGESHIP_HEADERS") or "{}")}
# Set for IAM-protected routes (the AWS candidate route): requests are SigV4-signed.
SIGV4_REGION = os.environ.get("EDGESHIP_SIGV4_REGION", "")

# version -> latencies (ms) and error count; requests without the header go to `unattributed`.
_versions: dict[str, dict[str, Any]] = {}
_unattributed = 0
_started = time.monotonic()


def _payload() -> bytes:
    # Jitter keeps every request distinct, as real traffic is.
    row = [round(v * random.uniform(0.9, 1.1), 3) for v in EXAMPLE]
    return json.dumps({"inputs": row}).encode()


class InferenceUser(FastHttpUser):
    """One client calling the inference endpoint back to back."""

    wait_time = constant(0)

    @task
    def infer(self) -> None:
        body = _payload()
        headers = _signed(self.host or "", body) if SIGV4_REGION else HEADERS
        self.client.post(PATH, data=body, headers=headers, name=PATH)


def _signed(host: str, body: bytes) -> dict[str, str]:
    # botocore is imported here, after Locust's gevent patching, never before it.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.session import get_session

    credentials = get_session().get_credentials()
    request = AWSRequest(method="POST", url=host.rstrip("/") + PATH, data=body, headers=HEADERS)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", SIGV4_REGION).add_auth(request)
    return dict(request.headers.items())


@events.test_start.add_listener
def _on_start(**_: Any) -> None:
    global _started
    _started = time.monotonic()


@events.request.add_listener
def _on_request(response_time: float, response: Any, exception: Any, **_: Any) -> None:
    global _unattributed
    version = None
    if response is not None and getattr(response, "headers", None) is not None:
        version = response.headers.get(VERSION_HEADER)
    if not version:
        _unattributed += 1
        return
    entry = _versions.setdefault(version, {"latencies_ms": [], "errors": 0})
    entry["latencies_ms"].append(round(float(response_time), 3))
    status = getattr(response, "status_code", 0) or 0
    if exception is not None or status >= 400:
        entry["errors"] += 1


@events.quitting.add_listener
def _on_quit(**_: Any) -> None:
    target = os.environ.get("EDGESHIP_STATS_FILE")
    if not target:
        return
    data = {
        "duration_s": round(time.monotonic() - _started, 3),
        "path": PATH,
        "unattributed": _unattributed,
        "versions": _versions,
    }
    tmp = Path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(target)  # atomic: the gate never reads a half-written file
