"""The local environment's resources: Pulumi dynamic resources whose providers call the
AWS API emulator (moto in server mode) through boto3, and the local edge daemon.

How a provider finds the emulator: every resource carries `stateDir` (the local
environment's directory), which stays the same across emulator restarts and is never
compared in `diff`. At each call a provider reads `<stateDir>/emulator.json` (its URL)
and trusts `<stateDir>/tls/cert.pem`, so `refresh` and `destroy` work from the state
alone and an emulator restarted on another port changes nothing but the Edge (the
daemon is started with the URL, so it is the one input that carries it).

Providers are pickled by reference: the engine's provider process imports this module
again. No side effects at import, and class names are part of every local stack's state:
renaming one orphans existing local stacks (fix: `orchestrator destroy --env local`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

PROVIDER_KEY = "__provider"

# -- plumbing shared by the providers ------------------------------------------------------

_clients_lock = threading.Lock()
_clients_cache: dict[tuple[str, str, str], Any] = {}


def client(state_dir: str, service: str) -> Any:
    """A boto3 client for the emulator that `state_dir` runs (made once per URL: the
    provider answers on several threads, and boto3 clients are thread-safe once made)."""
    from orchestrator.local import daemon, emulator
    from orchestrator.local.daemon import LocalEnvError

    running = daemon.read(Path(state_dir) / "emulator.json")
    if running is None:
        raise LocalEnvError(
            f"the emulator of {state_dir} is not running",
            fix="run the command through `orchestrator`, which starts it before the engine runs",
        )
    key = (state_dir, running.url, service)
    with _clients_lock:
        if key not in _clients_cache:
            _clients_cache[key] = emulator.client(service, running.url, Path(state_dir) / "tls" / "cert.pem")
        return _clients_cache[key]


def _norm(value: Any) -> Any:
    """Numbers come back from the engine as floats: compare 512.0 and 512 as equal."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _inputs(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != PROVIDER_KEY}


def _exists_already(exc: Exception) -> bool:
    """Lambda's "already exists" (ResourceConflictException; moto says ConflictException for aliases)."""
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("ResourceConflictException", "ConflictException")


class _Provider(ResourceProvider):
    """Diffs only the inputs each resource names (never `stateDir`, never outputs)."""

    # The pickled provider (`__provider`) is a bare class reference, no secret in it: stored in
    # plain text, edgeship reads which module it names from a file backend's checkpoint
    # without decrypting it (orchestrator/stacks/provider_migration.py; Pulumi's default since
    # v3.75 makes every provider a secret, for providers that capture credentials).
    serialize_as_secret_always = False
    UPDATE: tuple[str, ...] = ()
    REPLACE: tuple[str, ...] = ()

    @staticmethod
    def changed(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
        """The inputs among `keys` whose values differ."""
        return [k for k in keys if _norm(olds.get(k)) != _norm(news.get(k))]

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = self.changed(olds, news, (*self.UPDATE, *self.REPLACE))
        return DiffResult(
            changes=bool(changed),
            replaces=[k for k in changed if k in self.REPLACE],
            delete_before_replace=False,
        )


# -- bucket ---------------------------------------------------------------------------------


class _BucketProvider(_Provider):
    """The models bucket, configured as serving.py configures AWS's (programs/lifecycle.py
    for its rules). Its name is `bucketPrefix` plus a suffix chosen at creation:

    - the same one every time the name is free, so a bucket recreated after the emulator
      restarted empty has the name it had (the edge's sandboxes of version 1, started
      before the restart, were given its MODEL_URI);
    - a random one when that name is taken, as Pulumi's `bucket_prefix` always does: the
      bucket there belongs to no stack (kept by `[storage] keep_on_destroy`, whose
      retain_on_delete means `delete` is never called for it, or left by an `up` killed
      before its checkpoint). The new stack gets a new bucket beside it, as on AWS, instead
      of adopting the old one's promotion records.
    """

    UPDATE = ("noncurrentDays", "tags")
    REPLACE = ("bucketPrefix",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        import hashlib
        import secrets

        s3, prefix = client(props["stateDir"], "s3"), props["bucketPrefix"]
        # 8 lower-case hex characters: S3's 63 leave room after any prefix (names._BUCKET_PREFIX_MAX).
        name = f"{prefix}{hashlib.sha256(prefix.encode()).hexdigest()[:8]}"
        if self._exists(s3, name):
            name = f"{prefix}{secrets.token_hex(4)}"
        s3.create_bucket(Bucket=name)
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
        )  # fmt: skip
        s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        )
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        # Versioned as in AWS: the promotion record relies on conditional writes, not on
        # versions, but an overwritten model must stay recoverable.
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        # No TLS-only bucket policy: moto does not evaluate policy conditions and would deny
        # every request. The emulator serves HTTPS only, so access is TLS regardless.
        self._configure(s3, name, props)
        return CreateResult(name, {**_inputs(props), "bucket": name, "arn": f"arn:aws:s3:::{name}"})

    @staticmethod
    def _configure(s3: Any, name: str, props: dict[str, Any]) -> None:
        """What an update may change: the lifecycle rules' days, the tags."""
        from .lifecycle import s3_rules

        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": s3_rules(int(props["noncurrentDays"]))}
        )
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tag_list(props["tags"])})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if "bucketPrefix" not in olds:
            # A bucket made before names.py chose prefixes: keep it, configured anew. A new
            # bucket would delete this one, and with it the promotion records and the model
            # `live`'s version loads on its next cold start.
            olds = {**olds, "bucketPrefix": news.get("bucketPrefix")}
        return super().diff(id_, olds, news)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._configure(client(news["stateDir"], "s3"), id_, news)
        return UpdateResult({**_inputs(news), "bucket": id_, "arn": olds.get("arn", f"arn:aws:s3:::{id_}")})

    @staticmethod
    def _exists(s3: Any, name: str) -> bool:
        try:
            s3.head_bucket(Bucket=name)
        except s3.exceptions.ClientError:
            return False
        return True

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if not self._exists(client(props["stateDir"], "s3"), id_):
            return ReadResult(None, {})  # gone (the emulator restarted): the next `up` recreates it
        return ReadResult(id_, _inputs(props))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        s3 = client(props["stateDir"], "s3")
        try:
            # A versioned bucket: every version and delete marker goes first (records, leases,
            # models kept for rollback).
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=id_):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    s3.delete_object(Bucket=id_, Key=item["Key"], VersionId=item["VersionId"])
            s3.delete_bucket(Bucket=id_)
        except s3.exceptions.NoSuchBucket:
            pass


