"""The inline Pulumi program: one environment's serving stack.

    S3 (private, encrypted, versioned, TLS-only) holds models/<sha256>.tar.gz; a lifecycle
        expires old versions of promotion records and function code
    Lambda (least-privilege role, published versions) with aliases:
        live       the traffic switch; its version and weights belong to `orchestrator promote`
        candidate  the newest version, for pre-traffic tests through a protected route
    HTTP API (payload 2.0) on `live`, behind an origin authorizer (programs/authorizer):
        only requests carrying CloudFront's secret origin header reach the function;
        /candidate/* on `candidate` behind IAM auth (SigV4-signed pre-traffic tests)
    CloudFront in front (https only), adding that header; the accepted values live in an
        SSM SecureString parameter, so rotating them publishes no function version

Settings come from stack config, namespace `edgeship`; every one has a safe default so
the program runs with empty config. `orchestrator up` writes the config from edgeship.toml.

Every AWS name comes from orchestrator/config/names.py (the IAM policy generator scopes each
permission to the same names), and every taggable resource carries `names.tags`
(`edgeship:stack` = the base name): IAM conditions scope by it where AWS assigns the id.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from orchestrator.config.names import ResourceNames
from orchestrator.config.settings import SAMPLE_MODEL, EdgeSettings, FunctionSettings

from . import lifecycle
from .authorizer.origin import HEADER as ORIGIN_HEADER

FUNCTION_DIR = Path(__file__).resolve().parent / "function"
AUTHORIZER = Path(__file__).resolve().parent / "authorizer" / "origin.py"
LIVE_ALIAS = "live"
CANDIDATE_ALIAS = "candidate"
# AWS-managed policies, identical in every account and region.
MANAGED_ORIGIN_REQUEST_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
MANAGED_CACHE_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
# The 5xx codes CloudFront caches on its own (ErrorCachingMinTTL, 10 s by default) and
# lets a distribution set a TTL for. A green version's 5xx on a cached GET /infer would be
# served for that long to every viewer of the same URL, blue's traffic included, and
# would outlive the rollback it triggers: they are never cached (TTL 0).
UNCACHED_ERROR_CODES = (500, 501, 502, 503, 504)
_FUNCTION, _EDGE = FunctionSettings(), EdgeSettings()
# API Gateway caches the authorizer's answer per header value this long, denies included:
# a deny of the value CloudFront sends would refuse every request for as long, which is why
# the authorizer never denies a value it has not just read. A cached "allow" of a
# rotated-out value lasts at most this much after a rotation ends. The local edge emulates
# this cache with the same TTL (orchestrator/local/authorizer.py).
AUTHORIZER_RESULT_TTL_S = 300
AUTHORIZER_TIMEOUT_S = 5  # a read of the parameter is bounded well inside it (authorizer/origin.py)
# Live routes and what each may invoke; /candidate/* is the candidate alias's, behind IAM.
LIVE_ROUTES = ("POST /infer", "GET /infer", "GET /healthz")
CANDIDATE_ROUTES = ("POST /candidate/infer", "GET /candidate/infer", "GET /candidate/healthz")


@dataclass(frozen=True)
class ServingConfig:
    """The program's settings, read from stack config with safe defaults."""

    # Defaults are edgeship.toml's own, so an empty stack config deploys what an
    # environment with no overrides would.
    runtime: str = _FUNCTION.runtime
    architecture: str = _FUNCTION.architecture
    memory_mb: int = _FUNCTION.memory_mb
    timeout_s: int = _FUNCTION.timeout_s
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    snapstart: bool = False
    cache_ttl_s: int = _EDGE.cache_ttl_s
    price_class: str = _EDGE.price_class
    log_retention_days: int = 14
    throttle_rate: float = 500.0
    throttle_burst: int = 1000
    model_path: str = str(SAMPLE_MODEL)
    package_path: str | None = None
    keep_on_destroy: bool = False
    origin_rotation: str = "0:settled"
    # The roles' permissions boundary (`edgeship:boundaryArn`); None: no boundary (the
    # local environment, or an account where an administrator deploys).
    boundary_arn: str | None = None
    # Days a superseded version of a promotion record or code zip stays restorable
    # (`edgeship:noncurrentDays`, edgeship.toml's `[defaults.storage] noncurrent_days`).
    noncurrent_days: int = lifecycle.DEFAULT_NONCURRENT_DAYS

    @staticmethod
    def from_stack() -> ServingConfig:
        """Read `edgeship:*` config; refuse combinations AWS would reject."""
        c = pulumi.Config("edgeship")
        d = ServingConfig()
        cfg = ServingConfig(
            runtime=c.get("runtime") or d.runtime,
            architecture=c.get("architecture") or d.architecture,
            memory_mb=c.get_int("memoryMb") or d.memory_mb,
            timeout_s=c.get_int("timeoutS") or d.timeout_s,
            reserved_concurrency=c.get_int("reservedConcurrency"),
            provisioned_concurrency=c.get_int("provisionedConcurrency"),
            snapstart=c.get_bool("snapstart") or False,
            cache_ttl_s=c.get_int("cacheTtlS") if c.get("cacheTtlS") is not None else d.cache_ttl_s,  # type: ignore[arg-type]
            price_class=c.get("priceClass") or d.price_class,
            log_retention_days=c.get_int("logRetentionDays") or d.log_retention_days,
            throttle_rate=c.get_float("throttleRate") or d.throttle_rate,
            throttle_burst=c.get_int("throttleBurst") or d.throttle_burst,
            model_path=c.get("modelPath") or d.model_path,
            package_path=c.get("packagePath"),
            keep_on_destroy=c.get_bool("keepOnDestroy") or False,
            origin_rotation=c.get("originSecretRotation") or d.origin_rotation,
            boundary_arn=c.get("boundaryArn") or None,
            noncurrent_days=_int_or(c.get_int("noncurrentDays"), d.noncurrent_days),
        )
        if cfg.noncurrent_days < 1:
            raise ValueError("edgeship:noncurrentDays must be at least 1 (S3 expires after whole days)")
        if cfg.snapstart and cfg.provisioned_concurrency:
            raise ValueError(
                "edgeship:snapstart and edgeship:provisionedConcurrency exclude each other; set one"
            )
        reserved, provisioned = cfg.reserved_concurrency, cfg.provisioned_concurrency
        if provisioned and reserved is not None and provisioned > reserved:
            raise ValueError("edgeship:provisionedConcurrency must not exceed edgeship:reservedConcurrency")
        return cfg


