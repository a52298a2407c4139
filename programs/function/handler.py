"""The inference function: API Gateway v2 (payload 2.0) events in, JSON predictions out.

The model loads once per sandbox, at import (Lambda's init phase, which is not billed
per request and runs on a full CPU), and is verified against MODEL_SHA256 before use. A
model that cannot be loaded fails the init: Lambda retries it on the next request (a
read that raced IAM, a throttled S3 call) instead of a sandbox serving errors for life,
or a SnapStart snapshot freezing the failure. The details go to the log only.

Who may call is decided before the function runs: API Gateway's origin authorizer lets
through only requests CloudFront sent, and IAM auth guards /candidate/* (the request's
IAM context says a request came that way).
Requests are validated strictly: every problem the caller can fix gets a 4xx JSON body
saying what to fix; a 5xx means our fault and is logged as one JSON line.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import orjson

MAX_BODY_BYTES = 256 * 1024
MAX_BATCH = 256
CANDIDATE_PREFIX = "/candidate"  # the IAM-protected pre-traffic route reaches the same code


class RequestError(Exception):
    """Something the caller can fix: becomes a 4xx JSON body."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class ModelError(Exception):
    """The model could not be loaded or verified."""


@dataclass(frozen=True)
class Model:
    """A loaded, verified model ready to run."""

    session: Any
    input_name: str
    output_names: list[str]  # a classifier's label and probabilities, or a regressor's value
    features: list[str]
    labels: list[str]  # empty: a regressor
    name: str
    version: str
    sha256: str

    def predict(self, rows: np.ndarray) -> str:
        """The 200 response body for these rows: per row, the class label and probabilities
        (a classifier) or the predicted value (a regressor)."""
        outputs = self.session.run(self.output_names, {self.input_name: rows})
        # orjson writes the float32 rows straight from numpy; building Python floats
        # and encoding with the json module cost more than the model run itself.
        predictions: list[dict[str, Any]]
        if self.labels:
            labels, probabilities = outputs
            names = self.labels
            predictions = [
                {"label": names[cls], "class": cls, "probabilities": probabilities[i]}
                for i, cls in enumerate(labels.tolist())
            ]
        else:
            values = outputs[0].reshape(len(rows), -1)[:, 0]
            predictions = [{"value": value} for value in values]
        return orjson.dumps(
            {"predictions": predictions, "model": self.identity}, option=orjson.OPT_SERIALIZE_NUMPY
        ).decode()

    @property
    def identity(self) -> dict[str, str]:
        """Name and version, as responses report them."""
        return {"name": self.name, "version": self.version}


def load_model(uri: str, expected_sha256: str) -> Model:
    """Fetch model.tar.gz from s3:// or file://, verify its sha256, start an ONNX session."""
    data = _fetch(uri)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ModelError(f"model sha256 mismatch for {uri}: expected {expected_sha256}, got {actual}")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        metadata = json.loads(files["metadata.json"])
        onnx_bytes = files["model.onnx"]
    except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise ModelError(f"{uri} is not a model archive (model.onnx + metadata.json): {exc}") from exc

    import onnxruntime as ort

    options = ort.SessionOptions()
    # One request at a time per sandbox: extra threads only add scheduling latency.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    output = metadata.get("output", {})
    labels = list(output.get("labels") or [])
    declared = [output.get("label"), output.get("probabilities")] if labels else [output.get("value")]
    # `orchestrator model pack` names the outputs; older archives list them in that order.
    names = [o.name for o in session.get_outputs()]
    chosen = declared if all(n in names for n in declared) else names[: len(declared)]
    return Model(
        session=session,
        input_name=session.get_inputs()[0].name,
        output_names=chosen,
        features=list(metadata["input"]["features"]),
        labels=labels,
        name=str(metadata["name"]),
        version=str(metadata["version"]),
        sha256=actual,
    )


def _fetch(uri: str) -> bytes:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        with open(unquote(parsed.path), "rb") as fh:
            return fh.read()
    if parsed.scheme == "s3":
        import boto3  # in the Lambda runtime already; imported only when needed

        client = boto3.client("s3")
        try:
            obj = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            return bytes(obj["Body"].read())
        finally:
            # No connection outlives the init: a SnapStart snapshot would share it, stale,
            # between every sandbox restored from it.
            close = getattr(client, "close", None)  # botocore >= 1.33
            if close is not None:
                close()
    raise ModelError(f"unsupported MODEL_URI scheme in {uri!r}: use s3://bucket/key or file:///path")


