"""Where an environment's stack lives: AWS, or the AWS API emulator on this machine.

This is the one place where environments differ. A release reads everything else from
the environment's stack (orchestrator/stacks/targets.py), whichever cloud holds it:

    AwsCloud       boto3's default credential chain; programs/serving.py; CloudFront
    EmulatorCloud  moto on 127.0.0.1 (started on demand), its certificate and fixed
                   credentials; programs/local.py; the local edge's cache
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from orchestrator.base.errors import ConfigError, EdgeshipError, NotDeployedError
from orchestrator.base.progress import ProgressEvent, Reporter
from orchestrator.build.packaging import FUNCTION_DIR
from orchestrator.config.settings import CLOUDWATCH_RESOLUTION_S, Environment, Settings
from orchestrator.programs.authorizer.origin import RECHECK_S


class Cloud(Protocol):
    """How one environment's AWS is reached."""

    percentiles: bool  # CloudWatch serves percentile statistics (the emulator does not)
    # How a bake looks at Lambda's metrics here: seconds between looks, the period of one
    # datapoint, and a margin on top of the metrics' delay (watch.Timing; the delay itself
    # is traffic.metric_delay_s).
    look_s: float
    metric_resolution_s: float
    metric_slack_s: float
    # Seconds between read-backs of `live` while Lambda finishes a move (traffic.settle).
    settle_poll_s: float
    keeps_history: bool  # after `destroy`, the stack and its history stay
    # Seconds a rotation stage takes to apply everywhere, before the next may start.
    origin_settle_s: Mapping[str, float]

    def program(self) -> Callable[[], None]: ...
    def prepare(self) -> bool: ...
    def check_credentials(self) -> None: ...
    def reconciled(self) -> None: ...
    def client(self, service: str) -> Any: ...
    def account_client(self, service: str) -> Any: ...
    def signing_credentials(self) -> dict[str, str] | None: ...
    def package(self, function_dir: Path | None, reporter: Reporter) -> Path: ...
    def traffic_moved(self, outputs: Mapping[str, Any]) -> None: ...
    def invalidate(self, outputs: Mapping[str, Any]) -> None: ...
    def destroyed(self) -> dict[str, bool]: ...
    def function_logs(self, function: str) -> str: ...
    def notes(self) -> list[str]: ...


def for_environment(settings: Settings, env: Environment) -> Cloud:
    """The cloud an environment's stack lives in."""
    return EmulatorCloud(settings, env) if env.is_local else AwsCloud(settings, env)


