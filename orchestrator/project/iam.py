"""The IAM policies of one environment, generated from the names its stack uses.

Pure (no I/O): `policy(names, region=..., account=..., role=..., state=...)` returns an IAM
policy document for

- `deploy`: what `up`, `destroy`, `promote` and the hygiene after a promotion do;
- `preview`: the read-only half of it, and no `ssm:GetParameter*` (a plain preview runs no
  provider Read, so it never reads the origin secret; `preview --refresh` needs the deploy
  role);
- `boundary`: the permissions boundary both function roles carry. The deploy role may
  create those roles and write their inline policies only with this boundary attached
  (`iam:PermissionsBoundary`), so a deploy cannot make a role stronger than the boundary.
  An administrator creates it once (`aws iam create-policy --path /edgeship/ ...`).

Every grant is scoped to the environment's names (orchestrator/config/names.py) where AWS lets a
policy name the resource; the others carry AWS's reason, which `explain()` tabulates (and
docs/ci.md shows). `RESOURCE_ACTIONS` is what the Pulumi provider calls for each resource
type the serving program declares, `ORCHESTRATOR_ACTIONS` what the orchestrator's own boto3
code calls: tests/test_iam.py checks both against the code and evaluates the documents.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.config.names import ROLE_PATH_ROOT, TAG_KEY, ResourceNames
from orchestrator.stacks import statekeys

Role = Literal["deploy", "preview", "boundary"]
ROLES: tuple[Role, ...] = ("deploy", "preview", "boundary")

# Pulumi's `bucket_prefix` appends exactly this many characters (a timestamp and a counter,
# no hyphen): 26 `?` name the bucket exactly, where a `*` would also match the bucket of
# an environment whose base begins with this one's.
BUCKET_SUFFIX_LENGTH = 26

_S3_BUCKET_READS = (
    "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketTagging",
    "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetBucketVersioning",
    "s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment", "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration", "s3:GetEncryptionConfiguration",
    "s3:GetBucketObjectLockConfiguration", "s3:GetBucketPolicy", "s3:GetBucketOwnershipControls",
    "s3:GetBucketPublicAccessBlock",
)  # fmt: skip
_LOG_GROUP = (
    "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
    "logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:TagResource", "logs:UntagResource",
)  # fmt: skip
_API = ("apigateway:POST", "apigateway:GET", "apigateway:PATCH", "apigateway:DELETE")

# What the provider calls to create, read, update and delete each resource type the
# serving program declares. tests/test_iam.py fails when the program declares a type this
# table does not know, and evaluates every action here on the names the program gave.
RESOURCE_ACTIONS: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging",
                             "s3:DeleteObject", "s3:DeleteObjectVersion", *_S3_BUCKET_READS),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ("s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning", "s3:GetBucketVersioning"),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging"),
    "aws:cloudwatch/logGroup:LogGroup": _LOG_GROUP,
    "aws:iam/role:Role": ("iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:UntagRole",
                          "iam:UpdateAssumeRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
                          "iam:ListInstanceProfilesForRole"),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "aws:lambda/function:Function": ("lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                                     "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
                                     "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:PutFunctionConcurrency",
                                     "lambda:DeleteFunctionConcurrency", "lambda:GetFunctionConcurrency",
                                     "lambda:GetFunctionCodeSigningConfig", "lambda:GetRuntimeManagementConfig",
                                     "lambda:ListTags", "lambda:TagResource", "lambda:UntagResource", "iam:PassRole"),
    "aws:lambda/alias:Alias": ("lambda:CreateAlias", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"),
    "aws:lambda/permission:Permission": ("lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"),
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": (
        "lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig"),
    "aws:ssm/parameter:Parameter": ("ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter",
                                    "ssm:DescribeParameters", "ssm:ListTagsForResource", "ssm:AddTagsToResource",
                                    "ssm:RemoveTagsFromResource"),
    "aws:apigatewayv2/api:Api": _API,
    "aws:apigatewayv2/authorizer:Authorizer": _API,
    "aws:apigatewayv2/integration:Integration": _API,
    "aws:apigatewayv2/route:Route": _API,
    # access logging: API Gateway writes through a log delivery and a resource policy
    "aws:apigatewayv2/stage:Stage": (*_API, "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"),
    "aws:cloudfront/cachePolicy:CachePolicy": ("cloudfront:CreateCachePolicy", "cloudfront:GetCachePolicy",
                                               "cloudfront:UpdateCachePolicy", "cloudfront:DeleteCachePolicy"),
    "aws:cloudfront/distribution:Distribution": ("cloudfront:CreateDistribution", "cloudfront:GetDistribution",
                                                 "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
                                                 "cloudfront:TagResource", "cloudfront:UntagResource",
                                                 "cloudfront:ListTagsForResource"),
    "pulumi-python:dynamic:Resource": (),  # the origin secret: made by the engine, no AWS call
}  # fmt: skip

# The orchestrator's own AWS calls (boto3, found in its code by tests/test_iam.py), and
# what a release does besides: the pre-traffic gate's signed requests, the pruning of old
# Lambda versions and code objects after a promotion, the reserved-concurrency check.
ORCHESTRATOR_ACTIONS: tuple[str, ...] = (
    "lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetFunctionConfiguration", "lambda:ListVersionsByFunction",
    "lambda:GetProvisionedConcurrencyConfig", "lambda:ListAliases", "lambda:DeleteFunction",
    "lambda:GetFunctionConcurrency", "lambda:GetAccountSettings",
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:ListBucketVersions",
    "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "cloudfront:CreateInvalidation",
    "execute-api:Invoke",
)  # fmt: skip

# Actions on the model bucket's objects (the rest of the bucket's types act on the bucket).
_OBJECT_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:PutObject",
                   "s3:DeleteObject", "s3:DeleteObjectVersion")  # fmt: skip

# IAM's quota for the inline policies of one role, in characters without whitespace.
INLINE_LIMIT = 10_240

# Condition operators the generated documents use; tests/iam_eval.py implements each.
OPERATORS = frozenset(
    {
        "StringEquals",
        "StringEqualsIfExists",
        "StringNotEquals",
        "StringLike",
        "Null",
        "ForAnyValue:StringEquals",
    }
)

# Verbs of read-only actions (AWS's access levels Read and List; tests/test_iam.py checks
# every preview action against AWS's reference data).
_READ_VERBS = ("Get", "List", "Describe")
# Reads that a preview must not make: the origin secret's values.
_PREVIEW_NEVER = ("ssm:GetParameter",)
# What a preview needs beyond reads: with an awskms:// secrets provider every run decrypts
# the stack's data key (AWS files kms:Decrypt under Write; it changes nothing).
PREVIEW_ALSO = ("kms:Decrypt",)


@dataclass(frozen=True)
class Grant:
    """One statement: `actions` on `resources` (under `condition`), for `roles`. `reason`
    says why a resource is not the environment's own name (AWS's rule)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    roles: frozenset[Role] = frozenset({"deploy", "preview"})
    condition: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str = ""
    effect: Literal["Allow", "Deny"] = "Allow"

    def statement(self, actions: Iterable[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": sorted(self.actions if actions is None else actions),
            "Resource": list(self.resources),
        }
        if self.condition:
            out["Condition"] = self.condition
        return out


def is_read(action: str) -> bool:
    service, verb = action.split(":", 1)
    return verb.startswith(_READ_VERBS) or (service == "apigateway" and verb == "GET")


def _compact(actions: Iterable[str], *reads: str) -> tuple[str, ...]:
    """`actions`, the ones a pattern of `reads` matches replaced by it: each pattern
    matches read-only actions only (tests/test_iam.py checks each against AWS's access
    levels), on the stack's own ARNs. It keeps the deploy policy within IAM's inline quota."""
    kept = [a for a in actions if not any(fnmatch.fnmatchcase(a, r) for r in reads)]
    used = [r for r in reads if any(fnmatch.fnmatchcase(a, r) for a in actions)]
    return tuple(sorted(kept) + used)


def _bucket(names: ResourceNames) -> str:
    return f"arn:aws:s3:::{names.bucket_prefix}{'?' * BUCKET_SUFFIX_LENGTH}"


def _log_groups(region: str, account: str, groups: Iterable[str]) -> tuple[str, ...]:
    arns = [f"arn:aws:logs:{region}:{account}:log-group:{g}" for g in groups]
    # AWS's log-group ARN appears both ways, `...:log-group:NAME` and `...:NAME:*`
    # (streams, and the form older APIs are authorized on): both are listed.
    return tuple(a for arn in arns for a in (arn, f"{arn}:*"))


def grants(names: ResourceNames, *, region: str, account: str) -> list[Grant]:
    """The deploy and preview roles' statements (before the state backend's)."""
    fn_arns = tuple(
        arn
        for function in (names.function, names.authorizer)
        for arn in (
            f"arn:aws:lambda:{region}:{account}:function:{function}",
            f"arn:aws:lambda:{region}:{account}:function:{function}:*",
        )
    )
    roles = tuple(names.role_arn(account, r) for r in (names.function_role, names.authorizer_role))
    boundary = {"StringEquals": {"iam:PermissionsBoundary": names.boundary_arn(account)}}
    apigw = f"arn:aws:apigateway:{region}::"
    cloudfront = f"arn:aws:cloudfront::{account}"
    own_tag = f"aws:ResourceTag/{TAG_KEY}"
    new_tag = f"aws:RequestTag/{TAG_KEY}"
    logs = _log_groups(
        region, account, (names.function_log_group, names.authorizer_log_group, names.api_log_group)
    )
    bucket_actions = tuple(sorted(
        {a for t, acts in RESOURCE_ACTIONS.items() if t.startswith("aws:s3/bucket") for a in acts}
        - set(_OBJECT_ACTIONS)
    ))  # fmt: skip
    lambda_actions = sorted(
        (
            {a for t in RESOURCE_ACTIONS if t.startswith("aws:lambda/") for a in RESOURCE_ACTIONS[t]}
            | {a for a in ORCHESTRATOR_ACTIONS if a.startswith("lambda:")}
        )
        - {"iam:PassRole", "lambda:GetAccountSettings"}
    )
    return [
        Grant("ModelBucket", _compact(bucket_actions, "s3:GetBucket*", "s3:Get*Configuration"), (_bucket(names),)),
        Grant("ModelObjects", _OBJECT_ACTIONS, (f"{_bucket(names)}/*",)),
        Grant("Functions", _compact(lambda_actions, "lambda:Get*", "lambda:List*"), fn_arns),
        Grant("LambdaQuota", ("lambda:GetAccountSettings",), ("*",),
              reason="GetAccountSettings (the account's unreserved concurrency, read before reserving "
                     "some) has no resource type"),
        Grant("FunctionRoles", ("iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:UntagRole",
                                "iam:UpdateAssumeRolePolicy", "iam:GetRolePolicy", "iam:ListRolePolicies",
                                "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"),
              (f"arn:aws:iam::{account}:role{names.role_path}*",)),
        # Above, the roles' own path (only this environment's roles are under it; one ARN
        # instead of two keeps the policy within IAM's inline quota). Below, exact names.
        # The escalation guard: a role (or its inline policy) only with the boundary attached.
        Grant("FunctionRolesBounded", ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"), roles,
              condition=boundary),
        Grant("PassFunctionRoles", ("iam:PassRole",), roles,
              condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}),
        Grant("OriginSecrets", ("ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter",
                                "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource"),
              (f"arn:aws:ssm:{region}:{account}:parameter{names.origin_parameter}",)),
        Grant("FindParameters", ("ssm:DescribeParameters",), ("*",),
              reason="DescribeParameters has no resource type"),
        Grant("LogGroups", tuple(a for a in _LOG_GROUP if a != "logs:DescribeLogGroups"), logs),
        Grant("FindLogGroups", ("logs:DescribeLogGroups",), ("*",),
              reason="DescribeLogGroups has no resource type"),
        Grant("AccessLogDelivery", ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                    "logs:DescribeResourcePolicies"), ("*",),
              reason="the API stage's access logs: API Gateway delivers them through a log delivery and a "
                     "log resource policy, and these actions have no resource type (PutResourcePolicy can "
                     "replace any log resource policy of the account)"),
        Grant("HttpApiCreate", ("apigateway:POST",), (f"{apigw}/apis",),
              condition={"StringEquals": {new_tag: names.base}},
              reason="the API's id is assigned by AWS: a new API must carry the stack's tag"),
        Grant("HttpApiList", ("apigateway:GET",), (f"{apigw}/apis",)),
        Grant("HttpApi", _API, (f"{apigw}/apis/*",),
              reason="API ids are assigned by AWS and HTTP API children (routes, integrations, "
                     "authorizers, stages) do not inherit the API's tags: scoped to HTTP APIs by path "
                     "(no REST APIs, domains or account settings), another stack's tagged API is denied "
                     "(OtherStacksApis)"),
        Grant("HttpApiTags", ("apigateway:POST", "apigateway:DELETE", "apigateway:GET"), (f"{apigw}/tags/*",),
              reason="tagging an API or stage goes through /tags/{arn}; the tag keys are the request's"),
        # Without these, removing another stack's tag (or writing this stack's over it) would
        # lift OtherStacksApis' Deny from that stack's API: the stack never removes its own
        # tag (destroy deletes the API), and never writes another stack's.
        Grant("KeepStackTags", ("apigateway:DELETE",), (f"{apigw}/tags/*",), roles=frozenset({"deploy"}),
              effect="Deny", condition={"ForAnyValue:StringEquals": {"aws:TagKeys": [TAG_KEY]}},
              reason="no stack removes an edgeship:stack tag through the tagging API"),
        Grant("NoOtherStacksTags", ("apigateway:POST",), (f"{apigw}/tags/*",), roles=frozenset({"deploy"}),
              effect="Deny", condition={"StringNotEquals": {new_tag: names.base}, "Null": {new_tag: "false"}},
              reason="no stack writes another stack's edgeship:stack tag"),
        # Unverified on AWS whether a child's aws:ResourceTag is its API's: a child without
        # tags has none (Null true), so this Deny cannot refuse this stack's own calls.
        Grant("OtherStacksApis", ("apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"),
              (f"{apigw}/apis/*",), roles=frozenset({"deploy"}), effect="Deny",
              condition={"StringNotEquals": {own_tag: names.base}, "Null": {own_tag: "false"}},
              reason="API Gateway evaluates aws:ResourceTag only where the resource carries tags: "
                     "another stack's tagged API is refused, an untagged one cannot be told apart"),
        Grant("CandidateRoute", ("execute-api:Invoke",),
              (f"arn:aws:execute-api:{region}:{account}:*/*/*/candidate/*",), roles=frozenset({"deploy"}),
              reason="the pre-traffic gate signs its requests to the candidate route; the API id is "
                     "assigned by AWS and execute-api supports no tag condition"),
        Grant("EdgeCreate", ("cloudfront:CreateDistribution",), ("*",),
              condition={"StringEquals": {new_tag: names.base}},
              reason="CreateDistribution has no resource type: the new distribution must carry the "
                     "stack's tag"),
        # Deploy only: GetDistribution answers with the origin's custom headers, the origin
        # secret among them, and a plain preview reads nothing from the provider.
        Grant("EdgeRead", ("cloudfront:GetDistribution", "cloudfront:ListTagsForResource"),
              (f"{cloudfront}:distribution/*",), roles=frozenset({"deploy"}),
              reason="distribution ids are assigned by AWS (read only)"),
        Grant("Edge", ("cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution",
                       "cloudfront:CreateInvalidation", "cloudfront:UntagResource"),
              (f"{cloudfront}:distribution/*",), condition={"StringEquals": {own_tag: names.base}},
              reason="distribution ids are assigned by AWS: only a distribution tagged with the stack"),
        Grant("EdgeTag", ("cloudfront:TagResource",), (f"{cloudfront}:distribution/*",),
              condition={"StringEquals": {new_tag: names.base}, "StringEqualsIfExists": {own_tag: names.base}},
              reason="distribution ids are assigned by AWS, and creating a distribution with its tags is "
                     "authorised as TagResource on a distribution that has none yet: the new tags must "
                     "name the stack and an existing tag must be the stack's, so a distribution with no "
                     "edgeship:stack tag can be tagged into the stack (then changed); tag every other "
                     "distribution, or deny cloudfront:TagResource on them in an SCP"),
        Grant("CachePolicyCreate", ("cloudfront:CreateCachePolicy",), ("*",),
              reason="CreateCachePolicy has no resource type, and cache policies cannot be tagged"),
        Grant("CachePolicies", ("cloudfront:GetCachePolicy", "cloudfront:UpdateCachePolicy",
                                "cloudfront:DeleteCachePolicy"), (f"{cloudfront}:cache-policy/*",),
              reason="cache policies cannot be tagged and their ids are assigned by AWS"),
        Grant("BakeWatch", ("cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"), ("*",),
              reason="GetMetricData has no resource type; the alarms read are the user's own ([slo] "
                     "alarms in edgeship.toml), not the stack's"),
    ]  # fmt: skip


