"""The local environment keeps an account clean as the serving program does: names from
orchestrator/config/names.py (whatever the project is called), the models bucket's lifecycle rules
(programs/lifecycle.py) following `noncurrent_days`, and `keep_on_destroy` keeping the
bucket and its configuration through a `destroy`. Everything is read back from the
emulator with boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.names import ResourceNames
from orchestrator.local import emulator
from orchestrator.programs.emulated import _BucketProvider, _RoleProvider
from orchestrator.programs.lifecycle import pulumi_rules, s3_rules
from tests.conftest import LocalProject
from tests.test_local_stack import _changed, _ok


def _client(state_dir: Path, service: str) -> Any:
    running = emulator.running(state_dir)
    assert running is not None, "the emulator is not running"
    return emulator.client(service, running.url, state_dir / "tls" / "cert.pem")


def _configuration(s3: Any, bucket: str) -> dict[str, Any]:
    """The bucket's configuration as the emulator answers it."""
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    return {
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "encryption": [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in encryption],
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "ownership": s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
        "tags": s3.get_bucket_tagging(Bucket=bucket)["TagSet"],
    }


def _expected(names: ResourceNames, noncurrent_days: int) -> dict[str, Any]:
    blocked = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return {
        "versioning": "Enabled",
        "encryption": ["AES256"],
        "public_access_block": dict.fromkeys(blocked, True),
        "ownership": [{"ObjectOwnership": "BucketOwnerEnforced"}],
        "lifecycle": s3_rules(noncurrent_days),
        "tags": [{"Key": "edgeship:stack", "Value": names.base}],
    }


def _set(project: LocalProject, noncurrent_days: int) -> None:
    """The environment keeps its data, its noncurrent versions expire after `noncurrent_days`."""
    text = project.config.read_text().split("[environments.local.storage]")[0]
    project.config.write_text(
        f"{text}[environments.local.storage]\nkeep_on_destroy = true\nnoncurrent_days = {noncurrent_days}\n"
    )


