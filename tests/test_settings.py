"""edgeship.toml validation: every error names the file, the key and the fix."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from orchestrator.base.errors import ConfigError
from orchestrator.config import settings

REPO_TOML = Path(__file__).resolve().parents[1] / "edgeship.toml"
BASE = {"environments": {"dev": {"region": "eu-west-1", "account_id": "111111111111"}}}


def _with(env_patch: dict, defaults: dict | None = None) -> dict:
    raw = {"environments": {"dev": {**BASE["environments"]["dev"], **env_patch}}}
    if defaults:
        raw["defaults"] = defaults
    return raw


def test_repository_config_loads_all_environments() -> None:
    loaded = settings.load(REPO_TOML)
    assert set(loaded.environments) == {"local", "dev", "staging", "prod"}
    prod = loaded.environment("prod")
    assert prod.function.memory_mb == 2048 and prod.function.reserved_concurrency == 200
    assert prod.traffic.bake_s == 120 and prod.traffic.schedule == "canary"
    assert loaded.environment("local").is_local and not prod.is_local


def test_defaults_merge_with_environment_overrides() -> None:
    raw = _with(
        {"slo": {"p95_ms": 90}}, defaults={"slo": {"p95_ms": 100, "p99_ms": 300}, "load": {"users": 3}}
    )
    env = settings.parse(raw, Path("/x/edgeship.toml")).environment("dev")
    assert env.slo.p95_ms == 90.0 and env.slo.p99_ms == 300.0 and env.load.users == 3


D = "environments.dev"


@pytest.mark.parametrize(
    ("raw", "where", "fix_part"),
    [
        ({}, "environments", "[environments.local]"),
        (_with({"region": 3}), f"[{D}] region = 3", 'quote it: region = "3"'),
        (
            {"environments": {"dev": {"region": "x"}}},
            f"[{D}] account_id: missing",
            'account_id = "123456789012"',
        ),
        (_with({"account_id": "12345"}), f'[{D}] account_id = "12345": not a 12-digit', 'account_id = "1234'),
        (_with({"account_id": 123456789012}), f"[{D}] account_id", 'quote it: account_id = "123456789012"'),
        (
            _with({"function": {"memory_mb": 64}}),
            f"[{D}.function] memory_mb = 64: must be >= 128",
            "<= 10240",
        ),
        (_with({"function": {"memory_mb": True}}), f"[{D}.function] memory_mb = true", "memory_mb = 1024"),
        (_with({"function": {"architecture": "sparc"}}), f"[{D}.function] architecture", "arm64"),
        (_with({"function": {"runtime": "python3.8"}}), f"[{D}.function] runtime", "python3.12"),
        (
            _with({"function": {"snapstart": True, "provisioned_concurrency": 2}}),
            f"[{D}.function] snapstart",
            "set snapstart = false",
        ),
        (
            _with({"function": {"reserved_concurrency": 2, "provisioned_concurrency": 3}}),
            f"[{D}.function] provisioned_concurrency",
            "lower provisioned_concurrency to at most 2, or raise reserved_concurrency",
        ),
        (_with({"storage": {"keep_on_destroy": "yes"}}), f"[{D}.storage] keep_on_destroy", "= true or"),
        (
            _with({"function": {"keep_versions": 0}}),
            f"[{D}.function] keep_versions = 0: must be >= 1",
            "keep_versions = 5",
        ),
        (
            _with({"function": {"keep_version": 3}}),
            f"[{D}.function] keep_version: unknown key",
            "did you mean keep_versions?",
        ),
        (
            _with({"function": {"permissions_boundary": "no"}}),
            f"[{D}.function] permissions_boundary",
            "permissions_boundary = false (no quotes)",
        ),
        (
            _with({"storage": {"noncurrent_days": 0}}),
            f"[{D}.storage] noncurrent_days = 0: must be >= 1",
            "noncurrent_days = 7",
        ),
        (
            _with({"storage": {"noncurrent_days": "7"}}),
            f"[{D}.storage] noncurrent_days",
            "drop the quotes: noncurrent_days = 7",
        ),
        (_with({"traffic": {"schedule": "yolo"}}), f"[{D}.traffic] schedule", '"canary"'),
        # the key written is `schedule`; `weights` is not there to point at
        (_with({"traffic": {"schedule": "explicit"}}), f"[{D}.traffic] schedule", "add weights = ["),
        (_with({"traffic": {"weights": [50, 10]}}), f"[{D}.traffic] weights", "weights = ["),
        (_with({"traffic": {"weights": [10, 101]}}), f"[{D}.traffic] weights[1] = 101: must be <= 100", ""),
        (
            _with({"traffic": {"canary_weight": 100}}),
            f"[{D}.traffic] canary_weight = 100: must be <= 99",
            ">= 1",
        ),
        (_with({"slo": {"p95_ms": 500, "p99_ms": 100}}), f"[{D}.slo] p99_ms", "raise p99_ms to at least 500"),
        (
            _with({"slo": {"max_error_ratio": 2}}),
            f"[{D}.slo] max_error_ratio = 2: must be < 1",
            ">= 0 and < 1",
        ),
        (_with({"load": {"users": 0}}), f"[{D}.load] users = 0: must be >= 1", "users = 10"),
        (
            _with({"load": {"duration_s": 0.5}}),
            f"[{D}.load] duration_s = 0.5: must be a whole",
            "duration_s = 30",
        ),
        (_with({"load": {"workers": "many"}}), f"[{D}.load] workers", '"auto"'),
        (_with({"load": {"workers": 0}}), f"[{D}.load] workers = 0: must be >= 1", '"auto"'),
        (_with({"load": {"remote_workers": 2}}), f"[{D}.load] remote_workers", "master_port = 5557"),
        # a gate runs at least duration_s: the key written is the one blamed, with its fix
        (
            _with({"load": {"max_duration_s": 20}}),
            f"[{D}.load] max_duration_s: max_duration_s (20) is below duration_s (30)",
            "raise max_duration_s to at least 30 (e.g. 120), or lower duration_s",
        ),
        (
            _with({"load": {"duration_s": 300}}),
            f"[{D}.load] duration_s: max_duration_s (120) is below duration_s (300)",
            "lower duration_s to at most 120, or raise max_duration_s",
        ),
        (
            _with({"load": {"max_duration_s": 60.5}}),
            f"[{D}.load] max_duration_s = 60.5: must be a whole",
            "max_duration_s = 120",
        ),
        (
            _with({"load": {"min_green_requests": -1}}),
            f"[{D}.load] min_green_requests = -1: must be >= 0",
            "min_green_requests = 1000",
        ),
        (_with({"traffic": {"lease_s": 1}}), f"[{D}.traffic] lease_s = 1: must be >= 3", ">= 3"),
        # on AWS a bake shorter than one datapoint of Lambda's metrics cannot watch anything
        (_with({"traffic": {"bake_s": 10}}), f"[{D}.traffic] bake_s", "set bake_s = 0 (no bake"),
        (_with({"traffic": {"bake_s": 59}}), f"[{D}.traffic] bake_s", "or at least 60"),
        (
            _with({"traffic": {"metric_delay_s": -1}}),
            f"[{D}.traffic] metric_delay_s = -1",
            "metric_delay_s = 120",
        ),
        (_with({"traffic": {"unjudged_bake": "pass"}}), f"[{D}.traffic] unjudged_bake", '"extend"'),
        (_with({"traffic": {"max_extend_s": 0}}), f"[{D}.traffic] max_extend_s = 0: must be > 0", "= 900"),
        (_with({"traffic": {"hooks": "x.sh"}}), f"[{D}.traffic] hooks", "hooks = ["),
        (
            _with({"traffic": {"hooks": [{"on": "later", "run": "x.sh"}]}}),
            f"[{D}.traffic] hooks[0].on",
            "pre-traffic",
        ),
        (
            _with({"traffic": {"hooks": [{"on": "step"}]}}),
            f"[{D}.traffic] hooks[0].run: missing",
            "add run = ",
        ),
        (
            _with({"traffic": {"hooks": [{"on": "step", "run": "x", "timeout_s": 0}]}}),
            f"[{D}.traffic] hooks[0].timeout_s",
            "timeout_s = 60",
        ),
        (
            _with({"traffic": {"hooks": [{"on": "step", "run": "x", "when": 1}]}}),
            f"[{D}.traffic] hooks[0].when: unknown key",
            "remove it",
        ),
        (_with({"slo": {"alarms": "prod-5xx"}}), f"[{D}.slo] alarms", 'alarms = ["prod-5xx"]'),
        (_with({"slo": {"alarms": [""]}}), f"[{D}.slo] alarms[0]", 'alarms = ["prod-5xx"]'),
        (_with({"colour": "red"}), f"[{D}] colour: unknown key", "remove it"),
        (_with({"slo": {"p95ms": 1}}), f"[{D}.slo] p95ms: unknown key", "did you mean p95_ms?"),
        ({**BASE, "project": {"name": "bad name!"}}, "[project] name", "name = "),
        ({**BASE, "default_env": "deb"}, 'default_env = "deb"', "did you mean dev?"),
        (_with({"protect": "yes"}), f"[{D}] protect", "protect = true or"),
    ],
)
def test_invalid_config_names_file_table_key_and_fix(raw: dict, where: str, fix_part: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.parse(raw, Path("/proj/edgeship.toml"))
    err = info.value
    assert err.message.startswith(f"/proj/edgeship.toml: {where}"), err.message
    assert err.fix and fix_part in err.fix, err.fix


def test_a_long_gate_sized_by_seconds_alone_needs_no_max_duration() -> None:
    # max_duration_s bounds only a gate green's requests hold on; a config written before it
    # existed, with duration_s over its default, stays valid when min_green_requests = 0.
    raw = _with({"load": {"duration_s": 300, "min_green_requests": 0}})
    load = settings.parse(raw, Path("/x/edgeship.toml")).environment("dev").load
    assert (load.duration_s, load.max_duration_s) == (300, 120)


@pytest.mark.parametrize(("given", "workers"), [(None, 1), (3, 3), ("auto", len(os.sched_getaffinity(0)))])
def test_load_workers_default_to_one_process_and_auto_means_a_worker_per_core(
    given: int | str | None, workers: int
) -> None:
    raw = _with({"load": {} if given is None else {"workers": given}})
    assert settings.parse(raw, Path("/x/edgeship.toml")).environment("dev").load.workers == workers


def test_unknown_environment_suggests_the_closest_or_lists_the_known_ones() -> None:
    loaded = settings.load(REPO_TOML)
    with pytest.raises(ConfigError) as info:
        loaded.environment("lcoal")
    assert info.value.fix == "did you mean local? (environments in edgeship.toml: dev, local, prod, staging)"
    with pytest.raises(ConfigError) as info:
        loaded.environment("qa")
    assert info.value.fix == (
        "use one of: dev, local, prod, staging; or add an [environments.qa] table to edgeship.toml"
    )


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "edgeship.toml"
    bad.write_text("[project\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings.load(bad)
    with pytest.raises(ConfigError, match="file not found"):
        settings.load(tmp_path / "nope.toml")
    assert settings.find_config(tmp_path) == bad.resolve()
    bad.unlink()
    with pytest.raises(ConfigError, match=r"no edgeship\.toml"):
        settings.find_config(tmp_path)


def test_pulumi_config_carries_function_and_edge_settings() -> None:
    raw = tomllib.loads(REPO_TOML.read_text())
    prod = settings.parse(raw, REPO_TOML).environment("prod")
    config = prod.pulumi_config("edgeship")
    assert config["memoryMb"] == "2048" and config["reservedConcurrency"] == "200"
    assert config["priceClass"] == "PriceClass_All" and "provisionedConcurrency" not in config


@pytest.mark.parametrize(
    ("name", "function", "storage", "boundary", "days"),
    [
        # AWS: the project's boundary, in the environment's account, by default
        ("dev", {}, {}, "arn:aws:iam::111111111111:policy/edgeship/myproj-dev-function-boundary", "7"),
        ("dev", {"permissions_boundary": False}, {"noncurrent_days": 30}, "", "30"),
        # the local environment never gets one: the emulator needs none
        ("local", {"permissions_boundary": True}, {}, "", "7"),
    ],
)
def test_hygiene_settings_reach_the_stack_config(
    name: str, function: dict, storage: dict, boundary: str, days: str
) -> None:
    raw = {"environments": {name: {**BASE["environments"]["dev"], "function": function, "storage": storage}}}
    env = settings.parse(raw, Path("/x/edgeship.toml")).environment(name)
    config = env.pulumi_config("myproj")
    assert (config["boundaryArn"], config["noncurrentDays"]) == (boundary, days)
    assert env.function.keep_versions == 5  # the default: the newest five are kept


def test_hooks_and_alarms_parse_and_reach_the_plan() -> None:
    from orchestrator.release.plan import make_plan, plan_from_dict

    raw = _with({
        "traffic": {"hooks": [{"on": "pre-traffic", "run": "scripts/smoke.sh"},
                              {"on": "step", "run": "true", "timeout_s": 5}]},
        "slo": {"alarms": ["prod-5xx", "prod-latency"]},
    })  # fmt: skip
    env = settings.parse(raw, Path("/proj/edgeship.toml")).environment("dev")
    assert env.traffic.hooks == (
        settings.Hook("pre-traffic", "scripts/smoke.sh", 60.0),
        settings.Hook("step", "true", 5.0),
    )
    assert env.slo.alarms == ("prod-5xx", "prod-latency")
    plan = make_plan(env, "1", "2", pause_at=10)
    assert plan_from_dict(plan.to_snapshot()) == plan  # the record keeps hooks, alarms and the pause
    assert (plan.metric_delay_s, plan.unjudged_bake) == (120.0, "fail")  # and what a bake waits for
    older = {
        k: v
        for k, v in plan.to_snapshot().items()
        if k not in ("metric_delay_s", "unjudged_bake", "max_extend_s")
    }
    assert plan_from_dict(older).metric_delay_s is None  # a record from before: the environment's
    # an extending bake's cap: 3 x bake_s unless set (records from before: the same default)
    assert (plan.max_extend_s, plan.extend_cap_s) == (None, 3 * plan.bake_s)
    assert plan_from_dict(older).extend_cap_s == 3 * plan.bake_s
    capped = settings.parse({**raw, "environments": {"dev": {**raw["environments"]["dev"], "traffic": {
        **raw["environments"]["dev"]["traffic"], "max_extend_s": 120}}}}, Path("/proj/edgeship.toml"))  # fmt: skip
    assert make_plan(capped.environment("dev"), "1", "2").extend_cap_s == 120


@pytest.mark.parametrize(
    ("name", "traffic", "bake_s", "delay", "config"),
    [
        # AWS: a bake of five minutes by default, Lambda's metrics allowed two minutes late
        ("dev", {}, 300.0, 120.0, None),
        ("dev", {"bake_s": 0}, 0.0, 120.0, None),  # no bake at all is allowed
        ("dev", {"bake_s": 60, "metric_delay_s": 300}, 60.0, 300.0, None),
        # locally any bake; the edge publishes metric_delay_s late (a stack setting)
        ("local", {"bake_s": 1}, 1.0, settings.LOCAL_METRIC_DELAY_S, "3"),
        ("local", {"bake_s": 1, "metric_delay_s": 4.5}, 1.0, 4.5, "4.5"),
    ],
)
def test_bake_times_and_metric_delays(
    name: str, traffic: dict, bake_s: float, delay: float, config: str | None
) -> None:
    raw = {"environments": {name: {**BASE["environments"]["dev"], "traffic": traffic}}}
    env = settings.parse(raw, Path("/x/edgeship.toml")).environment(name)
    assert (env.traffic.bake_s, env.metric_delay_s, env.traffic.unjudged_bake) == (bake_s, delay, "fail")
    assert env.pulumi_config("edgeship").get("metricDelayS") == config


# The cases, written as users write them: each error names file:line, the table the
# key is written in, and the fix of the rule broken. `# <-` marks the line the error must name.
TEXT_BASE = """\
[project]
name = "demo"

