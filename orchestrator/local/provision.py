"""Creates the serving stack's resources in the emulator with boto3, idempotently.

The local environment does not run programs/serving.py (Pulumi's AWS provider cannot
be installed without internet access); it creates an emulated copy of the parts a
release touches, for rehearsal (private encrypted versioned bucket, model object, role, function, published versions, `live` and
`candidate` aliases). The HTTP API and CloudFront are played by the local edge.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.artifacts import model_artifact, zip_tree

ROLE_NAME = "edgeship-local-function"
LIVE, CANDIDATE = "live", "candidate"


@dataclass(frozen=True)
class LocalStack:
    """Names of the emulated resources of one local environment."""

    function_name: str
    bucket: str

    @staticmethod
    def for_project(project: str) -> LocalStack:
        """Fixed names: one local environment per project directory."""
        return LocalStack(function_name=f"{project}-local-infer", bucket=f"{project}-local-models")


@dataclass(frozen=True)
class Deployment:
    """What a deploy did: green is the version it published, blue what `live` serves."""

    blue: str | None
    green: str
    changed: bool
    model_sha256: str
    code_sha256: str


def code_store(state_dir: Path) -> Path:
    """Where each published version's zip is kept, by sha256 (moto keeps no code)."""
    return state_dir / "code"


def hex_of(code_sha256_b64: str) -> str:
    """Lambda reports CodeSha256 as base64; the store is keyed by hex."""
    return base64.b64decode(code_sha256_b64).hex()


def deploy(
    lam: Any,
    s3: Any,
    iam: Any,
    stack: LocalStack,
    *,
    state_dir: Path,
    function_dir: Path,
    model_path: Path,
    memory_mb: int,
    timeout_s: int,
) -> Deployment:
    """Create or update everything; publish a version when code, model or config changed."""
    model = model_artifact(model_path)
    _bucket(s3, stack.bucket)
    model_key = f"models/{model.sha256}.tar.gz"
    # Keys are content hashes: an object already there holds these bytes (or was
    # tampered with, which the function's sha256 check exists to catch).
    if not _exists(s3, stack.bucket, model_key):
        s3.put_object(Bucket=stack.bucket, Key=model_key, Body=model.path.read_bytes())

    store = code_store(state_dir)
    # The function's own modules only: dependencies come from the host's environment,
    # and sample data is not code.
    source = state_dir / "staging" / "src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for module in sorted(function_dir.glob("*.py")):
        shutil.copy2(module, source / module.name)
    staged = state_dir / "staging" / "code.zip"
    package = zip_tree([(source, "")], staged)
    zip_path = store / f"{package.artifact.sha256}.zip"
    store.mkdir(parents=True, exist_ok=True)
    shutil.move(staged, zip_path)
    code = zip_path.read_bytes()

    role_arn = _role(iam, stack)
    env_vars = {
        "MODEL_URI": f"s3://{stack.bucket}/{model_key}",
        "MODEL_SHA256": model.sha256,
        "ORIGIN_VERIFY_SECRET": _origin_secret(lam, stack.function_name),
    }
    config = {
        "Runtime": "python3.12", "Role": role_arn, "Handler": "handler.handler", "MemorySize": memory_mb,
        "Timeout": timeout_s, "Environment": {"Variables": env_vars}, "Architectures": ["x86_64"],
    }  # fmt: skip
    existing = _config(lam, stack.function_name)
    if existing is None:
        created = lam.create_function(
            FunctionName=stack.function_name, Code={"ZipFile": code}, Publish=True, **config
        )
        green = created["Version"]
        for alias in (LIVE, CANDIDATE):
            lam.create_alias(FunctionName=stack.function_name, Name=alias, FunctionVersion=green)
        return Deployment(None, green, True, model.sha256, package.artifact.sha256)

    blue = lam.get_alias(FunctionName=stack.function_name, Name=LIVE)["FunctionVersion"]
    latest = _latest_published(lam, stack.function_name)
    same_code = latest is not None and hex_of(latest["CodeSha256"]) == package.artifact.sha256
    same_env = latest is not None and latest.get("Environment", {}).get("Variables") == env_vars
    if same_code and same_env and latest is not None:
        return Deployment(blue, latest["Version"], False, model.sha256, package.artifact.sha256)
    lam.update_function_code(FunctionName=stack.function_name, ZipFile=code)
    lam.update_function_configuration(
        FunctionName=stack.function_name, **{k: v for k, v in config.items() if k != "Architectures"}
    )
    green = lam.publish_version(FunctionName=stack.function_name)["Version"]
    # `candidate` always follows the newest version, as the Pulumi program does.
    lam.update_alias(FunctionName=stack.function_name, Name=CANDIDATE, FunctionVersion=green)
    return Deployment(blue, green, True, model.sha256, package.artifact.sha256)


def _bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except s3.exceptions.ClientError:
        pass
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )  # fmt: skip
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # No TLS-only bucket policy here: moto does not evaluate policy conditions and would
    # deny every request. The emulator serves HTTPS only, so access is TLS regardless.


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def _role(iam: Any, stack: LocalStack) -> str:
    try:
        return str(iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        pass
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{stack.bucket}/models/*"}
        ],
    }
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="read-models", PolicyDocument=json.dumps(policy))
    return str(arn)


def _config(lam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(lam.get_function_configuration(FunctionName=name))
    except lam.exceptions.ResourceNotFoundException:
        return None


def _origin_secret(lam: Any, name: str) -> str:
    # Generated once, then kept: like the stack's OriginSecret resource.
    existing = _config(lam, name)
    if existing:
        current = existing.get("Environment", {}).get("Variables", {}).get("ORIGIN_VERIFY_SECRET")
        if current:
            return str(current)
    return secrets.token_urlsafe(32)


def _latest_published(lam: Any, name: str) -> dict[str, Any] | None:
    versions = [
        v for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=name)
        for v in page["Versions"] if v["Version"] != "$LATEST"
    ]  # fmt: skip
    return max(versions, key=lambda v: int(v["Version"])) if versions else None
