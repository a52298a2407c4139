"""The inference handler with the real sample model: routes, validation, never a crash."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.build.artifacts import sha256_file

REPO = Path(__file__).resolve().parents[1]
HANDLER = REPO / "programs" / "function" / "handler.py"
MODEL = REPO / "programs" / "function" / "sample" / "model.tar.gz"


def load_handler(env: dict[str, str]) -> ModuleType:
    """A fresh handler module, as a new Lambda sandbox would import it."""
    saved = {k: os.environ.get(k) for k in (*env, "MODEL_URI", "MODEL_SHA256")}
    for key in ("MODEL_URI", "MODEL_SHA256"):
        os.environ.pop(key, None)
    os.environ.update(env)
    try:
        spec = importlib.util.spec_from_file_location(f"handler_{len(env)}_{id(env)}", HANDLER)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def h() -> ModuleType:
    return load_handler(
        {
            "MODEL_URI": MODEL.as_uri(),
            "MODEL_SHA256": sha256_file(MODEL),
            "AWS_LAMBDA_FUNCTION_VERSION": "7",
        }
    )


def event(
    method: str,
    path: str,
    body: str | None = None,
    query: str = "",
    *,
    signed: bool = False,
    b64: bool = False,
) -> dict[str, Any]:
    """An HTTP API event; `signed`: API Gateway authenticated it with IAM (the candidate routes)."""
    context: dict[str, Any] = {"http": {"method": method, "path": path}}
    if signed:
        context["authorizer"] = {"iam": {"accessKey": "AKIA", "accountId": "111111111111"}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json"},
        "requestContext": context,
        "body": body,
        "isBase64Encoded": b64,
    }


def call(h: ModuleType, ev: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = h.handler(ev, None)
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_single_prediction_with_version_headers(h: ModuleType) -> None:
    status, body, headers = call(h, event("POST", "/infer", json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]})))
    assert status == 200
    (prediction,) = body["predictions"]
    assert prediction["label"] == "setosa" and prediction["class"] == 0
    assert abs(sum(prediction["probabilities"]) - 1) < 1e-4
    assert body["model"] == {"name": "iris-classifier", "version": "1"}
    assert headers["x-model-version"] == "1" and headers["x-function-version"] == "7"


def test_batch_named_features_get_and_base64(h: ModuleType) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    status, body, _ = call(h, event("POST", "/infer", json.dumps({"instances": rows})))
    assert status == 200 and [p["label"] for p in body["predictions"]] == ["setosa", "virginica"]
    named = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    assert (
        call(h, event("POST", "/infer", json.dumps({"inputs": named})))[1]["predictions"][0]["label"]
        == "virginica"
    )
    status, body, _ = call(h, event("GET", "/infer", query="x=6.7,3.0,5.2,2.3"))
    assert status == 200 and body["predictions"][0]["label"] == "virginica"
    # as the gate sends it: percent-encoded as SigV4 canonicalises it (rawQueryString is as sent)
    encoded_query = "x=6.7%2C3.0%2C5.2%2C2.3"
    assert call(h, event("GET", "/infer", query=encoded_query))[1]["predictions"] == body["predictions"]
    status, body, _ = call(h, event("GET", "/infer", query="x=6.7e%2B0%2C-3.0e-0%2C5.2%2C2.3"))
    assert status == 200 and len(body["predictions"]) == 1  # '+' and '-' of exponents and signs
    status, body, _ = call(
        h, event("GET", "/infer", query="sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2")
    )
    assert status == 200 and body["predictions"][0]["label"] == "setosa"
    encoded = base64.b64encode(json.dumps({"inputs": rows[0]}).encode()).decode()
    assert call(h, event("POST", "/infer", encoded, b64=True))[0] == 200


def test_healthz_and_candidate_route(h: ModuleType) -> None:
    status, body, _ = call(h, event("GET", "/healthz"))
    assert status == 200 and body["status"] == "ok" and body["model"]["sha256"] == sha256_file(MODEL)
    # the candidate route is the one API Gateway authenticated with IAM; the IAM context says so
    assert (
        call(h, event("POST", "/candidate/infer", json.dumps({"inputs": [1, 2, 3, 4]}), signed=True))[0]
        == 200
    )
    assert call(h, event("GET", "/candidate/healthz", signed=True))[0] == 200
    # the same path without it did not come through the candidate route: no such route
    assert call(h, event("POST", "/candidate/infer", json.dumps({"inputs": [1, 2, 3, 4]})))[0] == 404


@pytest.mark.parametrize(
    ("ev", "status", "error", "hint"),
    [
        (event("POST", "/infer", None), 400, "missing_body", '{"inputs"'),
        (event("POST", "/infer", "{not json"), 400, "malformed_json", "not valid JSON"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3]}'), 400, "bad_shape", "expected 4 numbers"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3, "a"]}'), 400, "bad_type", "not a number"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3, true]}'), 400, "bad_type", "boolean"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3, NaN]}'), 400, "not_finite", "finite"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3, Infinity]}'), 400, "not_finite", "finite"),
        (event("POST", "/infer", '{"inputs": [1, 2, 3, 1e400]}'), 400, "not_finite", "finite"),
        (event("POST", "/infer", '{"x": 1}'), 400, "bad_shape", '{"inputs"'),
        (event("POST", "/infer", '{"instances": []}'), 400, "bad_shape", "non-empty"),
        (
            event("POST", "/infer", json.dumps({"instances": [[1, 2, 3, 4]] * 300})),
            413,
            "batch_too_large",
            "at most",
        ),
        (event("POST", "/infer", "x" * 300_000), 413, "body_too_large", "split"),
        (event("POST", "/infer", "!!!", b64=True), 400, "bad_base64", "base64"),
        (event("POST", "/infer", '{"inputs": {"sepal_length": 1}}'), 400, "bad_features", "missing"),
        (event("GET", "/infer"), 400, "missing_input", "?x="),
        (event("GET", "/infer", query="x=1,2,3,zz"), 400, "bad_type", "not a number"),
        (event("DELETE", "/infer"), 405, "method_not_allowed", "POST /infer"),
        (event("POST", "/healthz"), 405, "method_not_allowed", "GET /healthz"),
        (event("GET", "/nope"), 404, "not_found", "routes"),
        ({"foo": "bar"}, 400, "bad_event", "requestContext"),
        ("not an event", 400, "bad_event", "API Gateway"),
    ],
)
def test_bad_input_gets_actionable_4xx_json(
    h: ModuleType, ev: Any, status: int, error: str, hint: str
) -> None:
    got_status, body, headers = call(h, ev)
    assert (got_status, body["error"]) == (status, error)
    assert hint in body["detail"]
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("env", "logged"),
    [
        ({"MODEL_URI": MODEL.as_uri(), "MODEL_SHA256": "0" * 64}, "sha256 mismatch"),
        ({}, "MODEL_URI and MODEL_SHA256 must be set"),
        ({"MODEL_URI": "ftp://x/y", "MODEL_SHA256": "0" * 64}, "unsupported MODEL_URI scheme"),
    ],
    ids=["wrong-sha256", "no-settings", "bad-scheme"],
)
def test_a_model_that_cannot_load_fails_the_init_with_details_in_the_log(
    env: dict[str, str], logged: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The init fails, so Lambda retries it on the next request; no sandbox serves without a model.
    with pytest.raises(Exception, match=r"model|MODEL_URI") as raised:
        load_handler(env)
    assert type(raised.value).__name__ == "ModelError"
    log = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert log["event"] == "model_load_failed" and logged in log["error"]


def test_internal_fault_is_500_json_and_logged(
    h: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(rows: Any) -> Any:
        raise RuntimeError("onnx exploded")

    monkeypatch.setattr(h.Model, "predict", lambda self, rows: boom(rows))
    status, body, _ = call(h, event("POST", "/infer", '{"inputs": [1, 2, 3, 4]}'))
    assert status == 500 and body["error"] == "internal_error"
    log = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (
        log["event"] == "unhandled_error"
        and "onnx exploded" in log["error"]
        and log["route"] == "POST /infer"
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "get", ""]),
    path=st.sampled_from(["/infer", "/healthz", "/candidate/infer", "/", "", "/infer/"])
    | st.text(max_size=15),
    body=st.none() | st.text(max_size=200) | json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    query=st.text(max_size=40),
    b64=st.booleans(),
    mangle=st.sampled_from(["none", "drop_context", "headers_not_dict", "body_not_str"]),
)
def test_no_event_crashes_the_handler(
    h: ModuleType, method: str, path: str, body: str | None, query: str, b64: bool, mangle: str
) -> None:
    ev: dict[str, Any] = event(method, path, body, query, b64=b64)
    if mangle == "drop_context":
        ev.pop("requestContext")
    elif mangle == "headers_not_dict":
        ev["headers"] = ["x"]
    elif mangle == "body_not_str":
        ev["body"] = {"inputs": [1, 2, 3, 4]}
    response = h.handler(ev, None)
    assert 200 <= response["statusCode"] < 500, response
    payload = json.loads(response["body"])
    if response["statusCode"] >= 400:
        assert payload["error"] and payload["detail"]
