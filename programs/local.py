"""The local environment's stack: the serving stack's shape, on the AWS API emulator.

The same `edgeship:*` config as programs/serving.py (it reads it through the same
`ServingConfig.from_stack`) and the same outputs, so a release reads both alike. The
resources are dynamic ones (programs/emulated.py) because the AWS provider plugin is not
needed, nor installable, to rehearse on one machine; the local edge plays CloudFront and
the HTTP API, both on one origin: the API's own URL is under /api (requests there lack
CloudFront's origin header and are refused, as on AWS); `/candidate/*` is the
IAM-protected route.

    Bucket ── ModelObject ─┐   (the model is also in the Function's zip when it fits: modelship.py)
      └── Role ─────────── Function ── Alias live (its version is the release's)
                                   │     └── ProvisionedConcurrency (if provisioned_concurrency is set)
                                   └── Alias candidate (follows the newest version)
    OriginSecret ── Parameter (accepted: SSM, read by the edge's authorizer)
         └─ (sent) ─────────────────────────── Edge (the daemon; needs both aliases)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pulumi

# The edge's cache has no id of its own (EmulatorCloud.invalidate posts to the edge).
DISTRIBUTION_ID = "local-edge"


def program_for(state_dir: Path) -> Callable[[], None]:
    """The inline program of the local environment whose emulator and edge live in state_dir."""

    def program() -> None:
        from orchestrator.build.artifacts import sha256_file
        from orchestrator.config.names import ResourceNames
        from orchestrator.local import code, daemon
        from orchestrator.local.edge import API_PREFIX, REVISION
        from orchestrator.programs import modelship

        from .emulated import (
            Alias,
            Bucket,
            Edge,
            Function,
            ModelObject,
            Parameter,
            ProvisionedConcurrency,
            Role,
        )
        from .origin_secret import OriginSecret
        from .serving import (
            AUTHORIZER_RESULT_TTL_S,
            CANDIDATE_ALIAS,
            LIVE_ALIAS,
            ServingConfig,
        )

        cfg = ServingConfig.from_stack()
        region = pulumi.Config("aws").get("region") or "us-east-1"
        sd = str(state_dir)
        names = ResourceNames.of(pulumi.get_project(), pulumi.get_stack())
        # Read as serving.py reads them (ServingConfig): the local environment's boundary is "".
        noncurrent_days = cfg.noncurrent_days
        boundary_arn = cfg.boundary_arn or ""
        model_path = Path(cfg.model_path)
        model_sha = sha256_file(model_path)
        if not cfg.package_path:
            # As serving.py: the local sandboxes run what ships, and a handler-only archive
            # cannot import numpy or onnxruntime.
            raise ValueError(
                "edgeship:packagePath is not set: deploy with `orchestrator up --env <local env>`, which "
                "builds the function package (handler and its dependencies) for the runtime and architecture"
            )
        # The model rides in the package when it fits (programs/modelship.py), as
        # serving.py decides it: the version's zip, which the edge runs, then carries it.
        package = Path(cfg.package_path)
        delivery = modelship.decide(model_path, package)
        if delivery.delivery == modelship.PACKAGE:
            # Built in a directory of this run's own (the package cache is shared by commands
            # running at once), stored where the edge runs versions from, then gone with the
            # directory (30 MB a model).
            (state_dir / "staging").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=state_dir / "staging") as work:
                carrying = modelship.with_model(
                    package, model_path, sha256_file(package), model_sha, Path(work)
                )
                code_path, code_sha = code.store(carrying, state_dir)
        else:
            code_path, code_sha = code.store(package, state_dir)
        emulator = daemon.read(state_dir / "emulator.json")

        # `[storage] keep_on_destroy`: destroy leaves the bucket and its data (retain_on_delete,
        # as serving.py's bucket and its configuration), and the emulator keeps running to
        # hold it (EmulatorCloud.destroyed). The bucket is then orphaned from the stack: the
        # next `up` creates a new one beside it (another suffix), as on AWS, where the kept
        # one stays until deleted by hand; here, until the emulator stops.
        bucket = Bucket(
            "models",
            {"stateDir": sd, "bucketPrefix": names.bucket_prefix, "noncurrentDays": noncurrent_days,
             "tags": names.tags},
            pulumi.ResourceOptions(retain_on_delete=cfg.keep_on_destroy),
        )  # fmt: skip
        model = ModelObject(
            "model",
            {"stateDir": sd, "bucket": bucket.bucket, "key": f"models/{model_sha}.tar.gz",
             "source": str(model_path), "sha256": model_sha},
            # Versions published earlier still load their model (a rollback's target);
            # destroy empties the bucket.
            pulumi.ResourceOptions(retain_on_delete=True),
        )  # fmt: skip
        role = Role(
            "function-role",
            {"stateDir": sd, "roleName": names.function_role, "path": names.role_path, "bucket": bucket.bucket,
             "boundaryArn": boundary_arn, "tags": names.tags},
        )  # fmt: skip
        origin_secret = OriginSecret("origin-secret", cfg.origin_rotation)
        accepted = Parameter(
            "origin-secrets",
            {"stateDir": sd, "parameterName": names.origin_parameter, "tags": names.tags,
             "value": origin_secret.accepted.apply(json.dumps)},
        )  # fmt: skip
        function = Function(
            "function",
            {
                "stateDir": sd, "functionName": names.function, "roleArn": role.arn, "runtime": cfg.runtime,
                "tags": names.tags,
                "architecture": cfg.architecture, "memoryMb": cfg.memory_mb, "timeoutS": cfg.timeout_s,
                "reservedConcurrency": cfg.reserved_concurrency, "codePath": str(code_path), "codeSha256": code_sha,
                "environment": {
                    "MODEL_URI": pulumi.Output.concat("s3://", bucket.bucket, "/", model.key),
                    "MODEL_SHA256": model_sha,
                    "MODEL_DELIVERY": delivery.delivery,
                },
            },
        )  # fmt: skip
        alias = {"stateDir": sd, "functionName": function.functionName, "functionVersion": function.version}
        # As in serving.py: `orchestrator promote` owns which version `live` serves.
        live = Alias(
            "live", {**alias, "name": LIVE_ALIAS}, pulumi.ResourceOptions(ignore_changes=["functionVersion"])
        )
        candidate = Alias("candidate", {**alias, "name": CANDIDATE_ALIAS})
        if cfg.provisioned_concurrency:  # as serving.py's `live-provisioned`
            ProvisionedConcurrency(
                "live-provisioned",
                {"stateDir": sd, "functionName": function.functionName, "qualifier": live.name,
                 "executions": cfg.provisioned_concurrency},
            )  # fmt: skip
        edge = Edge(
            "edge",
            {"stateDir": sd, "emulatorUrl": emulator.url if emulator else "not-running",
             "functionName": function.functionName, "cacheTtlS": cfg.cache_ttl_s, "region": region,
             # Lambda's metrics arrive late on AWS: the edge publishes as late (traffic.metric_delay_s).
             "metricDelayS": pulumi.Config("edgeship").get_float("metricDelayS") or 0.0,
             "revision": REVISION, "originSent": origin_secret.sent, "originParameter": accepted.parameterName,
             "authorizerTtlS": AUTHORIZER_RESULT_TTL_S},
            pulumi.ResourceOptions(depends_on=[live, candidate]),
        )  # fmt: skip

        pulumi.export("edgeUrl", edge.url)
        pulumi.export("apiUrl", edge.url.apply(lambda url: url + API_PREFIX))
        pulumi.export("distributionId", DISTRIBUTION_ID)
        pulumi.export("functionName", function.functionName)
        pulumi.export("liveAlias", live.name)
        pulumi.export("candidateAlias", candidate.name)
        pulumi.export("bucket", bucket.bucket)
        pulumi.export("modelKey", model.key)
        pulumi.export("modelSha256", model_sha)
        pulumi.export("modelDelivery", delivery.delivery)
        pulumi.export("publishedVersion", function.version)
        pulumi.export("region", region)
        pulumi.export("originSecretRotation", origin_secret.rotation)
        pulumi.export("originSecretUrn", origin_secret.urn)

    return program
