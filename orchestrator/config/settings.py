"""edgeship.toml -> typed, validated settings.

Every error names the file, the line and the table where the key is written, what is wrong
and the fix for the rule it broke: users edit this file by hand and CI fails on it, so the
message must be enough on its own. Each key is declared once (a `Key`: kind, limits, doc);
the validation below and the JSON schema editors use (orchestrator/config/schema.py) are
both read from those declarations, so the two cannot disagree.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.base import paths
from orchestrator.base.errors import ConfigError
from orchestrator.config import tomlpos
from orchestrator.config.names import ResourceNames
from orchestrator.config.tomlpos import KeyPath

# The sample model edgeship ships: the same file in a checkout and in the wheel (base/paths.py).
SAMPLE_MODEL = paths.SAMPLE_MODEL

CONFIG_FILE = "edgeship.toml"
SCHEDULES = ("canary", "linear", "all-at-once", "explicit")
ARCHITECTURES = ("arm64", "x86_64")
RUNTIMES = ("python3.12", "python3.13")
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
LOCAL_ENV = "local"
PROTECTED_BY_DEFAULT = ("prod",)  # environments that are `protect = true` unless they say otherwise
UNJUDGED_BAKE = ("fail", "extend")  # what a bake does when it judged nothing of green (watch.decide)
EXTEND_BAKES = 3  # an extending bake's cap, by default: this many bake_s (traffic.max_extend_s)
# Lambda's metrics on AWS: one datapoint per minute, visible about a minute or more after it.
CLOUDWATCH_RESOLUTION_S = 60.0
AWS_METRIC_DELAY_S = 120.0  # how late a bake allows them to be, by default (traffic.metric_delay_s)
# The local edge publishes this late by default: later than the local bakes' look interval and
# than the short bakes tests use, so a local bake has to wait for its datapoints as one on AWS
# does (a bake that did not would judge nothing here too), for seconds rather than minutes.
LOCAL_METRIC_DELAY_S = 3.0
WORKERS_AUTO = "auto"  # load.workers: a Locust worker per available core


@dataclass(frozen=True)
class Key:
    """One key of edgeship.toml: what it holds and the limits its value must keep.

    kind: integer | number | string | boolean | integers | strings | hooks | workers (an
    integer or "auto"). Limits are inclusive (minimum, maximum) or strict (above, below).
    """

    kind: str
    doc: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # a string must match it whole
    pattern_means: str = ""  # what the pattern asks for, in words (for the error)
    whole: bool = False  # a number that must be a whole number
    nonempty: bool = False  # strings (or each string of a list) must not be empty
    example: str | None = None  # TOML for the fix, when the default is no example


# The dataclass fields' annotations (strings, under `from __future__ import annotations`).
_KINDS = {
    "int": "integer",
    "int | None": "integer",
    "float": "number",
    "float | None": "number",
    "str": "string",
    "bool": "boolean",
    "tuple[int, ...]": "integers",
    "tuple[str, ...]": "strings",
    "tuple[Hook, ...]": "hooks",
}


def _f(default: Any, doc: str, **limits: Any) -> Any:
    """A settings field with its Key (kind: from the annotation, unless given)."""
    return field(default=default, metadata={"key": Key(limits.pop("kind", ""), doc, default, **limits)})


def keys_of(cls: type) -> dict[str, Key]:
    """The Keys of a settings dataclass, one per field."""
    out = {}
    for f in fields(cls):
        key = f.metadata["key"]
        out[f.name] = key if key.kind else replace(key, kind=_KINDS[str(f.type)])
    return out


@dataclass(frozen=True)
class FunctionSettings:
    """The Lambda function's shape."""

    runtime: str = _f("python3.12", "Lambda runtime of the function.", choices=RUNTIMES)
    # The architecture whose package `orchestrator package` import-tests on this project's
    # CI machines (x86_64); arm64 packages are built the same way but not import-tested here.
    architecture: str = _f(
        "x86_64",
        "Lambda architecture; x86_64 packages are import-tested by `orchestrator package`.",
        choices=ARCHITECTURES,
    )
    memory_mb: int = _f(1024, "Function memory in MB (Lambda allows 128..10240).", minimum=128, maximum=10240)
    timeout_s: int = _f(10, "Function timeout in seconds (Lambda allows 1..900).", minimum=1, maximum=900)
    reserved_concurrency: int | None = _f(
        None, "Reserved concurrency of the function (unset: none).", minimum=0, example="50"
    )
    provisioned_concurrency: int | None = _f(
        None,
        "Provisioned concurrency of the `live` alias (unset: none); excludes snapstart.",
        minimum=0,
        example="2",
    )
    snapstart: bool = _f(False, "Lambda SnapStart; excludes provisioned_concurrency.")
    # Every `up` that changes code, model or config publishes a version, and Lambda keeps
    # them all (75 GB of code per account and region): after a promotion ends `promoted`,
    # all but the newest keep_versions are deleted (orchestrator/release/prune.py). Versions an
    # alias routes to and the record's blue and green are kept whatever their age.
    keep_versions: int = _f(
        5,
        "Lambda versions kept after a promotion (besides those live/candidate route to and its blue and green).",
        minimum=1,
    )
    # AWS environments: both roles carry the boundary policy an administrator created once
    # (`orchestrator iam-policy --role boundary`), which the deploy role's CreateRole requires.
    # false: no boundary, for accounts where an administrator deploys.
    permissions_boundary: bool = _f(
        True,
        "Give the function's roles the project's permissions boundary (AWS environments; false: none).",
    )


