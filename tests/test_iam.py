"""The deploy role documented in docs/ci.md grants what a deploy does: every AWS call the
orchestrator's own code makes (found by reading that code), every action the serving
program's resource types need (the table below, checked to cover every type the program
declares), on the names the program gives its resources."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_serving_program import run_program

# The services the orchestrator process calls on AWS, and their IAM prefixes.
SERVICES = {"lambda": "lambda", "s3": "s3", "cloudwatch": "cloudwatch", "cloudfront": "cloudfront"}
# Where an IAM action is not named after the API operation.
S3_ACTION_OF = {"ListObjectsV2": "ListBucket", "HeadObject": "GetObject", "HeadBucket": "ListBucket"}

_S3 = ["s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:GetBucketTagging", "s3:PutBucketTagging"]
_LOG_GROUP = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DescribeLogGroups",
              "logs:ListTagsForResource", "logs:TagResource"]  # fmt: skip
_API = ["apigateway:POST", "apigateway:GET", "apigateway:PATCH", "apigateway:DELETE"]
# What the provider calls to create, read, update and delete each resource type the
# serving program declares. Keep it in step with programs/serving.py: the test below
# fails when the program declares a type this table does not know.
RESOURCE_ACTIONS: dict[str, list[str]] = {
    "aws:s3/bucket:Bucket": _S3,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ["s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ["s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ["s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"],
    "aws:s3/bucketVersioning:BucketVersioning": ["s3:PutBucketVersioning", "s3:GetBucketVersioning"],
    "aws:s3/bucketPolicy:BucketPolicy": ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
    "aws:s3/bucketObjectv2:BucketObjectv2": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging"],
    "aws:cloudwatch/logGroup:LogGroup": _LOG_GROUP,
    "aws:iam/role:Role": ["iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
                          "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"],
    "aws:iam/rolePolicy:RolePolicy": ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
    "aws:lambda/function:Function": ["lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                                     "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
                                     "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:PutFunctionConcurrency",
                                     "lambda:DeleteFunctionConcurrency", "lambda:GetFunctionCodeSigningConfig",
                                     "lambda:GetRuntimeManagementConfig", "lambda:ListTags", "lambda:TagResource",
                                     "iam:PassRole"],
    "aws:lambda/alias:Alias": ["lambda:CreateAlias", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"],
    "aws:lambda/permission:Permission": ["lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"],
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": [
        "lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig"],
    "aws:ssm/parameter:Parameter": ["ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter",
                                    "ssm:DescribeParameters", "ssm:ListTagsForResource", "ssm:AddTagsToResource"],
    "aws:apigatewayv2/api:Api": _API,
    "aws:apigatewayv2/authorizer:Authorizer": _API,
    "aws:apigatewayv2/integration:Integration": _API,
    "aws:apigatewayv2/route:Route": _API,
    # access logging: API Gateway writes through a log delivery and a resource policy
    "aws:apigatewayv2/stage:Stage": [*_API, "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"],
    "aws:cloudfront/cachePolicy:CachePolicy": ["cloudfront:CreateCachePolicy", "cloudfront:GetCachePolicy",
                                               "cloudfront:UpdateCachePolicy", "cloudfront:DeleteCachePolicy"],
    "aws:cloudfront/distribution:Distribution": ["cloudfront:CreateDistribution", "cloudfront:GetDistribution",
                                                 "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
                                                 "cloudfront:TagResource", "cloudfront:ListTagsForResource"],
    "pulumi-python:dynamic:Resource": [],  # the origin secret: made by the engine, no AWS call
}  # fmt: skip
# What a release does on AWS besides boto3: the pre-traffic gate's signed requests.
RELEASE_ACTIONS = ["execute-api:Invoke"]
# Names the program gives its resources (docs/ci.md's placeholders: REGION, ACCOUNT, ENV).
NAMED = [
    ("s3:PutObject", "arn:aws:s3:::edgeship-ENV-models-20261130abcdef/promotions/ENV/current.json"),
    ("lambda:UpdateAlias", "arn:aws:lambda:REGION:ACCOUNT:function:edgeship-ENV-infer:live"),
    ("lambda:CreateFunction", "arn:aws:lambda:REGION:ACCOUNT:function:edgeship-ENV-origin"),
    ("iam:PassRole", "arn:aws:iam::ACCOUNT:role/function-role-1a2b3c4"),
    ("iam:PassRole", "arn:aws:iam::ACCOUNT:role/authorizer-role-1a2b3c4"),
    ("ssm:PutParameter", "arn:aws:ssm:REGION:ACCOUNT:parameter/edgeship-ENV/origin-secrets"),
    ("execute-api:Invoke", "arn:aws:execute-api:REGION:ACCOUNT:abc123/$default/POST/candidate/infer"),
]


def deploy_policy() -> list[dict[str, Any]]:
    """The Allow statements of the deploy role's policy in docs/ci.md."""
    text = (REPO / "docs" / "ci.md").read_text()
    after = text[text.index("Permissions the deploy needs") :]
    block = re.search(r"```json\n(.*?)```", after, re.S)
    assert block, "docs/ci.md: no JSON policy after 'Permissions the deploy needs'"
    statements = json.loads(block.group(1))["Statement"]
    return [s for s in statements if s["Effect"] == "Allow"]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granted(policy: list[dict[str, Any]], action: str, resource: str | None = None) -> bool:
    """True when some statement allows `action` (on `resource`, when given)."""
    for statement in policy:
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in _as_list(statement["Action"])):
            continue
        if resource is None or any(fnmatch.fnmatchcase(resource, p) for p in _as_list(statement["Resource"])):
            return True
    return False


