"""Pruning old Lambda versions and their code packages: the plan as a table, the adapter
against a real moto server (Lambda versions and aliases, a versioned S3 bucket)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.release import prune
from orchestrator.release.machine import PromotionRecord
from orchestrator.release.prune import AliasView, Prune


def _record(blue: str, green: str) -> PromotionRecord:
    return PromotionRecord("20261207T000000-abcdef", "dev", blue, green, {}, "hash")


def _live(version: str, **weights: float) -> AliasView:
    return AliasView("live", version, weights)


def _versions(*numbers: int) -> list[str]:
    return ["$LATEST", *map(str, numbers)]


@pytest.mark.parametrize(
    ("versions", "aliases", "record", "keep", "expected"),
    [
        # the newest N, and nothing else when the aliases and the record point within them
        (_versions(1, 2, 3, 4, 5, 6), [_live("6"), AliasView("candidate", "6")], _record("5", "6"), 3,
         Prune(("4", "5", "6"), ("1", "2", "3"))),
        # a canary's weights: the weighted version stays whatever its age
        (_versions(1, 2, 3, 4, 5, 6), [AliasView("live", "6", {"2": 0.1})], None, 2,
         Prune(("2", "5", "6"), ("1", "3", "4"))),
        # a weight of 0 still names a version Lambda refuses to delete
        (_versions(1, 2, 3), [AliasView("live", "3", {"1": 0.0})], None, 1, Prune(("1", "3"), ("2",))),
        # the record's blue older than the newest N: rollback puts live back on it
        (_versions(1, 2, 3, 4, 5, 6), [_live("6")], _record("1", "6"), 2, Prune(("1", "5", "6"), ("2", "3", "4"))),
        # candidate on an older version than live
        (_versions(1, 2, 3, 4), [_live("4"), AliasView("candidate", "2")], None, 1, Prune(("2", "4"), ("1", "3"))),
        # N larger than the number of versions: nothing goes
        (_versions(1, 2), [_live("2")], _record("1", "2"), 5, Prune(("1", "2"), ())),
        # $LATEST is never a version to keep or delete, even with no published version
        (["$LATEST"], [], None, 1, Prune((), ())),
        # an alias on $LATEST protects nothing published
        (_versions(1, 2, 3), [AliasView("candidate", "$LATEST")], None, 1, Prune(("3",), ("1", "2"))),
        # unsorted input, compared as numbers: 10 is newer than 9 (as strings it is not)
        (["10", "$LATEST", "9", "2", "11", "1"], [_live("11")], None, 2, Prune(("10", "11"), ("1", "2", "9"))),
        # an alias or a record naming a version that is gone adds nothing
        (_versions(4, 5), [_live("5")], _record("3", "5"), 1, Prune(("5",), ("4",))),
    ],
)  # fmt: skip
def test_plan_keeps_the_newest_and_whatever_routes_or_rolls_back(
    versions: list[str], aliases: list[AliasView], record: PromotionRecord | None, keep: int, expected: Prune
) -> None:
    assert prune.plan(versions, aliases, record, keep) == expected


def test_plan_refuses_to_keep_nothing() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        prune.plan(_versions(1), [], None, 0)


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _key(data: bytes) -> str:
    return f"code/{hashlib.sha256(data).hexdigest()}.zip"


def test_orphans_are_code_packages_no_remaining_version_runs() -> None:
    a, b, c = b"a", b"b", b"c"
    keys = [_key(c), _key(a), _key(b), "code/notes.txt", "models/x.tar.gz", f"code/{'0' * 63}.zip"]
    # Lambda's CodeSha256 is base64; the keys are hex of the same digest
    assert prune.orphans(keys, [_b64(a)]) == sorted([_key(b), _key(c)])
    assert prune.orphans(keys, [_b64(a), _b64(b), _b64(c)]) == []


# -- the adapter, against moto's server -------------------------------------------------------


def _zip(text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("handler.py", f"def handler(event, context):\n    return {text!r}\n")
    return out.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The local environment's emulator process (moto plus its additions), plain HTTP."""
    import os
    import subprocess
    import sys

    from orchestrator.local import daemon
    from tests.conftest import wait_for

    port = daemon.free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "orchestrator.local.motoserver", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: daemon.healthy(url + "/moto-api/", timeout=0.5), timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def deployed(server: str) -> Iterator[tuple[Any, Any, str, str, list[bytes]]]:
    """A function with 7 published versions (each with its package in a versioned bucket,
    as serving.py stores them), live on v7 with a canary weight on v2, candidate on v7."""
    from orchestrator.local import emulator

    lam, s3 = emulator.client("lambda", server), emulator.client("s3", server)
    name = f"prune-{hashlib.sha256(str(id(lam)).encode()).hexdigest()[:8]}"
    iam = emulator.client("iam", server)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    zips = [_zip(f"v{i}") for i in range(1, 8)]
    for i, code in enumerate(zips):
        s3.put_object(Bucket=name, Key=_key(code), Body=code)
        if i == 0:
            lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
                Code={"S3Bucket": name, "S3Key": _key(code)},
            )  # fmt: skip
        else:
            lam.update_function_code(FunctionName=name, S3Bucket=name, S3Key=_key(code))
        assert lam.publish_version(FunctionName=name)["Version"] == str(i + 1)
    s3.put_object(Bucket=name, Key="code/readme.txt", Body=b"not a package")
    lam.create_alias(
        FunctionName=name, Name="live", FunctionVersion="7",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )  # fmt: skip
    lam.create_alias(FunctionName=name, Name="candidate", FunctionVersion="7")
    yield lam, s3, name, name, zips


