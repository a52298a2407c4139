"""Provisioned concurrency against the emulator (moto server + orchestrator/local/provisioned.py)
through boto3: the configuration's status, the weights Lambda holds back while a new version
is made warm, and Traffic's read-back (`settle`) over them."""

from __future__ import annotations

import io
import itertools
import json
import ssl
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.local import emulator, provisioned
from orchestrator.release.traffic import AliasState, Reading, Settle, Traffic, TrafficError, read_alias
from tests.conftest import wait_for

READY_S = 1.0  # how long an allocation takes in these tests
_names = itertools.count(1)


class Emulator:
    def __init__(self, state: Path) -> None:
        self.server = emulator.ensure(state)
        self.ca = state / "tls" / "cert.pem"
        self.lam = emulator.client("lambda", self.server.url, self.ca)
        iam = emulator.client("iam", self.server.url, self.ca)
        self.role = iam.create_role(RoleName="pc-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def control(self, **settings: Any) -> dict[str, Any]:
        """The emulator's test knob: allocation time, failures."""
        request = urllib.request.Request(
            self.server.url + provisioned.CONTROL_PATH, json.dumps(settings).encode(), method="POST"
        )
        context = ssl.create_default_context(cafile=str(self.ca))
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return dict(json.loads(answer.read()))

    def function(self, versions: int = 3) -> str:
        """A new function with versions 1..n and `live` on 1 (a fresh one per test: an
        allocation in flight must not leak into the next test)."""
        name = f"pc-test-{next(_names)}"
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as zf:
            zf.writestr("handler.py", "def handler(event, context):\n    return {}\n")
        self.lam.create_function(FunctionName=name, Runtime="python3.12", Handler="handler.handler",
                                 Code={"ZipFile": code.getvalue()}, Role=self.role, Publish=True)  # fmt: skip
        for version in range(2, versions + 1):
            self.lam.update_function_configuration(FunctionName=name, Description=f"v{version}")
            self.lam.publish_version(FunctionName=name)
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        self.lam.create_alias(FunctionName=name, Name="candidate", FunctionVersion="1")
        return name

    def ready(self, function: str, executions: int = 2) -> None:
        """Provisioned concurrency on live, allocated."""
        self.lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier="live", ProvisionedConcurrentExecutions=executions
        )
        wait_for(lambda: self.status(function) == "READY", timeout=30)

    def status(self, function: str) -> str:
        got = self.lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
        return str(got["Status"])


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    state = tmp_path_factory.mktemp("emulator")
    found = Emulator(state)
    found.control(ready_s=READY_S, fail_with="")
    yield found
    emulator.stop(state)


@pytest.fixture
def em(aws: Emulator) -> Iterator[Emulator]:
    yield aws
    aws.control(ready_s=READY_S, fail_with="", read_errors=[])


def _alias(em: Emulator, function: str) -> AliasState:
    return Traffic(em.lam, function).state()