class Bucket(Resource, module="edgeship", name="Bucket"):
    """A private, encrypted, versioned bucket for models and promotion records, with the
    lifecycle rules of programs/lifecycle.py. `bucket` is its name (chosen at creation)."""

    arn: pulumi.Output[str]
    bucket: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_BucketProvider(), name, {**props, "bucket": None, "arn": None}, opts)


# -- model object ---------------------------------------------------------------------------


class _ModelObjectProvider(_Provider):
    REPLACE = ("bucket", "key", "sha256")

    def create(self, props: dict[str, Any]) -> CreateResult:
        s3 = client(props["stateDir"], "s3")
        # Keys are content hashes: an object already there holds these bytes (or was tampered
        # with, which the function's sha256 check at load exists to catch).
        if not self._exists(s3, props["bucket"], props["key"]):
            s3.put_object(Bucket=props["bucket"], Key=props["key"], Body=Path(props["source"]).read_bytes())
        return CreateResult(f"{props['bucket']}/{props['key']}", _inputs(props))

    @staticmethod
    def _exists(s3: Any, bucket: str, key: str) -> bool:
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError:
            return False
        return True

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        s3 = client(props["stateDir"], "s3")
        found = self._exists(s3, props["bucket"], props["key"])
        return ReadResult(id_, _inputs(props)) if found else ReadResult(None, {})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        s3 = client(props["stateDir"], "s3")
        with contextlib.suppress(s3.exceptions.ClientError):
            s3.delete_object(Bucket=props["bucket"], Key=props["key"])


class ModelObject(Resource, module="edgeship", name="ModelObject"):
    """The model archive, stored under its sha256."""

    key: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_ModelObjectProvider(), name, props, opts)


# -- role -----------------------------------------------------------------------------------