[defaults.slo]
p95_ms = 250
p99_ms = 500

[environments.local]
region = "us-east-1"
account_id = "123456789012"

[environments.prod]
region = "eu-west-1"
account_id = "333333333333"
"""


@pytest.mark.parametrize(
    ("text", "where", "fix"),
    [
        # a typo under [defaults.slo]: reported there, not as environments.local.slo.p95ms
        (
            TEXT_BASE.replace("p95_ms = 250", "p95ms = 250  # <-"),
            "[defaults.slo] p95ms: unknown key",
            "did you mean p95_ms? ([defaults.slo] takes: p95_ms, p99_ms, max_error_ratio, min_rps, "
            "min_samples, relative_p95_factor, regression_floor_ms, regression_share, alpha, alarms)",
        ),
        # a negative threshold: its own rule, not "raise p99_ms"
        (
            TEXT_BASE.replace("p95_ms = 250", "p95_ms = -5  # <-"),
            "[defaults.slo] p95_ms = -5: must be > 0",
            "use a value > 0, e.g. p95_ms = 250",
        ),
        # an ordering rule: the key just changed (prod's own p95_ms) is the one to move
        (
            TEXT_BASE + "[environments.prod.slo]\np95_ms = 600  # <-\n",
            "[environments.prod.slo] p95_ms: p99_ms (500) is below p95_ms (600)",
            "lower p95_ms to at most 500, or raise p99_ms",
        ),
        (
            TEXT_BASE + "[environments.prod.slo]\np99_ms = 200  # <-\n",
            "[environments.prod.slo] p99_ms: p99_ms (200) is below p95_ms (250)",
            "raise p99_ms to at least 250, or lower p95_ms",
        ),
        # an unknown table
        (
            TEXT_BASE + "[defaults.slos]  # <-\nmin_rps = 1\n",
            "[defaults.slos]: unknown table",
            "did you mean slo? ([defaults] takes: function, edge, storage, traffic, slo, load, reports)",
        ),
        (
            TEXT_BASE.replace("[environments.prod]", "[environment.prod]  # <-"),
            "[environment]: unknown table",
            "did you mean environments? (the top level takes: default_env, project, defaults, environments)",
        ),
        # the wrong type: a quoted number
        (
            TEXT_BASE + '[environments.prod.function]\nmemory_mb = "2048"  # <-\n',
            '[environments.prod.function] memory_mb = "2048": expected an integer, not a string',
            "drop the quotes: memory_mb = 2048",
        ),
        # a bad choice, written as a dotted key in the environment's table
        (
            TEXT_BASE + 'traffic.schedule = "canery"  # <-\n',
            '[environments.prod.traffic] schedule = "canery": not one of the choices',
            'did you mean "canary"? (one of: "canary", "linear", "all-at-once", "explicit")',
        ),
        # ... and in an inline table
        (
            TEXT_BASE + 'load = { users = 3, workers = "many" }  # <-\n',
            '[environments.prod.load] workers = "many": not a number of processes',
            'use a number, or "auto" (one per core)',
        ),
        # the second of two hooks, past a multi-line string and array that hold brackets and '='
        (
            TEXT_BASE
            + "[environments.prod.traffic]\nweights = [\n  5,  # [x] = 1\n  50,\n]\n"
            + 'schedule = "explicit"\n[[environments.prod.traffic.hooks]]\non = "step"\n'
            + 'run = """\nsh -c "[ -f x ] && y = 1"\n"""\n'
            + '[[environments.prod.traffic.hooks]]\non = "later"  # <-\nrun = "x"\n',
            '[environments.prod.traffic] hooks[1].on = "later": not one of the choices',
            'use one of: "pre-traffic", "step"',
        ),
        # a missing key: its table's header
        (
            TEXT_BASE + "[environments.qa]  # <-\nregion = 'eu-west-1'\n",
            "[environments.qa] account_id: missing",
            'add account_id = "123456789012" to [environments.qa]',
        ),
        # the default environment names one that exists
        (
            'default_env = "lcoal"  # <-\n' + TEXT_BASE,
            'default_env = "lcoal": not an environment of this file',
            "did you mean local? (environments: local, prod)",
        ),
        (
            TEXT_BASE + "protect = 1  # <-\n",
            "[environments.prod] protect = 1: expected true or false, not an integer",
            "write protect = true or protect = false (no quotes)",
        ),
    ],
)
def test_errors_name_the_line_and_table_where_the_key_is_written(text: str, where: str, fix: str) -> None:
    line = next(n for n, written in enumerate(text.splitlines(), 1) if written.endswith("# <-"))
    with pytest.raises(ConfigError) as info:
        settings.loads(text, Path("/proj/edgeship.toml"))
    err = info.value
    assert err.message.startswith(f"/proj/edgeship.toml:{line}: {where}"), err.message
    assert err.fix == fix
    assert (err.file, err.line) == ("/proj/edgeship.toml", line)


@pytest.mark.parametrize(
    ("text", "line", "message", "fix"),
    [
        ("[project\nname = 'x'\n", 1, "1:9: not valid TOML: Expected ']' at the end of a table declaration",
         "fix line 1, column 9: [project"),
        ("[project]\nname = 'x'\nname = 'y'\n", 3, "3:11: not valid TOML: Cannot overwrite a value",
         "fix line 3, column 11: name = 'y'"),
        ('[project]\nname = "x\n', 2, "2:10: not valid TOML: Illegal character",
         'fix line 2, column 10: name = "x'),
        ("a = [1,\n2,\n", 2, "2: not valid TOML: Invalid value at the end of the file",
         "close what is still open: a [table] header, a string, an array or an inline table"),
    ],
)  # fmt: skip
def test_toml_syntax_errors_name_the_line(text: str, line: int, message: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.loads(text, Path("/proj/edgeship.toml"))
    assert info.value.message.startswith(f"/proj/edgeship.toml:{message}"), info.value.message
    assert info.value.fix == fix and info.value.line == line


def test_key_lines_follow_tables_dotted_keys_inline_tables_and_arrays() -> None:
    from orchestrator.config import tomlpos

    text = (
        '#:schema ./x.json\na = 1\n"b.c" = { d = 2, e = [ { f = 3 },\n  { g = 4 } ] }\n'
        "[t . 'u']\nv.w = '''\n[x]\ny = 1\n'''\nz = 5 # [c]\n[[arr]]\nk = 1\n[[arr]]\nk = 2\n"
    )
    lines = tomlpos.key_lines(text)
    assert lines[("a",)] == 2
    assert lines[("b.c", "d")] == lines[("b.c", "e", 0, "f")] == 3
    assert lines[("b.c", "e", 1, "g")] == 4
    assert lines[("t", "u")] == 5 and lines[("t", "u", "v", "w")] == 6
    assert lines[("t", "u", "z")] == 10 and ("x",) not in lines  # inside a string: no table
    assert (lines[("arr", 0, "k")], lines[("arr", 1, "k")]) == (12, 14)
    assert tomlpos.line_of(lines, ("t", "u", "missing")) == 5  # a missing key: its table's header
    assert tomlpos.line_of(lines, ("nowhere",)) is None


def test_protect_is_prods_default_and_a_setting_everywhere() -> None:
    raw = {
        "environments": {
            "prod": {"region": "eu-west-1", "account_id": "1" * 12},
            "dev": {"region": "eu-west-1", "account_id": "1" * 12},
            "qa": {"region": "eu-west-1", "account_id": "1" * 12, "protect": True},
        }
    }
    loaded = settings.parse(raw, Path("/p/edgeship.toml"))
    assert {name: env.protect for name, env in loaded.environments.items()} == {
        "prod": True,
        "dev": False,
        "qa": True,
    }
    raw["environments"]["prod"]["protect"] = False
    assert not settings.parse(raw, Path("/p/edgeship.toml")).environment("prod").protect
    assert settings.load(REPO_TOML).environment("prod").protect


def test_default_env_names_an_environment() -> None:
    loaded = settings.parse({**BASE, "default_env": "dev"}, Path("/p/edgeship.toml"))
    assert loaded.default_env == "dev"
    assert settings.parse(BASE, Path("/p/edgeship.toml")).default_env is None


@pytest.mark.parametrize(
    ("project", "envs", "clash"),
    [
        ("customer-churn-prediction-service-v2", ("staging", "stage"), ("staging", "stage")),  # cut at 40
        ("shop", ("eu_prod", "eu-prod"), ("eu_prod", "eu-prod")),  # cleaned alike
        ("shop", ("Prod", "prod"), ("Prod", "prod")),  # lower-cased alike
        ("shop", ("staging", "stage"), None),
    ],
    ids=["cut-at-40", "cleaned", "lower-cased", "distinct"],
)
def test_two_environments_with_the_same_aws_names_are_refused(
    project: str, envs: tuple[str, str], clash: tuple[str, str] | None
) -> None:
    tables = "".join(
        f'[environments."{e}"]\nregion = "us-east-1"\naccount_id = "123456789012"\n' for e in envs
    )
    text = f'[project]\nname = "{project}"\n{tables}'
    if clash is None:
        assert sorted(settings.loads(text, Path("/p/edgeship.toml")).environments) == sorted(envs)
        return
    with pytest.raises(ConfigError) as info:
        settings.loads(text, Path("/p/edgeship.toml"))
    assert (
        f"environments {clash[0]!r} and {clash[1]!r} of project {project!r} get the same AWS names "
        "in account 123456789012 (us-east-1)"
    ) in info.value.message
    assert info.value.fix == "rename one of them, or shorten [project] name, so that the names differ"
