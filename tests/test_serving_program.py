"""The serving program's resource graph under Pulumi's official mocks (no CLI, no cloud)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from programs import serving


class Mocks(pulumi.runtime.Mocks):
    """Echo inputs back and add the computed outputs the program reads."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.options: dict[str, pulumi.ResourceOptions] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        name = args.name
        computed = {
            "aws:s3/bucket:Bucket": {"bucket": f"{name}-bucket", "arn": f"arn:aws:s3:::{name}-bucket"},
            "aws:cloudwatch/logGroup:LogGroup": {
                "arn": f"arn:aws:logs:eu-west-1:111111111111:log-group:{args.inputs.get('name')}"
            },
            "aws:iam/role:Role": {"arn": "arn:aws:iam::111111111111:role/fn"},
            "aws:lambda/function:Function": {
                "version": "1",
                "arn": "arn:aws:lambda:eu-west-1:111111111111:function:fn",
            },
            "aws:lambda/alias:Alias": {"invokeArn": f"arn:aws:apigateway:invoke/{args.inputs.get('name')}"},
            "aws:apigatewayv2/api:Api": {
                "apiEndpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com",
                "executionArn": "arn:aws:execute-api:eu-west-1:111111111111:abc123",
            },
            "aws:cloudfront/distribution:Distribution": {"domainName": "d111.cloudfront.net"},
            "pulumi-python:dynamic:Resource": {"value": "mock-origin-secret"},
        }.get(args.typ, {})
        outputs.update(computed)
        return f"{name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> dict[str, Any]:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0].inputs


def run_program(config: dict[str, str]) -> Mocks:
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="edgeship", stack="dev", preview=False)
    pulumi.runtime.set_all_config({f"edgeship:{k}": v for k, v in config.items()})

    @pulumi.runtime.test
    def deploy() -> None:
        # Resource options never reach the mocks; a stack transformation sees them.
        def capture(args: pulumi.ResourceTransformationArgs) -> None:
            mocks.options[args.name] = args.opts

        pulumi.runtime.register_stack_transformation(capture)
        serving.program()

    deploy()
    return mocks


FULL = {
    "runtime": "python3.13",
    "architecture": "x86_64",
    "memoryMb": "2048",
    "timeoutS": "5",
    "reservedConcurrency": "50",
    "provisionedConcurrency": "3",
    "cacheTtlS": "120",
    "priceClass": "PriceClass_All",
    "logRetentionDays": "30",
}


@pytest.fixture(scope="module")
def empty() -> Mocks:
    return run_program({})


@pytest.fixture(scope="module")
def full() -> Mocks:
    return run_program(FULL)


