"""edgeship.toml -> typed, validated settings.

Every error names the file, the key, what is wrong and how to fix it: users edit
this file by hand and CI fails on it, so the message must be enough on its own.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.errors import ConfigError

SAMPLE_MODEL = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"

CONFIG_FILE = "edgeship.toml"
SCHEDULES = ("canary", "linear", "all-at-once", "explicit")
ARCHITECTURES = ("arm64", "x86_64")
RUNTIMES = ("python3.12", "python3.13")
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
LOCAL_ENV = "local"
UNJUDGED_BAKE = ("fail", "extend")  # what a bake does when it judged nothing of green (watch.decide)
EXTEND_BAKES = 3  # an extending bake's cap, by default: this many bake_s (traffic.max_extend_s)
# Lambda's metrics on AWS: one datapoint per minute, visible about a minute or more after it.
CLOUDWATCH_RESOLUTION_S = 60.0
AWS_METRIC_DELAY_S = 120.0  # how late a bake allows them to be, by default (traffic.metric_delay_s)
# The local edge publishes this late by default: later than the local bakes' look interval and
# than the short bakes tests use, so a local bake has to wait for its datapoints as one on AWS
# does (a bake that did not would judge nothing here too), for seconds rather than minutes.
LOCAL_METRIC_DELAY_S = 3.0


@dataclass(frozen=True)
class FunctionSettings:
    """The Lambda function's shape."""

    runtime: str = "python3.12"
    # The architecture whose package `orchestrator package` import-tests on this project's
    # CI machines (x86_64); arm64 packages are built the same way but not import-tested here.
    architecture: str = "x86_64"
    memory_mb: int = 1024
    timeout_s: int = 10
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    snapstart: bool = False


@dataclass(frozen=True)
class EdgeSettings:
    """CloudFront in front of the API."""

    cache_ttl_s: int = 60
    price_class: str = "PriceClass_100"


@dataclass(frozen=True)
class StorageSettings:
    """The model bucket (models, and the promotion records under promotions/)."""

    # `orchestrator destroy` empties the bucket unless this is set: then the bucket and its
    # records survive a destroy (AWS refuses to delete a bucket that is not empty).
    keep_on_destroy: bool = False


HOOK_WHEN = ("pre-traffic", "step")


@dataclass(frozen=True)
class Hook:
    """A command a promotion runs (a Flagger webhook, an Argo analysis job): its non-zero
    exit fails the gate it belongs to, so the promotion rolls back."""

    on: str  # "pre-traffic": green alone behind the candidate route; "step": after each step's gate
    run: str  # run with /bin/sh -c from the project directory
    timeout_s: float = 60.0


@dataclass(frozen=True)
class TrafficSettings:
    """How `promote` moves the `live` alias from blue to green."""

    schedule: str = "canary"
    canary_weight: int = 10
    linear_steps: int = 4
    weights: tuple[int, ...] = ()
    # Seconds green is watched with real users at each step, plus the wait for its late
    # metrics (up to one period + metric_delay_s more); 0: no bake (the gates alone judge green).
    bake_s: float = 300.0
    # How late Lambda's metrics may reach CloudWatch. On AWS a bound the bake allows for
    # (default AWS_METRIC_DELAY_S); locally also how late the edge publishes them
    # (default LOCAL_METRIC_DELAY_S). None: the environment's default (Environment.metric_delay_s).
    metric_delay_s: float | None = None
    # A bake that judged no metric of green by then: "fail" (roll back) or "extend" (bake on
    # until green's traffic is judged). Never a pass.
    unjudged_bake: str = "fail"
    # With unjudged_bake = "extend": how long a bake may bake on past its bound before it fails
    # as not judged. None: EXTEND_BAKES x bake_s.
    max_extend_s: float | None = None
    # How long a promotion's lease lasts unless renewed (every lease_s/3). A driver that
    # dies holds the environment at most this long before any machine can take over.
    lease_s: float = 60.0
    hooks: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class SloSettings:
    """Thresholds a version must meet at every gate."""

    p95_ms: float = 250.0
    p99_ms: float = 500.0
    max_error_ratio: float = 0.01
    min_rps: float = 5.0
    min_samples: int = 100
    relative_p95_factor: float = 1.5
    # CloudWatch alarms watched through every bake: any in ALARM rolls the promotion back.
    alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadSettings:
    """The Locust load shape of each gate."""

    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 30.0
    # Share of gate requests sent as cacheable GET /infer?x=... (the rest POST /infer).
    get_share: float = 0.1
    # Locust processes generating the load: 1 runs Locust alone (one core at most); more run
    # a master and that many workers on this machine ("auto" in edgeship.toml: one per core).
    workers: int = 1
    # Load beyond this machine: workers started elsewhere (`locust -f loadtests/locustfile.py
    # --worker --master-host HOST --master-port PORT`) that the master also waits for. The
    # master then listens on master_bind:master_port (loopback and a free port otherwise).
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0