@dataclass(frozen=True)
class EdgeSettings:
    """CloudFront in front of the API."""

    cache_ttl_s: int = _f(60, "CloudFront cache TTL in seconds; 0 disables caching.", minimum=0)
    price_class: str = _f("PriceClass_100", "CloudFront price class.", choices=PRICE_CLASSES)


@dataclass(frozen=True)
class StorageSettings:
    """The model bucket (models, and the promotion records under promotions/)."""

    # `orchestrator destroy` empties the bucket unless this is set: then the bucket and its
    # records survive a destroy (AWS refuses to delete a bucket that is not empty).
    keep_on_destroy: bool = _f(
        False, "Keep the model bucket and its records on `destroy` (default: empty and delete it)."
    )
    # The bucket is versioned: an overwritten or deleted record or code package stays as a
    # noncurrent version, which the bucket's lifecycle rule expires after this many days.
    noncurrent_days: int = _f(
        7,
        "Days an overwritten or deleted record or code package is kept (noncurrent versions) before S3 expires it.",
        minimum=1,
    )


HOOK_WHEN = ("pre-traffic", "step")


@dataclass(frozen=True)
class Hook:
    """A command a promotion runs (a Flagger webhook, an Argo analysis job): its non-zero
    exit fails the gate it belongs to, so the promotion rolls back."""

    # "pre-traffic": green alone behind the candidate route; "step": after each step's gate
    on: str = _f(
        "",
        "When the hook runs: pre-traffic (green alone, before any traffic) or step (after each step's gate).",
        choices=HOOK_WHEN,
        required=True,
        example='"step"',
    )
    run: str = _f(
        "",
        "Command run with /bin/sh -c from the project directory; a non-zero exit fails the gate.",
        required=True,
        nonempty=True,
        example='"scripts/check.sh"',
    )
    timeout_s: float = _f(60.0, "Seconds the command may run.", above=0)


@dataclass(frozen=True)
class TrafficSettings:
    """How `promote` moves the `live` alias from blue to green."""

    schedule: str = _f("canary", "How traffic moves to green.", choices=SCHEDULES)
    canary_weight: int = _f(10, "Percent of traffic green gets first (canary).", minimum=1, maximum=99)
    linear_steps: int = _f(4, "Equal steps to 100 % (linear).", minimum=1)
    weights: tuple[int, ...] = _f(
        (),
        "Percent of traffic at each step (explicit), strictly rising within 1..100.",
        minimum=1,
        maximum=100,
        example="[5, 25, 50, 100]",
    )
    # Seconds green is watched with real users at each step, plus the wait for its late
    # metrics (up to one period + metric_delay_s more); 0: no bake (the gates alone judge green).
    bake_s: float = _f(
        300.0,
        "Seconds each step watches green with real users (0: no bake); on AWS 0 or at least 60.",
        minimum=0,
    )
    # How late Lambda's metrics may reach CloudWatch. On AWS a bound the bake allows for
    # (default AWS_METRIC_DELAY_S); locally also how late the edge publishes them
    # (default LOCAL_METRIC_DELAY_S). None: the environment's default (Environment.metric_delay_s).
    metric_delay_s: float | None = _f(
        None,
        f"How late Lambda's metrics may arrive, in seconds (default {AWS_METRIC_DELAY_S:g} on AWS, "
        f"{LOCAL_METRIC_DELAY_S:g} locally).",
        minimum=0,
        example=f"{AWS_METRIC_DELAY_S:g}",
    )
    # A bake that judged no metric of green by then: "fail" (roll back) or "extend" (bake on
    # until green's traffic is judged). Never a pass.
    unjudged_bake: str = _f(
        "fail",
        "A bake that judged no metric of green: fail (roll back) or extend (bake on until judged).",
        choices=UNJUDGED_BAKE,
    )
    # With unjudged_bake = "extend": how long a bake may bake on past its bound before it fails
    # as not judged. None: EXTEND_BAKES x bake_s.
    max_extend_s: float | None = _f(
        None,
        f"With unjudged_bake = extend: how long a bake may bake on (default {EXTEND_BAKES} x bake_s).",
        above=0,
        example="900",
    )
    # How long a promotion's lease lasts unless renewed (every lease_s/3). A driver that
    # dies holds the environment at most this long before any machine can take over.
    lease_s: float = _f(
        60.0, "Seconds a promotion's lease lasts unless renewed (every lease_s/3).", minimum=3
    )
    hooks: tuple[Hook, ...] = _f(
        (),
        "Commands the promotion runs; a non-zero exit fails the gate (and rolls back).",
        example='[{ on = "step", run = "scripts/check.sh", timeout_s = 60 }]',
    )