def test_bucket_is_private_encrypted_versioned_tls_only(empty: Mocks) -> None:
    block = empty.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    sse = empty.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    versioning = empty.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    ownership = empty.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    policy = json.loads(empty.one("aws:s3/bucketPolicy:BucketPolicy")["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_model_object_is_keyed_by_content_hash(empty: Mocks) -> None:
    import hashlib

    sha = hashlib.sha256(serving.SAMPLE_MODEL.read_bytes()).hexdigest()
    assert empty.one("aws:s3/bucketObjectv2:BucketObjectv2")["key"] == f"models/{sha}.tar.gz"
    env = empty.one("aws:lambda/function:Function")["environment"]["variables"]
    assert env["MODEL_SHA256"] == sha
    assert env["MODEL_URI"] == f"s3://models-bucket/models/{sha}.tar.gz"
    # replacing the object for a new model must keep blue's: a rollback still needs it
    assert empty.options["model"].retain_on_delete is True


def test_role_is_least_privilege(empty: Mocks) -> None:
    trust = json.loads(empty.one("aws:iam/role:Role")["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    policy = json.loads(empty.one("aws:iam/rolePolicy:RolePolicy")["policy"])
    actions = {
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"s3:GetObject", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert not any("*" in a for a in actions)
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["ReadModels"] == "arn:aws:s3:::models-bucket/models/*"
    assert resources["WriteOwnLogs"].endswith("log-group:/aws/lambda/edgeship-dev-infer:*")
    # no managed policies attached: the inline policy above is all the role can do
    assert not any("PolicyAttachment" in r.typ for r in empty.resources)


def test_function_defaults(empty: Mocks) -> None:
    fn = empty.one("aws:lambda/function:Function")
    assert fn["runtime"] == "python3.12" and fn["architectures"] == ["arm64"]
    assert fn["memorySize"] == 1024 and fn["timeout"] == 10 and fn["publish"] is True
    assert fn["reservedConcurrentExecutions"] == -1 and "snapStart" not in fn
    assert fn["handler"] == "handler.handler"
    assert fn["loggingConfig"]["logGroup"] == "/aws/lambda/edgeship-dev-infer"
    assert fn["environment"]["variables"]["ORIGIN_VERIFY_SECRET"] == "mock-origin-secret"
    logs = empty.one("aws:cloudwatch/logGroup:LogGroup", "function-logs")
    assert logs["retentionInDays"] == 14
    assert not empty.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")


def test_function_full_config(full: Mocks) -> None:
    fn = full.one("aws:lambda/function:Function")
    assert fn["runtime"] == "python3.13" and fn["architectures"] == ["x86_64"]
    assert fn["memorySize"] == 2048 and fn["timeout"] == 5 and fn["reservedConcurrentExecutions"] == 50
    pc = full.one("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
    assert pc["qualifier"] == "live" and pc["provisionedConcurrentExecutions"] == 3
    assert full.one("aws:cloudwatch/logGroup:LogGroup", "function-logs")["retentionInDays"] == 30


def test_snapstart_excludes_provisioned_concurrency() -> None:
    fn = run_program({"snapstart": "true"}).one("aws:lambda/function:Function")
    assert fn["snapStart"] == {"applyOn": "PublishedVersions"}
    with pytest.raises(Exception, match="exclude each other"):
        run_program({"snapstart": "true", "provisionedConcurrency": "2"})


def test_aliases_live_is_left_to_the_release_controller(empty: Mocks) -> None:
    aliases = {r.name: r for r in empty.of_type("aws:lambda/alias:Alias")}
    assert set(aliases) == {"live", "candidate"}
    assert aliases["live"].inputs["name"] == "live" and aliases["candidate"].inputs["name"] == "candidate"
    assert aliases["live"].inputs["functionVersion"] == "1"


def test_live_alias_ignores_version_and_weights(empty: Mocks) -> None:
    # After a promotion the program must not move `live` back: it ignores what promote owns.
    assert sorted(empty.options["live"].ignore_changes or []) == ["functionVersion", "routingConfig"]
    assert not empty.options["candidate"].ignore_changes


def test_http_api_routes_integrations_permissions_stage(empty: Mocks) -> None:
    assert empty.one("aws:apigatewayv2/api:Api")["protocolType"] == "HTTP"
    integrations = {r.name: r.inputs for r in empty.of_type("aws:apigatewayv2/integration:Integration")}
    assert {i["payloadFormatVersion"] for i in integrations.values()} == {"2.0"}
    assert {i["integrationType"] for i in integrations.values()} == {"AWS_PROXY"}
    assert integrations["live-integration"]["integrationUri"].endswith("/live")
    assert integrations["candidate-integration"]["integrationUri"].endswith("/candidate")
    routes = {r.inputs["routeKey"]: r.inputs for r in empty.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) >= {"POST /infer", "GET /infer", "GET /healthz", "POST /candidate/infer"}
    assert routes["POST /infer"]["target"] == "integrations/live-integration-id"
    assert routes["POST /candidate/infer"]["target"] == "integrations/candidate-integration-id"
    assert routes["POST /candidate/infer"]["authorizationType"] == "AWS_IAM"
    assert routes["POST /infer"]["authorizationType"] == "NONE"
    for perm in empty.of_type("aws:lambda/permission:Permission"):
        assert perm.inputs["principal"] == "apigateway.amazonaws.com"
        assert perm.inputs["sourceArn"] == "arn:aws:execute-api:eu-west-1:111111111111:abc123/*/*"
        assert perm.inputs["qualifier"] in ("live", "candidate")
    stage = empty.one("aws:apigatewayv2/stage:Stage")
    assert stage["name"] == "$default" and stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] > 0
    assert stage["accessLogSettings"]["destinationArn"].endswith("/aws/apigateway/edgeship-dev-api")


def test_cloudfront_edge(empty: Mocks, full: Mocks) -> None:
    dist = empty.one("aws:cloudfront/distribution:Distribution")
    (origin,) = dist["origins"]
    assert origin["domainName"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    custom = origin["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only" and custom["originSslProtocols"] == ["TLSv1.2"]
    assert custom["originKeepaliveTimeout"] == 60
    assert origin["customHeaders"] == [{"name": "x-origin-verify", "value": "mock-origin-secret"}]
    assert dist["httpVersion"] == "http2and3" and dist["priceClass"] == "PriceClass_100"
    default = dist["defaultCacheBehavior"]
    assert default["viewerProtocolPolicy"] == "redirect-to-https" and default["compress"] is True
    assert default["originRequestPolicyId"] == serving.MANAGED_ORIGIN_REQUEST_ALL_VIEWER_EXCEPT_HOST
    assert default["cachePolicyId"] == serving.MANAGED_CACHE_DISABLED
    (infer,) = dist["orderedCacheBehaviors"]
    assert infer["pathPattern"] == "/infer" and infer["cachedMethods"] == ["GET", "HEAD"]
    assert "forwardedValues" not in default and "forwardedValues" not in infer
    assert not default.get("lambdaFunctionAssociations") and not infer.get("lambdaFunctionAssociations")
    policy = empty.one("aws:cloudfront/cachePolicy:CachePolicy")
    params = policy["parametersInCacheKeyAndForwardedToOrigin"]
    assert params["queryStringsConfig"]["queryStringBehavior"] == "all"
    assert policy["defaultTtl"] == 60 and policy["maxTtl"] == 60
    assert full.one("aws:cloudfront/cachePolicy:CachePolicy")["defaultTtl"] == 120
    assert full.one("aws:cloudfront/distribution:Distribution")["priceClass"] == "PriceClass_All"


def test_origin_secret_is_a_pulumi_secret(empty: Mocks) -> None:
    # generated once by a dynamic resource and kept secret in state and outputs
    assert empty.options["origin-secret"].additional_secret_outputs == ["value"]
    (secret,) = empty.of_type("pulumi-python:dynamic:Resource")
    assert secret.name == "origin-secret"
