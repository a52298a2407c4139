"""The policies orchestrator/project/iam.py generates grant what a deploy does, and nothing more.

Judged three ways: what the code calls (the orchestrator's boto3 calls, found by reading its
code; the actions of every resource type the serving program declares, run under Pulumi's
mocks) is allowed on the ARNs built from the names the program actually gave (its recorded
inputs, not orchestrator/config/names.py, so program and policy cannot drift apart); AWS's Service
Authorization Reference (as policy_sentry ships it) for access levels, ARN formats and
condition keys; and tests/iam_eval.py, an evaluator after AWS's evaluation logic, for the
escalation paths that must stay closed.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.names import TAG_KEY, ResourceNames
from orchestrator.project import iam
from tests import iam_eval
from tests.conftest import REPO
from tests.test_serving_program import Mocks, run_program

REGION, ACCOUNT = "eu-west-1", "111111111111"
STATE = ("my-state", "teams/ml")
SECRETS = "awskms://alias/edgeship-state?region=eu-central-1"
# The services the orchestrator process calls on AWS, and their IAM prefixes.
SERVICES = {"lambda": "lambda", "s3": "s3", "cloudwatch": "cloudwatch", "cloudfront": "cloudfront"}
# Where an IAM action is not named after the API operation.
S3_ACTION_OF = {"ListObjectsV2": "ListBucket", "HeadObject": "GetObject", "HeadBucket": "ListBucket",
                "ListObjectVersions": "ListBucketVersions", "DeleteObjects": "DeleteObject"}  # fmt: skip
# Operations two services share a method name for: the scan (by name) finds both; the
# orchestrator calls the first (prune.py's lambda delete_function) and manages no
# CloudFront Functions.
SAME_NAME = {"cloudfront:DeleteFunction": "lambda:DeleteFunction"}
# Escalation actions no generated policy may grant, on any resource.
NEVER = ("iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary",
         "iam:DeleteRolePermissionsBoundary", "iam:CreatePolicy", "iam:CreatePolicyVersion",
         "iam:SetDefaultPolicyVersion", "iam:DeletePolicyVersion", "iam:UpdateRole", "iam:CreateUser",
         "iam:PutUserPolicy", "iam:CreateAccessKey", "sts:AssumeRole", "s3:PutBucketAcl")  # fmt: skip
# Pulumi's bucket_prefix suffix: 26 characters (a timestamp and a counter).
BUCKET_SUFFIX = "20261207020304050600000001"


def boto3_actions(root: Path) -> set[str]:
    """IAM actions of the AWS API calls in the orchestrator's code: every `x.method(...)` and
    `x.get_paginator("method")` whose name is an operation of a service it calls.
    orchestrator/local/ is left out: it speaks to the emulator only; so are the payload packages
    (programs: the Pulumi programs declare resources, the engine calls AWS for them)."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            name = S3_ACTION_OF.get(operation, operation) if service == "s3" else operation
            operations.setdefault(xform_name(operation), set()).add(f"{prefix}:{name}")
    called: set[str] = set()
    left_out = {"local", "programs", "loadtests"}
    for path in sorted(p for p in root.rglob("*.py") if not left_out & set(p.relative_to(root).parts)):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
                if node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                    called.add(str(node.args[0].value))
    found = {action for name in called for action in operations.get(name, ())}
    return {a for a in found if SAME_NAME.get(a) not in found}


# -- AWS's reference data ------------------------------------------------------------------


@cache
def reference(action: str) -> list[dict[str, Any]]:
    """policy_sentry's rows for one action (one per resource type, `*` for none)."""
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    rows = get_action_data(service, name)
    return list(rows.get(service, [])) if rows else []


def access_level(action: str) -> str:
    rows = reference(action)
    assert rows, f"{action} is not in AWS's Service Authorization Reference"
    return str(rows[0]["access_level"])