@dataclass(frozen=True)
class SloSettings:
    """Thresholds a version must meet at every gate."""

    p95_ms: float = _f(250.0, "Highest p95 latency a version may show at a gate, in ms.", above=0)
    p99_ms: float = _f(500.0, "Highest p99 latency, in ms; at least p95_ms.", above=0)
    max_error_ratio: float = _f(0.01, "Highest share of failed requests (0.01: 1 %).", minimum=0, below=1)
    min_rps: float = _f(5.0, "Lowest request rate a gate must reach (0 disables the check).", minimum=0)
    min_samples: int = _f(100, "Fewest requests a gate needs to judge.", minimum=1)
    # The relative check (green against blue) is orchestrator/gates/compare.py's test; this factor
    # was the old judge (green p95 > blue p95 x factor, two noisy point estimates). It is no
    # longer a threshold: 0 disables the relative check, any other value enables it.
    relative_p95_factor: float = _f(
        1.5,
        "An on/off switch: 0 disables the relative check (green's latencies against blue's), any "
        "other value enables it. The value is NOT a threshold any more (2 judges as 1.5 does): "
        "regression_floor_ms, regression_share and alpha set what counts as a regression.",
        minimum=0,
    )
    regression_floor_ms: float = _f(
        10.0,
        "Smallest green p95 regression that fails a gate, in ms: the shift must exceed max(this, "
        "regression_share x p95_ms) even at its 90 % lower bound (docs/performance.md: how often).",
        minimum=0,
    )
    regression_share: float = _f(
        0.05,
        "Share of p95_ms a green p95 regression must exceed to fail a gate (see regression_floor_ms).",
        minimum=0,
        below=1,
    )
    alpha: float = _f(
        0.01,
        "The relative check's false-fail rate target on identical versions (its test's level).",
        above=0,
        below=1,
    )
    # CloudWatch alarms watched through every bake: any in ALARM rolls the promotion back.
    alarms: tuple[str, ...] = _f(
        (),
        "CloudWatch alarms watched through every bake: any in ALARM rolls back.",
        nonempty=True,
        example='["prod-5xx"]',
    )


@dataclass(frozen=True)
class LoadSettings:
    """The Locust load shape of each gate."""

    users: int = _f(10, "Locust users of each gate.", minimum=1)
    spawn_rate: float = _f(10.0, "Users started per second.", above=0)
    duration_s: float = _f(
        30.0,
        "Seconds each gate's load runs (whole seconds): longer while green has fewer than "
        "min_green_requests, shorter when a sequential gate decides early.",
        above=0,
        whole=True,
    )
    # Share of gate requests sent as cacheable GET /infer?x=... (the rest POST /infer).
    get_share: float = _f(
        0.1, "Share of requests sent as cacheable GET /infer?x=... (the rest POST).", minimum=0, maximum=1
    )
    # Locust processes generating the load: 1 runs Locust alone (one core at most); more run
    # a master and that many workers on this machine ("auto" in edgeship.toml: one per core).
    workers: int = _f(
        1,
        'Locust processes: 1 (Locust alone), a number of workers, or "auto" (one per core).',
        kind="workers",
        minimum=1,
        example='"auto"',
    )
    # Load beyond this machine: workers started elsewhere (`locust -f loadtests/locustfile.py
    # --worker --master-host HOST --master-port PORT`) that the master also waits for. The
    # master then listens on master_bind:master_port (loopback and a free port otherwise).
    remote_workers: int = _f(
        0, "Locust workers started on other machines that the master waits for.", minimum=0
    )
    master_bind: str = _f("127.0.0.1", "Address the Locust master listens on (for remote workers).")
    master_port: int = _f(
        0,
        "Port the Locust master listens on (0: any free port; fixed for remote workers).",
        minimum=0,
        maximum=65535,
    )
    # Sequential gates (orchestrator/gates/sequential.py): a look every second ends the load as soon
    # as green clearly meets or clearly breaks its SLOs; a pass also waits for min_green_requests
    # (a failure may come at any count: the test stays valid however few requests it saw).
    sequential: bool = _f(
        True,
        "End each gate's load early once green clearly breaks its SLOs, or clearly meets them "
        "with min_green_requests answered.",
    )
    min_duration_s: float = _f(5.0, "Seconds of load before a sequential gate may end early.", minimum=0)
    # A gate's error rates depend on how many of green's requests it judges, not on seconds:
    # with ~200 (a 2000-request gate at a 10 % canary step) +2 % errors pass 16 % of gates and
    # identical versions fail 1.6 % (docs/performance.md, "Gate error rates"). So a gate's load runs
    # on past duration_s until green has answered this many (orchestrator/gates/sizing.py), at most
    # max_duration_s; a gate that gets there short is judged on what it has, with a caveat.
    min_green_requests: int = _f(
        1000,
        "Green's requests each gate's load waits for: it runs on past duration_s (up to max_duration_s) "
        "until green answered this many, and a sequential gate passes early only with them (fewer at "
        "max_duration_s: judged, with a caveat). 1000: what the gate-error bench "
        "(docs/performance.md) needs for its false-pass targets at a 10 % canary step; 0: gates end "
        "at duration_s.",
        minimum=0,
    )
    max_duration_s: float = _f(
        120.0,
        "The most seconds any gate's load runs while green has fewer than min_green_requests "
        "(whole seconds: Locust's --run-time); at least duration_s.",
        above=0,
        whole=True,
    )


