"""Reserved concurrency against the account's unreserved executions: the decision as a
table, the adapter against the emulator's GetAccountSettings (orchestrator/local/
account_settings.py; moto has none), with moto's own quota check as the referee."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.stacks import capacity
from tests.conftest import wait_for


@pytest.mark.parametrize(
    ("limit", "unreserved", "reserved_now", "requested", "after", "enough", "most"),
    [
        (1000, 1000, None, 200, 800, True, 900),  # a fresh account: plenty
        (1000, 1000, None, 900, 100, True, 900),  # exactly 100 left is allowed
        (1000, 1000, None, 901, 99, False, 900),  # one more is refused
        # the function's own reservation counts back in: 950 held, 50 unreserved, asking 960
        (1000, 50, 950, 960, 40, False, 900),
        (1000, 150, 850, 900, 100, True, 900),
        # lowering a reservation is never refused, even in an account already short
        (1000, 40, 960, 900, 100, True, 900),
        (1000, 20, 500, 400, 120, True, 420),
        (1000, 20, None, 1, 19, False, 0),  # nothing can be reserved: remove it
        (5000, 4000, 100, 3000, 1100, True, 4000),  # a raised quota
    ],
)
def test_headroom(
    limit: int, unreserved: int, reserved_now: int | None, requested: int, after: int, enough: bool, most: int
) -> None:
    found = capacity.headroom(limit, unreserved, reserved_now, requested)
    assert (found.unreserved_after, found.enough, found.most) == (after, enough, most)
    warning = found.warning("p-dev-infer", "eu-west-1")
    assert (warning is None) == enough


def test_the_warning_says_what_to_do() -> None:
    warning = capacity.headroom(1000, 50, 950, 960).warning("p-dev-infer", "eu-west-1")
    assert warning == (
        "reserved_concurrency = 960 for p-dev-infer would leave 40 of the account's 1000 concurrent "
        "executions unreserved in eu-west-1; Lambda keeps at least 100 unreserved and will refuse it. "
        "Request a quota increase for Lambda's 'Concurrent executions' in Service Quotas (eu-west-1), "
        "or lower function.reserved_concurrency to at most 900"
    )
    assert (
        capacity.headroom(1000, 20, None, 1)
        .warning("f", "r")
        .endswith("remove function.reserved_concurrency")
    )  # type: ignore[union-attr]


LIMIT = 1000


@pytest.fixture(scope="module")
def lam() -> Iterator[Any]:
    """The local environment's emulator process (moto plus its additions), with moto's own
    quota check on at the limit the emulator answers."""
    from orchestrator.local import daemon, emulator

    port = daemon.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "orchestrator.local.motoserver", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "MOTO_LAMBDA_CONCURRENCY_QUOTA": str(LIMIT)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: daemon.healthy(url + "/moto-api/", timeout=0.5), timeout=30)
        client = emulator.client("lambda", url)
        role = emulator.client("iam", url).create_role(RoleName="cap", AssumeRolePolicyDocument="{}")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("handler.py", "def handler(event, context):\n    return 1\n")
        for name in ("other", "mine"):
            client.create_function(
                FunctionName=name, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="handler.handler",
                Code={"ZipFile": code.getvalue()},
            )  # fmt: skip
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_emulator_answers_get_account_settings(lam: Any) -> None:
    lam.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=300)
    got = lam.get_account_settings()
    assert got["AccountLimit"]["ConcurrentExecutions"] == LIMIT
    assert got["AccountLimit"]["UnreservedConcurrentExecutions"] == LIMIT - 300
    assert got["AccountUsage"]["FunctionCount"] == 2


@pytest.mark.parametrize(
    ("held", "requested"),
    [(None, 600), (None, 601), (500, 601), (550, 650), (None, 1)],
)
def test_the_check_predicts_lambdas_refusal(lam: Any, held: int | None, requested: int) -> None:
    """With 300 reserved by another function: the check warns exactly when the reservation
    is refused (moto's quota check, which AWS's message and rule it copies)."""
    lam.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=300)
    lam.delete_function_concurrency(FunctionName="mine")
    if held is not None:
        lam.put_function_concurrency(FunctionName="mine", ReservedConcurrentExecutions=held)
    found = capacity.check(lam, "mine", requested)
    assert found.reserved_now == (held or 0)
    try:
        lam.put_function_concurrency(FunctionName="mine", ReservedConcurrentExecutions=requested)
        refused = False
    except lam.exceptions.InvalidParameterValueException as exc:
        assert "below its minimum value of [100]" in str(exc)
        refused = True
    assert (found.warning("mine", "us-east-1") is not None) == refused


def test_a_function_not_deployed_yet_holds_nothing(lam: Any) -> None:
    for name in ("other", "mine"):
        lam.delete_function_concurrency(FunctionName=name)
    found = capacity.check(lam, "not-yet", 950)
    assert (found.reserved_now, found.unreserved_after, found.enough) == (0, 50, False)