def boundary_grants(names: ResourceNames, *, region: str, account: str) -> list[Grant]:
    """The most either function role may ever do (its inline policy grants a part of it)."""
    groups = _log_groups(region, account, (names.function_log_group, names.authorizer_log_group))
    return [
        Grant("WriteOwnLogs", ("logs:CreateLogStream", "logs:PutLogEvents"), groups, roles=frozenset({"boundary"})),
        Grant("ReadModels", ("s3:GetObject",), (f"{_bucket(names)}/models/*",), roles=frozenset({"boundary"})),
        Grant("ReadAcceptedSecrets", ("ssm:GetParameter",),
              (f"arn:aws:ssm:{region}:{account}:parameter{names.origin_parameter}",), roles=frozenset({"boundary"})),
        # The SecureString is decrypted with the account's aws/ssm key, whose key policy
        # grants it through SSM; whether a boundary caps a grant a key policy makes to the
        # account is not documented either way, so the boundary allows exactly that use.
        Grant("DecryptThroughSsm", ("kms:Decrypt",), (f"arn:aws:kms:{region}:{account}:key/*",),
              roles=frozenset({"boundary"}),
              condition={"StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"}},
              reason="the aws/ssm key's id is the account's, not the stack's: any key, only through SSM "
                     "(the boundary grants nothing by itself)"),
    ]  # fmt: skip