class _RoleProvider(_Provider):
    """The function's execution role, named and placed as serving.py's (orchestrator/config/names.py):
    `path` + `roleName`, with the permissions boundary `boundaryArn` when it is set (the
    local environment's stack config leaves it empty; moto accepts and records one)."""

    UPDATE = ("bucket", "boundaryArn", "tags")
    REPLACE = ("roleName", "path")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        found = super().diff(_id, olds, news)
        # A replacement keeping the name (a new path) must delete first: IAM names are
        # unique in the account whatever the path.
        same_name = _norm(olds.get("roleName")) == _norm(news.get("roleName"))
        return DiffResult(
            changes=found.changes,
            replaces=found.replaces,
            delete_before_replace=bool(found.replaces) and same_name,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        iam, name = client(props["stateDir"], "iam"), props["roleName"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        boundary = {"PermissionsBoundary": props["boundaryArn"]} if props.get("boundaryArn") else {}
        try:
            arn = iam.create_role(
                RoleName=name, Path=props["path"], AssumeRolePolicyDocument=json.dumps(trust),
                Tags=_tag_list(props["tags"]), **boundary,
            )["Role"]["Arn"]  # fmt: skip
        except iam.exceptions.EntityAlreadyExistsException:
            # Left by an `up` killed before its checkpoint: adopt it, as declared now.
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
            self._configure(iam, name, {}, props)
        self._put_policy(iam, name, props)
        return CreateResult(name, {**_inputs(props), "arn": arn})

    @staticmethod
    def _put_policy(iam: Any, name: str, props: dict[str, Any]) -> None:
        # Least privilege, as in the serving program: read the models, nothing else.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{props['bucket']}/models/*",
                }
            ],
        }
        iam.put_role_policy(RoleName=name, PolicyName="read-models", PolicyDocument=json.dumps(policy))

    @staticmethod
    def _configure(iam: Any, name: str, olds: dict[str, Any], news: dict[str, Any]) -> None:
        """Boundary and tags, in place (as IAM's PutRolePermissionsBoundary and TagRole)."""
        if news.get("boundaryArn"):
            iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=news["boundaryArn"])
        elif olds.get("boundaryArn"):
            iam.delete_role_permissions_boundary(RoleName=name)
        iam.tag_role(RoleName=name, Tags=_tag_list(news["tags"]))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        iam = client(news["stateDir"], "iam")
        self._configure(iam, id_, olds, news)
        self._put_policy(iam, id_, news)
        return UpdateResult({**_inputs(news), "arn": olds["arn"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        iam = client(props["stateDir"], "iam")
        try:
            arn = iam.get_role(RoleName=id_)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            return ReadResult(None, {})
        return ReadResult(id_, {**_inputs(props), "arn": arn})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        iam = client(props["stateDir"], "iam")
        try:
            for policy in iam.list_role_policies(RoleName=id_)["PolicyNames"]:
                iam.delete_role_policy(RoleName=id_, PolicyName=policy)
            iam.delete_role(RoleName=id_)
        except iam.exceptions.NoSuchEntityException:
            pass


class Role(Resource, module="edgeship", name="Role"):
    """The function's execution role."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__(_RoleProvider(), name, {**props, "arn": None})


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """`{key: value}` as IAM's and S3's APIs take tags."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


# -- function -------------------------------------------------------------------------------


class _FunctionProvider(_Provider):
    # Whatever makes a new published version on AWS.
    UPDATE = (
        "roleArn",
        "runtime",
        "memoryMb",
        "timeoutS",
        "codeSha256",
        "environment",
        "reservedConcurrency",
        "architecture",
    )
    REPLACE = ("functionName",)

    @staticmethod
    def _config(props: dict[str, Any]) -> dict[str, Any]:
        return {
            "Runtime": props["runtime"], "Role": props["roleArn"], "Handler": "handler.handler",
            "MemorySize": int(props["memoryMb"]), "Timeout": int(props["timeoutS"]),
            "Environment": {"Variables": dict(props["environment"])},
        }  # fmt: skip

    @staticmethod
    def _concurrency(lam: Any, props: dict[str, Any]) -> None:
        reserved = props.get("reservedConcurrency")
        if reserved is None:
            lam.delete_function_concurrency(FunctionName=props["functionName"])
        else:
            lam.put_function_concurrency(
                FunctionName=props["functionName"], ReservedConcurrentExecutions=int(reserved)
            )

    def create(self, props: dict[str, Any]) -> CreateResult:
        lam = client(props["stateDir"], "lambda")
        try:
            created = lam.create_function(
                FunctionName=props["functionName"], Code={"ZipFile": Path(props["codePath"]).read_bytes()},
                Publish=True, Architectures=[props["architecture"]], Tags=dict(props.get("tags") or {}),
                **self._config(props),
            )  # fmt: skip
        except lam.exceptions.ClientError as exc:
            if not _exists_already(exc):
                raise
            # An `up` killed between this call and its checkpoint left the function without
            # a state entry: adopt it (publishing this code and config) rather than fail forever.
            adopted = self._publish(lam, props["functionName"], props, code_changed=True)
            if props.get("tags"):
                lam.tag_resource(Resource=adopted["arn"], Tags=dict(props["tags"]))
            return CreateResult(props["functionName"], adopted)
        self._concurrency(lam, props)
        return CreateResult(
            props["functionName"],
            {**_inputs(props), "version": created["Version"], "arn": created["FunctionArn"]},
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        lam = client(news["stateDir"], "lambda")
        code_changed = any(_norm(olds.get(k)) != _norm(news.get(k)) for k in ("codeSha256", "architecture"))
        return UpdateResult(self._publish(lam, id_, news, code_changed=code_changed))

    def _publish(self, lam: Any, name: str, props: dict[str, Any], *, code_changed: bool) -> dict[str, Any]:
        """Bring the function to `props` and publish a version (`publish = true` in serving.py)."""
        if code_changed:
            lam.update_function_code(
                FunctionName=name,
                ZipFile=Path(props["codePath"]).read_bytes(),
                Architectures=[props["architecture"]],
            )
        lam.update_function_configuration(FunctionName=name, **self._config(props))
        self._concurrency(lam, props)
        published = lam.publish_version(FunctionName=name)
        arn = str(published["FunctionArn"]).rsplit(":", 1)[0]  # unqualified, as create reports it
        return {**_inputs(props), "version": published["Version"], "arn": arn}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        lam = client(props["stateDir"], "lambda")
        try:
            pages = lam.get_paginator("list_versions_by_function").paginate(FunctionName=id_)
            versions = [
                int(v["Version"]) for page in pages for v in page["Versions"] if v["Version"] != "$LATEST"
            ]
        except lam.exceptions.ResourceNotFoundException:
            return ReadResult(None, {})
        if not versions:
            return ReadResult(None, {})
        # Inputs stay as declared (what diff compares); the newest version is an output.
        return ReadResult(id_, {**_inputs(props), "version": str(max(versions))})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lam = client(props["stateDir"], "lambda")
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_function(FunctionName=id_)


class Function(Resource, module="edgeship", name="Function"):
    """The inference function; every update publishes a version (`version`)."""

    version: pulumi.Output[str]
    arn: pulumi.Output[str]
    functionName: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any]) -> None:
        super().__init__(
            _FunctionProvider(), name, {**props, "version": None, "arn": None},
            # The origin secret is in the environment: never in plain text in the state.
            pulumi.ResourceOptions(additional_secret_outputs=["environment"]),
        )  # fmt: skip


# -- aliases --------------------------------------------------------------------------------


class _AliasProvider(_Provider):
    UPDATE = ("functionVersion",)
    REPLACE = ("functionName", "name")

    def create(self, props: dict[str, Any]) -> CreateResult:
        lam = client(props["stateDir"], "lambda")
        try:
            lam.create_alias(
                FunctionName=props["functionName"],
                Name=props["name"],
                FunctionVersion=props["functionVersion"],
            )
        except lam.exceptions.ClientError as exc:
            if not _exists_already(exc):
                raise
            # Left by an `up` killed before its checkpoint: adopt it. `live` keeps what it
            # serves (a release moved it); `candidate` follows the new version.
            if props["name"] == "live":
                serving = lam.get_alias(FunctionName=props["functionName"], Name=props["name"])[
                    "FunctionVersion"
                ]
                return CreateResult(
                    f"{props['functionName']}:{props['name']}", {**_inputs(props), "currentVersion": serving}
                )
            lam.update_alias(
                FunctionName=props["functionName"],
                Name=props["name"],
                FunctionVersion=props["functionVersion"],
            )
        return CreateResult(
            f"{props['functionName']}:{props['name']}",
            {**_inputs(props), "currentVersion": props["functionVersion"]},
        )

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        lam = client(news["stateDir"], "lambda")
        lam.update_alias(
            FunctionName=news["functionName"], Name=news["name"], FunctionVersion=news["functionVersion"]
        )
        return UpdateResult({**_inputs(news), "currentVersion": news["functionVersion"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        lam = client(props["stateDir"], "lambda")
        try:
            alias = lam.get_alias(FunctionName=props["functionName"], Name=props["name"])
        except lam.exceptions.ResourceNotFoundException:
            return ReadResult(None, {})
        # `functionVersion` stays the declared input: a refresh after a promotion must not
        # make the next diff move `live` back. What the alias serves is `currentVersion`.
        return ReadResult(id_, {**_inputs(props), "currentVersion": alias["FunctionVersion"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lam = client(props["stateDir"], "lambda")
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_alias(FunctionName=props["functionName"], Name=props["name"])


class Alias(Resource, module="edgeship", name="Alias"):
    """`live` or `candidate`."""

    name: pulumi.Output[str]
    currentVersion: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_AliasProvider(), name, {**props, "currentVersion": None}, opts)


# -- parameter ------------------------------------------------------------------------------


class _ParameterProvider(_Provider):
    UPDATE = ("value",)
    REPLACE = ("parameterName",)

    @staticmethod
    def _put(props: dict[str, Any]) -> None:
        ssm = client(props["stateDir"], "ssm")
        ssm.put_parameter(
            Name=props["parameterName"], Type="SecureString", Value=props["value"], Overwrite=True
        )
        if props.get("tags"):  # SSM takes no Tags with Overwrite: tagged apart, as AWS's provider does
            ssm.add_tags_to_resource(
                ResourceType="Parameter", ResourceId=props["parameterName"], Tags=_tag_list(props["tags"])
            )

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._put(props)
        return CreateResult(props["parameterName"], _inputs(props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._put(news)
        return UpdateResult(_inputs(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        ssm = client(props["stateDir"], "ssm")
        try:
            ssm.get_parameter(Name=id_)
        except ssm.exceptions.ParameterNotFound:
            return ReadResult(None, {})
        return ReadResult(id_, _inputs(props))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        ssm = client(props["stateDir"], "ssm")
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=id_)


class Parameter(Resource, module="edgeship", name="Parameter"):
    """An SSM SecureString parameter: the origin authorizer's accepted values, as on AWS."""

    parameterName: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            _ParameterProvider(), name, props,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"])),
        )  # fmt: skip


# -- provisioned concurrency on `live` (the emulator's own: orchestrator/local/provisioned.py) --


class _ProvisionedConcurrencyProvider(_Provider):
    UPDATE = ("executions",)
    REPLACE = ("functionName", "qualifier")
    READY_WAIT_S = 60.0  # the emulator allocates in a second or two; AWS's provider waits too

    def _put(self, props: dict[str, Any]) -> dict[str, Any]:
        import time

        lam = client(props["stateDir"], "lambda")
        where = {"FunctionName": props["functionName"], "Qualifier": props["qualifier"]}
        lam.put_provisioned_concurrency_config(
            **where, ProvisionedConcurrentExecutions=int(props["executions"])
        )
        deadline = time.monotonic() + self.READY_WAIT_S
        while (got := lam.get_provisioned_concurrency_config(**where))["Status"] == "IN_PROGRESS":
            if time.monotonic() > deadline:
                break  # still allocating: a release waits for READY itself (orchestrator/release/traffic.py)
            time.sleep(0.2)
        if got["Status"] == "FAILED":
            raise RuntimeError(
                f"provisioned concurrency on {props['qualifier']} FAILED: {got.get('StatusReason')}"
            )
        return _inputs(props)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['functionName']}:{props['qualifier']}", self._put(props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._put(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        lam = client(props["stateDir"], "lambda")
        try:
            got = lam.get_provisioned_concurrency_config(
                FunctionName=props["functionName"], Qualifier=props["qualifier"]
            )
        except (
            lam.exceptions.ProvisionedConcurrencyConfigNotFoundException,
            lam.exceptions.ResourceNotFoundException,
        ):
            return ReadResult(None, {})
        return ReadResult(
            id_, {**_inputs(props), "executions": got["RequestedProvisionedConcurrentExecutions"]}
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        lam = client(props["stateDir"], "lambda")
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_provisioned_concurrency_config(
                FunctionName=props["functionName"], Qualifier=props["qualifier"]
            )


class ProvisionedConcurrency(Resource, module="edgeship", name="ProvisionedConcurrency"):
    """Provisioned concurrency on an alias (serving.py's `live-provisioned`)."""

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_ProvisionedConcurrencyProvider(), name, props, opts)


# -- the local edge daemon ------------------------------------------------------------------


class _EdgeProvider(_Provider):
    # The value CloudFront sends changes without a restart (a rotation must not drop a
    # request); the accepted ones are the Parameter's, read by the edge's authorizer.
    ORIGIN = ("originSent",)
    UPDATE = (
        "emulatorUrl", "functionName", "cacheTtlS", "region", "revision", "metricDelayS", "originParameter",
        "authorizerTtlS", *ORIGIN,
    )  # fmt: skip

    @staticmethod
    def _start(props: dict[str, Any]) -> dict[str, Any]:
        from orchestrator.local import daemon, edge_port

        state_dir = Path(props["stateDir"])
        _write_origin(props)

        def argv(port: int) -> list[str]:
            return [
                daemon.python(), "-m", "orchestrator.local.edge", "--state-dir", str(state_dir),
                "--emulator", props["emulatorUrl"], "--function", props["functionName"], "--port", str(port),
                "--cache-ttl", str(_norm(props["cacheTtlS"])), "--region", props["region"],
                "--metric-delay", str(_norm(props.get("metricDelayS") or 0)),
                "--origin-parameter", props["originParameter"], "--authorizer-ttl", str(_norm(props["authorizerTtlS"])),
            ]  # fmt: skip

        def ours(edge: daemon.Daemon) -> bool:
            # Another project's edge can answer on the port ours was meant to take (both
            # picked 8787 at once): only an edge reporting our process's pid is ours.
            try:
                with urllib.request.urlopen(edge.url + "/_edgeship/status", timeout=2) as response:
                    return bool(json.loads(response.read()).get("pid") == edge.pid)
            except (OSError, ValueError):
                return False

        # Detached (own session, output to edge.log): the engine does not wait for it. It
        # outlives this provider process, so none of the engine's variables go with it (the
        # stack's passphrase among them), nor the provider's no-bytecode setting.
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PULUMI_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        # The port the edge had last time (its URL is in the stack's outputs, and in the
        # user's bookmarks and scripts), else 8787; edge_port.py says when it had to move.
        wanted = edge_port.wanted(state_dir)
        running = daemon.start(
            "edge", argv, state_dir / "edge.json", state_dir / "edge.log", "/_edgeship/status", wanted, env=clean,
            inherit=False, ours=ours,
        )  # fmt: skip
        edge_port.record(state_dir, wanted, running.port)
        return {**_inputs(props), "url": running.url, "pid": running.pid}

    def create(self, props: dict[str, Any]) -> CreateResult:
        from orchestrator.local import daemon

        daemon.stop(Path(props["stateDir"]) / "edge.json")  # one edge per environment
        return CreateResult("local-edge", self._start(props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        from orchestrator.local import daemon

        changed = set(self.changed(olds, news, self.UPDATE))
        running = daemon.read(Path(news["stateDir"]) / "edge.json")
        if changed <= set(self.ORIGIN) and running is not None and running.pid == _norm(olds.get("pid")):
            # As CloudFront and the authorizer take a new header value: in place, no restart.
            _write_origin(news)
            urllib.request.urlopen(
                urllib.request.Request(running.url + "/_edgeship/origin", method="POST"), timeout=10
            ).close()
            return UpdateResult({**_inputs(news), "url": olds["url"], "pid": olds["pid"]})
        daemon.stop(Path(news["stateDir"]) / "edge.json")
        return UpdateResult(self._start(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from orchestrator.local import daemon

        # Gone only when its process is: a read (refresh, a preview that refreshes) must
        # never stop an edge, which may be serving a promotion's gate this very second.
        running = daemon.read(Path(props["stateDir"]) / "edge.json")
        if running is None or running.pid != _norm(props.get("pid")):
            return ReadResult(None, {})  # the next `up` starts it again
        return ReadResult(id_, _inputs(props))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        from orchestrator.local import daemon

        daemon.stop(Path(props["stateDir"]) / "edge.json")


def _write_origin(props: dict[str, Any]) -> None:
    """The value the edge sends where it reads it (owner-only; never on its command line)."""
    from orchestrator.local.origin import write_origin

    write_origin(Path(props["stateDir"]), str(props["originSent"]))


class Edge(Resource, module="edgeship", name="Edge"):
    """The local edge daemon: CloudFront and API Gateway in front of the function."""

    url: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_EdgeProvider(), name, {**props, "url": None, "pid": None}, opts)
