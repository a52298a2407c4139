"""Formats of the promotion record and lease (orchestrator/base/formats.py), pure: every shape
edgeship has written reads into today's dataclasses with the same meaning; unknown fields are
ignored; a newer format or an unknown phase is refused with the version to run.

tests/data/records/ holds one fixture per shipped shape, each written by that commit's own
code (docs/reliability.md, "Formats", has the history); tests/test_local_formats.py puts them
through the CLI on the local environment."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator import __version__
from orchestrator.base import formats
from orchestrator.base.errors import ExitCode, FormatError
from orchestrator.release.lease import is_stale, parse_lease
from orchestrator.release.machine import Outcome, Phase, PromotionRecord, Verdict, verb
from orchestrator.release.record import parse_record

DATA = Path(__file__).parent / "data" / "records"
WHERE = "s3://bucket/promotions/staging/current.json"
LEASE_AT = "s3://bucket/promotions/staging/lock.json"
# The shapes that read (format 0 is refused: test_format_0_is_refused_with_what_to_do).
SHAPES = ["format1-before-boot", "format1-before-paused", "format1", "format2"]


def _load(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())


def _record(data: dict[str, Any]) -> PromotionRecord:
    return parse_record(data, "the promotion record of 'staging'", WHERE)


def test_every_fixture_is_tested() -> None:
    tested = {f"{s}-{kind}" for s in SHAPES for kind in ("lease", "record-baking", "record-rolling-back")}
    tested |= {"format1-record-paused", "format2-record-paused", "format0-record", "format0-lock"}
    assert {p.stem for p in DATA.glob("*.json")} == tested


@pytest.mark.parametrize("shape", SHAPES)
def test_an_interrupted_bake_reads_as_one_to_resume_at_its_shift(shape: str) -> None:
    record = _record(_load(f"{shape}-record-baking"))
    assert (record.id, record.env, record.blue, record.green) == (
        "20261130T120000-d4e5f6",
        "staging",
        "1",
        "2",
    )
    assert (record.phase, record.step, record.weight, record.then, record.cause) == (
        Phase.BAKING,
        1,
        67,
        None,
        None,
    )
    assert record.in_flight and record.holder == "ci@runner-7:4242"
    assert [(t.phase, t.step) for t in record.transitions] == [
        ("planned", -1), ("pre_traffic", -1), ("shifting", 0), ("baking", 0), ("gating", 0),
        ("shifting", 1), ("baking", 1),
    ]  # fmt: skip
    plan = record.the_plan()  # what a resume runs: the recorded plan, whatever it lacked then
    assert (plan.steps, plan.schedule, plan.pause_at, plan.hooks) == ([33, 67, 100], "linear", None, ())
    assert plan.bake_s == record.plan["bake_s"] and plan.slo.p95_ms == 250.0
    assert plan.load.sequential is (shape in ("format1", "format2"))  # older plans ran fixed-length gates
    assert verb("promote --resume", record, lease_live=False) == Verdict.RESUME
    assert verb("up", record, lease_live=False) == Verdict.REFUSE_INTERRUPTED


@pytest.mark.parametrize("shape", SHAPES)
def test_a_rollback_in_flight_reads_as_sticky_with_its_cause(shape: str) -> None:
    record = _record(_load(f"{shape}-record-rolling-back"))
    assert (record.phase, record.step, record.then, record.cause) == (
        Phase.ROLLING_BACK, 1, Phase.ROLLED_BACK, Outcome.ERROR,
    )  # fmt: skip
    assert record.reason == "p95 latency 812 ms > 250 ms" and record.transitions[-1].phase == "rolling_back"
    assert verb("promote", record, lease_live=False) == Verdict.FINISH_THEN_START


@pytest.mark.parametrize("shape", ["format1", "format2"])
def test_a_paused_promotion_reads_as_paused_at_its_weight(shape: str) -> None:
    record = _record(_load(f"{shape}-record-paused"))
    assert (record.phase, record.step, record.weight) == (Phase.PAUSED, 0, 33)
    assert record.the_plan().pause_at == 33
    assert verb("resume-promotion", record, lease_live=False) == Verdict.RESUME


@pytest.mark.parametrize("shape", SHAPES)
def test_every_lease_reads_and_a_pid_counts_only_with_a_boot_id(shape: str) -> None:
    held = parse_lease((DATA / f"{shape}-lease.json").read_bytes(), "staging", LEASE_AT)
    assert (held.holder, held.host, held.pid, held.expires_at) == (
        "ci@runner-7:4242",
        "runner-7",
        4242,
        1796000160.0,
    )
    assert (held.token, held.promotion) == ("7c1e0a9d3b5f4e2a9c8d6b4a2f0e1d3c", "20261130T120000-d4e5f6")
    boot = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f:4026531836"
    assert held.boot == ("" if shape == "format1-before-boot" else boot)
    # Its pid is gone and the host name matches: only a lease that names this boot is stale
    # before it expires (one from before `boot` may come from another container).
    stale = is_stale(held, now=held.expires_at - 30, host="runner-7", boot=boot, pid_alive=lambda _: False)
    assert stale is (shape != "format1-before-boot")
    assert is_stale(held, now=held.expires_at, host="elsewhere", boot="", pid_alive=lambda _: True)


def test_format_0_is_refused_with_what_to_do() -> None:
    with pytest.raises(FormatError) as record:
        _record(_load("format0-record"))
    assert record.value.message == (
        "the promotion record of 'staging' has the shape edgeship wrote before crash-safe promotions "
        f"(format 0, 2026-11-25 to 2026-11-30), which edgeship {__version__} does not read"
    )
    assert record.value.fix == (
        "if no promotion of that time is still running, put `live` on the version you want with the AWS "
        f"console or CLI, then delete {WHERE}"
    )
    with pytest.raises(FormatError) as copy_of_it:
        parse_record(
            _load("format0-record"), "the promotion record of 'staging' (history x.json)", WHERE, history=True
        )
    assert copy_of_it.value.fix == f"delete {WHERE}: a copy for people, nothing in it is left to finish"
    with pytest.raises(FormatError, match=r"^the promotion lease of 'staging' has the shape .* \(format 0"):
        parse_lease((DATA / "format0-lock.json").read_bytes(), "staging", LEASE_AT)


def _with_extras(data: dict[str, Any]) -> dict[str, Any]:
    """`data` as a newer edgeship of the same format might write it: a field everywhere."""
    data = copy.deepcopy(data)
    data["labels"] = {"team": "ml"}
    data["transitions"][0]["trace"] = "abc"
    plan = data["plan"]
    plan["canary_region"] = "eu-west-1"
    plan["slo"]["p999_ms"] = 900.0
    plan["load"]["ramp"] = "linear"
    plan["hooks"] = [{"on": "step", "run": "./smoke.sh", "timeout_s": 60.0, "retries": 2}]
    return data


def test_unknown_fields_are_ignored_everywhere_a_reader_looks() -> None:
    today = _load("format2-record-baking")
    record = _record(_with_extras(today))
    hooks = record.the_plan().hooks
    assert [(h.on, h.run, h.timeout_s) for h in hooks] == [("step", "./smoke.sh", 60.0)]
    assert record.the_plan().slo == _record(today).the_plan().slo
    assert (record.phase, record.step, record.transitions) == (Phase.BAKING, 1, _record(today).transitions)
    body = {**_load("format2-lease"), "region": "eu-west-1", "lease_kind": "exclusive"}
    assert parse_lease(json.dumps(body).encode(), "staging", LEASE_AT) == parse_lease(
        (DATA / "format2-lease.json").read_bytes(), "staging", LEASE_AT
    )


def _newer(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "format": formats.FORMAT + 1, "edgeship": "9.4.0"}


def test_a_newer_record_or_lease_is_refused_naming_both_versions() -> None:
    with pytest.raises(FormatError) as refused:
        _record(_newer(_load("format2-record-baking")))
    assert refused.value.exit_code == ExitCode.USAGE == 2
    assert refused.value.message == (
        f"the promotion record of 'staging' was written by edgeship 9.4.0 (format {formats.FORMAT + 1}); "
        f"this is edgeship {__version__} (reads up to format {formats.FORMAT}): run that version or newer"
    )
    assert refused.value.fix is not None and WHERE in refused.value.fix
    body = json.dumps(_newer(_load("format2-lease"))).encode()
    with pytest.raises(FormatError) as lease_refused:
        parse_lease(body, "staging", LEASE_AT)
    assert lease_refused.value.message == (
        f"the promotion lease of 'staging' was written by edgeship 9.4.0 (format {formats.FORMAT + 1}); "
        f"this is edgeship {__version__} (reads up to format {formats.FORMAT}): run that version or newer"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("phase", "canarying"), ("then", "quarantined"), ("cause", "drift"), ("phase", ["baking"])],
)
def test_an_unknown_phase_is_refused_not_guessed(field: str, value: object) -> None:
    data = {**_load("format2-record-rolling-back"), field: value, "edgeship": "9.4.0"}
    with pytest.raises(FormatError) as refused:
        _record(data)
    assert refused.value.message == (
        f"the promotion record of 'staging' has {field} {value!r}, which edgeship {__version__} does not "
        f"know: it was written by edgeship 9.4.0 (format {formats.FORMAT}); run that version or newer"
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"format": "3"}, "was written by edgeship of an unknown version (format 3)"),  # not a number
        ({"id": "x", "phase": "baking"}, "cannot be read by edgeship"),  # env, blue, green... missing
        ({"format": 2}, "cannot be read by edgeship"),
    ],
)
def test_a_body_that_does_not_parse_is_a_usage_error_not_a_traceback(body: dict[str, Any], said: str) -> None:
    with pytest.raises(FormatError, match=re.escape(said)):
        _record(body)


def test_writers_stamp_the_format_and_their_version() -> None:
    assert formats.stamp({"a": 1}) == {"a": 1, "format": formats.FORMAT, "edgeship": __version__}
    assert _load("format2-record-baking")["format"] == _load("format2-lease")["format"] == 2


# What each format holds, pinned: adding a field to what a promotion keeps in S3 (the record,
# its transitions, the lease, the plan snapshot's settings) fails here until someone decides
# whether an older edgeship may ignore it (same FORMAT; its readers drop unknown fields) or
# must refuse it (raise formats.FORMAT). Safety-relevant fields (an SLO, a gate's size) are
# the second kind unless a resume without them is still safe.
# PromotionRecord.live_revision (issue 26, the alias fence) kept format 2: an older edgeship
# drops it, and only loses the fence on the driver's own last alias write (it fences on the
# RevisionId read just before, as it always did); a newer driver resuming a record an older
# one rewrote finds it empty and fences on what it reads (traffic.fence_for).
FORMAT_2_FIELDS = {
    "Plan": {"bake_s", "blue", "env", "example", "green", "hooks", "load", "max_extend_s", "metric_delay_s",
             "pause_at", "schedule", "slo", "steps", "unjudged_bake"},
    "PromotionRecord": {"blue", "cause", "env", "green", "holder", "id", "live_revision", "phase", "plan",
                        "plan_hash", "reason", "step", "then", "transitions"},
    "Transition": {"at", "by", "note", "phase", "seq", "step"},
    # `kind` (issue 26): an older reader ignores it and only loses the better message (`abort`
    # refusing an `up` at once instead of waiting for it): format 2 stays.
    "Lease": {"boot", "expires_at", "holder", "host", "kind", "nonce", "pid", "promotion", "token"},
    "SloSettings": {"alarms", "alpha", "max_error_ratio", "min_rps", "min_samples", "p95_ms", "p99_ms",
                    "regression_floor_ms", "regression_share", "relative_p95_factor"},
    "LoadSettings": {"duration_s", "get_share", "master_bind", "master_port", "max_duration_s", "min_duration_s",
                     "min_green_requests", "remote_workers", "sequential", "spawn_rate", "users", "workers"},
}  # fmt: skip


def _fields(cls: type) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def test_the_fields_of_each_format_are_a_decision() -> None:
    from orchestrator.config.settings import LoadSettings, SloSettings
    from orchestrator.release.lease import Lease
    from orchestrator.release.machine import PromotionRecord, Transition
    from orchestrator.release.plan import Plan

    pinned = {
        "Plan": _fields(Plan),
        "PromotionRecord": _fields(PromotionRecord),
        "Transition": _fields(Transition),
        "Lease": _fields(Lease),
        "SloSettings": _fields(SloSettings),
        "LoadSettings": _fields(LoadSettings),
    }
    assert formats.FORMAT == 2
    assert pinned == FORMAT_2_FIELDS, "a field changed: decide the format number (see the comment above)"