def mutating(action: str) -> bool:
    return access_level(action) not in ("Read", "List")


@cache
def expand(pattern: str) -> tuple[str, ...]:
    """The actions an Action entry names (a wildcard: every action of the service it matches)."""
    if "*" not in pattern and "?" not in pattern:
        return (pattern,)
    from policy_sentry.querying.actions import get_actions_for_service

    found = [
        a for a in get_actions_for_service(pattern.split(":")[0]) if iam_eval._glob(pattern, a, case=False)
    ]
    assert found, f"{pattern} matches no action"
    return tuple(found)


# Placeholders whose values hold `/` (or `:`); others stop at `/`.
_PATHLIKE = {"ObjectName", "RoleNameWithPath", "LogGroupName", "ParameterNameWithoutLeadingSlash",
             "ApiSpecificResourcePath", "FunctionName"}  # fmt: skip


def _format_regex(arn_format: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", arn_format)
    regex = "".join(
        ("aws" if p == "${Partition}" else ".+" if p[2:-1] in _PATHLIKE else "[^/]+")
        if p.startswith("${")
        else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def resource_formats(action: str) -> list[re.Pattern[str]]:
    return [
        _format_regex(r["resource_arn_format"]) for r in reference(action) if r["resource_arn_format"] != "*"
    ]


def condition_keys(action: str) -> set[str]:
    return {k for r in reference(action) for k in r["condition_keys"]}


# -- the names the program gave, as ARNs ---------------------------------------------------

Target = tuple[str, Mapping[str, str]]  # (ARN, request context)


def targets(mocks: Mocks) -> dict[str, list[Target]]:
    """Concrete ARNs (and the request context AWS would see) of each resource type the
    program declared, from its recorded inputs."""
    ins = {typ: [r.inputs for r in mocks.of_type(typ)] for typ in {r.typ for r in mocks.resources}}
    (bucket_in,) = ins["aws:s3/bucket:Bucket"]
    bucket = f"arn:aws:s3:::{bucket_in['bucketPrefix']}{BUCKET_SUFFIX}"
    keys = [o["key"] for o in ins.get("aws:s3/bucketObjectv2:BucketObjectv2", [])]
    s3 = [(bucket, {}), *((f"{bucket}/{k}", {}) for k in [*keys, "promotions/dev/current.json"])]
    functions = [
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{f['name']}{q}", {})
        for f in ins["aws:lambda/function:Function"]
        for q in ("", ":live", ":7")
    ]
    roles = [
        (
            f"arn:aws:iam::{ACCOUNT}:role{r.get('path', '/')}{r.get('name')}",
            {"iam:PassedToService": "lambda.amazonaws.com", **_boundary(r)},
        )
        for r in ins["aws:iam/role:Role"]
    ]
    groups = [
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{g['name']}{s}", {})
        for g in ins["aws:cloudwatch/logGroup:LogGroup"]
        for s in ("", ":*")
    ]
    (api_in,) = ins["aws:apigatewayv2/api:Api"]
    apigw = f"arn:aws:apigateway:{REGION}::"
    api = [
        (f"{apigw}/apis", _tags(api_in, "RequestTag")),
        (f"{apigw}/apis/abc123", _tags(api_in, "ResourceTag")),
    ]
    children = [
        (f"{apigw}/apis/abc123/{c}{i}", {})
        for c in ("routes", "integrations", "authorizers")
        for i in ("", "/c1")
    ]
    stage = [(f"{apigw}/apis/abc123/stages{i}", {}) for i in ("", "/$default")]
    stage += [(f"{apigw}/tags/arn%3Aaws%3Aapigateway", {})]
    (dist_in,) = ins["aws:cloudfront/distribution:Distribution"]
    distribution = [
        ("*", _tags(dist_in, "RequestTag")),
        (f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE",
         {**_tags(dist_in, "ResourceTag"), **_tags(dist_in, "RequestTag")}),
    ]  # fmt: skip
    parameters = [
        (f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{p['name']}", {})
        for p in ins["aws:ssm/parameter:Parameter"]
    ]
    out: dict[str, list[Target]] = {typ: [("*", {})] for typ in ins}
    for typ in ins:
        if typ.startswith("aws:s3/"):
            out[typ] += s3
        elif typ.startswith("aws:lambda/"):
            out[typ] += functions + roles
        elif typ.startswith("aws:iam/"):
            out[typ] += roles
    out["aws:cloudwatch/logGroup:LogGroup"] += groups
    out["aws:apigatewayv2/api:Api"] += api
    for typ in ("authorizer:Authorizer", "integration:Integration", "route:Route"):
        out[f"aws:apigatewayv2/{typ}"] += children
    out["aws:apigatewayv2/stage:Stage"] += stage
    out["aws:cloudfront/distribution:Distribution"] = distribution  # created with its tags
    out["aws:cloudfront/cachePolicy:CachePolicy"] += [(f"arn:aws:cloudfront::{ACCOUNT}:cache-policy/c1", {})]
    out["aws:ssm/parameter:Parameter"] += parameters
    # what the orchestrator itself touches: all of the above, and the candidate route
    out["orchestrator"] = [
        *s3, *functions, *distribution[1:], ("*", {}),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/$default/POST/candidate/infer", {}),
        (f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:users-own-alarm", {}),
    ]  # fmt: skip
    return out


def _boundary(role: Mapping[str, Any]) -> dict[str, str]:
    found = role.get("permissionsBoundary")
    return {"iam:PermissionsBoundary": found} if found else {}


def _tags(inputs: Mapping[str, Any], kind: str) -> dict[str, str]:
    value = (inputs.get("tags") or {}).get(TAG_KEY)
    return {f"aws:{kind}/{TAG_KEY}": value} if value else {}


def requests(mocks: Mocks) -> Iterator[tuple[str, str, Mapping[str, str]]]:
    """(action, ARN, context) of every call a deploy of this program makes."""
    found = targets(mocks)
    asked = [(t, a) for t in found if t != "orchestrator" for a in iam.RESOURCE_ACTIONS[t]]
    asked += [("orchestrator", a) for a in iam.ORCHESTRATOR_ACTIONS]
    for typ, action in asked:
        formats = resource_formats(action)
        hits = [
            (arn, ctx) for arn, ctx in found[typ] if arn != "*" and any(f.fullmatch(arn) for f in formats)
        ]
        if not formats:
            hits = [(arn, ctx) for arn, ctx in found[typ] if arn == "*"]
        assert hits, f"{action} ({typ}): no ARN of the program matches AWS's formats"
        for arn, ctx in hits:
            yield action, arn, ctx


def config(project: str, env: str) -> dict[str, str]:
    return {
        "provisionedConcurrency": "2",
        "boundaryArn": ResourceNames.of(project, env).boundary_arn(ACCOUNT),
    }


@cache
def program(project: str = "edgeship", env: str = "dev") -> Mocks:
    return run_program(config(project, env), project=project, stack=env)


def generated(
    role: iam.Role, project: str = "edgeship", env: str = "dev", secrets: str | None = SECRETS
) -> dict[str, Any]:
    names = ResourceNames.of(project, env)
    return iam.policy(names, region=REGION, account=ACCOUNT, role=role, state=STATE, secrets=secrets)


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


# -- every call is covered ------------------------------------------------------------------


def test_the_orchestrators_own_calls_are_found_and_listed() -> None:
    called = boto3_actions(REPO / "orchestrator")
    # the derivation itself: a few calls we know the release makes
    assert {"lambda:UpdateAlias", "lambda:ListVersionsByFunction", "s3:PutObject", "s3:GetObject",
            "cloudwatch:GetMetricData", "cloudfront:CreateInvalidation"} <= called  # fmt: skip
    assert called - set(iam.ORCHESTRATOR_ACTIONS) == set(), "add them to iam.ORCHESTRATOR_ACTIONS"


def test_every_resource_type_the_program_declares_is_in_the_table() -> None:
    declared = {r.typ for r in program().resources}
    assert declared - set(iam.RESOURCE_ACTIONS) == set(), "add these types to iam.RESOURCE_ACTIONS"


def test_every_action_is_in_aws_reference() -> None:
    actions = {a for acts in iam.RESOURCE_ACTIONS.values() for a in acts} | set(iam.ORCHESTRATOR_ACTIONS)
    assert sorted(a for a in actions if not reference(a)) == []


def test_the_deploy_role_allows_every_call_on_the_programs_names() -> None:
    deploy = generated("deploy")
    denied = sorted(
        {
            f"{a} {arn} {dict(ctx)}"
            for a, arn, ctx in requests(program())
            if not iam_eval.allowed([deploy], a, arn, ctx)
        }
    )
    assert denied == []


def test_a_call_missing_from_the_policy_is_reported() -> None:
    # the check can fail: without the Functions statement UpdateFunctionCode is denied
    deploy = generated("deploy")
    cut = {**deploy, "Statement": [s for s in statements(deploy) if s["Sid"] != "Functions"]}
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:edgeship-dev-infer"
    assert iam_eval.allowed([deploy], "lambda:UpdateFunctionCode", arn)
    assert not iam_eval.allowed([cut], "lambda:UpdateFunctionCode", arn)


# -- scoped, or AWS's reason -----------------------------------------------------------------


def _own(resource: str, names: ResourceNames) -> bool:
    scoped = (names.function, names.authorizer, names.bucket_prefix, names.role_path, names.origin_parameter,
              names.function_log_group, names.authorizer_log_group, names.api_log_group, STATE[0])  # fmt: skip
    return any(s in resource for s in scoped)


@pytest.mark.parametrize("role", ["deploy", "boundary"])
def test_every_mutating_action_is_scoped_to_the_names_or_has_a_reason(role: iam.Role) -> None:
    names = ResourceNames.of("edgeship", "dev")
    every = iam.all_grants(names, region=REGION, account=ACCOUNT, state=STATE, secrets=SECRETS)
    reasons = {g.sid: g.reason for g in every}
    loose = [
        (s["Sid"], a, r)
        for s in statements(generated(role))
        if s["Effect"] == "Allow"
        for pattern in s["Action"]
        for a in expand(pattern)
        for r in s["Resource"]
        if mutating(a) and not _own(r, names) and not reasons[s["Sid"]]
    ]
    assert loose == []
    # and an action with no resource type is granted on `*` only (an ARN would never match)
    wrong = [(s["Sid"], a) for s in statements(generated(role)) for a in s["Action"]
             if "*" not in a and not resource_formats(a) and s["Resource"] != ["*"]]  # fmt: skip
    assert wrong == []


def test_wildcard_actions_name_reads_only() -> None:
    # the deploy policy shortens some lists of reads on the stack's own ARNs to patterns
    patterns = {p for role in iam.ROLES for s in statements(generated(role)) for p in s["Action"] if "*" in p}
    assert patterns == {"s3:GetBucket*", "s3:Get*Configuration", "lambda:Get*", "lambda:List*"}
    assert sorted(a for p in patterns for a in expand(p) if mutating(a)) == []


def test_every_condition_key_is_valid_for_its_actions_and_evaluated_here() -> None:
    for role in iam.ROLES:
        for s in statements(generated(role)):
            for operator, keys in s.get("Condition", {}).items():
                assert operator in iam.OPERATORS and iam_eval.operator_supported(operator), operator
                for key in keys:
                    generic = re.sub(r"Tag/.*", "Tag/${TagKey}", key)
                    bad = [
                        a
                        for pattern in s["Action"]
                        for a in expand(pattern)
                        if generic not in condition_keys(a)
                    ]
                    assert bad == [], f"{s['Sid']}: {key} is not a condition key of {bad}"


def test_no_policy_grants_an_escalation_action_anywhere() -> None:
    for role in iam.ROLES:
        for s in statements(generated(role)):
            if s["Effect"] != "Allow":
                continue
            for never in NEVER:
                assert not any(iam_eval._glob(p, never, case=False) for p in s["Action"]), (
                    role,
                    s["Sid"],
                    never,
                )


# -- the escalation paths, evaluated ---------------------------------------------------------

NAMES = ResourceNames.of("edgeship", "dev")
OTHER = ResourceNames.of("other", "dev")
FN_ROLE = NAMES.role_arn(ACCOUNT, NAMES.function_role)
BOUNDARY = NAMES.boundary_arn(ACCOUNT)


@pytest.mark.parametrize("action", ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"])
def test_a_role_is_created_or_changed_only_with_the_boundary(action: str) -> None:
    deploy = generated("deploy")
    assert not iam_eval.allowed([deploy], action, FN_ROLE, {})
    assert not iam_eval.allowed(
        [deploy], action, FN_ROLE, {"iam:PermissionsBoundary": OTHER.boundary_arn(ACCOUNT)}
    )
    assert iam_eval.allowed([deploy], action, FN_ROLE, {"iam:PermissionsBoundary": BOUNDARY})
    other_role = OTHER.role_arn(ACCOUNT, OTHER.function_role)
    assert not iam_eval.allowed([deploy], action, other_role, {"iam:PermissionsBoundary": BOUNDARY})


@pytest.mark.parametrize("action", NEVER)
@pytest.mark.parametrize("resource", [FN_ROLE, BOUNDARY, "*"])
def test_escalation_actions_are_denied(action: str, resource: str) -> None:
    ctx = {"iam:PermissionsBoundary": BOUNDARY, "iam:PolicyARN": BOUNDARY}
    assert not iam_eval.allowed([generated("deploy")], action, resource, ctx)


def test_roles_are_passed_only_to_lambda_and_only_the_projects() -> None:
    deploy = generated("deploy")
    assert iam_eval.allowed(
        [deploy], "iam:PassRole", FN_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}
    )
    assert not iam_eval.allowed(
        [deploy], "iam:PassRole", FN_ROLE, {"iam:PassedToService": "ec2.amazonaws.com"}
    )
    assert not iam_eval.allowed([deploy], "iam:PassRole", FN_ROLE, {})
    other = OTHER.role_arn(ACCOUNT, OTHER.function_role)
    assert not iam_eval.allowed(
        [deploy], "iam:PassRole", other, {"iam:PassedToService": "lambda.amazonaws.com"}
    )


def test_another_projects_function_distribution_and_api_are_out_of_reach() -> None:
    deploy = generated("deploy")
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{OTHER.function}"
    assert not iam_eval.allowed([deploy], "lambda:UpdateFunctionCode", fn)
    # the base `edgeship-dev` is a prefix of `edgeship-dev-2`: exact names keep them apart
    near = ResourceNames.of("edgeship", "dev-2")
    near_fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{near.function}"
    assert not iam_eval.allowed([deploy], "lambda:UpdateFunctionCode", near_fn)
    near_bucket = f"arn:aws:s3:::{near.bucket_prefix}{BUCKET_SUFFIX}/models/x"
    assert not iam_eval.allowed([deploy], "s3:PutObject", near_bucket)
    dist = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2OTHER"
    theirs = {f"aws:ResourceTag/{TAG_KEY}": OTHER.base}
    assert not iam_eval.allowed([deploy], "cloudfront:UpdateDistribution", dist, theirs)
    assert not iam_eval.allowed([deploy], "cloudfront:UpdateDistribution", dist, {})
    assert not iam_eval.allowed(
        [deploy], "cloudfront:TagResource", dist, {**theirs, f"aws:RequestTag/{TAG_KEY}": NAMES.base}
    )
    api = f"arn:aws:apigateway:{REGION}::/apis/other1"
    assert not iam_eval.allowed([deploy], "apigateway:DELETE", api, theirs)
    assert iam_eval.allowed([deploy], "apigateway:DELETE", api, {f"aws:ResourceTag/{TAG_KEY}": NAMES.base})
    assert not iam_eval.allowed([deploy], "apigateway:POST", f"arn:aws:apigateway:{REGION}::/apis", {})
    for elsewhere in ("/restapis/r1", "/account", "/domainnames/d.example.com"):
        assert not iam_eval.allowed([deploy], "apigateway:PATCH", f"arn:aws:apigateway:{REGION}::{elsewhere}")
    # nor in two steps: removing their tag (which would lift the Deny above), or overwriting it
    tags = f"arn:aws:apigateway:{REGION}::/tags/{api.replace('/', '%2F')}"
    assert not iam_eval.allowed([deploy], "apigateway:DELETE", tags, {"aws:TagKeys": [TAG_KEY]})
    assert not iam_eval.allowed([deploy], "apigateway:POST", tags, {f"aws:RequestTag/{TAG_KEY}": OTHER.base})
    # while this stack still tags its own API and stage
    assert iam_eval.allowed([deploy], "apigateway:POST", tags, {f"aws:RequestTag/{TAG_KEY}": NAMES.base})
    # residual (EdgeTag's reason, docs/ci.md): a distribution with no edgeship:stack tag can be tagged
    assert iam_eval.allowed(
        [deploy], "cloudfront:TagResource", dist, {f"aws:RequestTag/{TAG_KEY}": NAMES.base}
    )


def test_the_boundary_caps_a_role_whose_inline_policy_allows_everything() -> None:
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    boundary = generated("boundary")
    granted = [(a, r) for s in statements(boundary) for a in s["Action"] for r in s["Resource"]]
    for action, resource in granted:
        concrete = resource.replace("?" * iam.BUCKET_SUFFIX_LENGTH, BUCKET_SUFFIX).replace("*", "m.tar.gz")
        via_ssm = {"kms:ViaService": f"ssm.{REGION}.amazonaws.com"}  # the one conditioned grant
        assert iam_eval.allowed([everything], action, concrete, via_ssm, boundary=boundary)
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd"
    assert not iam_eval.allowed([everything], "kms:Decrypt", key, boundary=boundary)  # not through SSM
    for action, resource in [
        ("s3:PutObject", f"arn:aws:s3:::{NAMES.bucket_prefix}{BUCKET_SUFFIX}/models/m.tar.gz"),
        ("iam:CreateRole", FN_ROLE),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAMES.function}"),
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{OTHER.origin_parameter}"),
        ("s3:GetObject", f"arn:aws:s3:::{NAMES.bucket_prefix}{BUCKET_SUFFIX}/promotions/dev/current.json"),
    ]:
        assert iam_eval.allowed([everything], action, resource)
        assert not iam_eval.allowed([everything], action, resource, boundary=boundary), action


def test_the_function_roles_inline_policies_stay_within_the_boundary() -> None:
    # A grant the program gives a function role beyond the boundary would be denied at run
    # time (a function that cannot read its model): the program's recorded policies, on
    # the program's names, are all allowed under the boundary.
    mocks, boundary = program(), generated("boundary")
    (bucket,) = mocks.of_type("aws:s3/bucket:Bucket")
    mocked_arn = f"arn:aws:s3:::{bucket.name}-bucket"  # the mocks' computed ARN (test_serving_program)
    concrete_arn = f"arn:aws:s3:::{bucket.inputs['bucketPrefix']}{BUCKET_SUFFIX}"
    inline = [
        json.loads(r.inputs["policy"].replace(mocked_arn, concrete_arn))
        for r in mocks.of_type("aws:iam/rolePolicy:RolePolicy")
    ]
    asked = [
        (action, resource.replace("*", "x"))
        for document in inline
        for s in statements(document)
        for action in iam_eval._listed(s["Action"])
        for resource in iam_eval._listed(s["Resource"])
    ]
    assert len(asked) >= 5
    assert [(a, r) for a, r in asked if not iam_eval.allowed(inline, a, r, boundary=boundary)] == []


# -- the preview role --------------------------------------------------------------------------


def test_the_preview_role_reads_only_and_never_the_origin_secret() -> None:
    preview = generated("preview")
    actions = {a for s in statements(preview) for pattern in s["Action"] for a in expand(pattern)}
    assert sorted(a for a in actions if mutating(a)) == list(iam.PREVIEW_ALSO)  # kms:Decrypt
    assert sorted(a for a in actions if a.startswith("ssm:GetParameter")) == []
    assert all(s["Effect"] == "Allow" for s in statements(preview))
    # it reads its stack's state, and lists the backend
    state = [s for s in statements(preview) if s["Sid"].startswith("State")]
    assert {s["Sid"] for s in state} == {"StateList", "StateRead"}


def test_the_state_statements_come_from_statekeys() -> None:
    from orchestrator.stacks import statekeys

    keys = statekeys.keys("edgeship", "dev")
    by_sid = {s["Sid"]: s for s in statements(generated("deploy"))}
    arn = f"arn:aws:s3:::{STATE[0]}/{STATE[1]}/"
    assert by_sid["StateRead"]["Resource"] == [arn + k for k in keys.read]
    assert by_sid["StateWrite"]["Resource"] == [arn + k for k in keys.write]
    # unconditioned: a GET of an absent key must answer 404, not 403 (see iam.state_grants)
    assert "Condition" not in by_sid["StateList"]
    assert by_sid["StateList"]["Resource"] == [f"arn:aws:s3:::{STATE[0]}"]
    for key in keys.read:
        concrete = arn + key.replace("*", "x")
        assert iam_eval.allowed([generated("preview")], "s3:GetObject", concrete)
    for key in keys.write:
        concrete = arn + key.replace("*", "x")
        assert iam_eval.allowed([generated("deploy")], "s3:PutObject", concrete)
        assert not iam_eval.allowed([generated("preview")], "s3:PutObject", concrete)
    other = arn + ".pulumi/stacks/edgeship/prod.json"
    assert not iam_eval.allowed([generated("deploy")], "s3:PutObject", other)


def test_policies_fit_an_inline_role_policy_even_with_the_longest_names() -> None:
    names = ResourceNames.of("a-forty-character-project-name-for-tests", "staging")
    state = (
        "a-state-bucket-with-a-rather-long-name",
        "teams/machine-learning/edgeship",
    )
    for role in iam.ROLES:
        document = iam.policy(
            names, region="ap-southeast-2", account=ACCOUNT, role=role, state=state, secrets=SECRETS
        )
        assert iam.oversize(document) is None
    twice = {"Statement": statements(document) * 12}
    assert "more than a role's inline policies may" in (iam.oversize(twice) or "")


@pytest.mark.parametrize(
    ("provider", "resource"),
    [
        ("awskms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1",
         f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        (f"awskms:///arn:aws:kms:us-east-1:{ACCOUNT}:key/k1", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"),
        (SECRETS, f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/k2"),
    ],
)  # fmt: skip
def test_an_awskms_secrets_provider_adds_its_key(provider: str, resource: str) -> None:
    def policy(role: iam.Role) -> dict[str, Any]:
        return iam.policy(NAMES, region=REGION, account=ACCOUNT, role=role, secrets=provider)

    aliases = {"kms:ResourceAliases": ["alias/other", "alias/edgeship-state"]}
    for role in ("deploy", "preview"):
        assert iam_eval.allowed([policy(role)], "kms:Decrypt", resource, aliases)
    assert iam_eval.allowed([policy("deploy")], "kms:Encrypt", resource, aliases)
    assert not iam_eval.allowed([policy("preview")], "kms:Encrypt", resource, aliases)
    assert not iam_eval.allowed(
        [policy("deploy")], "kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/zz", {}
    )
    if "alias/" in provider:  # the alias is the key's: a key without it is refused
        assert not iam_eval.allowed(
            [policy("deploy")], "kms:Decrypt", resource, {"kms:ResourceAliases": ["alias/x"]}
        )
    passphrase = iam.policy(NAMES, region=REGION, account=ACCOUNT, role="deploy", secrets="passphrase")
    assert not [s for s in statements(passphrase) if any(a.startswith("kms:") for a in s["Action"])]


# -- another project's name (Acceptance 2) -----------------------------------------------------


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize("project", ["My_Project", "a-forty-character-project-name-for-tests"])
def test_a_project_named_otherwise_gets_a_policy_naming_its_own_resources(
    tmp_path: Path, project: str
) -> None:
    assert _cli(tmp_path, "init", "--name", project).returncode == 0
    made = _cli(
        tmp_path, "iam-policy", "--env", "dev", "--role", "deploy", "--backend", "s3://my-state/teams/ml"
    )
    assert made.returncode == 0, made.stderr
    deploy = json.loads(made.stdout)
    assert deploy == generated("deploy", project, secrets=None)  # init's project: a passphrase
    calls = list(requests(program(project)))
    denied = [(a, arn) for a, arn, ctx in calls if not iam_eval.allowed([deploy], a, arn, ctx)]
    assert denied == []
    # the `edgeship` project's own resources (everything scoped by name) are out of reach
    theirs = [(a, arn, ctx) for a, arn, ctx in requests(program()) if "edgeship-dev" in arn]
    assert theirs and [(a, arn) for a, arn, ctx in theirs if iam_eval.allowed([deploy], a, arn, ctx)] == []


def test_the_cli_refuses_a_backend_without_state_statements_and_notes_the_boundarys_creation(
    tmp_path: Path,
) -> None:
    assert _cli(tmp_path, "init", "--name", "demo").returncode == 0
    # without an s3:// backend the role would fail its first job on the state bucket: refused
    refused = _cli(tmp_path, "iam-policy", "--env", "dev", "--role", "preview")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--backend s3://STATE-BUCKET/PREFIX" in refused.stderr and "--no-state" in refused.stderr
    made = _cli(tmp_path, "iam-policy", "--env", "dev", "--role", "preview", "--no-state")
    assert made.returncode == 0
    assert not [s for s in json.loads(made.stdout)["Statement"] if s["Sid"].startswith("State")]
    reasons = _cli(tmp_path, "iam-policy", "--env", "dev", "--role", "deploy", "--explain", "--json")
    assert json.loads(reasons.stdout) == {
        "unscoped": iam.unscoped(ResourceNames.of("demo", "dev"), region=REGION, account=ACCOUNT)
    }
    boundary = _cli(tmp_path, "iam-policy", "--env", "dev", "--role", "boundary")
    assert (
        "aws iam create-policy --path /edgeship/ --policy-name demo-dev-function-boundary" in boundary.stderr
    )
    assert json.loads(boundary.stdout) == generated("boundary", "demo")


# -- the docs ------------------------------------------------------------------------------------


def test_the_reasons_table_in_docs_ci_is_explains() -> None:
    text = (REPO / "docs" / "ci.md").read_text()
    begin, end = "<!-- iam-policy --explain: begin -->\n", "<!-- iam-policy --explain: end -->"
    assert begin in text and end in text
    shown = text[text.index(begin) + len(begin) : text.index(end)]
    assert shown == iam.explain(ResourceNames.of("PROJECT", "ENV"), region="REGION", account="ACCOUNT")