# Where a package that carries its model holds it (programs/modelship.py's MEMBER):
# beside this module, so under /var/task on Lambda.
PACKAGED_MODEL = "model/model.tar.gz"


def model_source(environ: Any, task_root: str) -> str | None:
    """The URI init loads the model from: the package's own copy when the version was
    published with it (MODEL_DELIVERY=package: a local read, no AWS SDK imported, nothing
    but the version needed), else MODEL_URI (s3://, boto3 imported then; None if unset).
    Either way the bytes are checked against MODEL_SHA256."""
    delivery = environ.get("MODEL_DELIVERY") or "s3"
    if delivery == "package":
        return "file://" + os.path.join(task_root, PACKAGED_MODEL)
    if delivery != "s3":
        raise ModelError(f"MODEL_DELIVERY={delivery!r}: expected 'package' or 's3'")
    return environ.get("MODEL_URI") or None


def _init() -> Model:
    sha = os.environ.get("MODEL_SHA256")
    try:
        uri = model_source(os.environ, os.path.dirname(os.path.abspath(__file__)))
    except ModelError as exc:
        _log("model_load_failed", error=str(exc))
        raise
    if not uri or not sha:
        _log("model_load_failed", error="MODEL_URI and MODEL_SHA256 must be set")
        raise ModelError("MODEL_URI and MODEL_SHA256 must be set")
    try:
        return load_model(uri, sha)
    except Exception as exc:  # logged with its details, then the init fails (Lambda retries it)
        _log("model_load_failed", error=repr(exc), uri=uri)
        raise ModelError(f"model load failed: {exc}") from exc


def _log(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "ts": round(time.time(), 3), **fields}), file=sys.stderr)


MODEL = _init()
_HEADERS = {
    "content-type": "application/json",
    "x-function-version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    "x-model-version": MODEL.version,
}


# -- request handling ---------------------------------------------------------------------


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for API Gateway v2 HTTP API events."""
    try:
        return _route(event)
    except RequestError as exc:
        return _response(exc.status, {"error": exc.error, "detail": exc.detail})
    except Exception as exc:  # a genuine server fault: log it once, answer 500, never crash
        _log("unhandled_error", error=repr(exc), route=_safe_route(event))
        return _response(500, {"error": "internal_error", "detail": "the function failed; see its logs"})


def _route(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise RequestError(400, "bad_event", "expected an API Gateway v2 HTTP event object")
    method, path = _method_and_path(event)
    if path.startswith(CANDIDATE_PREFIX + "/") and _signed(event):
        path = path[len(CANDIDATE_PREFIX) :]
    if path == "/healthz":
        if method != "GET":
            raise RequestError(405, "method_not_allowed", "use GET /healthz")
        return _health()
    if path == "/infer":
        model = MODEL
        if method == "POST":
            rows = _rows_from_body(event, model)
        elif method == "GET":
            rows = _rows_from_query(event, model)
        else:
            raise RequestError(
                405, "method_not_allowed", "use POST /infer (JSON body) or GET /infer?features"
            )
        return _raw_response(200, model.predict(rows))
    raise RequestError(
        404, "not_found", f"no route {method} {path}; routes: POST /infer, GET /infer, GET /healthz"
    )


def _method_and_path(event: dict[str, Any]) -> tuple[str, str]:
    http = (
        event.get("requestContext", {}).get("http") if isinstance(event.get("requestContext"), dict) else None
    )
    if isinstance(http, dict) and isinstance(http.get("method"), str) and isinstance(http.get("path"), str):
        return http["method"].upper(), http["path"]
    route = event.get("routeKey")
    if isinstance(route, str) and " " in route:
        method, path = route.split(" ", 1)
        return method.upper(), path
    raise RequestError(400, "bad_event", "event has no requestContext.http.method/path")


def _signed(event: dict[str, Any]) -> bool:
    """True when API Gateway authenticated the request with IAM (SigV4): only the
    candidate routes use IAM auth, so that is how a candidate request is recognised."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    return isinstance(authorizer, dict) and isinstance(authorizer.get("iam"), dict)


def _health() -> dict[str, Any]:
    return _response(
        200, {"status": "ok", "model": {"name": MODEL.name, "version": MODEL.version, "sha256": MODEL.sha256}}
    )