def test_configuration_goes_from_in_progress_to_ready_and_can_be_listed_and_deleted(em: Emulator) -> None:
    fn = em.function(versions=1)
    lam = em.lam
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
    put = lam.put_provisioned_concurrency_config(
        FunctionName=fn, Qualifier="live", ProvisionedConcurrentExecutions=3
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (put["Status"], put["RequestedProvisionedConcurrentExecutions"], put["AllocatedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 3, 0)  # fmt: skip
    wait_for(lambda: em.status(fn) == "READY", timeout=30)
    got = lam.get_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
    assert (
        got["AllocatedProvisionedConcurrentExecutions"],
        got["AvailableProvisionedConcurrentExecutions"],
    ) == (3, 3)
    listed = lam.list_provisioned_concurrency_configs(FunctionName=fn)["ProvisionedConcurrencyConfigs"]
    assert [(c["FunctionArn"].rsplit(":", 1)[1], c["Status"]) for c in listed] == [("live", "READY")]
    assert Traffic(lam, fn).provisioned() is not None and Traffic(lam, fn).provisioned("candidate") is None
    lam.delete_provisioned_concurrency_config(FunctionName=fn, Qualifier="live")
    assert Traffic(lam, fn).provisioned() is None
    with pytest.raises(lam.exceptions.ClientError, match="aliases only"):  # a version qualifier
        lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="1", ProvisionedConcurrentExecutions=1
        )


def test_a_version_change_keeps_the_old_version_at_100_percent_until_the_new_one_is_ready(
    em: Emulator,
) -> None:
    fn = em.function()
    em.ready(fn)
    answer = em.lam.update_alias(
        FunctionName=fn, Name="live", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert (answer["FunctionVersion"], answer["RoutingConfig"]["AdditionalVersionWeights"]) == (
        "2",
        {"1": 1.0},
    )
    moving = _alias(em, fn)
    assert moving == AliasState("2", {"1": 1.0}) and read_alias(moving).kind == Reading.MOVING
    assert em.status(fn) == "IN_PROGRESS"
    wait_for(lambda: em.status(fn) == "READY", timeout=30)
    assert _alias(em, fn) == AliasState("2", {})
    # the weights alone: requests move at once, the provisioned concurrency is split again
    em.lam.update_alias(FunctionName=fn, Name="live", FunctionVersion="2",
                        RoutingConfig={"AdditionalVersionWeights": {"3": 0.2}})  # fmt: skip
    assert _alias(em, fn) == AliasState("2", {"3": 0.2}) and em.status(fn) == "IN_PROGRESS"
    # and with weights on the alias, Lambda refuses to (re)configure its provisioned concurrency
    with pytest.raises(em.lam.exceptions.InvalidParameterValueException, match="Alias with weights can not"):
        em.lam.put_provisioned_concurrency_config(
            FunctionName=fn, Qualifier="live", ProvisionedConcurrentExecutions=3
        )


def test_without_provisioned_concurrency_a_move_is_immediate_and_settles_at_once(em: Emulator) -> None:
    fn = em.function()
    traffic, said = Traffic(em.lam, fn), []
    asked = traffic.shift("1", "2", 100)
    assert _alias(em, fn) == AliasState("2", {})
    settled = traffic.settle(asked, say=said.append, bound_s=0)
    assert settled.verdict.settle == Settle.DONE and settled.state == AliasState("2", {}) and said == []


def test_settle_waits_through_shift_promote_and_rollback(em: Emulator) -> None:
    fn = em.function()
    em.ready(fn)
    traffic = Traffic(em.lam, fn)
    said: list[str] = []
    settled = traffic.settle(traffic.shift("1", "2", 20), say=said.append, poll_s=0.1)
    assert settled.state == AliasState("1", {"2": 0.2}) and em.status(fn) == "READY"
    assert said == [
        "live is on v1 + v2 20%; waiting for its provisioned concurrency IN_PROGRESS (0 of 2 allocated)"
    ]
    said.clear()
    settled = traffic.settle(traffic.shift("1", "2", 100), say=said.append, poll_s=0.1)
    assert settled.state == AliasState("2", {}) and settled.verdict.settle == Settle.DONE
    assert said[0] == (
        "live is moving to v2 (Lambda keeps v1 at 100% until v2's provisioned concurrency is ready); "
        "waiting for its provisioned concurrency IN_PROGRESS (0 of 2 allocated)"
    )
    # the alias is read before its PC: the allocation may end between the two reads, and that
    # look says READY while the alias still read as moving (the next clears it)
    assert all(m.startswith("live is moving to v2 ") for m in said[1:]) and len(said) <= 2, said
    said.clear()
    settled = traffic.settle(traffic.rollback("1"), say=said.append, poll_s=0.1)
    assert settled.state == AliasState("1", {}) and said[0].startswith("live is moving to v1")


def test_a_failed_allocation_is_an_error_and_the_rollback_still_ends_on_blue(em: Emulator) -> None:
    fn = em.function()
    em.ready(fn)
    em.control(fail_with="FUNCTION_ERROR_INIT_FAILURE")
    traffic = Traffic(em.lam, fn)
    with pytest.raises(TrafficError) as failed:
        traffic.settle(traffic.shift("1", "2", 100), poll_s=0.1)
    assert failed.value.message == (
        "Lambda could not allocate provisioned concurrency to v2 and keeps every request of live on v1: "
        "provisioned concurrency FAILED (0 of 2 allocated): FUNCTION_ERROR_INIT_FAILURE"
    )
    assert "function.provisioned_concurrency" in failed.value.fix
    assert _alias(em, fn) == AliasState("2", {"1": 1.0})  # held there, as on AWS
    # back to the version that still serves: at once; its allocation fails too, but every
    # request is on blue, which is what a rollback is for
    settled = traffic.settle(traffic.rollback("1"), poll_s=0.1)
    assert settled.state == AliasState("1", {}) and settled.verdict.settle == Settle.COLD


def test_an_allocation_past_the_bound_is_an_error_and_a_stop_request_ends_the_wait(em: Emulator) -> None:
    fn = em.function()
    em.ready(fn)
    em.control(ready_s=600)
    traffic = Traffic(em.lam, fn)
    asked = traffic.shift("1", "2", 100)
    with pytest.raises(TrafficError) as late:
        traffic.settle(asked, bound_s=0.5, poll_s=0.1)
    assert late.value.message.endswith(
        "waiting for its provisioned concurrency IN_PROGRESS (0 of 2 allocated), still after 0.5s"
    )
    assert f"get-provisioned-concurrency-config --function-name {fn} --qualifier live" in late.value.fix
    stopped = traffic.settle(asked, should_stop=lambda: True)
    assert stopped.stopped and stopped.verdict.settle == Settle.WAIT


def test_a_rollback_from_a_canary_is_done_while_lambda_re_allocates(em: Emulator) -> None:
    """Weights alone: every request is on blue at once; the PC re-allocation is only said."""
    fn = em.function()
    em.ready(fn)
    traffic = Traffic(em.lam, fn)
    traffic.settle(traffic.shift("1", "2", 20), poll_s=0.1)
    em.control(ready_s=600)
    settled = traffic.settle(traffic.rollback("1"), rollback=True, bound_s=0.5, poll_s=0.1)
    assert settled.state == AliasState("1", {}) and settled.verdict.settle == Settle.DONE
    assert (
        em.status(fn) == "IN_PROGRESS"
        and "rolled back, while its provisioned concurrency" in settled.verdict.note
    )
    with pytest.raises(TrafficError, match=r"still after 0\.5s"):  # a forward move there still waits
        traffic.settle(AliasState("1", {}), bound_s=0.5, poll_s=0.1)


def test_throttled_reads_are_retried_and_a_denied_pc_read_judges_the_alias_alone(em: Emulator) -> None:
    fn = em.function()
    em.ready(fn)
    traffic, said, diagnosed = Traffic(em.lam, fn), [], []
    asked = traffic.shift("1", "2", 100)
    # three throttles: botocore's own retry (max_attempts 2 here) gives up on the first two
    em.control(read_errors=["TooManyRequestsException"] * 3)
    settled = traffic.settle(asked, say=said.append, diagnose=diagnosed.append, poll_s=0.1)
    assert settled.state == AliasState("2", {}) and settled.verdict.settle == Settle.DONE
    assert len(diagnosed) == 1 and diagnosed[0].startswith("could not read live (TooManyRequestsException: ")
    assert diagnosed[0].endswith("; reading again")
    # a role without lambda:GetProvisionedConcurrencyConfig: the alias alone, said once, and a
    # moving alias is still waited for (Lambda clears it)
    em.control(read_errors=["AccessDeniedException"])
    diagnosed.clear()
    settled = traffic.settle(traffic.rollback("1"), rollback=True, diagnose=diagnosed.append, poll_s=0.1)
    assert settled.state == AliasState("1", {}) and settled.verdict.settle == Settle.DONE
    assert diagnosed == [
        "may not read live's provisioned concurrency (AccessDeniedException): judging the alias alone, so a "
        "move may end before Lambda has warmed the new version; add lambda:GetProvisionedConcurrencyConfig "
        "on the function to the role that runs orchestrator"
    ]
    # any other error is no reason to wait
    em.control(read_errors=["ResourceNotFoundException"])
    with pytest.raises(em.lam.exceptions.ClientError, match="ResourceNotFoundException"):
        Traffic(em.lam, fn).settle(AliasState("1", {}), poll_s=0.1)


def test_without_provisioned_concurrency_settle_asks_for_it_once_per_traffic(em: Emulator) -> None:
    fn = em.function()
    traffic = Traffic(em.lam, fn)
    traffic.settle(traffic.shift("1", "2", 20))
    em.control(read_errors=["AccessDeniedException"])  # a Get now would be said
    diagnosed: list[str] = []
    traffic.settle(traffic.rollback("1"), rollback=True, diagnose=diagnosed.append)
    assert diagnosed == []
    assert em.control()["read_errors"] == ["AccessDeniedException"]  # no Get was made