@dataclass(frozen=True)
class Environment:
    """One deployment target (a Pulumi stack of the same name)."""

    name: str
    region: str
    account_id: str
    function: FunctionSettings = field(default_factory=FunctionSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    traffic: TrafficSettings = field(default_factory=TrafficSettings)
    slo: SloSettings = field(default_factory=SloSettings)
    load: LoadSettings = field(default_factory=LoadSettings)

    @property
    def is_local(self) -> bool:
        """True for the emulated environment that needs no AWS account."""
        return self.name == LOCAL_ENV

    @property
    def metric_delay_s(self) -> float:
        """How late Lambda's metrics may reach CloudWatch here (traffic.metric_delay_s, or the default)."""
        if self.traffic.metric_delay_s is not None:
            return self.traffic.metric_delay_s
        return LOCAL_METRIC_DELAY_S if self.is_local else AWS_METRIC_DELAY_S

    def pulumi_config(self) -> dict[str, str]:
        """Stack config (namespace `edgeship`) that the serving program reads."""
        f, e = self.function, self.edge
        config = {
            "runtime": f.runtime,
            "architecture": f.architecture,
            "memoryMb": str(f.memory_mb),
            "timeoutS": str(f.timeout_s),
            "snapstart": "true" if f.snapstart else "false",
            "cacheTtlS": str(e.cache_ttl_s),
            "priceClass": e.price_class,
            "keepOnDestroy": "true" if self.storage.keep_on_destroy else "false",
        }
        if f.reserved_concurrency is not None:
            config["reservedConcurrency"] = str(f.reserved_concurrency)
        if f.provisioned_concurrency is not None:
            config["provisionedConcurrency"] = str(f.provisioned_concurrency)
        if self.is_local:  # the local edge publishes Lambda's metrics as late as AWS does
            config["metricDelayS"] = f"{self.metric_delay_s:g}"
        return config


@dataclass(frozen=True)
class Settings:
    """Everything edgeship.toml declares."""

    path: Path
    project: str
    backend: str | None
    secrets_provider: str | None
    model: Path
    environments: dict[str, Environment]
    default_env: str | None = None  # project.default_env: --env when none is given (cli.py)

    @property
    def root(self) -> Path:
        """The project directory (where edgeship.toml lives)."""
        return self.path.parent

    def environment(self, name: str) -> Environment:
        """The named environment, or a ConfigError listing the ones that exist."""
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"{self.path}: no environment named {name!r} (known: {known})",
                fix=f"add an [environments.{name}] table to {self.path.name} or pick a known one",
            ) from None


_SECTIONS: dict[str, type] = {
    "function": FunctionSettings,
    "edge": EdgeSettings,
    "storage": StorageSettings,
    "traffic": TrafficSettings,
    "slo": SloSettings,
    "load": LoadSettings,
}


