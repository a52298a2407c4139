"""The serving program's resource graph under Pulumi's official mocks (no CLI, no cloud)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from orchestrator.config.names import base_name
from orchestrator.programs import serving


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
                "arn": f"arn:aws:lambda:eu-west-1:111111111111:function:{args.inputs.get('name')}",
                "invokeArn": f"arn:aws:apigateway:invoke/{args.inputs.get('name')}",
            },
            "aws:ssm/parameter:Parameter": {
                "arn": f"arn:aws:ssm:eu-west-1:111111111111:parameter{args.inputs.get('name')}"
            },
            "aws:lambda/alias:Alias": {"invokeArn": f"arn:aws:apigateway:invoke/{args.inputs.get('name')}"},
            "aws:apigatewayv2/api:Api": {
                "apiEndpoint": "https://abc123.execute-api.eu-west-1.amazonaws.com",
                "executionArn": "arn:aws:execute-api:eu-west-1:111111111111:abc123",
            },
            "aws:cloudfront/distribution:Distribution": {"domainName": "d111.cloudfront.net"},
            "pulumi-python:dynamic:Resource": {
                "sent": "mock-origin-secret",
                "accepted": ["mock-origin-secret"],
                "rotation": args.inputs.get("rotation"),
            },
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


def _stand_in_package() -> Path:
    """A small zip stands in for the function package: the program hashes it, adds the
    model when it fits (programs/modelship.py, beside it) and uploads the result."""
    import atexit
    import shutil
    import tempfile
    import zipfile

    directory = Path(tempfile.mkdtemp(prefix="edgeship-serving-test-"))
    atexit.register(shutil.rmtree, directory, True)
    package = directory / "function.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return package


PACKAGE = _stand_in_package()


# The run whose resource options are being recorded. A stack transformation outlives its
# run (the mocks' root stack is reused, and its transformations add up), so each one
# records into the current run's mocks, never into an earlier fixture's.
_RECORDING: dict[str, Mocks] = {}


def run_program(config: dict[str, str], *, project: str = "edgeship", stack: str = "dev") -> Mocks:
    mocks = Mocks()
    _RECORDING["mocks"] = mocks
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(
        {f"edgeship:{k}": v for k, v in {"packagePath": str(PACKAGE), **config}.items()}
    )

    @pulumi.runtime.test
    def deploy() -> None:
        # Resource options never reach the mocks; a stack transformation sees them.
        def capture(args: pulumi.ResourceTransformationArgs) -> None:
            _RECORDING["mocks"].options[args.name] = args.opts

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
    assert empty.one("aws:s3/bucketObjectv2:BucketObjectv2", "model")["key"] == f"models/{sha}.tar.gz"
    env = empty.one("aws:lambda/function:Function", "function")["environment"]["variables"]
    assert env["MODEL_SHA256"] == sha
    assert env["MODEL_URI"] == f"s3://models-bucket/models/{sha}.tar.gz"
    # replacing the object for a new model must keep blue's: a rollback still needs it
    assert empty.options["model"].retain_on_delete is True


def test_role_is_least_privilege(empty: Mocks) -> None:
    trust = json.loads(empty.one("aws:iam/role:Role", "function-role")["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    policy = json.loads(empty.one("aws:iam/rolePolicy:RolePolicy", "function-policy")["policy"])
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
    fn = empty.one("aws:lambda/function:Function", "function")
    assert fn["runtime"] == "python3.12" and fn["architectures"] == ["x86_64"]
    assert fn["memorySize"] == 1024 and fn["timeout"] == 10 and fn["publish"] is True
    assert fn["reservedConcurrentExecutions"] == -1 and "snapStart" not in fn
    assert fn["handler"] == "handler.handler"
    assert fn["loggingConfig"]["logGroup"] == "/aws/lambda/edgeship-dev-infer"
    # nothing secret in the environment: it is frozen into every version and readable
    assert set(fn["environment"]["variables"]) == {"MODEL_URI", "MODEL_SHA256", "MODEL_DELIVERY"}
    # the first init reads the model with the role's policy: it must exist first
    assert "function-policy" in {d._name for d in empty.options["function"].depends_on}  # type: ignore[union-attr]
    logs = empty.one("aws:cloudwatch/logGroup:LogGroup", "function-logs")
    assert logs["retentionInDays"] == 14
    assert not empty.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")


def test_function_full_config(full: Mocks) -> None:
    fn = full.one("aws:lambda/function:Function", "function")
    assert fn["runtime"] == "python3.13" and fn["architectures"] == ["x86_64"]
    assert fn["memorySize"] == 2048 and fn["timeout"] == 5 and fn["reservedConcurrentExecutions"] == 50
    pc = full.one("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
    assert pc["qualifier"] == "live" and pc["provisionedConcurrentExecutions"] == 3
    assert full.one("aws:cloudwatch/logGroup:LogGroup", "function-logs")["retentionInDays"] == 30


def test_snapstart_excludes_provisioned_concurrency() -> None:
    fn = run_program({"snapstart": "true"}).one("aws:lambda/function:Function", "function")
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


def test_http_api_routes_integrations_stage(empty: Mocks) -> None:
    assert empty.one("aws:apigatewayv2/api:Api")["protocolType"] == "HTTP"
    integrations = {r.name: r.inputs for r in empty.of_type("aws:apigatewayv2/integration:Integration")}
    assert {i["payloadFormatVersion"] for i in integrations.values()} == {"2.0"}
    assert {i["integrationType"] for i in integrations.values()} == {"AWS_PROXY"}
    assert integrations["live-integration"]["integrationUri"].endswith("/live")
    assert integrations["candidate-integration"]["integrationUri"].endswith("/candidate")
    routes = {r.inputs["routeKey"]: r.inputs for r in empty.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) == set(serving.LIVE_ROUTES) | set(serving.CANDIDATE_ROUTES)
    for key in serving.LIVE_ROUTES:  # every live route behind the origin authorizer
        assert routes[key]["target"] == "integrations/live-integration-id"
        assert (routes[key]["authorizationType"], routes[key]["authorizerId"]) == (
            "CUSTOM",
            "origin-authorizer-id",
        )
    for key in serving.CANDIDATE_ROUTES:  # the candidate's behind IAM (SigV4)
        assert routes[key]["target"] == "integrations/candidate-integration-id"
        assert routes[key]["authorizationType"] == "AWS_IAM" and "authorizerId" not in routes[key]
    stage = empty.one("aws:apigatewayv2/stage:Stage")
    assert stage["name"] == "$default" and stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] > 0
    assert stage["accessLogSettings"]["destinationArn"].endswith("/aws/apigateway/edgeship-dev-api")


def test_each_alias_can_be_invoked_through_its_own_routes_only(empty: Mocks) -> None:
    api = "arn:aws:execute-api:eu-west-1:111111111111:abc123"
    granted = {
        (p.inputs["qualifier"], p.inputs["sourceArn"])
        for p in empty.of_type("aws:lambda/permission:Permission")
        if p.inputs["function"] == "edgeship-dev-infer"
    }
    assert granted == {
        ("live", f"{api}/*/POST/infer"), ("live", f"{api}/*/GET/infer"), ("live", f"{api}/*/GET/healthz"),
        ("candidate", f"{api}/*/POST/candidate/infer"), ("candidate", f"{api}/*/GET/candidate/infer"),
        ("candidate", f"{api}/*/GET/candidate/healthz"),
    }  # fmt: skip
    assert not any(arn.endswith("/*/*") for _, arn in granted)
    for perm in empty.of_type("aws:lambda/permission:Permission"):
        assert perm.inputs["principal"] == "apigateway.amazonaws.com"


def test_origin_authorizer_refuses_direct_calls_before_the_function(empty: Mocks) -> None:
    authorizer = empty.one("aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer["authorizerType"] == "REQUEST" and authorizer["enableSimpleResponses"] is True
    assert authorizer["identitySources"] == ["$request.header.x-origin-verify"]  # absent: 401, no call
    assert authorizer["authorizerResultTtlInSeconds"] == serving.AUTHORIZER_RESULT_TTL_S > 0
    assert authorizer["authorizerUri"] == "arn:aws:apigateway:invoke/edgeship-dev-origin"
    fn = empty.one("aws:lambda/function:Function", "authorizer")
    assert fn["handler"] == "origin.handler" and fn["memorySize"] == 128
    assert fn["environment"]["variables"] == {"ORIGIN_SECRETS_PARAMETER": "/edgeship-dev/origin-secrets"}
    (invoke,) = [
        p.inputs for p in empty.of_type("aws:lambda/permission:Permission") if p.name == "authorizer-invoke"
    ]
    assert (
        invoke["sourceArn"]
        == "arn:aws:execute-api:eu-west-1:111111111111:abc123/authorizers/origin-authorizer-id"
    )
    # the accepted values: a SecureString the authorizer alone may read
    parameter = empty.one("aws:ssm/parameter:Parameter")
    value = parameter["value"]  # a secret: the mocks see Pulumi's secret wrapper around it
    assert parameter["type"] == "SecureString" and isinstance(value, dict)
    assert json.loads(value["value"]) == ["mock-origin-secret"]
    policy = json.loads(empty.one("aws:iam/rolePolicy:RolePolicy", "authorizer-policy")["policy"])
    assert {
        (s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"])) for s in policy["Statement"]
    } == {"ssm:GetParameter", ("logs:CreateLogStream", "logs:PutLogEvents")}
    assert (
        policy["Statement"][0]["Resource"]
        == "arn:aws:ssm:eu-west-1:111111111111:parameter/edgeship-dev/origin-secrets"
    )


def test_origin_secret_is_sent_by_cloudfront_and_kept_secret(empty: Mocks) -> None:
    assert sorted(empty.options["origin-secret"].additional_secret_outputs or []) == ["accepted", "sent"]
    (secret,) = empty.of_type("pulumi-python:dynamic:Resource")
    assert secret.name == "origin-secret" and secret.inputs["rotation"] == "0:settled"
    (origin,) = empty.one("aws:cloudfront/distribution:Distribution")["origins"]
    assert origin["customHeaders"] == [{"name": "x-origin-verify", "value": "mock-origin-secret"}]
    rotating = run_program({"originSecretRotation": "3:accepting"})
    assert rotating.of_type("pulumi-python:dynamic:Resource")[0].inputs["rotation"] == "3:accepting"


def _shipped(mocks: Mocks) -> Path:
    """The zip the function's code object was built from (the stand-in, or it + the model)."""
    key = mocks.one("aws:s3/bucketObjectv2:BucketObjectv2", "code")["key"]
    digest = key.removeprefix("code/").removesuffix(".zip")
    found = [p for p in PACKAGE.parent.glob("*.zip") if hashlib.sha256(p.read_bytes()).hexdigest() == digest]
    assert len(found) == 1, (key, list(PACKAGE.parent.iterdir()))
    return found[0]


