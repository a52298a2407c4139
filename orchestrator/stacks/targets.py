"""Where a release happens: an environment's stack, read and changed through the engine.

The release code is the same for every environment. It reads what it needs from the
stack's outputs (function, bucket, edge and API URLs, region), publishes by running `up`,
and reaches AWS through the environment's cloud (orchestrator/stacks/clouds.py), the one place
where the local environment and AWS differ.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.base.errors import EdgeshipError, NotDeployedError
from orchestrator.base.progress import NullReporter, ProgressEvent, Reporter
from orchestrator.config.settings import Environment, Settings
from orchestrator.gates.watch import Timing
from orchestrator.programs.rotation import Rotation
from orchestrator.stacks.clouds import Cloud
from orchestrator.stacks.engine import OperationResult, Stacks


@dataclass(frozen=True)
class Published:
    """The outcome of publishing: the version `up` published (green) and its model."""

    green: str
    model: Path | None = None  # the model archive green serves


@dataclass(frozen=True)
class Endpoint:
    """Where a load test sends requests."""

    url: str
    path: str = "/infer"
    headers: dict[str, str] | None = None
    # Sign requests with SigV4 for API Gateway IAM auth (the candidate route) in this region,
    sigv4_region: str | None = None
    # with these credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: the emulator's, for the
    # local edge), else the ambient ones.
    credentials: dict[str, str] | None = None


# Builds the environment's Stacks with extra `edgeship:*` config (model, package) and a reporter.
StacksFactory = Callable[[Mapping[str, str], Reporter], Stacks]


class StackTarget:
    """One environment, as its stack describes it."""

    def __init__(
        self,
        settings: Settings,
        env: Environment,
        cloud: Cloud,
        stacks: StacksFactory,
        *,
        reporter: Reporter | None = None,
        packaged: bool = True,
    ) -> None:
        self.settings, self.env, self.cloud, self._stacks = settings, env, cloud, stacks
        self.reporter: Reporter = reporter or NullReporter()
        self.packaged = packaged  # False for a --program override: it brings its own code
        self._outputs: dict[str, Any] | None = None
        # The package built per function directory in this command: an `up` that previewed
        # first (to ask) ships what it showed, and builds it once (16 s on AWS).
        self._packages: dict[Path | None, Path] = {}

    @property
    def percentiles(self) -> bool:
        return self.cloud.percentiles

    def metric_timing(self, delay_s: float) -> Timing:
        """How a bake looks at Lambda's metrics here, which reach CloudWatch up to `delay_s` late."""
        c = self.cloud
        return Timing(c.look_s, c.metric_resolution_s, delay_s, c.metric_slack_s)

    # -- what the stack says ------------------------------------------------------------------

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs (read once per command; `up` replaces them)."""
        if self._outputs is None:
            self._outputs = self._stacks({}, self.reporter).outputs(show_secrets=False)
        return self._outputs

    def _output(self, key: str) -> str:
        """One stack output; a never-deployed stack is a usage error that says what to run."""
        value = self.outputs().get(key)
        if value is None:
            name = self.env.name
            raise NotDeployedError(
                f"environment {name!r} is not deployed yet (its stack has no {key!r} output)",
                fix=f"run `orchestrator up --env {name}` (or `orchestrator promote --env {name}`, "
                "which deploys a first version)",
            )
        return str(value)

    def require_deployed(self) -> None:
        """NotDeployedError (saying what to run) unless the stack has been deployed."""
        self._output("functionName")

    @property
    def function_name(self) -> str:
        return self._output("functionName")

    @property
    def bucket(self) -> str:
        return self._output("bucket")

    # -- AWS, as the environment reaches it ----------------------------------------------------

    # Clients serve a deployed environment: a missing stack is reported (NotDeployedError)
    # before anything is started for it (the local emulator).
    def lambda_client(self) -> Any:
        self.outputs()
        return self.cloud.client("lambda")

    def s3_client(self) -> Any:
        self.outputs()
        return self.cloud.client("s3")

    def cloudwatch_client(self) -> Any:
        self.outputs()
        return self.cloud.client("cloudwatch")

    def edge(self) -> Endpoint:
        return Endpoint(self._output("edgeUrl"))

    def candidate(self) -> Endpoint:
        # The IAM-protected route: requests are signed (SigV4, execute-api) in the stack's region.
        region = self.outputs().get("region") or self.env.region
        return Endpoint(
            self._output("apiUrl"), "/candidate/infer", sigv4_region=str(region),
            credentials=self.cloud.signing_credentials(),
        )  # fmt: skip

    def function_logs(self) -> str:
        """Where the function's own log lines go (an init failure's details are there)."""
        return self.cloud.function_logs(self.function_name)

    def traffic_moved(self) -> None:
        self.cloud.traffic_moved(self.outputs())

    def invalidate_cache(self) -> None:
        self.cloud.invalidate(self.outputs())

    # -- the engine ---------------------------------------------------------------------------

    def _config(self, function_dir: Path | None, model: Path | None, reporter: Reporter) -> dict[str, str]:
        config = {"modelPath": str(model or self.settings.model)}
        if self.packaged:
            if function_dir not in self._packages:
                self._packages[function_dir] = self.cloud.package(function_dir, reporter)
            config["packagePath"] = str(self._packages[function_dir])
        return config

    def check_ready(self) -> None:
        """Fail in a fraction of a second on what would otherwise fail only after the package
        is built (16 s on AWS): the stack's secrets (a passphrase) and, where a package is
        built, the cloud's credentials."""
        self._stacks({}, self.reporter)  # resolves the secrets provider: ConfigError without one
        if self.packaged:
            self.cloud.check_credentials()

    def preview(self, function_dir: Path | None = None, model: Path | None = None) -> OperationResult:
        """What `up` would change (after reading back what a restarted cloud lost)."""
        self.check_ready()
        stale = self.cloud.prepare()
        config = self._config(function_dir, model, self.reporter)
        return self._stacks(config, self.reporter).preview(refresh=stale)

    def up(
        self,
        function_dir: Path | None = None,
        model: Path | None = None,
        reporter: Reporter | None = None,
        *,
        extra: Mapping[str, str] | None = None,
        only: str | None = None,
    ) -> OperationResult:
        """Create or update the environment; publishes a version when code, model or config
        changed. `extra`: more `edgeship:*` config; `only`: that resource's URN and what
        depends on it, nothing else (the program still runs whole, with this config)."""
        reporter = reporter or self.reporter
        self.check_ready()
        stale = self.cloud.prepare()
        self._check_capacity(reporter)
        config = {**self._config(function_dir, model, reporter), **(extra or {})}
        from orchestrator.config.names import ResourceNames

        names = ResourceNames.of(self.settings.project, self.env.name)
        result = self._stacks(config, reporter).up(
            refresh=stale, only=only,
            # AWS only: Lambda versions run with the role they were published with.
            role_names=None if self.env.is_local else (names.function_role, names.authorizer_role),
        )  # fmt: skip
        self.cloud.reconciled()
        for note in self.cloud.notes():
            reporter.event(ProgressEvent("diagnostic", note))
        self._outputs = result.outputs
        return result

    def _check_capacity(self, reporter: Reporter) -> None:
        """Warn before the engine meets it: a reserved_concurrency that would leave Lambda
        fewer than 100 unreserved executions in the account is refused minutes into `up`."""
        requested = self.env.function.reserved_concurrency
        if requested is None:
            return
        from orchestrator.config.names import ResourceNames
        from orchestrator.stacks import capacity

        function = ResourceNames.of(self.settings.project, self.env.name).function
        try:
            found = capacity.check(self.cloud.account_client("lambda"), function, requested)
        except Exception as exc:  # a role without lambda:GetAccountSettings, throttling: only a check
            if not self.env.is_local:  # an emulator started by an older edgeship lacks the route
                reporter.event(ProgressEvent("diagnostic", (
                    f"could not check the account's unreserved concurrency for reserved_concurrency = "
                    f"{requested} ({exc}); the deploy role needs lambda:GetAccountSettings for this check")))  # fmt: skip
            return
        warning = found.warning(function, self.env.region)
        if warning:
            reporter.event(ProgressEvent("diagnostic", warning, data=asdict(found)))

    def rotate_origin_secret(self, to: Rotation, urn: str, reporter: Reporter) -> None:
        """One stage of an origin-secret rotation: an `up` of the secret and what depends on
        it only (the API's accepted values, the edge's header), never a new function version.
        It gets the config a plain `up` gives (a package built here, the project's model),
        not paths recorded by whichever machine ran the last `up`."""
        self.up(reporter=reporter, extra={"originSecretRotation": str(to)}, only=urn)

    def publish(self, function_dir: Path | None, model: Path | None, reporter: Reporter) -> Published:
        result = self.up(function_dir, model, reporter)
        return Published(str(result.outputs["publishedVersion"]), model or self.settings.model)

    def refresh(self) -> OperationResult:
        stacks = self._stacks({}, self.reporter)
        stacks.stack(create=False)  # a missing stack is reported before the cloud is started
        self.cloud.prepare()
        result = stacks.refresh()
        self.cloud.reconciled()
        return result

    def destroy(self, *, remove: bool = False) -> dict[str, Any]:
        """Delete every resource, then stop what the cloud runs for the environment (also
        when there was no stack left to destroy; never after a failed destroy: a locked
        stack means another command is at work on it)."""
        stacks = self._stacks({}, self.reporter)
        try:
            stacks.stack(create=False)
        except NotDeployedError:
            self.cloud.destroyed()
            raise
        self.cloud.prepare()
        result = stacks.destroy(remove=remove or not self.cloud.keeps_history)
        stopped = self.cloud.destroyed()
        self._outputs = None
        return {**asdict(result), **({"stopped": stopped} if stopped else {})}

    def stack_outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        return self._stacks({}, self.reporter).outputs(show_secrets=show_secrets)

    def history(self, limit: int) -> list[dict[str, Any]]:
        return self._stacks({}, self.reporter).history(limit)