def find_config(start: Path | None = None) -> Path:
    """Walk up from `start` (default: cwd) to the nearest edgeship.toml."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE} in {here} or any parent directory",
        fix=f"run from an edgeship project, or pass --config PATH/{CONFIG_FILE}",
    )


def load(path: Path | None = None) -> Settings:
    """Read and validate the environment file."""
    path = (path or find_config()).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found", fix="pass the path of an existing edgeship.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", fix="fix the syntax at that line") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Settings:
    """Validate an already-parsed environment file (separate from I/O for table tests)."""
    where = _Where(path)
    _only_keys(raw, {"project", "defaults", "environments"}, where, "")
    project = raw.get("project", {})
    _only_keys(project, {"name", "backend", "secrets_provider", "model", "default_env"}, where, "project")
    name = _typed(project.get("name", "edgeship"), str, where, "project.name")
    if not name.replace("-", "").replace("_", "").isalnum():
        where.fail(
            "project.name", f"{name!r} has characters Pulumi does not allow", "use letters, digits, - and _"
        )
    backend = project.get("backend")
    if backend is not None:
        _typed(backend, str, where, "project.backend")
    secrets_provider = project.get("secrets_provider")
    if secrets_provider is not None:
        _typed(secrets_provider, str, where, "project.secrets_provider")
    # Without project.model: the sample model edgeship ships (in its checkout or its wheel).
    model = (
        path.parent / _typed(project["model"], str, where, "project.model")
        if "model" in project
        else SAMPLE_MODEL
    )

    defaults = raw.get("defaults", {})
    _only_keys(defaults, set(_SECTIONS), where, "defaults")
    envs_raw = raw.get("environments")
    if not envs_raw:
        where.fail("environments", "no environments declared", "add at least [environments.local]")
    environments = {
        env_name: _environment(env_name, body, defaults, where) for env_name, body in envs_raw.items()
    }
    default_env = project.get("default_env")
    if default_env is not None:
        _typed(default_env, str, where, "project.default_env")
        if default_env not in environments:
            where.fail(
                "project.default_env",
                f"{default_env!r} is not a declared environment",
                f"use one of: {', '.join(sorted(environments))}",
            )
    return Settings(
        path=path,
        project=name,
        backend=backend,
        secrets_provider=secrets_provider,
        model=model,
        environments=environments,
        default_env=default_env,
    )


class _Where:
    """Builds ConfigErrors that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        raise ConfigError(f"{self.path}: {key}: {problem}", fix=fix)


def _only_keys(table: Any, allowed: set[str], where: _Where, prefix: str) -> None:
    if not isinstance(table, dict):
        where.fail(prefix or "(top level)", "must be a table", f"write it as [{prefix}]")
    unknown = sorted(set(table) - allowed)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        where.fail(key, "unknown key", f"remove it, or use one of: {', '.join(sorted(allowed))}")


def _typed(value: Any, kind: type, where: _Where, key: str) -> Any:
    # bool is an int in Python; a `true` where a number belongs is still a mistake.
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        where.fail(key, f"expected {kind.__name__}, got {value!r}", f"set {key} to a {kind.__name__}")
    return value