def state_grants(project: str, env: str, bucket: str, prefix: str) -> list[Grant]:
    """The stack's keys in an `s3://bucket/prefix` backend (orchestrator/stacks/statekeys.py)."""
    keys = statekeys.keys(project, env)
    base = prefix.strip("/")

    def under(pattern: str) -> str:
        return f"{base}/{pattern}" if base else pattern

    def objects(patterns: Iterable[str]) -> tuple[str, ...]:
        return tuple(f"arn:aws:s3:::{bucket}/{under(p)}" for p in patterns)

    return [
        # No s3:prefix condition: S3 answers a GET of a missing key (the stack's tags file,
        # read on every run; meta.yaml on a first `up`) with 404 only to a caller allowed
        # s3:ListBucket, else 403, which the engine takes as a failure; whether a grant
        # narrowed by s3:prefix counts for that check is not documented (a GET has no
        # prefix in its context). Listing shows key names, not contents.
        Grant("StateList", ("s3:ListBucket",), (f"arn:aws:s3:::{bucket}",),
              reason="a missing key answers 404, not 403, only to callers allowed s3:ListBucket "
                     "(the engine reads absent keys on every run); it lists names, not contents"),
        Grant("StateRead", ("s3:GetObject",), objects(keys.read)),
        Grant("StateWrite", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), objects(keys.write),
              roles=frozenset({"deploy"})),
    ]  # fmt: skip