def boto3_actions(root: Path) -> set[str]:
    """IAM actions of the AWS API calls in the orchestrator's code: every `x.method(...)` and
    `x.get_paginator("method")` whose name is an operation of a service it calls.
    orchestrator/local/ is left out: it speaks to the emulator only."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            name = S3_ACTION_OF.get(operation, operation) if service == "s3" else operation
            operations.setdefault(xform_name(operation), set()).add(f"{prefix}:{name}")
    called: set[str] = set()
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
                if node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                    called.add(str(node.args[0].value))
    return {action for name in called for action in operations.get(name, ())}


def test_the_orchestrators_own_calls_are_found() -> None:
    # the derivation itself: a few calls we know the release makes
    assert {"lambda:UpdateAlias", "lambda:ListVersionsByFunction", "s3:PutObject", "s3:GetObject",
            "cloudwatch:GetMetricData", "cloudfront:CreateInvalidation"} <= boto3_actions(REPO / "orchestrator")  # fmt: skip


def test_the_deploy_role_grants_every_call_the_orchestrator_makes() -> None:
    policy = deploy_policy()
    missing = sorted(
        a for a in boto3_actions(REPO / "orchestrator") | set(RELEASE_ACTIONS) if not granted(policy, a)
    )
    assert missing == [], f"docs/ci.md's deploy role lacks {missing}"


def test_the_deploy_role_grants_what_the_programs_resources_need() -> None:
    declared = {r.typ for r in run_program({"provisionedConcurrency": "2"}).resources}
    unknown = declared - set(RESOURCE_ACTIONS)
    assert unknown == set(), f"add these resource types to RESOURCE_ACTIONS: {sorted(unknown)}"
    policy = deploy_policy()
    missing = sorted({a for t in declared for a in RESOURCE_ACTIONS[t] if not granted(policy, a)})
    assert missing == [], f"docs/ci.md's deploy role lacks {missing}"


@pytest.mark.parametrize(("action", "resource"), NAMED, ids=[f"{a}-{r.rsplit(':', 1)[-1]}" for a, r in NAMED])
def test_the_deploy_role_covers_the_names_the_program_uses(action: str, resource: str) -> None:
    assert granted(deploy_policy(), action, resource), f"docs/ci.md: {action} is not granted on {resource}"


def test_a_missing_action_is_reported() -> None:
    # the check itself can fail: drop the candidate route's statement
    policy = [s for s in deploy_policy() if s.get("Sid") != "CandidateRoute"]
    assert not granted(policy, "execute-api:Invoke")
