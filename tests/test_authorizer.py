"""The origin authorizer's code against a real moto server's SSM (its parameter store)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.conftest import Moto

PARAMETER = "/edgeship-dev/origin-secrets"


@pytest.fixture
def authorizer(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    for key, value in {
        "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1", "ORIGIN_SECRETS_PARAMETER": PARAMETER,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    module = importlib.reload(importlib.import_module("programs.authorizer.origin"))  # a fresh sandbox
    yield module, boto3.client("ssm")


def _event(value: str | None) -> dict[str, Any]:
    return {"type": "REQUEST", "headers": {} if value is None else {"x-origin-verify": value}}


def test_accepts_only_the_values_in_the_parameter(authorizer: tuple[ModuleType, Any]) -> None:
    module, ssm = authorizer
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["now", "next"]), Overwrite=True)
    assert module.handler(_event("now"), None) == {"isAuthorized": True}
    assert module.handler(_event("next"), None) == {"isAuthorized": True}
    assert module.handler(_event("guess"), None) == {"isAuthorized": False}
    assert module.handler(_event(""), None) == {"isAuthorized": False}
    assert module.handler(_event(None), None) == {"isAuthorized": False}


def test_reads_the_parameter_again_after_its_cache_time(authorizer: tuple[ModuleType, Any]) -> None:
    module, ssm = authorizer
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["old"]), Overwrite=True)
    assert module.accepted(now=1000.0) == ("old",)
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["new", "old"]), Overwrite=True)
    assert module.accepted(now=1000.0 + module.CACHE_S - 1) == ("old",)  # cached
    assert module.accepted(now=1000.0 + module.CACHE_S + 1) == ("new", "old")


def test_fails_closed_when_the_parameter_is_missing_or_empty(authorizer: tuple[ModuleType, Any]) -> None:
    module, ssm = authorizer
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value="[]", Overwrite=True)
    assert module.handler(_event("anything"), None) == {"isAuthorized": False}
    ssm.delete_parameter(Name=PARAMETER)
    assert module.handler(_event("anything"), None) == {"isAuthorized": False}