@dataclass(frozen=True)
class ReportSettings:
    """What a promotion leaves in reports/<env>/ (pruned after each promotion)."""

    keep: int = _f(
        20,
        "Promotions whose reports are kept per environment; older folders are deleted.",
        minimum=1,
    )
    # Locust's own HTML page per gate (~1 MB each); report.html draws the gates' numbers already
    locust_html: bool = _f(False, "Keep Locust's own HTML page per gate (about 1 MB each).")


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
    # A protected environment refuses what cannot be undone (`destroy`) without --force.
    # edgeship.toml's `protect`; unset there: true for PROTECTED_BY_DEFAULT (prod).
    protect: bool = False
    reports: ReportSettings = field(default_factory=ReportSettings)

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

    def boundary_arn(self, project: str) -> str:
        """The permissions boundary the function's roles carry: "" for none (the local
        environment, whose emulator needs none, and function.permissions_boundary = false)."""
        if self.is_local or not self.function.permissions_boundary:
            return ""
        return ResourceNames.of(project, self.name).boundary_arn(self.account_id)

    def pulumi_config(self, project: str) -> dict[str, str]:
        """Stack config (namespace `edgeship`) that the serving program reads (`project`:
        the Pulumi project, which the resources' names derive from)."""
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
            "noncurrentDays": str(self.storage.noncurrent_days),
            "boundaryArn": self.boundary_arn(project),
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
    # The environment commands use without --env (edgeship.toml's top-level `default_env`).
    default_env: str | None = None

    @property
    def root(self) -> Path:
        """The project directory (where edgeship.toml lives)."""
        return self.path.parent

    def environment(self, name: str) -> Environment:
        """The named environment, or a ConfigError with the closest name and the known ones."""
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            close = difflib.get_close_matches(name, list(self.environments), n=1)
            fix = (
                f"did you mean {close[0]}? (environments in {self.path.name}: {known})"
                if close
                else f"use one of: {known}; or add an [environments.{name}] table to {self.path.name}"
            )
            raise ConfigError(
                f"{self.path}: no environment named {name!r}", fix=fix, file=str(self.path)
            ) from None


SECTIONS: dict[str, type] = {
    "function": FunctionSettings,
    "edge": EdgeSettings,
    "storage": StorageSettings,
    "traffic": TrafficSettings,
    "slo": SloSettings,
    "load": LoadSettings,
    "reports": ReportSettings,
}
HOOK_KEYS = keys_of(Hook)
PROJECT_KEYS = {
    "name": Key(
        "string",
        "The Pulumi project's name.",
        "edgeship",
        pattern=r"[A-Za-z0-9_-]+",
        pattern_means="a Pulumi project name (letters, digits, - and _)",
    ),
    "backend": Key(
        "string",
        "Pulumi state backend (s3://..., https://api.pulumi.com). The local environment defaults to a file "
        "backend in .edgeship/state; every other environment must name one (here, --backend or PULUMI_BACKEND_URL).",
        example='"s3://my-state-bucket/edgeship"',
    ),
    "secrets_provider": Key("string", "Pulumi secrets provider of the stacks (default: a passphrase)."),
    "model": Key(
        "string",
        "The model archive, relative to this file (default: the sample model).",
        example='"models/model.tar.gz"',
    ),
}
ENV_KEYS = {
    "region": Key(
        "string", "AWS region of the environment.", required=True, nonempty=True, example='"eu-west-1"'
    ),
    "account_id": Key(
        "string",
        "AWS account the environment deploys to: 12 digits, quoted.",
        required=True,
        pattern=r"[0-9]{12}",
        pattern_means="a 12-digit AWS account id",
        example='"123456789012"',
    ),
    "protect": Key(
        "boolean",
        "Refuse `destroy` without --force (default: true for prod, false for the others).",
        example="true",
    ),
}
DEFAULT_ENV_KEY = Key(
    "string",
    "The environment commands use without --env; must name one of [environments].",
    example='"local"',
)
TOP_LEVEL = ("default_env", "project", "defaults", "environments")