def available_cores() -> int:
    """The cores this process may run on (a CI runner's or a container's share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _section(cls: type, merged: dict[str, Any], where: _Where, prefix: str) -> Any:
    _only_keys(merged, {f.name for f in fields(cls)}, where, prefix)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in merged:
            continue
        value = merged[f.name]
        key = f"{prefix}.{f.name}"
        if f.name == "weights":
            if not isinstance(value, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) for w in value
            ):
                where.fail(
                    key, f"expected a list of integers, got {value!r}", "e.g. weights = [5, 25, 50, 100]"
                )
            values[f.name] = tuple(value)
            continue
        if f.name == "alarms":
            if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
                where.fail(
                    key, f"expected a list of alarm names, got {value!r}", 'e.g. alarms = ["prod-5xx"]'
                )
            values[f.name] = tuple(value)
            continue
        if f.name == "hooks":
            values[f.name] = _hooks(value, where, key)
            continue
        if f.name == "workers" and isinstance(value, str):
            if value != "auto":
                where.fail(
                    key, f"{value!r} is not a number of processes", 'use a number, or "auto" (one per core)'
                )
            values[f.name] = available_cores()
            continue
        kind = {"int": int, "float": float, "str": str, "bool": bool}[str(f.type).replace(" | None", "")]
        values[f.name] = _typed(value, kind, where, key)
    return cls(**values)


def _hooks(value: Any, where: _Where, key: str) -> tuple[Hook, ...]:
    example = 'hooks = [{ on = "step", run = "scripts/check.sh", timeout_s = 60 }]'
    if not isinstance(value, list):
        where.fail(key, f"expected a list of tables, got {value!r}", example)
    hooks = []
    for i, item in enumerate(value):
        at = f"{key}[{i}]"
        _only_keys(item, {"on", "run", "timeout_s"}, where, at)
        on = _typed(item.get("on", ""), str, where, f"{at}.on")
        if on not in HOOK_WHEN:
            where.fail(f"{at}.on", f"{on!r} is not a hook point", f"use one of {', '.join(HOOK_WHEN)}")
        run = _typed(item.get("run", ""), str, where, f"{at}.run")
        if not run.strip():
            where.fail(f"{at}.run", "missing command", example)
        timeout = _typed(item.get("timeout_s", 60.0), float, where, f"{at}.timeout_s")
        if timeout <= 0:
            where.fail(f"{at}.timeout_s", "must be positive", "e.g. timeout_s = 60")
        hooks.append(Hook(on, run, timeout))
    return tuple(hooks)


def _environment(name: str, body: Any, defaults: dict[str, Any], where: _Where) -> Environment:
    prefix = f"environments.{name}"
    _only_keys(body, {"region", "account_id", *_SECTIONS}, where, prefix)
    for key in ("region", "account_id"):
        if key not in body:
            where.fail(f"{prefix}.{key}", "missing", f'add {key} = "..." to [{prefix}]')
    region = _typed(body["region"], str, where, f"{prefix}.region")
    account = _typed(body["account_id"], str, where, f"{prefix}.account_id")
    if not (account.isdigit() and len(account) == 12):
        where.fail(
            f"{prefix}.account_id",
            f"{account!r} is not a 12-digit AWS account id",
            'quote it: account_id = "123456789012"',
        )
    sections = {
        section: _section(
            cls, {**defaults.get(section, {}), **body.get(section, {})}, where, f"{prefix}.{section}"
        )
        for section, cls in _SECTIONS.items()
    }
    env = Environment(name=name, region=region, account_id=account, **sections)
    _check(env, where, prefix)
    return env


def _check(env: Environment, where: _Where, prefix: str) -> None:
    f, t, s, ld = env.function, env.traffic, env.slo, env.load
    rules: list[tuple[bool, str, str, str]] = [
        (
            f.runtime in RUNTIMES,
            "function.runtime",
            f"{f.runtime!r} is not supported",
            f"use one of {', '.join(RUNTIMES)}",
        ),
        (
            f.architecture in ARCHITECTURES,
            "function.architecture",
            f"{f.architecture!r} is not a Lambda architecture",
            "use arm64 or x86_64",
        ),
        (
            128 <= f.memory_mb <= 10240,
            "function.memory_mb",
            f"{f.memory_mb} is outside 128..10240",
            "pick a value Lambda allows",
        ),
        (
            1 <= f.timeout_s <= 900,
            "function.timeout_s",
            f"{f.timeout_s} is outside 1..900",
            "pick a value Lambda allows",
        ),
        (
            not (f.snapstart and f.provisioned_concurrency),
            "function.snapstart",
            "SnapStart and provisioned concurrency exclude each other",
            "set one of them only",
        ),
        (
            f.provisioned_concurrency is None
            or f.reserved_concurrency is None
            or f.provisioned_concurrency <= f.reserved_concurrency,
            "function.provisioned_concurrency",
            f"{f.provisioned_concurrency} is more than reserved_concurrency = {f.reserved_concurrency}",
            "lower provisioned_concurrency or raise reserved_concurrency (Lambda refuses more)",
        ),
        (
            env.edge.price_class in PRICE_CLASSES,
            "edge.price_class",
            f"{env.edge.price_class!r} is unknown",
            f"use one of {', '.join(PRICE_CLASSES)}",
        ),
        (env.edge.cache_ttl_s >= 0, "edge.cache_ttl_s", "must not be negative", "use 0 to disable caching"),
        (
            t.schedule in SCHEDULES,
            "traffic.schedule",
            f"{t.schedule!r} is not a schedule",
            f"use one of {', '.join(SCHEDULES)}",
        ),
        (
            0 < t.canary_weight < 100,
            "traffic.canary_weight",
            f"{t.canary_weight} must be between 1 and 99",
            "e.g. canary_weight = 10",
        ),
        (t.linear_steps >= 1, "traffic.linear_steps", "must be at least 1", "e.g. linear_steps = 4"),
        (
            t.schedule != "explicit" or bool(t.weights),
            "traffic.weights",
            "the explicit schedule needs weights",
            "e.g. weights = [5, 25, 50, 100]",
        ),
        (
            all(0 < w <= 100 for w in t.weights) and list(t.weights) == sorted(set(t.weights)),
            "traffic.weights",
            f"{list(t.weights)} must rise strictly within 1..100",
            "e.g. weights = [5, 25, 50, 100]",
        ),
        (t.bake_s >= 0, "traffic.bake_s", "must not be negative", "use 0 for no bake time"),
        (
            env.is_local or t.bake_s == 0 or t.bake_s >= CLOUDWATCH_RESOLUTION_S,
            "traffic.bake_s",
            f"{t.bake_s:g} s is shorter than one datapoint of Lambda's metrics on AWS "
            f"({CLOUDWATCH_RESOLUTION_S:g} s): such a bake cannot watch green's traffic on its own",
            f"set bake_s = 0 (no bake: the gates alone judge green) or at least {CLOUDWATCH_RESOLUTION_S:g}, "
            f"e.g. 300; each bake then also waits up to {CLOUDWATCH_RESOLUTION_S:g} s + metric_delay_s "
            f"({env.metric_delay_s:g} s) for green's late datapoints",
        ),
        (
            env.metric_delay_s >= 0,
            "traffic.metric_delay_s",
            "must not be negative",
            f"how late Lambda's metrics may arrive, e.g. {AWS_METRIC_DELAY_S:g} on AWS, "
            f"{LOCAL_METRIC_DELAY_S:g} locally",
        ),
        (
            t.unjudged_bake in UNJUDGED_BAKE,
            "traffic.unjudged_bake",
            f"{t.unjudged_bake!r} is not what a bake can do when it judged nothing of green",
            'use "fail" (roll back) or "extend" (bake on until green\'s traffic is judged)',
        ),
        (
            t.max_extend_s is None or t.max_extend_s > 0,
            "traffic.max_extend_s",
            f"{t.max_extend_s} must be more than 0 seconds",
            f"leave it out for {EXTEND_BAKES} x bake_s, or give seconds, e.g. 900",
        ),
        (
            t.lease_s >= 3,
            "traffic.lease_s",
            f"{t.lease_s:g} is too short to renew",
            "use at least 3 (default 60)",
        ),
        (
            s.p95_ms > 0 and s.p99_ms >= s.p95_ms,
            "slo.p99_ms",
            "p95_ms must be positive and p99_ms at least p95_ms",
            "raise p99_ms",
        ),
        (0 <= s.max_error_ratio < 1, "slo.max_error_ratio", "must be in 0..1", "e.g. 0.01 for 1 %"),
        (s.min_samples >= 1, "slo.min_samples", "must be at least 1", "e.g. 100"),
        (
            s.min_rps >= 0 and s.relative_p95_factor >= 0,
            "slo.min_rps",
            "thresholds must not be negative",
            "use 0 to disable",
        ),
        (
            ld.users >= 1 and ld.spawn_rate > 0 and ld.duration_s > 0,
            "load",
            "users, spawn_rate and duration_s must be positive",
            "e.g. users = 10",
        ),
        (
            ld.workers >= 1,
            "load.workers",
            f"{ld.workers} is not a number of processes",
            'e.g. workers = "auto"',
        ),
        (ld.remote_workers >= 0, "load.remote_workers", "must not be negative", "use 0 for none"),
        (
            ld.remote_workers == 0 or 0 < ld.master_port < 65536,
            "load.master_port",
            "remote workers need a fixed port to connect to",
            "e.g. master_port = 5557, and master_bind = an address they can reach",
        ),
        (
            0 <= ld.get_share <= 1,
            "load.get_share",
            f"{ld.get_share:g} is outside 0..1",
            "e.g. get_share = 0.1",
        ),
        (
            float(ld.duration_s).is_integer(),
            "load.duration_s",
            f"{ld.duration_s:g} is not a whole number of seconds (Locust's --run-time takes whole seconds)",
            "e.g. duration_s = 5",
        ),
    ]
    for ok, key, problem, fix in rules:
        if not ok:
            where.fail(f"{prefix}.{key}", problem, fix)