class AwsCloud:
    """A real AWS account, reached with boto3's default credential chain (OIDC in CI)."""

    percentiles = True
    # Lambda's metrics have one datapoint a minute: a look every minute sees all there is
    # (GetMetricData is billed per metric read, so faster polling only costs).
    look_s = CLOUDWATCH_RESOLUTION_S
    metric_resolution_s = CLOUDWATCH_RESOLUTION_S
    metric_slack_s = 0.0
    # An allocation takes minutes: a read-back every 5 s sees it end soon enough, for a fifth
    # of the GetAlias/GetProvisionedConcurrencyConfig calls (both throttled per account).
    settle_poll_s = 5.0
    keeps_history = True
    origin_settle_s: Mapping[str, float] = MappingProxyType(
        {
            # Longer than the authorizer's cache (CACHE_S, 30 s by the wall clock): every sandbox
            # that read the list since holds the new value, so even one that then cannot read
            # SSM accepts it. (One that meets it unknown re-reads first; that needs only RECHECK_S.)
            # API Gateway's result cache (300 s) cannot hold a deny of a value never sent yet.
            "accepting": 40.0,
            # `up` returns once CloudFront reports Deployed; requests it sent with the old
            # value before then may still be in flight (origin read timeout: 30 s)
            "sending": 35.0,
        }
    )

    def __init__(self, settings: Settings, env: Environment) -> None:
        self.settings, self.env = settings, env

    def program(self) -> Callable[[], None]:
        from orchestrator.programs.serving import program

        return program

    def prepare(self) -> bool:
        return False  # AWS does not forget resources between commands

    def check_credentials(self) -> None:
        """ConfigError when boto3's chain finds no credentials at all (found, not verified:
        an STS call would cost a round trip; the engine reports what they may not do)."""
        import boto3

        if boto3.Session(region_name=self.env.region).get_credentials() is None:
            raise ConfigError(
                f"no AWS credentials for environment {self.env.name!r}",
                fix="configure them (AWS_PROFILE, `aws configure sso`, or the OIDC role in CI), "
                "or rehearse without AWS: --env local",
            )

    def reconciled(self) -> None:
        return None

    def client(self, service: str) -> Any:
        import boto3

        from orchestrator.base import netfaults

        client = boto3.client(service, region_name=self.env.region, config=bounded())  # type: ignore[call-overload]
        return netfaults.install(client)  # inert unless a test armed EDGESHIP_NETFAULT

    def account_client(self, service: str) -> Any:
        return self.client(service)

    def signing_credentials(self) -> dict[str, str] | None:
        return None  # the job's own credentials sign candidate requests

    def function_logs(self, function: str) -> str:
        return f"CloudWatch Logs, log group /aws/lambda/{function}"

    def notes(self) -> list[str]:
        return []

    def package(self, function_dir: Path | None, reporter: Reporter) -> Path:
        built, _tested = build_package(self.settings, self.env, function_dir, reporter)
        return built.artifact.path

    def traffic_moved(self, outputs: Mapping[str, Any]) -> None:
        return None  # API Gateway invokes the alias: a move is effective at once

    def invalidate(self, outputs: Mapping[str, Any]) -> None:
        """Invalidate CloudFront's cached GET /infer answers (they may be of a version live left)."""
        import uuid

        distribution = outputs.get("distributionId")
        if not distribution:
            raise EdgeshipError(
                "the stack exports no distributionId to invalidate",
                fix=f"run `orchestrator up --env {self.env.name}` to refresh the stack's outputs",
            )
        self.client("cloudfront").create_invalidation(
            DistributionId=str(distribution),
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/infer*"]},
                "CallerReference": uuid.uuid4().hex,
            },
        )

    def destroyed(self) -> dict[str, bool]:
        return {}


