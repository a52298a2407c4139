"""The local edge's origin authorizer path (orchestrator/local/authorizer.py): API Gateway's
result cache and a Lambda sandbox's frozen clock as tables, then the shipped authorizer in
its sandbox process against a real moto server's SSM."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.local import emulator
from orchestrator.local.authorizer import Authorizer, ResultCache, SandboxClock, frozen_from_env, sandbox_env
from orchestrator.programs import serving
from orchestrator.programs.authorizer import origin
from tests.conftest import Moto

PARAMETER = "/edgeship-local/origin-secrets"
HEADERS = {"x-origin-verify": "old"}
FORBIDDEN, ERROR = (403, "Forbidden"), (500, "Internal Server Error")

# The authorizer as it was before issue 22: its cache aged by time.monotonic(), any read
# error a deny. Run in the same sandbox, it shows what the frozen clock does to such code.
MONOTONIC_AUTHORIZER = """
import json, os, time
import boto3
_cache = (0.0, ())

def handler(event, context):
    global _cache
    supplied = event["headers"].get("x-origin-verify", "")
    now = time.monotonic()
    if not (_cache[1] and now - _cache[0] < 30.0):
        try:
            raw = boto3.client("ssm").get_parameter(Name=os.environ["ORIGIN_SECRETS_PARAMETER"], WithDecryption=True)
        except Exception:
            return {"isAuthorized": False}
        _cache = (now, tuple(json.loads(raw["Parameter"]["Value"])))
    return {"isAuthorized": supplied in _cache[1]}
"""


def test_the_stacks_numbers() -> None:
    from orchestrator.local import authorizer

    assert authorizer.RESULT_TTL_S == serving.AUTHORIZER_RESULT_TTL_S
    assert authorizer.TIMEOUT_S == serving.AUTHORIZER_TIMEOUT_S


def test_the_result_cache_keeps_allows_and_denies_for_its_ttl() -> None:
    cache = ResultCache(300)
    cache.put(("a",), True, 10.0)
    cache.put(("b",), False, 20.0)
    assert [cache.get(("a",), 309.9), cache.get(("b",), 319.9), cache.get(("c",), 11.0)] == [
        True,
        False,
        None,
    ]
    assert [cache.get(("a",), 310.0), cache.get(("b",), 320.0)] == [None, None]
    off = ResultCache(0)  # a TTL of 0: API Gateway caches nothing
    off.put(("a",), True, 10.0)
    assert off.get(("a",), 10.0) is None


def test_a_frozen_sandbox_loses_its_idle_time_and_only_that() -> None:
    clock = SandboxClock(frozen=True)
    clock.thaw(100.0)  # the first invocation: nothing to lose
    clock.idle(100.5)
    clock.thaw(160.5)  # idle 60 s, frozen all along
    clock.idle(161.0)
    assert clock.frozen_s == 60.0
    clock.set_frozen(False, 171.0)  # 10 s more frozen, then idle time counts
    clock.thaw(200.0)
    assert clock.frozen_s == 70.0
    thawed = SandboxClock(frozen=False)
    thawed.thaw(0.0)
    thawed.idle(1.0)
    thawed.thaw(100.0)
    assert thawed.frozen_s == 0.0


@pytest.mark.parametrize(("value", "frozen"), [(None, True), ("1", True), ("0", False), ("off", False)])
def test_freezing_is_on_unless_turned_off(value: str | None, frozen: bool) -> None:
    assert frozen_from_env({} if value is None else {"EDGESHIP_AUTHORIZER_FROZEN": value}) is frozen


@pytest.fixture
def ssm(moto: Moto) -> Any:
    client = emulator.client("ssm", moto.url)
    client.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["old"]), Overwrite=True)
    return client


@pytest.fixture
def room(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits with room for a starved machine, for the tests that judge the cache and the
    clock, not the limits: with two busy loops beside the suite, the pre-fix authorizer's first
    invocation (boto3's client made in the handler, then SSM) went past the real 5 s timeout
    and was answered 500. The limits' values are the stack's (test_the_stacks_numbers), and
    init's own limit is tested below."""
    from orchestrator.local import authorizer as local

    monkeypatch.setattr(local, "INIT_S", 60.0)
    monkeypatch.setattr(local, "TIMEOUT_S", 60.0)


