"""One version's figures at a gate, as text: the cells report.md (report.py) and report.html
(htmlreport.py) both print for a gate's green, blue and their comparison.

Its own module so that both reports import it from below: htmlreport once imported these from
report, whose `write` imports htmlreport, a cycle (tests/test_layers.py forbids cycles)."""

from __future__ import annotations

from typing import Any


def figures(version: dict[str, Any] | None) -> str:
    """One version's figures at a gate: p50 / p95 / p99, errors, samples ("-": it answered none)."""
    if not version:
        return "-"
    return (
        f"{version.get('p50_ms', 0):.1f} / {version.get('p95_ms', 0):.1f} / {version.get('p99_ms', 0):.1f} ms, "
        f"{version.get('error_ratio', 0):.2%} errors of {version.get('samples', 0)}"
    )


def versus(comparison: dict[str, Any] | None) -> str:
    """The comparison's result and effect size, short ("-": not compared)."""
    if not comparison or comparison.get("regressed") is None:
        return "-"
    verdict = (
        "regressed"
        if comparison["regressed"]
        else "within noise"
        if comparison["within_noise"]
        else "no regression"
    )
    return (
        f"{verdict}: p95 shift {comparison['effect_ms']:+.1f} ms "
        f"({comparison['effect_low_ms']:+.1f} .. {comparison['effect_high_ms']:+.1f}), p = {comparison['p_value']:.2g}, "
        f"floor {comparison['floor_ms']:g} ms"
    )