def _rows_from_body(event: dict[str, Any], model: Model) -> np.ndarray:
    body = event.get("body")
    if body is None or body == "":
        raise RequestError(
            400, "missing_body", f'send a JSON body like {{"inputs": [{len(model.features)} numbers]}}'
        )
    if not isinstance(body, str):
        raise RequestError(400, "bad_body", "the body must be a string")
    if len(body) > MAX_BODY_BYTES * 2:  # cheap bound before decoding
        raise RequestError(
            413, "body_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes; split the batch"
        )
    raw: bytes | str = body
    if event.get("isBase64Encoded"):
        # Imported here: the only module the cold start would load for this path alone
        # (API Gateway base64-encodes only non-text bodies; ours are JSON).
        import base64

        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise RequestError(
                400, "bad_base64", "isBase64Encoded is true but the body is not valid base64"
            ) from None
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(
            413, "body_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes; split the batch"
        )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if "NaN" in text or "Infinity" in text or "infinity" in str(exc):
            raise RequestError(
                400, "not_finite", "NaN and Infinity are not allowed; send finite numbers"
            ) from None
        raise RequestError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not ({"inputs", "instances"} & payload.keys()):
        raise RequestError(
            400,
            "bad_shape",
            f'send {{"inputs": [{len(model.features)} numbers]}} for one row or '
            f'{{"instances": [[{len(model.features)} numbers], ...]}} for a batch',
        )
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError(400, "bad_shape", '"instances" must be a non-empty list of rows')
        return _matrix(instances, model)
    row = payload["inputs"]
    if isinstance(row, dict):
        return _matrix([_row_from_mapping(row, model)], model)
    return _matrix([row], model)


def _rows_from_query(event: dict[str, Any], model: Model) -> np.ndarray:
    query = event.get("rawQueryString")
    params: dict[str, Any] = parse_qs(query) if isinstance(query, str) and query else {}
    if not params and isinstance(event.get("queryStringParameters"), dict):
        params = {k: [v] for k, v in event["queryStringParameters"].items()}
    if "x" in params:
        values = params["x"][0].split(",")
        return _matrix([[_number(v, f"x[{i}]") for i, v in enumerate(values)]], model)
    if not params:
        raise RequestError(
            400,
            "missing_input",
            f"pass ?x= and {len(model.features)} comma-separated numbers, or ?{'=..&'.join(model.features)}=..",
        )
    return _matrix([_row_from_mapping({k: v[0] for k, v in params.items()}, model)], model)


def _row_from_mapping(mapping: dict[str, Any], model: Model) -> list[float]:
    missing = [f for f in model.features if f not in mapping]
    unknown = sorted(set(mapping) - set(model.features))
    if missing or unknown:
        raise RequestError(
            400, "bad_features", f"expected features {model.features}; missing {missing}, unknown {unknown}"
        )
    return [_number(mapping[f], f) for f in model.features]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise RequestError(400, "bad_type", f"{where}: expected a number, got a boolean")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RequestError(400, "bad_type", f"{where}: {value[:40]!r} is not a number") from None
    if not isinstance(value, int | float):
        raise RequestError(400, "bad_type", f"{where}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > _F32:
        raise RequestError(400, "not_finite", f"{where}: {value!r} is not a finite float32 number")
    return number


_NUMBER_TYPES = (int, float)
_F32 = 3.0e38


def _well_formed(rows: list[Any], width: int) -> bool:
    for row in rows:
        if type(row) is not list or len(row) != width:
            return False
        for v in row:
            if type(v) not in _NUMBER_TYPES or not -_F32 <= v <= _F32:
                return False
    return True


def _matrix(rows: list[Any], model: Model) -> np.ndarray:
    width = len(model.features)
    if len(rows) > MAX_BATCH:
        raise RequestError(413, "batch_too_large", f"at most {MAX_BATCH} rows per request; got {len(rows)}")
    # Fast path: well-formed rows of finite float32-range numbers (NaN fails the range
    # test) convert in one call. Anything else takes the slow path, which says exactly
    # which value is wrong.
    if _well_formed(rows, width):
        return np.array(rows, dtype=np.float32)
    out = np.empty((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(
                400,
                "bad_shape",
                f"row {i}: expected {width} numbers ({', '.join(model.features)}), got {got}",
            )
        for j, value in enumerate(row):
            out[i, j] = _number(value, f"row {i} [{j}]")
    return out


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return _raw_response(status, orjson.dumps(body).decode())


def _raw_response(status: int, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": dict(_HEADERS), "body": body, "isBase64Encoded": False}


def _safe_route(event: Any) -> str:
    try:
        method, path = _method_and_path(event)
        return f"{method} {path}"
    except Exception:  # logging must never fail
        return "?"
