"""The origin authorizer: its decisions as a table (no I/O), its code against a real moto
server's SSM (its parameter store)."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from orchestrator.programs.authorizer.origin import CACHE_S, RECHECK_S, Cache, must_read, verdict
from tests.conftest import Moto

PARAMETER = "/edgeship-dev/origin-secrets"
T = 1_000_000.0  # a wall-clock time
READ = Cache(("now", "next"), read_at=T, tried_at=T)  # read successfully at T
FAILED = READ.failure(T + CACHE_S + 5)  # then a read failed, once the list was stale
NEVER = Cache().failure(T)  # every read failed: nothing known


@pytest.mark.parametrize(
    ("cache", "supplied", "now", "read"),
    [
        (Cache(), "now", T, True),  # a cold sandbox reads
        (READ, "now", T + CACHE_S - 1, False),  # a known value, fresh list
        (READ, "now", T + CACHE_S, True),  # stale by the wall clock (frozen or not)
        (READ, "now", T - 5, True),  # the clock went back: the age is unknown
        (READ, "new", T + RECHECK_S, True),  # an unknown value is re-read before a deny...
        (READ, "new", T + RECHECK_S / 2, False),  # ...at most once per RECHECK_S, whatever the values
        (FAILED, "now", FAILED.tried_at + RECHECK_S / 2, False),  # a failing SSM is not hammered
        (FAILED, "now", FAILED.tried_at + RECHECK_S, True),  # then tried again
        (NEVER, "now", T + RECHECK_S / 2, False),
        (NEVER, "now", T + RECHECK_S, True),
    ],
)
def test_when_a_sandbox_reads_the_parameter(cache: Cache, supplied: str, now: float, read: bool) -> None:
    assert must_read(cache, supplied, now) is read


@pytest.mark.parametrize(
    ("cache", "supplied", "answer"),
    [
        (READ, "now", True),
        (READ, "next", True),
        (READ, "guess", False),  # the list was read and the value is not in it: deny
        (READ, "", False),
        (READ, "no", False),  # a prefix of an accepted value is not one
        (Cache((), read_at=T, tried_at=T), "now", False),  # an empty list read: nothing accepted
        (FAILED, "now", True),  # a failed read answers from the last list read, however old
        (FAILED, "guess", None),  # ...and cannot judge a value not in it: no cached deny
        (NEVER, "now", None),  # nothing ever read: refused, but not as a verdict
        (Cache(), "now", None),
    ],
)
def test_what_a_sandbox_answers(cache: Cache, supplied: str, answer: bool | None) -> None:
    assert verdict(cache, supplied) is answer


def test_a_rotation_sends_a_new_value_only_once_the_authorizer_can_know_it() -> None:
    """clouds.py: past RECHECK_S on every cloud (a read just before `accepting` is that old
    when the value arrives); past CACHE_S on AWS (every sandbox that read since holds it)."""
    from orchestrator.stacks.clouds import AwsCloud, EmulatorCloud

    assert EmulatorCloud.origin_settle_s["accepting"] >= RECHECK_S
    assert AwsCloud.origin_settle_s["accepting"] > CACHE_S


@pytest.fixture
def authorizer(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    for key, value in {
        "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1", "ORIGIN_SECRETS_PARAMETER": PARAMETER,
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    origin = importlib.import_module("orchestrator.programs.authorizer.origin")
    module = importlib.reload(origin)  # a fresh sandbox
    yield module, boto3.client("ssm")


class _Clock:
    """The sandbox's wall clock, moved by the test (the module's `time.time`)."""

    def __init__(self) -> None:
        self.now = T

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(authorizer: tuple[ModuleType, Any], monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(authorizer[0], "time", clock)
    return clock


def _event(value: str | None) -> dict[str, Any]:
    return {"type": "REQUEST", "headers": {} if value is None else {"x-origin-verify": value}}


def _put(ssm: Any, values: list[str]) -> None:
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(values), Overwrite=True)


def test_accepts_only_the_values_in_the_parameter(authorizer: tuple[ModuleType, Any]) -> None:
    module, ssm = authorizer
    _put(ssm, ["now", "next"])
    assert module.handler(_event("now"), None) == {"isAuthorized": True}
    assert module.handler(_event("next"), None) == {"isAuthorized": True}
    assert module.handler(_event("guess"), None) == {"isAuthorized": False}
    assert module.handler(_event(""), None) == {"isAuthorized": False}
    assert module.handler(_event(None), None) == {"isAuthorized": False}


def test_a_value_accepted_since_the_last_read_is_accepted_at_once(
    authorizer: tuple[ModuleType, Any], clock: _Clock
) -> None:
    module, ssm = authorizer
    _put(ssm, ["old"])
    assert module.handler(_event("old"), None) == {"isAuthorized": True}
    _put(ssm, ["old", "new"])  # a rotation's `accepting`, well inside CACHE_S
    clock.now += RECHECK_S
    assert module.handler(_event("new"), None) == {"isAuthorized": True}


def test_the_cache_ages_by_the_wall_clock(authorizer: tuple[ModuleType, Any], clock: _Clock) -> None:
    module, ssm = authorizer
    _put(ssm, ["old", "new"])
    assert module.handler(_event("old"), None) == {"isAuthorized": True}
    _put(ssm, ["new"])
    clock.now += CACHE_S - 1
    assert module.handler(_event("old"), None) == {"isAuthorized": True}  # cached
    clock.now += 1  # however long the sandbox was frozen in between
    assert module.handler(_event("old"), None) == {"isAuthorized": False}


def test_a_failed_read_answers_from_the_last_values_read(
    authorizer: tuple[ModuleType, Any], clock: _Clock
) -> None:
    module, ssm = authorizer
    _put(ssm, ["now"])
    assert module.handler(_event("now"), None) == {"isAuthorized": True}
    ssm.delete_parameter(Name=PARAMETER)  # GetParameter fails: ParameterNotFound
    clock.now += CACHE_S + 1
    assert module.handler(_event("now"), None) == {"isAuthorized": True}
    with pytest.raises(module.SecretsUnreadable):  # unknown, unreadable: refused, no cacheable deny
        module.handler(_event("guess"), None)
    _put(ssm, ["later"])  # readable again: read once RECHECK_S passed
    clock.now += RECHECK_S
    assert module.handler(_event("now"), None) == {"isAuthorized": False}
    assert module.handler(_event("later"), None) == {"isAuthorized": True}


def test_fails_closed_when_nothing_was_ever_read(authorizer: tuple[ModuleType, Any]) -> None:
    module, ssm = authorizer
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):  # the server outlives a test
        ssm.delete_parameter(Name=PARAMETER)
    with pytest.raises(module.SecretsUnreadable):  # no parameter: nothing passes
        module.handler(_event("anything"), None)
    _put(ssm, [])
    module = importlib.reload(module)
    assert module.handler(_event("anything"), None) == {"isAuthorized": False}
    ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value='{"not": "a list"}', Overwrite=True)
    module = importlib.reload(module)
    with pytest.raises(module.SecretsUnreadable):
        module.handler(_event("anything"), None)