class EmulatorCloud:
    """The local environment: moto in server mode on 127.0.0.1 and the local edge, both
    started on demand, their state in `.edgeship/local` of the project."""

    percentiles = False
    # The edge publishes one datapoint a second (as late as traffic.metric_delay_s says), from
    # a thread of its own: on a busy machine a flush can be seconds late, hence the margin.
    look_s = 2.0
    metric_resolution_s = 1.0
    metric_slack_s = 5.0
    settle_poll_s = 1.0  # the emulator allocates in seconds (orchestrator/local/provisioned.py)
    # The emulator forgets everything when it stops: a history would describe nothing.
    keeps_history = False
    # The edge takes the value it sends at once, within the `up` that changes it. The
    # authorizer reads SSM at most once per RECHECK_S: a read it made just before `accepting`
    # wrote the parameter must be that old before the new value arrives, or it is denied.
    origin_settle_s: Mapping[str, float] = MappingProxyType({"accepting": RECHECK_S})

    def __init__(self, settings: Settings, env: Environment) -> None:
        self.settings, self.env = settings, env
        self.state_dir = settings.root / ".edgeship" / "local"

    def program(self) -> Callable[[], None]:
        from orchestrator.programs.local import program_for

        return program_for(self.state_dir)

    def check_credentials(self) -> None:
        return None  # the emulator's own, always there

    def prepare(self) -> bool:
        """Start the emulator for the engine; True when the stack's state may describe
        resources that are gone, so the operation must refresh first: the emulator is not
        the one the stack was last reconciled with (it restarted, empty), or the edge died."""
        from orchestrator.local import daemon, emulator

        running = emulator.ensure(self.state_dir)
        # The edge's process, not its answer: a busy edge is slow, not gone.
        edge_alive = daemon.read(self.state_dir / "edge.json") is not None
        return self._reconciled_with() != _identity(running) or not edge_alive

    def reconciled(self) -> None:
        """The stack's state now matches this emulator (after an up or a refresh)."""
        from orchestrator.local import emulator

        running = emulator.running(self.state_dir)
        if running is None or self._reconciled_with() == _identity(running):
            return
        # Atomically: a command reading it meanwhile (`status` during a promotion's publish)
        # must see the old identity or the new one, never an empty file that reads as
        # "the emulator was restarted".
        temporary = self._marker.with_name(f"{self._marker.name}.{os.getpid()}.tmp")
        temporary.write_text(_identity(running))
        os.replace(temporary, self._marker)

    @property
    def _marker(self) -> Path:
        return self.state_dir / "reconciled-with-emulator"

    def _reconciled_with(self) -> str | None:
        try:
            return self._marker.read_text()
        except OSError:
            return None

    def client(self, service: str) -> Any:
        """A client of the emulator the stack was reconciled with. Any other (none running,
        or one restarted empty) holds none of the environment: that is a NotDeployedError
        saying to run `up`, not an empty emulator started behind the user's back."""
        from orchestrator.local import emulator

        running = emulator.running(self.state_dir)
        if running is None or _identity(running) != self._reconciled_with():
            state = "is not running" if running is None else "was restarted"
            raise NotDeployedError(
                f"the local emulator {state}: it holds none of the local environment any more",
                fix=f"run `orchestrator up --env {self.env.name}` to deploy it again",
            )
        return emulator.client(service, running.url, self.state_dir / "tls" / "cert.pem")

    def account_client(self, service: str) -> Any:
        """A client of the running emulator for account-wide reads (GetAccountSettings),
        which need none of the environment deployed: `up` asks before the engine runs."""
        from orchestrator.local import emulator

        running = emulator.running(self.state_dir)
        if running is None:
            raise NotDeployedError(
                "the local emulator is not running", fix="run `orchestrator up --env local`"
            )
        return emulator.client(service, running.url, self.state_dir / "tls" / "cert.pem")

    def function_logs(self, function: str) -> str:
        return str(self.state_dir / "edge.log")  # the edge's sandboxes write there

    def notes(self) -> list[str]:
        """What the last `up` changed that the user should know (the edge's port moved)."""
        from orchestrator.local import edge_port

        note = edge_port.take_note(self.state_dir)
        return [note] if note else []

    def signing_credentials(self) -> dict[str, str]:
        # The edge verifies candidate requests' SigV4 signatures against the emulator's keys.
        from orchestrator.local import emulator

        return {k: emulator.CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    def package(self, function_dir: Path | None, reporter: Reporter) -> Path:
        """The zip `package` builds for AWS (the local sandboxes run exactly what ships),
        from the per-user cache when its inputs are unchanged, kept in the code store."""
        from orchestrator.build import packaging
        from orchestrator.local import code, runtime

        fn = self.env.function
        if fn.architecture != packaging.HOST_ARCH:
            raise EdgeshipError(
                f"the local environment runs the function on this machine ({packaging.HOST_ARCH}), "
                f"but environment {self.env.name!r} builds it for {fn.architecture}",
                fix=f'set architecture = "{packaging.HOST_ARCH}" under [environments.{self.env.name}.function] in edgeship.toml',
            )

        def build() -> Path:
            # Wheels from the per-user cache too: test projects come and go, PyPI stays put.
            pip_cache = runtime.user_cache() / "pip"
            built, _tested = build_package(self.settings, self.env, function_dir, reporter, pip_cache)
            return Path(built.artifact.path)

        # The sandboxes' runtime packages are installed now, at deploy, if `make install` did
        # not: the edge only looks them up, a request never waits on pip.
        runtime.runtime_dir(fn.runtime)
        kept, cached = code.cached_package(function_dir or FUNCTION_DIR, fn.runtime, fn.architecture, build)
        if cached:
            reporter.event(
                ProgressEvent("step", f"package for {fn.runtime}/{fn.architecture}: cached ({kept.name})")
            )
        # Content-addressed: a concurrent command building another zip cannot change this one.
        return code.store(kept, self.state_dir)[0]

    def traffic_moved(self, outputs: Mapping[str, Any]) -> None:
        # The edge polls the alias too; this makes a move effective before the next request.
        _post(outputs, "/_edgeship/refresh")

    def invalidate(self, outputs: Mapping[str, Any]) -> None:
        # The edge also empties its cache whenever it sees `live` change; this is the explicit one.
        _post(outputs, "/_edgeship/invalidate")

    def destroyed(self) -> dict[str, bool]:
        """After `destroy`: stop the edge and the emulator (its data goes with it), drop the code.
        With `[storage] keep_on_destroy` the emulator keeps running: it holds the kept bucket
        (moto keeps nothing on disk), which a `destroy` must leave as it leaves AWS's."""
        from orchestrator.local import code, daemon, emulator

        keep = self.env.storage.keep_on_destroy
        stopped = {
            "edge": daemon.stop(self.state_dir / "edge.json"),
            "emulator": False if keep else emulator.stop(self.state_dir),
        }
        for transient in ("versions", "staging", "code"):
            code.remove_tree(self.state_dir / transient)  # versions' code is read-only, as on Lambda
        self._marker.unlink(missing_ok=True)
        return stopped


def _identity(running: Any) -> str:
    """Which emulator this is: its pid and the process's start time (a pid alone can come
    back after a reboot)."""
    import psutil

    try:
        started = psutil.Process(running.pid).create_time()
    except psutil.Error:
        started = 0.0
    return f"{running.pid}@{started:.2f}"


def build_package(
    settings: Settings,
    env: Environment,
    function_dir: Path | None,
    reporter: Reporter,
    pip_cache: Path | None = None,
) -> tuple[Any, str]:
    """The Lambda zip for an environment's runtime and architecture, with dependencies, and
    what its import test found (it raises PackagingError when the zip does not import)."""
    from orchestrator.build import packaging

    fn = env.function
    reporter.event(ProgressEvent("step", f"packaging the function for {fn.runtime}/{fn.architecture}..."))
    built = packaging.build_for_environment(
        settings.root, fn.runtime, fn.architecture, function_dir or FUNCTION_DIR, pip_cache
    )
    reporter.event(
        ProgressEvent(
            "step",
            f"package {built.artifact.path.name}: {built.artifact.size / 1e6:.1f} MB zipped, "
            f"{built.unzipped_size / 1e6:.1f} MB unzipped ({built.limit_ratio:.0%} of Lambda's 250 MB limit)",
        )
    )
    if not built.bytecode:
        reporter.event(
            ProgressEvent(
                "diagnostic",
                f"package {built.artifact.path.name} carries no bytecode: no working {fn.runtime} "
                "here, so every cold start compiles the code it imports (install that Python)",
            )
        )
    tested = packaging.smoke_import(built.artifact.path, fn.runtime, fn.architecture)
    reporter.event(ProgressEvent("step", f"package {built.artifact.path.name}: {tested}"))
    return built, tested


def _post(outputs: Mapping[str, Any], path: str) -> None:
    url = str(outputs["edgeUrl"]) + path
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).read()


def bounded() -> Any:
    """Client timeouts well inside a lease's renewal window (lease_s/3, 20 s by default): a
    driver must not sit in one API call while its lease runs out and another takes over."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=10, retries={"total_max_attempts": 2, "mode": "standard"})