def _authorizer(moto: Moto, code: Path = Path(origin.__file__), *, frozen: bool = True) -> Authorizer:
    env = sandbox_env(moto.url, None, emulator.REGION, PARAMETER, emulator.CREDENTIALS)
    return Authorizer(env, serving.AUTHORIZER_RESULT_TTL_S, frozen=frozen, code=code)


@contextlib.contextmanager
def running(authorizer: Authorizer) -> Iterator[Authorizer]:
    try:
        yield authorizer
    finally:
        authorizer.close()


def _refusal(authorizer: Authorizer, value: str | None) -> tuple[int, str] | None:
    headers = {} if value is None else {"x-origin-verify": value}
    return authorizer.refusal("POST", "/infer", "", headers)


@pytest.mark.usefixtures("room")
def test_answers_are_cached_per_value_denies_included(moto: Moto, ssm: Any) -> None:
    with running(_authorizer(moto)) as authorizer:
        assert _refusal(authorizer, None) == (401, "Unauthorized")  # no header: not called
        assert authorizer.control({})["invocations"] == 0
        assert [_refusal(authorizer, "old"), _refusal(authorizer, "old")] == [None, None]
        assert _refusal(authorizer, "new") == FORBIDDEN
        assert authorizer.control({})["invocations"] == 2  # one per value
        ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["new"]), Overwrite=True)
        assert _refusal(authorizer, "new") == FORBIDDEN  # the deny is served from the cache...
        assert _refusal(authorizer, "old") is None  # ...and so is the allow of a value dropped
        authorizer.control({"advance_s": serving.AUTHORIZER_RESULT_TTL_S})
        assert [_refusal(authorizer, "new"), _refusal(authorizer, "old")] == [None, FORBIDDEN]


@pytest.mark.usefixtures("room")
def test_a_failed_authorizer_is_answered_500_and_not_cached(moto: Moto, ssm: Any) -> None:
    ssm.delete_parameter(Name=PARAMETER)
    with running(_authorizer(moto)) as authorizer:
        assert _refusal(authorizer, "old") == ERROR  # never read: refused, no verdict to cache
        ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["old"]), Overwrite=True)
        authorizer.control({"advance_s": origin.RECHECK_S})
        assert _refusal(authorizer, "old") is None


@pytest.mark.usefixtures("room")
@pytest.mark.parametrize(("frozen", "denied"), [(True, True), (False, False)])
def test_a_frozen_sandbox_keeps_monotonic_code_stale(
    moto: Moto, ssm: Any, tmp_path: Path, frozen: bool, denied: bool
) -> None:
    """The frozen clock reaches the code: the pre-fix authorizer, frozen, keeps its list
    past its 30 s and denies the new value (a deny then cached for everyone); thawed, it
    reads again. The shipped authorizer accepts it either way."""
    old = tmp_path / "origin.py"
    old.write_text(MONOTONIC_AUTHORIZER)
    for code, refused in ((old, denied), (Path(origin.__file__), False)):
        ssm.put_parameter(Name=PARAMETER, Type="SecureString", Value=json.dumps(["old"]), Overwrite=True)
        with running(_authorizer(moto, code, frozen=frozen)) as authorizer:
            assert _refusal(authorizer, "old") is None
            ssm.put_parameter(
                Name=PARAMETER, Type="SecureString", Value=json.dumps(["old", "new"]), Overwrite=True
            )
            authorizer.control({"advance_s": 40})  # the rotation's wait on AWS (clouds.py)
            assert _refusal(authorizer, "new") == (FORBIDDEN if refused else None), code


def test_a_slow_init_has_lambdas_init_limit_not_the_functions_timeout(
    moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An init longer than the function's timeout (a starved CI runner once made the shipped
    one's so) is not a timed-out invocation: Lambda gives init its own limit (INIT_S, 10 s).
    The init limit is the test's, with room: with two busy loops beside the suite, the
    sandbox's own start-up took over 4 s, and an init of timeout + 1 s went past the real 10 s."""
    from orchestrator.local import authorizer as local

    monkeypatch.setattr(local, "INIT_S", 60.0)
    slow = tmp_path / "slow.py"
    wait_s = local.TIMEOUT_S + 1
    slow.write_text(
        f"import time\ntime.sleep({wait_s})\n\ndef handler(event, context):\n    return {{'isAuthorized': True}}\n"
    )
    with running(_authorizer(moto, slow)) as authorizer:
        assert _refusal(authorizer, "any") is None