_KIND_TEXT = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string (in quotes)",
    "boolean": "true or false",
    "integers": "a list of integers",
    "strings": "a list of strings",
    "hooks": "a list of tables",
    "workers": 'a number of processes or "auto"',
}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "workers": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
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
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found", fix="pass the path of an existing edgeship.toml", file=str(path)
        ) from None
    return loads(text, path)


def loads(text: str, path: Path) -> Settings:
    """Validate the text of an environment file read from `path` (its errors carry lines)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(exc), text, path) from None
    return parse(raw, path, text)


_AT = re.compile(r" \(at line (\d+), column (\d+)\)$")


def _syntax_error(reason: str, text: str, path: Path) -> ConfigError:
    """tomllib's message ends with its position: lift it to the front, as compilers write it."""
    found = _AT.search(reason)
    if found is None:  # "... (at end of document)": something opened is never closed
        line = text.count("\n") + (0 if text.endswith("\n") else 1)
        reason = reason.replace(" (at end of document)", "")
        return ConfigError(
            f"{path}:{line}: not valid TOML: {reason} at the end of the file",
            fix="close what is still open: a [table] header, a string, an array or an inline table",
            file=str(path),
            line=line,
        )
    line, column = int(found.group(1)), int(found.group(2))
    lines = text.splitlines()
    source = lines[line - 1].strip() if line <= len(lines) else ""
    return ConfigError(
        f"{path}:{line}:{column}: not valid TOML: {reason[: found.start()]}",
        fix=f"fix line {line}, column {column}: {source}" if source else f"fix line {line}",
        file=str(path),
        line=line,
    )


def parse(raw: dict[str, Any], path: Path, text: str | None = None) -> Settings:
    """Validate an already-parsed environment file (separate from I/O for table tests).

    With the file's `text`, errors name the line the key is on as well.
    """
    where = _Where(path, tomlpos.key_lines(text) if text is not None else {})
    _known(raw, TOP_LEVEL, where, ())
    project_raw = _table(raw, "project", where, ())
    _known(project_raw, PROJECT_KEYS, where, ("project",))
    project = _values(PROJECT_KEYS, project_raw, where, ("project",))
    # Without project.model: the sample model edgeship ships (in its checkout or its wheel).
    model = path.parent / project["model"] if "model" in project else SAMPLE_MODEL

    # [defaults] is checked on its own first, so a mistake there is reported where it is
    # written, not in the first environment that inherits it.
    defaults = _table(raw, "defaults", where, ())
    _known(defaults, SECTIONS, where, ("defaults",))
    for section, cls in SECTIONS.items():
        table = _table(defaults, section, where, ("defaults",))
        _known(table, keys_of(cls), where, ("defaults", section))
        _values(keys_of(cls), table, where, ("defaults", section))
    envs_raw = _table(raw, "environments", where, ())
    if not envs_raw:
        where.fail(
            ("environments",),
            "no environments declared",
            'add at least [environments.local] with region = "us-east-1" and account_id = "123456789012"',
        )
    environments = {name: _environment(str(name), body, defaults, where) for name, body in envs_raw.items()}
    _distinct_names(project.get("name", PROJECT_KEYS["name"].default), environments, where)
    default_env = None
    if "default_env" in raw:
        default_env = _value(DEFAULT_ENV_KEY, raw["default_env"], where, ("default_env",))
        if default_env not in environments:
            where.fail(
                ("default_env",),
                "not an environment of this file",
                _suggest(default_env, list(environments), "environments"),
                value=default_env,
            )
    return Settings(
        path=path,
        project=project.get("name", PROJECT_KEYS["name"].default),
        backend=project.get("backend"),
        secrets_provider=project.get("secrets_provider"),
        model=model,
        environments=environments,
        default_env=default_env,
    )


_UNSET: Any = object()


class _Where:
    """Builds ConfigErrors that name the file, the line, the table and the key."""

    def __init__(self, path: Path, lines: dict[KeyPath, int]) -> None:
        self.path = path
        self.lines = lines

    def fail(
        self,
        at: KeyPath,
        problem: str,
        fix: str,
        *,
        value: Any = _UNSET,
        env: str | None = None,
        whole_table: bool = False,
    ) -> NoReturn:
        """Raise: `file:line: [table] key = value: problem (environment env)`, and the fix."""
        line = tomlpos.line_of(self.lines, at)
        table, key = _split(at)
        place = f"{self.path}:{line}" if line else str(self.path)
        if whole_table:
            what = _place(at)
        else:
            what = (f"[{table}] {key}" if table else key) + ("" if value is _UNSET else f" = {_toml(value)}")
        also = f" (environment {env})" if env else ""
        raise ConfigError(
            f"{place}: {what}: {problem}{also}",
            fix=fix,
            file=str(self.path),
            line=line,
            table=table or None,
            key=key,
        )


# How many leading parts of a key path name the table it is written in.
_TABLE_DEPTH = {"project": 1, "defaults": 2, "environments": 3}