def test_lifecycle_rules_are_one_list_in_both_shapes() -> None:
    """The serving program's `models-lifecycle` rules (its mocks test them) and the ones
    the local Bucket provider puts: one list, two spellings."""
    assert s3_rules(3) == [
        {"ID": "expire-noncurrent-promotions", "Status": "Enabled", "Filter": {"Prefix": "promotions/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
        {"ID": "expire-noncurrent-code", "Status": "Enabled", "Filter": {"Prefix": "code/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
        {"ID": "abort-incomplete-uploads", "Status": "Enabled", "Filter": {},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]  # fmt: skip
    assert pulumi_rules() == [
        {"id": "expire-noncurrent-promotions", "status": "Enabled", "filter": {"prefix": "promotions/"},
         "noncurrent_version_expiration": {"noncurrent_days": 7}},
        {"id": "expire-noncurrent-code", "status": "Enabled", "filter": {"prefix": "code/"},
         "noncurrent_version_expiration": {"noncurrent_days": 7}},
        {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {},
         "abort_incomplete_multipart_upload": {"days_after_initiation": 1}},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="at least 1"):
        s3_rules(0)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local environment's directory with its emulator running (no stack: the providers alone)."""
    path = tmp_path_factory.mktemp("local")
    emulator.ensure(path)
    yield path
    emulator.stop(path)


def test_bucket_provider_creates_updates_and_deletes_its_configuration(state_dir: Path) -> None:
    """The provider alone, on a real emulator: the configuration at creation, an update of
    the days, and a delete (no keep) that empties a versioned bucket and removes it."""
    names = ResourceNames.of("Other_Project", "Dev")
    provider = _BucketProvider()
    props = {"stateDir": str(state_dir), "bucketPrefix": names.bucket_prefix, "noncurrentDays": 7,
             "tags": names.tags, "bucket": None, "arn": None}  # fmt: skip
    created = provider.create(props)
    bucket = created.id
    assert bucket.startswith("other-project-dev-models-") and len(bucket) == len(names.bucket_prefix) + 8
    assert created.outs["bucket"] == bucket and created.outs["arn"] == f"arn:aws:s3:::{bucket}"
    s3 = _client(state_dir, "s3")
    assert _configuration(s3, bucket) == _expected(names, 7)

    news = {**props, "noncurrentDays": 2}
    olds = {**props, **created.outs}
    assert provider.diff(bucket, olds, news).changes and provider.diff(bucket, olds, news).replaces == []
    updated = provider.update(bucket, olds, news)
    assert updated.outs["bucket"] == bucket and updated.outs["noncurrentDays"] == 2
    assert _configuration(s3, bucket)["lifecycle"] == s3_rules(2)

    # the name is taken (a kept bucket, orphaned): another stack's bucket goes beside it
    beside = provider.create(props).id
    assert beside != bucket and beside.startswith(names.bucket_prefix) and len(beside) == len(bucket)

    for body in (b"1", b"2"):  # two versions of a record: both must go
        s3.put_object(Bucket=bucket, Key="promotions/dev/current.json", Body=body)
    provider.delete(bucket, updated.outs)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    provider.delete(beside, props)
    # free again: the same name as the first time (a bucket recreated after the emulator restarted)
    assert provider.create(props).id == bucket

    # a bucket made before names.py (state without bucketPrefix) is kept and configured anew:
    # replacing it would delete its records and the model live's version loads
    s3.create_bucket(Bucket="edgeship-local-models")
    old_state = {
        "stateDir": str(state_dir),
        "bucket": "edgeship-local-models",
        "arn": "arn:aws:s3:::edgeship-local-models",
    }
    upgrade = provider.diff("edgeship-local-models", old_state, props)
    assert upgrade.changes and upgrade.replaces == []
    provider.update("edgeship-local-models", old_state, props)
    assert s3.get_bucket_lifecycle_configuration(Bucket="edgeship-local-models")["Rules"] == s3_rules(7)


def test_role_provider_names_tags_and_boundary(state_dir: Path) -> None:
    """The role as serving.py declares it: under the stack's path, tagged, with the
    permissions boundary when edgeship:boundaryArn is set; removing it is an update."""
    names = ResourceNames.of("Other_Project", "Dev")
    boundary = names.boundary_arn(emulator.ACCOUNT)
    provider = _RoleProvider()
    props = {"stateDir": str(state_dir), "roleName": names.function_role, "path": names.role_path,
             "bucket": "b", "boundaryArn": boundary, "tags": names.tags, "arn": None}  # fmt: skip
    created = provider.create(props)
    iam = _client(state_dir, "iam")
    role = iam.get_role(RoleName=names.function_role)["Role"]
    assert created.outs["arn"] == role["Arn"] == names.role_arn(emulator.ACCOUNT, names.function_role)
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert role["Tags"] == [{"Key": "edgeship:stack", "Value": "other-project-dev"}]

    olds, news = {**props, **created.outs}, {**props, "boundaryArn": ""}
    assert provider.diff(names.function_role, olds, news).replaces == []
    provider.update(names.function_role, olds, news)
    assert "PermissionsBoundary" not in iam.get_role(RoleName=names.function_role)["Role"]
    moved = provider.diff(names.function_role, olds, {**news, "path": "/elsewhere/"})
    assert moved.replaces == ["path"] and moved.delete_before_replace  # IAM names are unique
    provider.delete(names.function_role, news)
    assert iam.list_roles(PathPrefix=names.role_path)["Roles"] == []


def test_names_lifecycle_and_a_kept_bucket_through_destroy(local_project: LocalProject) -> None:
    """A project called "My_Project" gets names.py's names; the lifecycle rules follow
    noncurrent_days; with keep_on_destroy, `destroy` completes and the bucket stays, as
    configured, with its objects; the next `up` creates a new bucket beside it."""
    project = local_project
    project.config.write_text(project.config.read_text().replace('name = "e2e"', 'name = "My_Project"'))
    _set(project, 3)
    names = ResourceNames.of("My_Project", "local")
    first = _ok(project, "up", "--yes")
    outputs = first["outputs"]
    bucket = outputs["bucket"]

    # -- names, read back from the emulator
    assert outputs["functionName"] == names.function == "my-project-local-infer"
    assert bucket.startswith(names.bucket_prefix)
    function = _client(project.state, "lambda").get_function(FunctionName=names.function)
    assert function["Tags"] == names.tags
    role = _client(project.state, "iam").get_role(RoleName=names.function_role)["Role"]
    assert (role["Path"], role["Arn"]) == (names.role_path, function["Configuration"]["Role"])
    assert role["Arn"] == names.role_arn(emulator.ACCOUNT, names.function_role)
    assert "PermissionsBoundary" not in role  # the local stack config's boundaryArn is ""
    ssm = _client(project.state, "ssm")
    assert ssm.get_parameter(Name=names.origin_parameter)["Parameter"]["Type"] == "SecureString"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=names.origin_parameter)["TagList"]
    assert tags == [{"Key": "edgeship:stack", "Value": names.base}]

    # -- the configuration, and the lifecycle following noncurrent_days
    s3 = _client(project.state, "s3")
    assert _configuration(s3, bucket) == _expected(names, 3)
    _set(project, 5)
    again = _ok(project, "up", "--yes")
    assert _changed(again) == {"update": 1} and again["outputs"]["bucket"] == bucket
    assert _configuration(s3, bucket) == _expected(names, 5)

    # -- kept through destroy: the emulator stays up holding it, configured, objects intact
    s3.put_object(Bucket=bucket, Key="code/handler.zip", Body=b"old build")
    s3.put_object(Bucket=bucket, Key="code/handler.zip", Body=b"new build")
    objects = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert objects == ["code/handler.zip", outputs["modelKey"]]
    destroyed = _ok(project, "destroy", "--yes")
    assert _changed(destroyed) == {"delete": 10}  # the bucket and model too: from the stack, not the emulator
    assert destroyed["stopped"]["emulator"] is False and emulator.running(project.state) is not None
    s3 = _client(project.state, "s3")  # the same emulator, still running
    assert _configuration(s3, bucket) == _expected(names, 5)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == objects
    versions = s3.list_object_versions(Bucket=bucket, Prefix="code/")["Versions"]
    assert len(versions) == 2
    assert _client(project.state, "iam").list_roles(PathPrefix=names.role_path)["Roles"] == []  # not kept

    # -- orphaned from the stack: the next `up` creates a new bucket beside the kept one
    revived = _ok(project, "up", "--yes")
    new_bucket = revived["outputs"]["bucket"]
    assert new_bucket != bucket and new_bucket.startswith(names.bucket_prefix)
    listed = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {bucket, new_bucket} <= listed
