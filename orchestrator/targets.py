"""Where a release happens. The release code is the same for every environment; only
how a version is published and where the edge is differ, behind this small interface.

    LocalTarget  moto on 127.0.0.1 + the local edge; provisions with boto3
    AwsTarget    the Pulumi stack (`up` publishes) + CloudFront; needs AWS credentials
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.errors import EdgeshipError, NotDeployedError
from orchestrator.progress import ProgressEvent, Reporter
from orchestrator.settings import Environment, Settings


@dataclass(frozen=True)
class Published:
    """The outcome of publishing: blue serves `live` now, green is the new version."""

    blue: str | None
    green: str
    changed: bool
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


class Target(Protocol):
    """What the release machinery needs from an environment."""

    settings: Settings
    env: Environment
    function_name: str
    bucket: str
    percentiles: bool  # CloudWatch serves percentile statistics (the emulator does not)

    def lambda_client(self) -> Any: ...
    def s3_client(self) -> Any: ...
    def cloudwatch_client(self) -> Any: ...
    def publish(self, function_dir: Path | None, model: Path | None, reporter: Reporter) -> Published: ...
    def edge(self) -> Endpoint: ...
    def candidate(self) -> Endpoint: ...
    def traffic_moved(self) -> None: ...
    def invalidate_cache(self) -> None: ...


FUNCTION_DIR = Path(__file__).resolve().parents[1] / "programs" / "function"


class LocalTarget:
    """The local environment: emulator + local edge, started on demand and kept running."""

    percentiles = False

    def __init__(self, settings: Settings, env: Environment) -> None:
        from orchestrator.local.provision import LocalStack

        self.settings, self.env = settings, env
        self.state_dir = settings.root / ".edgeship" / "local"
        stack = LocalStack.for_project(settings.project)
        self.function_name, self.bucket = stack.function_name, stack.bucket
        self._stack = stack
        self._emulator_url: str | None = None

    def emulator_url(self) -> str:
        """The emulator's URL, starting it if needed."""
        if self._emulator_url is None:
            from orchestrator.local import emulator

            self._emulator_url = emulator.ensure(self.state_dir).url
        return self._emulator_url

    def lambda_client(self) -> Any:
        from orchestrator.local import emulator

        return emulator.client("lambda", self.emulator_url(), self.ca())

    def s3_client(self) -> Any:
        from orchestrator.local import emulator

        return emulator.client("s3", self.emulator_url(), self.ca())

    def cloudwatch_client(self) -> Any:
        from orchestrator.local import emulator

        return emulator.client("cloudwatch", self.emulator_url(), self.ca())

    def ca(self) -> Path:
        """The emulator's certificate, which clients trust."""
        return self.state_dir / "tls" / "cert.pem"

    def publish(self, function_dir: Path | None, model: Path | None, reporter: Reporter) -> Published:
        from orchestrator.local import emulator, provision

        url = self.emulator_url()
        reporter.event(ProgressEvent("step", f"local: emulator at {url}; provisioning {self.function_name}"))
        deployed = provision.deploy(
            self.lambda_client(), self.s3_client(), emulator.client("iam", url, self.ca()), self._stack,
            state_dir=self.state_dir, function_dir=function_dir or FUNCTION_DIR, model_path=model or self.settings.model,
            memory_mb=self.env.function.memory_mb, timeout_s=self.env.function.timeout_s,
        )  # fmt: skip
        self.ensure_edge()
        return Published(deployed.blue, deployed.green, deployed.changed, model or self.settings.model)

    def ensure_edge(self) -> str:
        """The local edge's URL, starting it if needed."""
        from orchestrator.local import daemon
        from orchestrator.local.edge import REVISION

        state_file = self.state_dir / "edge.json"
        running = daemon.read(state_file)
        if running and daemon.healthy(running.url + "/_edgeship/status"):
            if _edge_revision(running.url) == REVISION:
                return running.url
            daemon.stop(state_file)  # started by an older edgeship: it would refuse today's requests
        port = daemon.free_port(8787)
        argv = [
            daemon.python(), "-m", "orchestrator.local.edge", "--state-dir", str(self.state_dir),
            "--emulator", self.emulator_url(), "--function", self.function_name, "--port", str(port),
            "--cache-ttl", str(self.env.edge.cache_ttl_s), "--region", self.env.region,
        ]  # fmt: skip
        return daemon.start(
            "edge", argv, state_file, self.state_dir / "edge.log", "/_edgeship/status", port
        ).url

    def edge(self) -> Endpoint:
        return Endpoint(self.ensure_edge())

    def candidate(self) -> Endpoint:
        # SigV4-protected like the AWS route; the edge checks against the emulator's credentials.
        from orchestrator.local import emulator

        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        return Endpoint(
            self.ensure_edge(), "/candidate/infer", sigv4_region=self.env.region,
            credentials={k: emulator.CREDENTIALS[k] for k in keys},
        )  # fmt: skip

    def traffic_moved(self) -> None:
        # The edge polls too; this makes the move effective before the next request.
        self._post("/_edgeship/refresh")

    def invalidate_cache(self) -> None:
        # The edge also empties its cache whenever it sees live change; this is the explicit one.
        self._post("/_edgeship/invalidate")

    def _post(self, path: str) -> None:
        url = self.ensure_edge() + path
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).read()

    def stop(self) -> dict[str, bool]:
        """Stop the edge and the emulator (their state goes with them)."""
        import shutil

        from orchestrator.local import daemon, emulator

        stopped = {
            "edge": daemon.stop(self.state_dir / "edge.json"),
            "emulator": emulator.stop(self.state_dir),
        }
        for transient in ("versions", "staging"):
            shutil.rmtree(self.state_dir / transient, ignore_errors=True)
        return stopped

    def describe(self) -> dict[str, Any]:
        """URLs for people: how to call the edge."""
        from orchestrator.local import daemon

        edge = daemon.read(self.state_dir / "edge.json")
        emu = daemon.read(self.state_dir / "emulator.json")
        return {"edge_url": edge.url if edge else None, "emulator_url": emu.url if emu else None}