def test_code_comes_from_s3_keyed_by_its_hash() -> None:
    mocks = run_program({})
    shipped = _shipped(mocks)
    digest = hashlib.sha256(shipped.read_bytes()).digest()
    code = mocks.one("aws:s3/bucketObjectv2:BucketObjectv2", "code")
    assert code["key"] == f"code/{digest.hex()}.zip" and mocks.options["code"].retain_on_delete is True
    fn = mocks.one("aws:lambda/function:Function", "function")
    assert (fn["s3Bucket"], fn["s3Key"]) == ("models-id", code["key"]) and "code" not in fn
    assert fn["sourceCodeHash"] == base64.b64encode(digest).decode()


def test_a_model_that_fits_travels_in_the_package_the_version_pins() -> None:
    import zipfile

    mocks = run_program({})
    env = mocks.one("aws:lambda/function:Function", "function")["environment"]["variables"]
    assert env["MODEL_DELIVERY"] == "package"
    with zipfile.ZipFile(_shipped(mocks)) as archive:
        assert sorted(archive.namelist()) == ["handler.py", "model/model.tar.gz"]
        assert archive.read("model/model.tar.gz") == serving.SAMPLE_MODEL.read_bytes()
    # the S3 copy stays: the fallback's source and what `status` reads the model's name from
    assert mocks.one("aws:s3/bucketObjectv2:BucketObjectv2", "model")["key"].startswith("models/")