def _split(at: KeyPath) -> tuple[str, str]:
    """("defaults", "slo", "p95ms") -> ("defaults.slo", "p95ms"); list indexes as [i]."""
    depth = min(_TABLE_DEPTH.get(str(at[0]), 0), len(at) - 1)
    table = ".".join(str(part) for part in at[:depth])
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in at[depth:])
    return table, key.lstrip(".")


def _place(at: KeyPath) -> str:
    """A table as the file writes it: [defaults.slo]; a hook as hooks[0] in [environments.prod.traffic]."""
    if all(isinstance(part, str) for part in at):
        return "[" + ".".join(map(str, at)) + "]"
    table, key = _split(at)
    return f"{key} in [{table}]"


def _kind_of(value: Any) -> str:
    """A TOML value's type, in words."""
    for kind, words in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string")):
        if isinstance(value, kind):
            return words
    return (
        "an array" if isinstance(value, list) else "a table" if isinstance(value, dict) else "a date or time"
    )


def _toml(value: Any) -> str:
    """A value as it is written in TOML (for messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def _suggest(name: str, known: list[str], what: str) -> str:
    """'did you mean X?' when a known name is close, and the known names."""
    close = difflib.get_close_matches(name, known, n=1)
    listing = ", ".join(known) or "none"
    return f"did you mean {close[0]}? ({what}: {listing})" if close else f"use one of: {listing}"


def _table(parent: dict[str, Any], name: str, where: _Where, at: KeyPath) -> dict[str, Any]:
    value = parent.get(name, {})
    if not isinstance(value, dict):
        dotted = ".".join(str(p) for p in (*at, name))
        where.fail((*at, name), f"expected a table, got {_toml(value)}", f"write it as a [{dotted}] table")
    return value


def _known(
    table: dict[str, Any], allowed: Mapping[str, Any] | tuple[str, ...], where: _Where, at: KeyPath
) -> None:
    for name in table:  # in the file's order: the first mistake the user would meet
        if name in allowed:
            continue
        known = list(allowed)
        is_table = isinstance(table[name], dict)
        problem = "unknown table" if is_table else "unknown key"
        inside = _place(at) if at else "the top level"
        close = difflib.get_close_matches(str(name), known, n=1)
        fix = (
            f"did you mean {close[0]}? ({inside} takes: {', '.join(known)})"
            if close
            else f"remove it, or use one of: {', '.join(known)}"
        )
        where.fail((*at, name), problem, fix, whole_table=is_table)


def _values(keys: Mapping[str, Key], table: dict[str, Any], where: _Where, at: KeyPath) -> dict[str, Any]:
    """The keys of `table`, each checked against its Key (required ones must be there)."""
    out = {}
    for name, key in keys.items():
        if name in table:
            out[name] = _value(key, table[name], where, (*at, name))
        elif key.required:
            where.fail((*at, name), "missing", f"add {name} = {key.example} to {_place(at)}")
    return out


def _example(key: Key, name: str) -> str:
    if key.example is not None:
        return f"e.g. {name} = {key.example}"
    if key.default is not None:
        return f"e.g. {name} = {_toml(key.default)}"
    return f"set {name} to {_KIND_TEXT[key.kind]}"


def _value(key: Key, value: Any, where: _Where, at: KeyPath) -> Any:
    """One value checked against its Key, converted to what the settings hold."""
    name = str(at[-1])
    if key.kind == "workers" and isinstance(value, str):
        if value != WORKERS_AUTO:
            where.fail(at, "not a number of processes", 'use a number, or "auto" (one per core)', value=value)
        return available_cores()
    if key.kind in ("integers", "strings", "hooks"):
        if not isinstance(value, list):
            where.fail(at, f"expected {_KIND_TEXT[key.kind]}", _example(key, name), value=value)
        if key.kind == "hooks":
            return tuple(_hook(item, where, (*at, i), key) for i, item in enumerate(value))
        item_key = replace(key, kind=key.kind[:-1], example=None, default=None)
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, _TYPES[item_key.kind]) or isinstance(item, bool):
                where.fail((*at, i), f"expected {_KIND_TEXT[item_key.kind]}", _example(key, name), value=item)
            items.append(_scalar(item_key, item, where, (*at, i), name, key))
        return tuple(items)
    expected = _TYPES[key.kind]
    if isinstance(value, bool) != (key.kind == "boolean") or not isinstance(value, expected):
        where.fail(
            at,
            f"expected {_KIND_TEXT[key.kind]}, not {_kind_of(value)}",
            _type_fix(key, value, name),
            value=value,
        )
    return _scalar(key, value, where, at, name, key)


def _scalar(key: Key, value: Any, where: _Where, at: KeyPath, name: str, owner: Key) -> Any:
    """A value of the right type checked against its limits (`owner`: the Key for examples)."""
    if key.kind == "number":
        value = float(value)
    if key.choices and value not in key.choices:
        close = difflib.get_close_matches(value, key.choices, n=1)
        choices = ", ".join(f'"{c}"' for c in key.choices)
        fix = f'did you mean "{close[0]}"? (one of: {choices})' if close else f"use one of: {choices}"
        where.fail(at, "not one of the choices", fix, value=value)
    if isinstance(value, int | float):
        limits = [
            (key.minimum, lambda v, lim: v >= lim, ">="),
            (key.above, lambda v, lim: v > lim, ">"),
            (key.maximum, lambda v, lim: v <= lim, "<="),
            (key.below, lambda v, lim: v < lim, "<"),
        ]
        allowed = " and ".join(f"{sign} {lim:g}" for lim, _, sign in limits if lim is not None)
        for lim, holds, sign in limits:
            if lim is not None and not holds(value, lim):
                where.fail(
                    at,
                    f"must be {sign} {lim:g}",
                    f"use a value {allowed}, {_example(owner, name)}",
                    value=value,
                )
        if key.whole and not float(value).is_integer():
            where.fail(at, "must be a whole number", _example(owner, name), value=value)
    if isinstance(value, str):
        if key.nonempty and not value.strip():
            where.fail(at, "must not be empty", _example(owner, name), value=value)
        if key.pattern and not re.fullmatch(key.pattern, value):
            where.fail(at, f"not {key.pattern_means}", _example(owner, name), value=value)
    return value


def _type_fix(key: Key, value: Any, name: str) -> str:
    """The fix for a value of the wrong type: the usual slip is a quoted number or an unquoted string."""
    if key.kind in ("integer", "number", "workers") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            pass
        else:
            return f"drop the quotes: {name} = {value}"
    if key.kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return f'quote it: {name} = "{value}"'
    if key.kind == "boolean":
        return f"write {name} = true or {name} = false (no quotes)"
    return _example(key, name)


def _hook(item: Any, where: _Where, at: KeyPath, hooks: Key) -> Hook:
    if not isinstance(item, dict):
        where.fail(at, f"expected a table, got {_toml(item)}", _example(hooks, "hooks"))
    _known(item, HOOK_KEYS, where, at)
    return Hook(**_values(HOOK_KEYS, item, where, at))


def available_cores() -> int:
    """The cores this process may run on (a CI runner's or a container's share, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _environment(name: str, body: Any, defaults: dict[str, Any], where: _Where) -> Environment:
    at: KeyPath = ("environments", name)
    if not isinstance(body, dict):
        where.fail(at, f"expected a table, got {_toml(body)}", f"write it as an [environments.{name}] table")
    _known(body, {**ENV_KEYS, **SECTIONS}, where, at)
    top = _values(ENV_KEYS, body, where, at)
    sections: dict[str, Any] = {}
    # Where each section key's value is written: this environment's table or [defaults].
    origins: dict[str, dict[str, KeyPath]] = {}
    for section, cls in SECTIONS.items():
        keys = keys_of(cls)
        base = defaults.get(section, {})
        own = _table(body, section, where, at)
        _known(own, keys, where, (*at, section))
        values = {
            **_values(keys, base, where, ("defaults", section)),
            **_values(keys, own, where, (*at, section)),
        }
        sections[section] = cls(**values)
        origins[section] = {
            **{k: ("defaults", section, k) for k in base},
            **{k: (*at, section, k) for k in own},
        }
    env = Environment(
        name=name,
        region=top["region"],
        account_id=top["account_id"],
        protect=top.get("protect", name in PROTECTED_BY_DEFAULT),
        **sections,
    )
    _check(env, where, origins)
    return env


def _distinct_names(project: str, envs: Mapping[str, Environment], where: _Where) -> None:
    """Two environments in one account and region whose AWS names would be one (names are
    cleaned and cut to 40 characters: `stage` and `staging` of a long project name) would
    share a function, roles and the tag that scopes each deploy role: refuse before
    anything is created. (The local environment has an emulator of its own.)"""
    from orchestrator.config.names import base_name

    seen: dict[tuple[str, str, str], str] = {}
    for name, env in envs.items():
        if env.is_local:
            continue
        key = (env.account_id, env.region, base_name(project, name))
        if key in seen:
            where.fail(
                ("environments", name),
                f"environments {seen[key]!r} and {name!r} of project {project!r} get the same AWS "
                f"names in account {env.account_id} ({env.region}): {key[2]}-infer, ... (names are "
                "lower-cased, cleaned and cut to 40 characters)",
                "rename one of them, or shorten [project] name, so that the names differ",
            )
        seen[key] = name


def _check(env: Environment, where: _Where, origins: dict[str, dict[str, KeyPath]]) -> None:
    """The rules between keys (each key's own limits were checked as it was read).

    A rule names the keys it involves and a fix for each; the error points at the one written
    closest to this environment (its own table, then [defaults]), as that is the one just changed.
    """
    f, t, s, ld = env.function, env.traffic, env.slo, env.load
    p95, p99 = s.p95_ms, s.p99_ms
    rules: list[tuple[bool, tuple[str, ...], str, tuple[str, ...]]] = [
        (
            not (f.snapstart and f.provisioned_concurrency),
            ("function.snapstart", "function.provisioned_concurrency"),
            "SnapStart and provisioned concurrency exclude each other",
            (
                "set snapstart = false, or remove provisioned_concurrency (Lambda allows one of them)",
                "remove provisioned_concurrency, or set snapstart = false (Lambda allows one of them)",
            ),
        ),
        (
            f.provisioned_concurrency is None
            or f.reserved_concurrency is None
            or f.provisioned_concurrency <= f.reserved_concurrency,
            ("function.provisioned_concurrency", "function.reserved_concurrency"),
            f"provisioned_concurrency ({f.provisioned_concurrency}) is more than reserved_concurrency "
            f"({f.reserved_concurrency}): Lambda refuses that",
            (
                f"lower provisioned_concurrency to at most {f.reserved_concurrency}, or raise reserved_concurrency",
                f"raise reserved_concurrency to at least {f.provisioned_concurrency}, or lower provisioned_concurrency",
            ),
        ),
        (
            t.schedule != "explicit" or bool(t.weights),
            ("traffic.weights", "traffic.schedule"),
            'schedule = "explicit" needs weights',
            (
                "e.g. weights = [5, 25, 50, 100]",
                'add weights = [5, 25, 50, 100] beside it, or pick another schedule (e.g. "canary")',
            ),
        ),
        (
            list(t.weights) == sorted(set(t.weights)),
            ("traffic.weights",),
            f"{_toml(list(t.weights))} must rise strictly (each step more traffic than the last)",
            ("e.g. weights = [5, 25, 50, 100]",),
        ),
        (
            env.is_local or t.bake_s == 0 or t.bake_s >= CLOUDWATCH_RESOLUTION_S,
            ("traffic.bake_s",),
            f"{t.bake_s:g} s is shorter than one datapoint of Lambda's metrics on AWS "
            f"({CLOUDWATCH_RESOLUTION_S:g} s): such a bake cannot watch green's traffic on its own",
            (
                f"set bake_s = 0 (no bake: the gates alone judge green) or at least {CLOUDWATCH_RESOLUTION_S:g}, "
                f"e.g. 300; each bake then also waits up to {CLOUDWATCH_RESOLUTION_S:g} s + metric_delay_s "
                f"({env.metric_delay_s:g} s) for green's late datapoints",
            ),
        ),
        (
            p99 >= p95,
            ("slo.p99_ms", "slo.p95_ms"),
            f"p99_ms ({p99:g}) is below p95_ms ({p95:g}): a 99th percentile is never under the 95th",
            (
                f"raise p99_ms to at least {p95:g}, or lower p95_ms",
                f"lower p95_ms to at most {p99:g}, or raise p99_ms",
            ),
        ),
        (
            # Only when green's requests can hold the load on: with min_green_requests = 0 a
            # gate runs duration_s as it always did, and a config with duration_s > 120 stays valid.
            ld.min_green_requests <= 0 or ld.max_duration_s >= ld.duration_s,
            ("load.max_duration_s", "load.duration_s"),
            f"max_duration_s ({ld.max_duration_s:g}) is below duration_s ({ld.duration_s:g}): every gate's "
            "load runs at least duration_s, and on (up to max_duration_s) until green answered "
            f"min_green_requests ({ld.min_green_requests})",
            (
                f"raise max_duration_s to at least {ld.duration_s:g} (e.g. {max(120.0, 4 * ld.duration_s):g}), "
                "or lower duration_s",
                f"lower duration_s to at most {ld.max_duration_s:g}, or raise max_duration_s",
            ),
        ),
        (
            ld.remote_workers == 0 or ld.master_port > 0,
            ("load.master_port", "load.remote_workers"),
            "remote workers need a fixed master_port to connect to",
            (
                "e.g. master_port = 5557, and master_bind = an address they can reach",
                "set master_port = 5557 (and master_bind to an address they can reach), or remote_workers = 0",
            ),
        ),
    ]

    def closeness(key: str) -> int:  # 0: this environment's table, 1: [defaults], 2: not written
        section, name = key.split(".")
        origin = origins[section].get(name)
        return 2 if origin is None else 0 if origin[0] == "environments" else 1

    for ok, keys, problem, fixes in rules:
        if ok:
            continue
        blamed = min(range(len(keys)), key=lambda i: closeness(keys[i]))
        section, name = keys[blamed].split(".")
        at = origins[section].get(name, ("environments", env.name, section, name))
        # A value from [defaults] that is wrong for this environment only: say which one.
        per_env = at[0] == "defaults" and keys == ("traffic.bake_s",)
        where.fail(at, problem, fixes[blamed], env=env.name if per_env else None)
