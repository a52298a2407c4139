"""report.md: what a reader of a promotion's summary sees besides the table."""

from __future__ import annotations

from orchestrator.release.report import PromotionReport, StepReport, markdown


def test_report_md_lists_each_gates_caveats_and_skipped_checks() -> None:
    report = PromotionReport(
        id="p1", env="prod", blue="1", green="2", schedule="canary", outcome="rolled_back"
    )
    late = "the load generator ran late (its own delay p95 40.0 ms, 40% of the p95 budget)"
    report.steps = [
        StepReport(
            "pre-traffic", 0, "pass", ["all thresholds met"], None, None, skipped=["min rps: disabled"]
        ),
        StepReport("step 1", 10, "fail", ["green p95 150.0 ms > 100 ms"], None, None, caveats=[late]),
    ]
    text = markdown(report)
    assert text.endswith(
        f"Checks not applied:\n- pre-traffic: min rps: disabled\n\nCaveats:\n- step 1: {late}\n"
    )
    assert report.to_dict()["steps"][1]["caveats"] == [late]


def test_report_md_has_no_caveats_section_when_every_gate_measured_cleanly() -> None:
    report = PromotionReport(id="p1", env="prod", blue="1", green="2", schedule="canary", outcome="promoted")
    report.steps = [StepReport("step 1", 10, "pass", ["all thresholds met"], None, None)]
    assert "Caveats" not in markdown(report)


def test_report_md_says_why_a_bake_waited_or_was_not_judged() -> None:
    from orchestrator.release.report import BakeReport

    report = PromotionReport(
        id="p1", env="prod", blue="1", green="2", schedule="canary", outcome="rolled_back"
    )
    nothing = "no metric of green judged 180 s past the bake's end (nothing read); an OK alarm says nothing about green"
    report.bakes = [
        BakeReport("step 1", 10, 480.2, 9, "not_judged", [], reason=nothing, waited_s=180.2),
        BakeReport(
            "step 2", 100, 0.0, 0, "skipped", [], reason="bake_s = 0: no bake, the gates alone judge green"
        ),
    ]
    rows = [line for line in markdown(report).splitlines() if line.startswith("| step")]
    assert rows == [
        f"| step 1 | 10% | 480 s (+180 s for late metrics) | 9 | nothing read | not_judged: {nothing} |",
        "| step 2 | 100% | 0 s | 0 | nothing read | skipped: bake_s = 0: no bake, the gates alone judge green |",
    ]
    assert report.to_dict()["bakes"][0]["waited_s"] == 180.2


def test_report_md_says_what_pruning_deleted_or_why_it_did_not() -> None:
    report = PromotionReport(id="p1", env="prod", blue="6", green="7", schedule="canary", outcome="promoted")
    report.pruned = {
        "kept": ["2", "6", "7"], "deleted_versions": ["1", "3"], "deleted_code": ["code/ab.zip"],
        "problems": ["could not delete v4: ResourceConflictException: alias refers to it"],
    }  # fmt: skip
    assert markdown(report).endswith(
        "Pruned versions: v1, v3 (1 code package(s)); kept v2, v6, v7.\n"
        "- could not delete v4: ResourceConflictException: alias refers to it\n"
    )
    assert report.to_dict()["pruned"] == report.pruned
    report.pruned = {"error": "AccessDenied"}
    assert markdown(report).endswith("Old versions were not pruned: AccessDenied\n")


def test_every_gate_shows_blue_and_green_side_by_side_with_the_comparison() -> None:
    from orchestrator.gates.compare import compare
    from orchestrator.release import htmlreport

    green = {"samples": 300, "errors": 0, "error_ratio": 0.0, "p50_ms": 2.6, "p95_ms": 12.1, "p99_ms": 20.0}
    blue = {"samples": 2700, "errors": 27, "error_ratio": 0.01, "p50_ms": 2.4, "p95_ms": 7.5, "p99_ms": 11.0}
    comparison = compare([10.0] * 100, [50.0] * 100, floor_ms=25.0, alpha=0.01).to_dict()
    report = PromotionReport(
        id="p1", env="prod", blue="1", green="2", schedule="canary", outcome="rolled_back"
    )
    report.steps = [
        StepReport("pre-traffic", 0, "pass", ["all thresholds met"], green, None),
        StepReport("step 1", 10, "fail", ["green regressed"], green, blue, comparison=comparison),
    ]
    rows = [line for line in markdown(report).splitlines() if line.startswith(("| pre-traffic", "| step"))]
    assert rows == [
        "| pre-traffic | alone | 2.6 / 12.1 / 20.0 ms, 0.00% errors of 300 | - | - | pass: all thresholds met |",
        "| step 1 | 10% | 2.6 / 12.1 / 20.0 ms, 0.00% errors of 300 | 2.4 / 7.5 / 11.0 ms, 1.00% errors of 2700 "
        "| regressed: p95 shift +40.0 ms (+40.0 .. +40.0), p = 0, floor 25 ms | fail: green regressed |",
    ]
    page = htmlreport.render(report.to_dict())
    assert "<td>2.4 / 7.5 / 11.0 ms, 1.00% errors of 2700</td>" in page
    assert "<td>regressed: p95 shift +40.0 ms (+40.0 .. +40.0), p = 0, floor 25 ms</td>" in page
