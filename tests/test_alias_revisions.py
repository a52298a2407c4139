"""Alias RevisionIds as AWS keeps them, in the emulator (orchestrator/local/alias_revisions.py),
and what a fenced write of live does with them (traffic.Traffic._set): a stale RevisionId is
refused, and a retried update whose first attempt landed (its answer lost) is recognised as
this run's own write rather than rolled back (review P2-2). Against the emulator's real
process, spoken to by boto3; the lost answer by orchestrator/base/netfaults.py."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from orchestrator.base import netfaults
from orchestrator.local import emulator
from orchestrator.local.alias_revisions import stale
from orchestrator.release.traffic import AliasState, Traffic, TrafficError
from tests.conftest import Moto

FUNCTION = "fenced"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The emulator's process with one function: v1, v2 and v3 published, live on v1."""
    moto = Moto("orchestrator.local.motoserver")
    moto.start()
    lam = emulator.client("lambda", moto.url)
    role = emulator.client("iam", moto.url).create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    for version in (1, 2, 3):  # moto publishes a version only for changed code, as AWS does
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("handler.py", f"def handler(event, context):\n    return {version}\n")
        if version == 1:
            lam.create_function(
                FunctionName=FUNCTION, Runtime="python3.12", Role=role["Role"]["Arn"], Handler="handler.handler",
                Code={"ZipFile": code.getvalue()},
            )  # fmt: skip
        else:
            lam.update_function_code(FunctionName=FUNCTION, ZipFile=code.getvalue())
        assert lam.publish_version(FunctionName=FUNCTION)["Version"] == str(version)
    lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    yield moto.url
    moto.stop()


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    netfaults.arm("")
    yield
    netfaults.arm("")


def _back_on_v1(url: str) -> str:
    lam = emulator.client("lambda", url)
    return str(
        lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1", RoutingConfig={})[
            "RevisionId"
        ]
    )


@pytest.mark.parametrize(
    ("named", "current", "refused"),
    [(None, "a", False), ("", "a", False), ("a", "a", False), ("b", "a", True)],
)
def test_a_named_revision_other_than_the_current_one_is_stale(
    named: str | None, current: str, refused: bool
) -> None:
    assert stale(named, current) is refused


def test_every_update_makes_a_new_revision_and_a_stale_one_is_refused(server: str) -> None:
    lam = emulator.client("lambda", server)
    first = _back_on_v1(server)
    moved = lam.update_alias(
        FunctionName=FUNCTION, Name="live", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}}, RevisionId=first,
    )  # fmt: skip
    assert moved["RevisionId"] != first
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["RevisionId"] == moved["RevisionId"]
    with pytest.raises(ClientError) as refused:
        lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="2", RevisionId=first)
    assert refused.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == "1"  # not applied


def test_a_fenced_write_whose_answer_was_lost_is_this_runs_own(server: str) -> None:
    revision = _back_on_v1(server)
    netfaults.arm("lambda:UpdateAlias[live]@1=lost(1)")  # lands, answer lost; botocore's retry gets through
    traffic = Traffic(emulator.client("lambda", server), FUNCTION)
    asked = traffic.shift("1", "2", 10, revision=revision)
    assert [f["fault"] for f in netfaults.fired] == ["lost"]  # the first attempt landed unanswered
    found = Traffic(emulator.client("lambda", server), FUNCTION).state()
    assert asked == AliasState("1", {"2": 0.1}) == found
    assert asked.revision == found.revision != revision  # the fence moves on from the landed write
    assert "this run's own write landed" in asked.note


def test_a_fenced_write_refused_because_someone_else_moved_live_stays_refused(server: str) -> None:
    revision = _back_on_v1(server)
    emulator.client("lambda", server).update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="3")
    traffic = Traffic(emulator.client("lambda", server), FUNCTION)
    with pytest.raises(TrafficError, match="PreconditionFailed"):
        traffic.shift("1", "2", 10, revision=revision)
    assert traffic.state() == AliasState("3", {})  # someone else's move stands