def test_prune_deletes_versions_and_their_packages(deployed: tuple[Any, Any, str, str, list[bytes]]) -> None:
    lam, s3, function, bucket, zips = deployed
    done = prune.prune(lam, s3, function, bucket, _record("3", "7"), keep=2)

    assert done.problems == []
    assert done.kept == ["2", "3", "6", "7"]
    assert done.deleted_versions == ["1", "4", "5"]
    assert sorted(prune.read_versions(lam, function)) == ["$LATEST", "2", "3", "6", "7"]
    # the packages of v1, v4 and v5 go (v7's is also $LATEST's); what is not a package stays
    assert done.deleted_code == sorted(_key(zips[i]) for i in (0, 3, 4))
    current = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="code/")["Contents"]}
    assert current == {_key(zips[i]) for i in (1, 2, 5, 6)} | {"code/readme.txt"}
    # the bucket is versioned: a deleted package stays as a noncurrent version, which the
    # bucket's lifecycle rule expires
    listed = s3.list_object_versions(Bucket=bucket, Prefix=_key(zips[0]))
    assert [v["IsLatest"] for v in listed["Versions"]] == [False]
    assert [m["IsLatest"] for m in listed["DeleteMarkers"]] == [True]

    again = prune.prune(lam, s3, function, bucket, _record("3", "7"), keep=2)
    assert (again.deleted_versions, again.deleted_code) == ([], [])
    assert again.summary() == "pruned nothing: versions v2, v3, v6, v7 kept"


def test_a_version_lambda_refuses_to_delete_is_a_problem_and_keeps_its_package(
    deployed: tuple[Any, Any, str, str, list[bytes]],
) -> None:
    lam, s3, function, bucket, zips = deployed

    class Refusing:
        """Lambda refusing v4, as it refuses a version an alias moved to meanwhile."""

        exceptions = lam.exceptions

        def __getattr__(self, name: str) -> Any:
            return getattr(lam, name)

        def delete_function(self, **kwargs: Any) -> Any:
            if kwargs.get("Qualifier") == "4":
                raise lam.exceptions.ResourceConflictException(
                    {"Error": {"Code": "ResourceConflictException", "Message": "alias refers to it"}},
                    "DeleteFunction",
                )
            return lam.delete_function(**kwargs)

    done = prune.prune(Refusing(), s3, function, bucket, _record("6", "7"), keep=2)
    assert done.deleted_versions == ["1", "3", "5"]
    assert done.problems == ["could not delete v4: ResourceConflictException: alias refers to it"]
    assert _key(zips[3]) not in done.deleted_code and _key(zips[0]) in done.deleted_code
    assert "1 problem(s)" in done.summary()


def test_after_pruning_a_new_version_gets_a_new_number(
    deployed: tuple[Any, Any, str, str, list[bytes]],
) -> None:
    """As on AWS, a number is never published twice: moto alone would number the next
    version len(versions) + 1, the number of one still there (the emulator fixes that)."""
    lam, _, function, _, zips = deployed
    for version in ("7", "1", "4"):  # the newest too: its number is not given again either
        lam.delete_function(FunctionName=function, Qualifier=version)
    lam.update_function_code(FunctionName=function, ZipFile=_zip("v8"))
    published = lam.publish_version(FunctionName=function)
    assert published["Version"] == "8"
    assert published["FunctionArn"].endswith(f":{function}:8")
    # the versions still there kept their numbers and their code
    got = lam.get_function_configuration(FunctionName=function, Qualifier="5")
    assert (got["Version"], got["CodeSha256"]) == ("5", _b64(zips[4]))
    assert sorted(prune.read_versions(lam, function)) == ["$LATEST", "2", "3", "5", "6", "8"]


def test_a_prune_that_fails_is_said_and_the_promotion_stands(tmp_path: Any) -> None:
    """Release's hook: whatever breaks while pruning is a diagnostic and report.pruned's
    error, never an exception out of a promotion that has ended `promoted`."""
    from pathlib import Path

    from botocore.exceptions import EndpointConnectionError

    from orchestrator.base.progress import ProgressEvent
    from orchestrator.config import settings
    from orchestrator.release.operations import Release

    class Unreachable:
        """A target whose AWS cannot be reached once the promotion is over."""

        function_name, bucket = "p-dev-infer", "p-dev-models"

        def lambda_client(self) -> Any:
            raise EndpointConnectionError(endpoint_url="https://lambda.eu-west-1.amazonaws.com/")

        s3_client = lambda_client

    raw = {"environments": {"dev": {"region": "eu-west-1", "account_id": "111111111111"}}}
    env = settings.parse(raw, Path("/x/edgeship.toml")).environment("dev")
    said: list[ProgressEvent] = []

    class Collect:
        def event(self, event: ProgressEvent) -> None:
            said.append(event)

    release = Release(Unreachable(), env, Collect(), tmp_path)  # type: ignore[arg-type]
    got = release._prune(_record("6", "7"))
    assert got == {
        "error": 'Could not connect to the endpoint URL: "https://lambda.eu-west-1.amazonaws.com/"'
    }
    assert [(e.kind, e.message) for e in said] == [
        ("diagnostic", f"could not prune old versions: {got['error']}; promotion 20261207T000000-abcdef is done; "
         "the next promotion prunes again"),
    ]  # fmt: skip