def _int_or(value: int | None, default: int) -> int:
    """An int setting, its default only when absent (0 is a value, refused by the caller)."""
    return default if value is None else value


def program() -> None:
    """Declare the serving stack (Automation API inline program; takes no arguments)."""
    import pulumi_aws as aws

    cfg = ServingConfig.from_stack()
    if not cfg.package_path:
        # A handler-only archive cannot import numpy or onnxruntime on Lambda.
        raise ValueError(
            "edgeship:packagePath is not set: deploy with `orchestrator up`, which builds the "
            "function package (handler and its dependencies) for the runtime and architecture"
        )
    names = ResourceNames.of(pulumi.get_project(), pulumi.get_stack())
    tags = names.tags
    model_path = Path(cfg.model_path)
    model_sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    model_key = f"models/{model_sha}.tar.gz"

    # -- model bucket ------------------------------------------------------------------
    # Destroy empties and deletes the bucket (models, code, promotion records) unless the
    # environment keeps its data (`[storage] keep_on_destroy`). Kept means kept: the bucket
    # AND every configuration resource of it are retained on delete (`kept` below), so
    # `destroy` completes and leaves the bucket as it was, private, encrypted, versioned,
    # TLS-only and expiring old versions. Without it Pulumi would delete the configuration
    # first (dependents go before the bucket), deleting BucketVersioning suspends
    # versioning, and only then fail on the non-empty bucket: a failed destroy that leaves
    # the data unprotected. A kept bucket leaves the stack's state; a later `up` creates a
    # new bucket (re-import the kept one with `pulumi import` to use it again).
    # retain_on_delete is recorded in the state by an `up`: a stack deployed before it
    # needs one `up` before `destroy` keeps anything.
    kept = pulumi.ResourceOptions(retain_on_delete=cfg.keep_on_destroy)
    bucket = aws.s3.Bucket(
        "models",
        bucket_prefix=names.bucket_prefix,
        force_destroy=not cfg.keep_on_destroy,
        tags=tags,
        # A bucket's name is fixed at creation, so a prefix change would replace the bucket
        # and its data (promotion records included). names.bucket_prefix differs from the
        # former `f"{name}-models-"[:37]` only for bases over 29 characters; such a stack
        # keeps its bucket, whose name the IAM policy's `<bucket_prefix>*` then misses.
        opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(ignore_changes=["bucketPrefix"])),
    )
    block = aws.s3.BucketPublicAccessBlock(
        "models-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=kept,
    )
    aws.s3.BucketOwnershipControls(
        "models-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=kept
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "models-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": True,
            }
        ],
        opts=kept,
    )
    versioning = aws.s3.BucketVersioning(
        "models-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=kept
    )
    # Versioning keeps every overwritten or deleted object: a lease renewal rewrites the
    # promotion's lease every lease_s/3 (a noncurrent version each time), and the code zips
    # of pruned Lambda versions, deleted by the orchestrator, stay as noncurrent versions.
    # Both expire `noncurrent_days` after they are superseded (long enough to restore a
    # record by hand). Models are left alone: a rollback may need any of them. The rule
    # on the whole bucket removes the parts of uploads that never completed.
    aws.s3.BucketLifecycleConfiguration(
        "models-lifecycle",
        bucket=bucket.id,
        rules=lifecycle.pulumi_rules(cfg.noncurrent_days),  # type: ignore[arg-type]  # the provider's TypedDict, built as plain dicts
        # Noncurrent-version rules mean something once versioning is on (the provider's
        # docs order a versioned bucket's lifecycle after its versioning likewise).
        opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    aws.s3.BucketPolicy(
        "models-tls-only",
        bucket=bucket.id,
        policy=bucket.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [arn, f"{arn}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            )
        ),
        opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[block])),
    )
    # A new model is a new key, so Pulumi replaces this object: without retain_on_delete the
    # `up` that publishes green would delete blue's model, and blue could not load it again
    # (a rollback to a cold sandbox, or SnapStart's restore) exactly when it is needed.
    model_object = aws.s3.BucketObjectv2(
        "model",
        bucket=bucket.id,
        key=model_key,
        source=pulumi.FileAsset(str(model_path)),
        opts=pulumi.ResourceOptions(retain_on_delete=True),
    )

    # The function's code, keyed by its content like the model (an inline upload of the
    # 36 MB zip would sit next to Lambda's 50 MB direct-upload limit). Kept on delete for
    # the same reason as the model: older published versions still name it.
    # The model rides in the package when it fits (programs/modelship.py): the
    # published version then pins code and model bytes, and its init reads no S3. The
    # model object above stays either way: the S3 path's source, and what `status` reads.
    from orchestrator.programs import modelship

    package = Path(cfg.package_path)
    delivery = modelship.decide(model_path, package)
    if delivery.delivery == modelship.PACKAGE:
        package = modelship.with_model(
            package, model_path, hashlib.sha256(package.read_bytes()).hexdigest(), model_sha
        )
    package_digest = hashlib.sha256(package.read_bytes()).digest()
    code_object = aws.s3.BucketObjectv2(
        "code",
        bucket=bucket.id,
        key=f"{lifecycle.CODE_PREFIX}{package_digest.hex()}.zip",
        source=pulumi.FileAsset(str(package)),
        opts=pulumi.ResourceOptions(retain_on_delete=True),
    )

    # -- function ----------------------------------------------------------------------
    log_group, role, role_policy = _identity(
        aws, "function", names, cfg, names.function_role, names.function_log_group,
        ("ReadModels", "s3:GetObject", bucket.arn.apply(lambda arn: f"{arn}/models/*")),
    )  # fmt: skip
    function = aws.lambda_.Function(
        "function",
        name=names.function,
        role=role.arn,
        runtime=cfg.runtime,
        architectures=[cfg.architecture],
        handler="handler.handler",
        s3_bucket=bucket.id,
        s3_key=code_object.key,
        source_code_hash=base64.b64encode(package_digest).decode(),
        memory_size=cfg.memory_mb,
        timeout=cfg.timeout_s,
        publish=True,
        reserved_concurrent_executions=cfg.reserved_concurrency
        if cfg.reserved_concurrency is not None
        else -1,
        snap_start={"apply_on": "PublishedVersions"} if cfg.snapstart else None,
        logging_config={"log_format": "JSON", "log_group": log_group.name},
        tags=tags,
        # Nothing secret here: environment variables are frozen into every published
        # version and readable with lambda:GetFunctionConfiguration.
        environment={
            "variables": {
                "MODEL_URI": pulumi.Output.concat("s3://", bucket.bucket, "/", model_object.key),
                "MODEL_SHA256": model_sha,
                "MODEL_DELIVERY": delivery.delivery,
            }
        },
        # The first init reads the model with the role's policy: it must exist by then
        # (IAM is eventually consistent; an init that fails is retried by Lambda).
        opts=pulumi.ResourceOptions(depends_on=[log_group, role_policy]),
    )
    live = aws.lambda_.Alias(
        "live",
        name=LIVE_ALIAS,
        function_name=function.name,
        function_version=function.version,
        # `orchestrator promote` owns which version is live and the weights in between.
        opts=pulumi.ResourceOptions(ignore_changes=["functionVersion", "routingConfig"]),
    )
    candidate = aws.lambda_.Alias(
        "candidate", name=CANDIDATE_ALIAS, function_name=function.name, function_version=function.version
    )
    if cfg.provisioned_concurrency:
        aws.lambda_.ProvisionedConcurrencyConfig(
            "live-provisioned",
            function_name=function.name,
            qualifier=live.name,
            provisioned_concurrent_executions=cfg.provisioned_concurrency,
        )

    # -- origin protection ----------------------------------------------------------------
    from .origin_secret import OriginSecret

    origin_secret = OriginSecret("origin-secret", cfg.origin_rotation)
    accepted = aws.ssm.Parameter(
        "origin-secrets",
        name=names.origin_parameter,
        type="SecureString",
        value=origin_secret.accepted.apply(json.dumps),
        description="Values of the x-origin-verify header the API accepts (orchestrator rotate-origin-secret)",
        tags=tags,
    )
    authorizer_logs, authorizer_role, authorizer_policy = _identity(
        aws, "authorizer", names, cfg, names.authorizer_role, names.authorizer_log_group,
        ("ReadAcceptedSecrets", "ssm:GetParameter", accepted.arn),
    )  # fmt: skip
    authorizer_function = aws.lambda_.Function(
        "authorizer",
        name=names.authorizer,
        role=authorizer_role.arn,
        runtime=cfg.runtime,
        architectures=[cfg.architecture],
        handler="origin.handler",
        code=pulumi.AssetArchive({"origin.py": pulumi.FileAsset(str(AUTHORIZER))}),
        memory_size=128,
        timeout=AUTHORIZER_TIMEOUT_S,
        logging_config={"log_format": "JSON", "log_group": authorizer_logs.name},
        environment={"variables": {"ORIGIN_SECRETS_PARAMETER": accepted.name}},
        tags=tags,
        opts=pulumi.ResourceOptions(depends_on=[authorizer_logs, authorizer_policy]),
    )

    # -- HTTP API ----------------------------------------------------------------------
    # The API's id is AWS's: the tag is what IAM can scope it (and its stage) by. Routes,
    # integrations and authorizers of an HTTP API cannot be tagged.
    api = aws.apigatewayv2.Api("api", name=names.api, protocol_type="HTTP", tags=tags)
    access_logs = aws.cloudwatch.LogGroup(
        "api-access-logs", name=names.api_log_group, retention_in_days=cfg.log_retention_days, tags=tags
    )
    origin_authorizer = aws.apigatewayv2.Authorizer(
        "origin-authorizer",
        api_id=api.id,
        name="origin",
        authorizer_type="REQUEST",
        authorizer_uri=authorizer_function.invoke_arn,
        authorizer_payload_format_version="2.0",
        enable_simple_responses=True,
        # Without the header API Gateway answers 401 itself; with it, one call per value per TTL.
        identity_sources=[f"$request.header.{ORIGIN_HEADER}"],
        authorizer_result_ttl_in_seconds=AUTHORIZER_RESULT_TTL_S,
    )
    aws.lambda_.Permission(
        "authorizer-invoke",
        action="lambda:InvokeFunction",
        function=authorizer_function.name,
        principal="apigateway.amazonaws.com",
        source_arn=pulumi.Output.concat(api.execution_arn, "/authorizers/", origin_authorizer.id),
    )
    integrations = {}
    for alias_name, alias in ((LIVE_ALIAS, live), (CANDIDATE_ALIAS, candidate)):
        integrations[alias_name] = aws.apigatewayv2.Integration(
            f"{alias_name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=alias.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=min(cfg.timeout_s * 1000 + 1000, 30000),
        )
    # One permission per route: each alias can be invoked through its own routes only.
    for alias_name, alias, route_keys in (
        (LIVE_ALIAS, live, LIVE_ROUTES),
        (CANDIDATE_ALIAS, candidate, CANDIDATE_ROUTES),
    ):
        for route_key in route_keys:
            method, path = route_key.split(" ", 1)
            slug = _slug(route_key)
            aws.lambda_.Permission(
                f"invoke-{slug}",
                action="lambda:InvokeFunction",
                function=function.name,
                qualifier=alias.name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(api.execution_arn, f"/*/{method}{path}"),
            )
            protected = (
                {"authorization_type": "AWS_IAM"}
                if alias_name == CANDIDATE_ALIAS
                else {"authorization_type": "CUSTOM", "authorizer_id": origin_authorizer.id}
            )
            aws.apigatewayv2.Route(
                f"route-{slug}",
                api_id=api.id,
                route_key=route_key,
                target=pulumi.Output.concat("integrations/", integrations[alias_name].id),
                **protected,
            )
    aws.apigatewayv2.Stage(
        "default-stage",
        api_id=api.id,
        name="$default",
        auto_deploy=True,
        tags=tags,
        default_route_settings={
            "throttling_rate_limit": cfg.throttle_rate,
            "throttling_burst_limit": cfg.throttle_burst,
        },
        access_log_settings={
            "destination_arn": access_logs.arn,
            "format": json.dumps(
                {
                    "requestId": "$context.requestId",
                    "routeKey": "$context.routeKey",
                    "status": "$context.status",
                    "latencyMs": "$context.responseLatency",
                    "integrationLatencyMs": "$context.integrationLatency",
                    "authorizerError": "$context.authorizer.error",
                }
            ),
        },
    )

    # -- CloudFront ----------------------------------------------------------------------
    if cfg.cache_ttl_s > 0:
        infer_cache_policy: pulumi.Input[str] = aws.cloudfront.CachePolicy(
            "infer-get-cache",
            name=names.cache_policy,  # cache policies cannot be tagged
            comment="GET /infer keyed by query string",
            min_ttl=0,
            default_ttl=cfg.cache_ttl_s,
            max_ttl=cfg.cache_ttl_s,
            parameters_in_cache_key_and_forwarded_to_origin={
                "cookies_config": {"cookie_behavior": "none"},
                "headers_config": {"header_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "all"},
                "enable_accept_encoding_gzip": True,
                "enable_accept_encoding_brotli": True,
            },
        ).id
    else:
        # A policy with TTL 0 must not name encodings (CloudFront rejects it): the managed
        # CachingDisabled policy is exactly "no caching".
        infer_cache_policy = MANAGED_CACHE_DISABLED
    origin_domain = api.api_endpoint.apply(lambda url: url.removeprefix("https://").split("/")[0])
    all_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    behavior_common: dict[str, Any] = {
        "target_origin_id": "api",
        # A redirect would turn a POST into a GET: plain HTTP is refused instead.
        "viewer_protocol_policy": "https-only",
        "allowed_methods": all_methods,
        # CloudFront never caches POST; GET/HEAD follow the cache policy.
        "cached_methods": ["GET", "HEAD"],
        "origin_request_policy_id": MANAGED_ORIGIN_REQUEST_ALL_VIEWER_EXCEPT_HOST,
        "compress": True,
    }
    origin: dict[str, Any] = {
        "origin_id": "api",
        "domain_name": origin_domain,
        "custom_origin_config": {
            "http_port": 80,
            "https_port": 443,
            "origin_protocol_policy": "https-only",
            "origin_ssl_protocols": ["TLSv1.2"],
            "origin_keepalive_timeout": 60,
            "origin_read_timeout": 30,
        },
        # CloudFront replaces a viewer's header of this name with its own value.
        "custom_headers": [{"name": ORIGIN_HEADER, "value": origin_secret.sent}],
    }
    # The two behaviours share most fields, merged with **; mypy cannot type such dicts
    # against pulumi_aws's input TypedDicts, hence the one ignore below.
    distribution = aws.cloudfront.Distribution(  # type: ignore[call-overload]
        "edge",
        enabled=True,
        comment=f"{names.base} inference edge",
        http_version="http2and3",
        is_ipv6_enabled=True,
        price_class=cfg.price_class,
        origins=[origin],
        default_cache_behavior={**behavior_common, "cache_policy_id": MANAGED_CACHE_DISABLED},
        ordered_cache_behaviors=[
            {**behavior_common, "path_pattern": "/infer", "cache_policy_id": infer_cache_policy}
        ],
        restrictions={"geo_restriction": {"restriction_type": "none"}},
        viewer_certificate={"cloudfront_default_certificate": True},
        # No response_page_path: the origin's own body (the function's error) passes through.
        custom_error_responses=[
            {"error_code": code, "error_caching_min_ttl": 0} for code in UNCACHED_ERROR_CODES
        ],
        tags=tags,
    )

    pulumi.export("edgeUrl", pulumi.Output.concat("https://", distribution.domain_name))
    pulumi.export("apiUrl", api.api_endpoint)
    # The release invalidates cached GET /infer answers after a promotion or a rollback.
    pulumi.export("distributionId", distribution.id)
    pulumi.export("functionName", function.name)
    pulumi.export("liveAlias", live.name)
    pulumi.export("candidateAlias", candidate.name)
    pulumi.export("bucket", bucket.bucket)
    pulumi.export("modelKey", model_object.key)
    pulumi.export("modelSha256", model_sha)
    pulumi.export("modelDelivery", delivery.delivery)
    pulumi.export("publishedVersion", function.version)
    pulumi.export("region", pulumi.Config("aws").get("region") or "us-east-1")
    # Where an origin-secret rotation stands, and the resource a rotation's `up` targets.
    pulumi.export("originSecretRotation", origin_secret.rotation)
    pulumi.export("originSecretUrn", origin_secret.urn)


_LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _identity(
    aws: Any,
    prefix: str,
    names: ResourceNames,
    cfg: ServingConfig,
    role_name: str,
    log_group: str,
    reads: tuple[str, str, pulumi.Output[str]],
) -> tuple[Any, Any, Any]:
    """A function's log group, and its role (`role_name` under `names.role_path`) whose
    inline policy allows `reads` (Sid, action, resource) and writing that log group:
    nothing else, and never more than the permissions boundary, when one is set."""
    logs = aws.cloudwatch.LogGroup(
        f"{prefix}-logs", name=log_group, retention_in_days=cfg.log_retention_days, tags=names.tags
    )
    # Named exactly, under the stack's own path, with the boundary: the deploy role may
    # create roles only there and only with that boundary, so it cannot mint a role that
    # grants more than the boundary (issue 24's escalation path).
    # Migration: a stack deployed with Pulumi's auto-named roles (`function-role-1a2b3c4`)
    # gets both roles replaced on its next `up`: the new role first, then each function's
    # `role` is updated (the inference function publishes one more version, same code),
    # then the old role and its inline policy are deleted. A published version keeps the
    # role it was published with, so `live` (still on the older version until the next
    # promotion) and any rollback target would lose their role and its policy at that
    # point, so `orchestrator up` first marks the old roles and their policies
    # retain-on-delete in the state (orchestrator/stacks/role_migration.py: the engine skips the
    # delete of a replaced resource whose old state says so) and says how to delete them
    # once no kept version runs with them.
    # Adding or removing the boundary of an existing role is PutRolePermissionsBoundary /
    # DeleteRolePermissionsBoundary, which the generated deploy role does not hold: an
    # administrator's change.
    role = aws.iam.Role(
        f"{prefix}-role",
        name=role_name,
        path=names.role_path,
        assume_role_policy=_LAMBDA_TRUST,
        permissions_boundary=cfg.boundary_arn,
        tags=names.tags,
    )
    sid, action, resource = reads
    policy = aws.iam.RolePolicy(
        f"{prefix}-policy",
        role=role.id,
        policy=pulumi.Output.all(resource, logs.arn).apply(
            lambda args: _policy(
                (sid, action, args[0]),
                ("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{args[1]}:*"),
            )
        ),
    )
    return logs, role, policy


def _policy(*statements: tuple[str, str | list[str], str]) -> str:
    """An IAM policy document of Allow statements (Sid, actions, resource)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource}
                for sid, action, resource in statements
            ],
        }
    )


def _slug(route_key: str) -> str:
    """'POST /candidate/infer' -> 'post-candidate-infer' (a resource name)."""
    return route_key.lower().replace(" /", "-").replace("/", "-")