def open_environment(
    settings: Settings,
    env: Environment,
    *,
    reporter: Reporter | None = None,
    backend: str | None = None,
    program: str | None = None,
) -> StackTarget:
    """An environment's target: its cloud, and its stack in the project's backend
    (`program`: a 'module:function' to run instead of the environment's own)."""
    import os

    from orchestrator.stacks import clouds, toolchain
    from orchestrator.stacks import engine as stacks

    # Decided before anything else runs (no emulator, build or engine): an environment
    # without a backend of its own is refused here, with nothing written.
    backend = stacks.resolve_backend(
        backend, settings.backend, os.environ, settings.root, env_name=env.name, is_local=env.is_local
    )
    cloud = clouds.for_environment(settings, env)
    chosen = stacks.load_program(program) if program else cloud.program()

    def open_stacks(extra: Mapping[str, str], reporter: Reporter) -> Stacks:
        spec = stacks.spec_for(
            settings, env, pulumi_root=toolchain.pulumi_root(settings.root), backend=backend,
            extra_config=extra,
        )  # fmt: skip
        return Stacks(spec, chosen, reporter)

    return StackTarget(settings, env, cloud, open_stacks, reporter=reporter, packaged=program is None)


def health(endpoint: Endpoint) -> str | None:
    """GET the endpoint's /healthz; None when it answers 200, else what went wrong."""
    url = endpoint.url + endpoint.path.rsplit("/", 1)[0] + "/healthz"
    headers = dict(endpoint.headers or {})
    if endpoint.sigv4_region:
        headers.update(sigv4_headers("GET", url, endpoint.sigv4_region, credentials=endpoint.credentials))
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.read().decode(errors="replace")[:300]
    except OSError as exc:
        return str(exc)


def sigv4_headers(
    method: str, url: str, region: str, body: bytes = b"", credentials: dict[str, str] | None = None
) -> dict[str, str]:
    """Headers that sign one request for API Gateway IAM auth, with `credentials`
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) when given, else the ambient AWS credentials.
    The URL's query must already be in SigV4's encoding (sigv4.encode_query): botocore signs
    a query as given, API Gateway as it canonicalises it, and only then are they the same."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from orchestrator.local import sigv4

    if not sigv4.is_encoded(urllib.parse.urlsplit(url).query):
        raise EdgeshipError(
            f"the query of {url} is not percent-encoded as SigV4 signs it: API Gateway would refuse it",
            fix="build the query with orchestrator.local.sigv4.encode_query",
        )
    signer: Any
    if credentials is not None:
        signer = Credentials(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"])
    else:
        ambient = boto3.Session().get_credentials()
        if ambient is None:
            raise EdgeshipError(
                "no AWS credentials to sign the candidate request", fix="configure AWS credentials"
            )
        signer = ambient.get_frozen_credentials()
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(signer, "execute-api", region).add_auth(request)
    return dict(request.headers.items())
