"""CLI output for logs and GitHub Actions, report.html's charts, the reports folder: pure parts
as tables, the console reporter on a real (non-terminal) stream. The end-to-end part (a real
promotion whose gate fails, on a freshly installed Pulumi) is in tests/test_output_local.py."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base import output
from orchestrator.base.progress import ConsoleReporter, JsonLinesReporter, ProgressEvent
from orchestrator.release import htmlreport, reports
from orchestrator.release.report import timeline


@pytest.mark.parametrize(
    ("environ", "isatty", "expected"),
    [
        ({}, False, output.Mode(terminal=False, color=False, github=False)),
        ({}, True, output.Mode(terminal=True, color=True, github=False)),
        ({"NO_COLOR": "1"}, True, output.Mode(terminal=True, color=False, github=False)),
        ({"NO_COLOR": ""}, True, output.Mode(terminal=True, color=True, github=False)),  # empty: unset
        ({"TERM": "dumb"}, True, output.Mode(terminal=True, color=False, github=False)),
        ({"GITHUB_ACTIONS": "true"}, False, output.Mode(terminal=False, color=False, github=True)),
        ({"GITHUB_ACTIONS": "false"}, False, output.Mode(terminal=False, color=False, github=False)),
    ],
)
def test_mode(environ: dict[str, str], isatty: bool, expected: output.Mode) -> None:
    assert output.mode(environ, isatty) == expected


@pytest.mark.parametrize(
    ("name", "message", "props", "line"),
    [
        ("error", "p95 300 ms > 250 ms", {}, "::error::p95 300 ms > 250 ms"),
        ("error", "50% failed\nfix: retry\r", {"title": "gate failed"}, "::error title=gate failed::50%25 failed%0Afix: retry%0D"),
        ("warning", "a: b, c", {"title": "x: y, z"}, "::warning title=x%3A y%2C z::a: b, c"),
        ("error", "already %0A escaped", {}, "::error::already %250A escaped"),
        ("group", "pulumi: update ...", {}, "::group::pulumi: update ..."),
        ("error", "m", {"title": ""}, "::error::m"),  # an empty property is left out
    ],
)  # fmt: skip
def test_workflow_commands_are_escaped(name: str, message: str, props: dict[str, str], line: str) -> None:
    assert output.command(name, message, **props) == line


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("gate step 1: pass (green p95 11.2 ms)   ", "gate step 1: pass (green p95 11.2 ms)"),
        ("first  \nsecond \n\nthird\n", "first\n    second\n\n    third"),
    ],
)
def test_plain_lines_have_no_trailing_spaces(text: str, lines: str) -> None:
    assert output.plain(text) == lines


LONG = (
    "gate step 1: fail (green p95 311.2 ms > 150 ms; green error ratio 0.00 % <= 5.00 %; " + "x" * 120 + ")"
)


def _printed(events: list[ProgressEvent], **environ: str) -> list[str]:
    stream = io.StringIO()  # not a terminal, as a pipe or a CI log
    reporter = ConsoleReporter(stream, environ)
    for event in events:
        reporter.event(event)
    return stream.getvalue().splitlines()


def test_console_lines_are_whole_messages_when_not_a_terminal() -> None:
    lines = _printed(
        [
            ProgressEvent("step", "publishing v2 " * 20 + "  "),
            ProgressEvent("resource", "edgeship:Function function", op="update", status="started"),
            ProgressEvent("gate", LONG, data={"verdict": "fail"}),
        ]
    )
    assert lines == [
        ("publishing v2 " * 20).rstrip(),
        "  update edgeship:Function function ...",
        LONG,
    ]  # no workflow commands outside GitHub Actions, no colour codes


def test_console_annotates_failures_on_github_actions() -> None:
    lines = _printed(
        [
            ProgressEvent("resource", "edgeship:Function function", op="update", status="started"),
            ProgressEvent("resource", "edgeship:Function function", op="update", status="failed"),
            ProgressEvent("diagnostic", "resource is slow\nreally", status=None),
            ProgressEvent("gate", LONG, data={"verdict": "fail"}),
            ProgressEvent("gate", "gate step 1: inconclusive (3 samples)", data={"verdict": "inconclusive"}),
            ProgressEvent("gate", "gate step 2: pass (ok)", data={"verdict": "pass"}),
            ProgressEvent("gate", "gate step 3: void (blue failed 9 of 9)", data={"verdict": "void"}),
        ],
        GITHUB_ACTIONS="true",
    )
    assert lines == [
        "::group::pulumi: update ...",
        "  update edgeship:Function function ...",
        "::error title=pulumi::update of edgeship:Function function failed",
        "  update edgeship:Function function: FAILED",
        "::endgroup::",
        "::warning title=edgeship::resource is slow%0Areally",
        "  ! resource is slow",
        "    really",
        f"::error title=gate failed::{LONG.replace('%', '%25')}",
        LONG,
        "::warning title=gate inconclusive::gate step 1: inconclusive (3 samples)",
        "gate step 1: inconclusive (3 samples)",
        "gate step 2: pass (ok)",
        "::error title=gate void%3A blue failed the load::gate step 3: void (blue failed 9 of 9)",
        "gate step 3: void (blue failed 9 of 9)",
    ]


def test_json_lines_stay_json_off_github_and_annotate_on_it() -> None:
    event = ProgressEvent(
        "gate", "gate pre-traffic: fail (green p95 300 ms > 150 ms)", data={"verdict": "fail"}
    )
    plain, github = io.StringIO(), io.StringIO()
    JsonLinesReporter(plain, {}).event(event)
    JsonLinesReporter(github, {"GITHUB_ACTIONS": "true"}).event(event)
    assert json.loads(plain.getvalue())["message"] == event.message
    annotation, record = github.getvalue().splitlines()
    assert annotation == f"::error title=gate failed::{event.message}"
    assert json.loads(record)["kind"] == "gate"


def test_stack_summary() -> None:
    result = {
        "operation": "up",
        "stack": "dev",
        "changes": {"same": 5, "update": 1, "create": 0},
        "duration_s": 3.21,
    }
    assert output.stack_summary(result) == (
        "### edgeship up `dev`: 5 same, 1 update\n\n| operation | resources |\n|---|---:|\n"
        "| same | 5 |\n| update | 1 |\n\nTook 3.2 s."
    )
    assert output.stack_summary({"operation": "preview", "stack": "dev", "changes": {}}).startswith(
        "### edgeship preview `dev`: no changes"
    )


def test_summary_appended_only_on_a_runner(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert not output.append_summary("# one", {})
    assert output.append_summary("# one", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert output.append_summary("# two\n", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text() == "# one\n\n# two\n\n"


# -- report.html ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1.0), (0.7, 1.0), (1, 1.0), (1.2, 2.0), (3, 5.0), (6, 10.0), (11.2, 20.0), (250, 500.0)],
)
def test_nice_max(value: float, top: float) -> None:
    assert htmlreport.nice_max(value) == pytest.approx(top)


@pytest.mark.parametrize(
    ("transitions", "points"),
    [
        # canary: planned, pre-traffic, 20 %, 100 %, promoted
        (
            [("planned", -1, 0), ("pre_traffic", -1, 1), ("shifting", 0, 5), ("baking", 0, 6), ("gating", 0, 6),
             ("shifting", 1, 10), ("gating", 1, 11), ("promoting", 1, 14), ("promoted", 1, 15)],
            [(0, 0, "planned"), (1, 0, "pre_traffic"), (5, 20, "shifting"), (6, 20, "baking"), (6, 20, "gating"),
             (10, 100, "shifting"), (11, 100, "gating"), (14, 100, "promoting"), (15, 100, "promoted")],
        ),
        # a canary that failed its gate: rolling back keeps the weight it leaves, then 0
        (
            [("planned", -1, 0), ("shifting", 0, 2), ("gating", 0, 3), ("rolling_back", 0, 4), ("rolled_back", 0, 5)],
            [(0, 0, "planned"), (2, 20, "shifting"), (3, 20, "gating"), (4, 20, "rolling_back"), (5, 0, "rolled_back")],
        ),
        ([], []),
    ],
)  # fmt: skip
def test_timeline(transitions: list[tuple[str, int, float]], points: list[tuple[float, int, str]]) -> None:
    got = timeline([{"phase": p, "step": s, "at": t} for p, s, t in transitions], [20, 100])
    assert [(p["at"], p["weight"], p["phase"]) for p in got] == points


def _report() -> dict[str, Any]:
    def stats(p50: float, p95: float, errors: float) -> dict[str, Any]:
        return {"samples": 100, "p50_ms": p50, "p95_ms": p95, "p99_ms": p95 * 2, "error_ratio": errors}

    return {
        "id": "20261206T231500-abcdef", "env": "local", "blue": "1", "green": "2", "schedule": "canary",
        "outcome": "rolled_back", "reason": "gate step 1 failed: green p95 300.0 ms > 150 ms <b>",
        "steps": [
            {"name": "pre-traffic", "weight": 0, "verdict": "pass", "reasons": ["ok"], "green": stats(10, 20, 0),
             "blue": None, "attempt": 1, "skipped": [], "caveats": []},
            {"name": "step 1", "weight": 20, "verdict": "fail", "reasons": ["green p95 300.0 ms > 150 ms"],
             "green": stats(120, 300, 0.02), "blue": stats(11, 22, 0.0), "attempt": 1, "skipped": [],
             "caveats": ["late <generator>"]},
        ],
        "bakes": [], "hooks": [], "pauses": [], "started_at": 1_796_598_900.0, "ended_at": 1_796_598_915.0,
        "timeline": [{"at": 1_796_598_900.0, "weight": 0, "phase": "planned"},
                     {"at": 1_796_598_905.0, "weight": 20, "phase": "shifting"},
                     {"at": 1_796_598_915.0, "weight": 0, "phase": "rolled_back"}],
        "slo": {"p95_ms": 150, "max_error_ratio": 0.01},
    }  # fmt: skip


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def test_report_html_draws_three_charts_from_the_report_alone() -> None:
    page = htmlreport.render(_report())
    assert page == htmlreport.render(_report())  # pure: the same bytes
    latency, errors, weights = _svgs(page)  # each is well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r.find(f"{ns}title").text for r in latency.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    # pre-traffic has no blue: green's two bars only; step 1 has all four
    assert bars == [
        "pre-traffic: green p50 10 ms", "pre-traffic: green p95 20 ms",
        "step 1: blue p50 11 ms", "step 1: blue p95 22 ms", "step 1: green p50 120 ms", "step 1: green p95 300 ms",
    ]  # fmt: skip
    assert "p95 limit 150 ms" in ET.tostring(latency, encoding="unicode")
    error_bars = [
        r.find(f"{ns}title").text for r in errors.iter(f"{ns}rect") if r.find(f"{ns}title") is not None
    ]
    assert error_bars == ["pre-traffic: green 0%", "step 1: blue 0%", "step 1: green 2%"]
    line = weights.find(f"{ns}polyline")
    assert line is not None
    # 0 % from 0 s, 20 % from 5 s, 0 % at 15 s: x over 568 px for 15 s, y over 172 px for 100 %
    assert line.get("points") == "56,192 245.3,192 245.3,157.6 624,157.6 624,192"


def test_report_html_is_self_contained_and_escaped() -> None:
    page = htmlreport.render(_report())
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert re.findall(r"(?:src|href)=", page) == []
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {
        "http://www.w3.org/2000/svg"
    }  # a namespace, not fetched
    assert "&lt;b&gt;" in page and "late &lt;generator&gt;" in page and "<b>" not in page
    assert "started 2026-12-06 23:15:00 UTC" in page


def test_report_html_without_gates_or_timeline() -> None:
    page = htmlreport.render({"id": "x", "env": "local", "outcome": "failed", "steps": []})
    assert len(_svgs(page)) == 3 and "no traffic moved" in page


# -- the reports folder -----------------------------------------------------------------------

OLD = [f"2026120{d}T100000-00000{d}" for d in range(1, 6)]


@pytest.mark.parametrize(
    ("names", "keep", "current", "doomed"),
    [
        (OLD, 20, None, []),
        (OLD, 2, None, OLD[:3]),
        (list(reversed(OLD)), 2, None, OLD[:3]),  # by id (its UTC time), not by listing order
        (OLD, 0, None, OLD[:4]),  # at least one is kept
        (OLD, 1, OLD[0], OLD[1:4]),  # the current one never goes (a clock set back)
        ([*OLD, "notes", "README.md"], 4, None, OLD[:1]),  # what is not a promotion stays
    ],
)
def test_to_prune(names: list[str], keep: int, current: str | None, doomed: list[str]) -> None:
    assert reports.to_prune(names, keep, current) == doomed


def _write_report(root: Path, env: str, pid: str, **fields: Any) -> Path:
    directory = root / env / pid
    directory.mkdir(parents=True)
    data = {"id": pid, "env": env, "blue": "1", "green": "2", "outcome": "promoted", "schedule": "canary"}
    (directory / "report.json").write_text(json.dumps({**data, **fields}))
    return directory


def test_prune_listing_and_show(tmp_path: Path) -> None:
    for pid in OLD:
        _write_report(tmp_path, "local", pid)
    (tmp_path / "local" / OLD[4] / "report.html").write_text("<html></html>")
    _write_report(
        tmp_path, "dev", "20261207T000000-aaaaaa", outcome="rolled_back", started_at=1_796_601_600.0
    )
    (tmp_path / "local" / "20261208T000000-bbbbbb").mkdir()  # running: no report.json yet
    gone = reports.prune(tmp_path / "local", keep=3, current="20261208T000000-bbbbbb")
    assert sorted(p.name for p in gone) == OLD[:3]
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == [*OLD[3:], "20261208T000000-bbbbbb"]

    rows = reports.listing(tmp_path)
    assert [(r["env"], r["id"]) for r in rows] == [
        ("dev", "20261207T000000-aaaaaa"),
        ("local", OLD[4]),
        ("local", OLD[3]),
    ]
    assert rows[0]["started"] == reports.when(1_796_601_600.0)
    assert [r["id"] for r in reports.listing(tmp_path, "local")] == [OLD[4], OLD[3]]
    assert reports.listing(tmp_path / "missing") == []

    shown = reports.show(tmp_path, "local", OLD[4][:12])  # a unique prefix
    assert shown["id"] == OLD[4] and shown["html"] == str(tmp_path / "local" / OLD[4] / "report.html")
    assert reports.show(tmp_path, None, "latest")["env"] == "dev"
    with pytest.raises(reports.UsageError, match="more than one report '2026120'"):
        reports.show(tmp_path, None, "2026120")
    text = reports.listing_text(rows)
    assert text.splitlines()[1].split()[:2] == ["20261207T000000-aaaaaa", "dev"]


def test_when_names_its_zone() -> None:
    import datetime

    assert reports.when(1_796_598_900.0, datetime.UTC) == "2026-12-06 23:15:00 UTC"
    assert reports.when(None) == "?"


def test_an_error_is_never_folded_into_the_engines_group(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    reporter = ConsoleReporter(sys.stderr)
    reporter.event(ProgressEvent("resource", "edgeship:Function function", op="create", status="started"))
    output.error(
        "the engine failed: 50% done", "run `orchestrator up` again", title="orchestrator up failed (exit 1)"
    )
    assert capsys.readouterr().err.splitlines() == [
        "::group::pulumi: create ...",
        "  create edgeship:Function function ...",
        "::endgroup::",
        "::error title=orchestrator up failed (exit 1)::the engine failed: 50%25 done%0Afix: run `orchestrator up` again",
        "error: the engine failed: 50% done",
        "fix: run `orchestrator up` again",
    ]


@pytest.mark.parametrize(
    ("values", "limit", "top_label", "line", "note"),
    [
        ([10.0, 40.0], 50.0, "50 ms", True, False),  # the limit within reach: drawn, the scale includes it
        ([10.0, 40.0], 1000.0, "50 ms", False, True),  # far above the bars: named at the top instead
        ([0.0, 0.0], 1.0, "1 ms", True, False),  # nothing measured: the limit sets the scale
        ([10.0, 40.0], None, "50 ms", False, False),
    ],
)
def test_bar_chart_scale_and_limit(
    values: list[float], limit: float | None, top_label: str, line: bool, note: bool
) -> None:
    svg = ET.fromstring(
        re.findall(r"<svg .*?</svg>", htmlreport.bar_chart("t", ["a", "b"], {"green p95": values}, unit=" ms",
                                                            limit=limit, limit_label="limit"), flags=re.S)[0]
    )  # fmt: skip
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in svg.iter(f"{ns}text")]
    assert texts[4] == top_label  # the axis' labels, 0 to the top
    assert any(el.get("stroke-dasharray") for el in svg.iter(f"{ns}line")) is line
    assert ("limit (above the chart)" in texts) is note


def test_a_result_whose_live_could_not_be_read_back_says_so() -> None:
    # review P3-7: a Lambda read failing after a completed rollback exited 1; the result now
    # carries the work done and says live was not read back
    from orchestrator.cli.release import _live_text

    assert _live_text({"live": "1", "weights": {}}) == "live v1 at 100%"
    assert _live_text({"live": "1", "weights": {"2": 0.1}}) == "live v1 + v2 10%"
    assert _live_text({"live": None, "live_unread": "EndpointConnectionError: down"}) == (
        "live not read back (EndpointConnectionError: down)"
    )