class AwsTarget:
    """A real AWS environment, provisioned and published by the Pulumi program."""

    percentiles = True

    def __init__(self, settings: Settings, env: Environment, stacks: Any) -> None:
        self.settings, self.env, self.stacks = settings, env, stacks
        self._outputs: dict[str, Any] | None = None

    def _out(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = self.stacks.outputs(show_secrets=False)
        return self._outputs

    def _output(self, key: str) -> str:
        """One stack output; a never-deployed stack is a usage error that says what to run."""
        value = self._out().get(key)
        if value is None:
            name = self.env.name
            raise NotDeployedError(
                f"environment {name!r} is not deployed yet (its stack has no {key!r} output)",
                fix=f"run `orchestrator up --env {name}` (or `orchestrator promote --env {name}`, "
                "which deploys a first version)",
            )
        return str(value)

    @property
    def function_name(self) -> str:
        return self._output("functionName")

    @property
    def bucket(self) -> str:
        return self._output("bucket")

    def lambda_client(self) -> Any:
        import boto3

        return boto3.client("lambda", region_name=self.env.region, config=_bounded())

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=self.env.region, config=_bounded())

    def cloudwatch_client(self) -> Any:
        import boto3

        return boto3.client("cloudwatch", region_name=self.env.region, config=_bounded())

    def publish(self, function_dir: Path | None, model: Path | None, reporter: Reporter) -> Published:
        blue = None
        if self._out().get("functionName"):  # deployed before: live serves blue
            blue = self.lambda_client().get_alias(FunctionName=self.function_name, Name="live")[
                "FunctionVersion"
            ]
        result = self.stacks.up()
        self._outputs = result.outputs
        return Published(blue, str(result.outputs["publishedVersion"]), result.changed, self.settings.model)

    def edge(self) -> Endpoint:
        return Endpoint(self._output("edgeUrl"))

    def candidate(self) -> Endpoint:
        # IAM-protected route: requests are signed with the job's AWS credentials.
        return Endpoint(self._output("apiUrl"), "/candidate/infer", sigv4_region=self.env.region)

    def traffic_moved(self) -> None:
        return None

    def invalidate_cache(self) -> None:
        """Invalidate CloudFront's cached GET /infer answers (they may be of a version live left)."""
        import uuid

        import boto3

        distribution = self._out().get("distributionId")
        if not distribution:
            raise EdgeshipError(
                "the stack exports no distributionId to invalidate",
                fix=f"run `orchestrator up --env {self.env.name}` to refresh the stack's outputs",
            )
        boto3.client("cloudfront", region_name=self.env.region, config=_bounded()).create_invalidation(
            DistributionId=str(distribution),
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/infer*"]},
                "CallerReference": uuid.uuid4().hex,
            },
        )


def _edge_revision(url: str) -> int | None:
    """The revision a running local edge reports (None when it reports none)."""
    import json

    try:
        with urllib.request.urlopen(url + "/_edgeship/status", timeout=5) as response:
            return json.loads(response.read()).get("revision")
    except (OSError, ValueError):
        return None


def _bounded() -> Any:
    """Client timeouts well inside a lease's renewal window (lease_s/3, 20 s by default): a
    driver must not sit in one API call while its lease runs out and another takes over."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=10, retries={"total_max_attempts": 2, "mode": "standard"})


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
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) when given, else the ambient AWS credentials."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

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