def s3_backend(url: str) -> tuple[str, str] | None:
    """(bucket, prefix) of an `s3://bucket/prefix?query` backend URL, else None."""
    location = statekeys.s3_backend(url)
    return (location.bucket, location.prefix) if location else None


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def secrets_grants(provider: str | None, *, region: str, account: str) -> list[Grant]:
    """The stack's secrets key, when `project.secrets_provider` is `awskms://KEY[?region=R]`
    (KEY: a key id, `alias/NAME` or a key ARN): Pulumi encrypts the stack's data key with
    it once (`up` creates the stack) and decrypts it on every run. None for a passphrase."""
    if not provider or not provider.startswith("awskms://"):
        return []
    key, _, query = provider[len("awskms://") :].partition("?")
    key = key.lstrip("/")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    region = params.get("region", region)
    condition: dict[str, dict[str, Any]] = {}
    if key.startswith("arn:"):
        resource = key
    elif key.startswith("alias/"):
        # Decrypt names no key: an alias is matched on the key's own aliases.
        resource = f"arn:aws:kms:{region}:{account}:key/*"
        condition = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key}}
    else:
        resource = f"arn:aws:kms:{region}:{account}:key/{key}"
    reason = "the stack's secrets key (project.secrets_provider), the project's own and not named after it"
    if condition:
        reason += "; named by its alias, so any key carrying that alias"
    return [
        Grant("SecretsDecrypt", ("kms:Decrypt",), (resource,), condition=condition, reason=reason),
        Grant("SecretsEncrypt", ("kms:Encrypt",), (resource,), roles=frozenset({"deploy"}), condition=condition,
              reason=reason),
    ]  # fmt: skip