def test_a_model_over_the_limit_is_read_from_s3_at_init(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.programs import modelship

    # one byte less than package + model: the sample model no longer fits
    limit = modelship.unzipped_size(PACKAGE) + serving.SAMPLE_MODEL.stat().st_size - 1
    monkeypatch.setenv(modelship.LIMIT_VARIABLE, str(limit))
    mocks = run_program({})
    env = mocks.one("aws:lambda/function:Function", "function")["environment"]["variables"]
    assert env["MODEL_DELIVERY"] == "s3"
    assert env["MODEL_URI"].startswith("s3://models-bucket/models/")
    assert _shipped(mocks) == PACKAGE  # the package as built, no model in it


def test_a_missing_package_is_an_error_never_a_handler_only_archive() -> None:
    with pytest.raises(Exception, match="packagePath is not set"):
        run_program({"packagePath": ""})


def test_destroy_empties_the_bucket_unless_the_environment_keeps_its_data(empty: Mocks) -> None:
    assert empty.one("aws:s3/bucket:Bucket")["forceDestroy"] is True
    kept = run_program({"keepOnDestroy": "true"})
    assert kept.one("aws:s3/bucket:Bucket")["forceDestroy"] is False


@pytest.mark.parametrize(
    ("project", "stack", "base"),
    [
        ("edgeship", "dev", "edgeship-dev"),
        ("My_Project", "Prod", "my-project-prod"),
        ("a__b", "x.y", "a-b-x-y"),
    ],
)
def test_names_are_valid_for_s3_and_lambda(project: str, stack: str, base: str) -> None:
    assert base_name(project, stack) == base
    mocks = run_program({}, project=project, stack=stack)
    assert mocks.one("aws:s3/bucket:Bucket")["bucketPrefix"] == f"{base}-models-"
    assert mocks.one("aws:lambda/function:Function", "function")["name"] == f"{base}-infer"


def test_provisioned_concurrency_above_reserved_is_refused() -> None:
    with pytest.raises(Exception, match="must not exceed"):
        run_program({"reservedConcurrency": "2", "provisionedConcurrency": "3"})


def test_cloudfront_edge(empty: Mocks, full: Mocks) -> None:
    dist = empty.one("aws:cloudfront/distribution:Distribution")
    (origin,) = dist["origins"]
    assert origin["domainName"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    custom = origin["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only" and custom["originSslProtocols"] == ["TLSv1.2"]
    assert custom["originKeepaliveTimeout"] == 60
    assert dist["httpVersion"] == "http2and3" and dist["priceClass"] == "PriceClass_100"
    default = dist["defaultCacheBehavior"]
    # a redirect would turn a POST into a GET: plain HTTP is refused
    assert default["viewerProtocolPolicy"] == "https-only" and default["compress"] is True
    assert default["originRequestPolicyId"] == serving.MANAGED_ORIGIN_REQUEST_ALL_VIEWER_EXCEPT_HOST
    assert default["cachePolicyId"] == serving.MANAGED_CACHE_DISABLED
    (infer,) = dist["orderedCacheBehaviors"]
    assert infer["pathPattern"] == "/infer" and infer["cachedMethods"] == ["GET", "HEAD"]
    assert infer["viewerProtocolPolicy"] == "https-only" and infer["cachePolicyId"] == "infer-get-cache-id"
    assert "forwardedValues" not in default and "forwardedValues" not in infer
    assert not default.get("lambdaFunctionAssociations") and not infer.get("lambdaFunctionAssociations")
    policy = empty.one("aws:cloudfront/cachePolicy:CachePolicy")
    params = policy["parametersInCacheKeyAndForwardedToOrigin"]
    assert params["queryStringsConfig"]["queryStringBehavior"] == "all"
    assert policy["defaultTtl"] == 60 and policy["maxTtl"] == 60
    assert full.one("aws:cloudfront/cachePolicy:CachePolicy")["defaultTtl"] == 120
    assert full.one("aws:cloudfront/distribution:Distribution")["priceClass"] == "PriceClass_All"


def test_cache_ttl_0_uses_the_managed_caching_disabled_policy() -> None:
    # CloudFront rejects a TTL-0 policy that names encodings: no policy of ours at all
    mocks = run_program({"cacheTtlS": "0"})
    assert not mocks.of_type("aws:cloudfront/cachePolicy:CachePolicy")
    (infer,) = mocks.one("aws:cloudfront/distribution:Distribution")["orderedCacheBehaviors"]
    assert infer["cachePolicyId"] == serving.MANAGED_CACHE_DISABLED


def test_outputs_name_the_rotation(empty: Mocks) -> None:
    # (outputs are not visible to mocks; the contract test reads the program's exports)
    source = Path(serving.__file__).read_text()
    assert 'pulumi.export("originSecretRotation"' in source and 'pulumi.export("originSecretUrn"' in source


# -- issue 24: names, tags, roles, a kept bucket that stays protected, lifecycle, 5xx ----------

BUCKET = "aws:s3/bucket:Bucket"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
# The program's resource types that take tags, each tagged `edgeship:stack` (IAM scopes by
# the tag where AWS assigns the id: the API, its stage, the distribution). Checked below
# against pulumi_aws itself, so a taggable type added to the program cannot be missed.
TAGGABLE = {
    "aws:s3/bucket:Bucket",
    "aws:lambda/function:Function",
    "aws:iam/role:Role",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:ssm/parameter:Parameter",
    "aws:apigatewayv2/api:Api",
    "aws:apigatewayv2/stage:Stage",
    "aws:cloudfront/distribution:Distribution",
}
# Taggable but left untagged: S3 object tags are per object (s3:PutObjectTagging on every
# upload) and scope nothing IAM does not already scope by the bucket's name.
UNTAGGED = {OBJECT}


def takes_tags(typ: str) -> bool:
    """Whether pulumi_aws's class for the type token `typ` has a `tags` input."""
    import importlib
    import inspect
    import keyword

    module, cls = typ.split(":")[1].split("/")[0], typ.split(":")[2]
    klass = getattr(
        importlib.import_module(f"pulumi_aws.{module}{'_' if keyword.iskeyword(module) else ''}"), cls
    )
    assert pulumi.get_type_token(klass) == typ
    return "tags" in inspect.signature(klass._internal_init).parameters


def models_bucket_configuration(mocks: Mocks) -> set[str]:
    """The resources configuring the models bucket: every one whose `bucket` input is it,
    except the objects stored in it."""
    (bucket,) = mocks.of_type(BUCKET)
    return {
        r.name for r in mocks.resources if r.inputs.get("bucket") == f"{bucket.name}-id" and r.typ != OBJECT
    }


def test_a_kept_bucket_keeps_its_configuration_and_destroy_completes(empty: Mocks) -> None:
    kept = run_program({"keepOnDestroy": "true"})
    configuration = models_bucket_configuration(kept)
    assert {r.typ for r in kept.resources if r.name in configuration} == {
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
    objects = {"model", "code"}  # retained either way: older versions still load them

    def retained(mocks: Mocks) -> set[str]:
        return {name for name, opts in mocks.options.items() if opts.retain_on_delete}

    # kept: destroy leaves the bucket as it was (a deleted BucketVersioning would suspend
    # versioning, a deleted policy would drop TLS-only), and nothing else
    assert retained(kept) == {"models"} | configuration | objects
    assert kept.one(BUCKET)["forceDestroy"] is False
    # not kept: destroy empties and deletes it all
    assert models_bucket_configuration(empty) == configuration
    assert retained(empty) == objects
    assert all(empty.options[name].retain_on_delete is False for name in {"models"} | configuration)
    # the TLS-only policy still waits for the public access block
    assert [d._name for d in kept.options["models-tls-only"].depends_on] == ["models-public-access"]  # type: ignore[union-attr]


def test_every_taggable_resource_carries_the_stack_tag(full: Mocks) -> None:
    types = {r.typ for r in full.resources if r.typ.startswith("aws:")}
    assert {t for t in types if takes_tags(t)} == TAGGABLE | UNTAGGED
    for resource in full.resources:
        if resource.typ in TAGGABLE:
            assert resource.inputs.get("tags") == {"edgeship:stack": "edgeship-dev"}, resource.name
    assert all("tags" not in r.inputs for r in full.of_type(OBJECT))


@pytest.mark.parametrize(
    "boundary", ["arn:aws:iam::111111111111:policy/edgeship/edgeship-dev-function-boundary", ""]
)
def test_roles_are_named_under_the_stack_path_with_its_boundary(boundary: str) -> None:
    # "" is how the local environment (and `permissions_boundary = false`) says "none"
    mocks = run_program({"boundaryArn": boundary})
    roles = {r.name: r.inputs for r in mocks.of_type("aws:iam/role:Role")}
    assert {(k, v["name"], v["path"]) for k, v in roles.items()} == {
        ("function-role", "edgeship-dev-fn", "/edgeship/edgeship-dev/"),
        ("authorizer-role", "edgeship-dev-auth", "/edgeship/edgeship-dev/"),
    }
    for role in roles.values():
        assert role.get("permissionsBoundary") == (boundary or None)


def test_roles_have_no_boundary_without_config(empty: Mocks) -> None:
    assert all("permissionsBoundary" not in r.inputs for r in empty.of_type("aws:iam/role:Role"))


def test_lifecycle_expires_old_records_and_code_and_abandoned_uploads(empty: Mocks) -> None:
    def rules(mocks: Mocks) -> list[dict[str, Any]]:
        lifecycle = mocks.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        assert lifecycle["bucket"] == "models-id"
        return sorted(lifecycle["rules"], key=lambda rule: rule["id"])

    assert rules(empty) == [
        {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}},
        {"id": "expire-noncurrent-code", "status": "Enabled", "filter": {"prefix": "code/"},
         "noncurrentVersionExpiration": {"noncurrentDays": 7}},
        {"id": "expire-noncurrent-promotions", "status": "Enabled", "filter": {"prefix": "promotions/"},
         "noncurrentVersionExpiration": {"noncurrentDays": 7}},
    ]  # fmt: skip
    # the models are never expired: a rollback may need any of them
    assert [d._name for d in empty.options["models-lifecycle"].depends_on] == ["models-versioning"]  # type: ignore[union-attr]
    days = {
        r["id"]: r.get("noncurrentVersionExpiration") for r in rules(run_program({"noncurrentDays": "3"}))
    }
    assert days == {
        "abort-incomplete-uploads": None,
        "expire-noncurrent-code": {"noncurrentDays": 3},
        "expire-noncurrent-promotions": {"noncurrentDays": 3},
    }
    with pytest.raises(Exception, match="noncurrentDays must be at least 1"):
        run_program({"noncurrentDays": "0"})


def test_cloudfront_never_caches_a_5xx(empty: Mocks) -> None:
    # no response page: the origin's body (the function's own error) reaches the viewer
    assert empty.one("aws:cloudfront/distribution:Distribution")["customErrorResponses"] == [
        {"errorCode": code, "errorCachingMinTtl": 0} for code in (500, 501, 502, 503, 504)
    ]


LONG_PROJECT = "an-inference-service-with-a-long-name"  # base cut to 40 characters


@pytest.mark.parametrize(
    ("project", "stack"), [("edgeship", "dev"), ("My_Project", "Prod"), (LONG_PROJECT, "production")]
)
def test_every_name_comes_from_names_py(project: str, stack: str) -> None:
    from orchestrator.config.names import ROLE_PATH_ROOT, TAG_KEY, ResourceNames

    names = ResourceNames.of(project, stack)
    mocks = run_program({}, project=project, stack=stack)
    named = {
        (BUCKET, "models", "bucketPrefix"): names.bucket_prefix,
        ("aws:lambda/function:Function", "function", "name"): names.function,
        ("aws:lambda/function:Function", "authorizer", "name"): names.authorizer,
        ("aws:cloudwatch/logGroup:LogGroup", "function-logs", "name"): names.function_log_group,
        ("aws:cloudwatch/logGroup:LogGroup", "authorizer-logs", "name"): names.authorizer_log_group,
        ("aws:cloudwatch/logGroup:LogGroup", "api-access-logs", "name"): names.api_log_group,
        ("aws:iam/role:Role", "function-role", "name"): names.function_role,
        ("aws:iam/role:Role", "authorizer-role", "name"): names.authorizer_role,
        ("aws:iam/role:Role", "function-role", "path"): names.role_path,
        ("aws:iam/role:Role", "authorizer-role", "path"): names.role_path,
        ("aws:ssm/parameter:Parameter", "origin-secrets", "name"): names.origin_parameter,
        ("aws:apigatewayv2/api:Api", "api", "name"): names.api,
        ("aws:cloudfront/cachePolicy:CachePolicy", "infer-get-cache", "name"): names.cache_policy,
    }
    assert {key: mocks.one(key[0], key[1])[key[2]] for key in named} == named
    assert len(names.base) <= 40 and len(names.bucket_prefix) <= 37
    assert {r.inputs["tags"][TAG_KEY] for r in mocks.resources if "tags" in r.inputs} == {names.base}

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for k, v in value.items() if not k.startswith("__") for s in [k, *strings(v)]]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []  # numbers, assets: no names

    found = [s for r in mocks.resources for s in strings(dict(r.inputs))]
    assert any(names.base in s for s in found)
    if project != "edgeship":  # no name of the `edgeship` project leaks into another's stack
        leaks = [s for s in found if "edgeship" in s.replace(TAG_KEY, "").replace(ROLE_PATH_ROOT, "/")]
        assert not leaks