def all_grants(
    names: ResourceNames,
    *,
    region: str,
    account: str,
    state: tuple[str, str] | None = None,
    secrets: str | None = None,
) -> list[Grant]:
    extra = state_grants(names.project, names.env, *state) if state else []
    return [
        *grants(names, region=region, account=account),
        *extra,
        *secrets_grants(secrets, region=region, account=account),
        *boundary_grants(names, region=region, account=account),
    ]


def policy(
    names: ResourceNames,
    *,
    region: str,
    account: str,
    role: Role,
    state: tuple[str, str] | None = None,
    secrets: str | None = None,
) -> dict[str, Any]:
    """The IAM policy document of `role` for this environment; `state` is the `s3://`
    backend's (bucket, prefix), None for any other backend (no state statements);
    `secrets` the project's secrets provider (an `awskms://` one adds its key)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    statements = []
    for grant in all_grants(names, region=region, account=account, state=state, secrets=secrets):
        if role not in grant.roles:
            continue
        actions = grant.actions
        if role == "preview":
            actions = tuple(
                a for a in actions if (is_read(a) and not a.startswith(_PREVIEW_NEVER)) or a in PREVIEW_ALSO
            )
            if not actions:
                continue
        statements.append(grant.statement(actions))
    return _document(statements)


def boundary_hint(names: ResourceNames) -> str:
    """How an administrator creates the boundary once (the deploy role cannot)."""
    return (
        f"an administrator creates this boundary once: aws iam create-policy --path {ROLE_PATH_ROOT} "
        f"--policy-name {names.boundary_policy} --policy-document file://boundary.json"
    )


def unscoped(names: ResourceNames, *, region: str, account: str) -> list[dict[str, Any]]:
    """Every grant not scoped to the environment's own names, with AWS's reason."""
    return [
        {**g.statement(), "Reason": g.reason}
        for g in grants(names, region=region, account=account)
        if g.reason
    ]


def explain(names: ResourceNames, *, region: str, account: str) -> str:
    """`unscoped()` as a markdown table (docs/ci.md shows it for a placeholder project)."""
    rows = ["| Sid | actions | resource | condition | why |", "|---|---|---|---|---|"]
    for grant in unscoped(names, region=region, account=account):
        condition = "; ".join(
            f"{op} {key}" for op, keys in grant.get("Condition", {}).items() for key in keys
        )
        rows.append(
            f"| {grant['Effect']} {grant['Sid']} | {', '.join(f'`{a}`' for a in grant['Action'])} | "
            f"{', '.join(f'`{r}`' for r in grant['Resource'])} | {condition or '-'} | {grant['Reason']} |"
        )
    return "\n".join(rows) + "\n"


def oversize(document: dict[str, Any]) -> str | None:
    """Why `document` cannot be a role's inline policy (IAM counts its characters without
    whitespace: 10,240 for all of a role's inline policies), or None."""
    size = len(json.dumps(document, separators=(",", ":")))
    if size <= INLINE_LIMIT:
        return None
    return f"the policy has {size} characters, more than a role's inline policies may ({INLINE_LIMIT})"
