"""Promotion reports: report.json, report.md, report.html (htmlreport.py draws it), and the
GitHub step summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.base import output
from orchestrator.release import htmlreport
from orchestrator.release.figures import figures, versus


@dataclass
class StepReport:
    """One gate: the weight green had and what the gate saw."""

    name: str
    weight: int
    verdict: str
    reasons: list[str]
    green: dict[str, Any] | None
    blue: dict[str, Any] | None
    html: str | None = None  # Locust's own page, kept only with reports.locust_html
    attempt: int = 1  # attempt 2 is judged on both attempts' requests pooled
    skipped: list[str] = field(default_factory=list)  # checks not applied, each with its reason
    caveats: list[str] = field(default_factory=list)  # what the gate's numbers carry besides the service
    comparison: dict[str, Any] | None = None  # compare.Comparison.to_dict(): green against blue
    # A sequential gate's looks (orchestrator/gates/sequential.py): why its load ended, each look's
    # statistics, and whether the fixed judge agreed; None for a fixed-length gate.
    sequential: dict[str, Any] | None = None


@dataclass
class BakeReport:
    """One bake (or pause): how long green was watched at a weight and what the last look saw."""

    name: str  # "step 1", or "step 1 (paused)"
    weight: int
    seconds: float
    looks: int
    # "ok" (a metric of green judged over the window) | "breach" | "not_judged" (nothing of
    # green judged, or nothing read) | "stopped" | "skipped" (bake_s = 0)
    verdict: str
    checks: list[dict[str, Any]]  # watch.MetricCheck.to_dict() of the breach look, else the last
    reason: str = ""  # why it ended (or waited) as it did: watch.Decision.reason
    waited_s: float = 0.0  # seconds past bake_s spent waiting for green's late datapoints


@dataclass
class PauseReport:
    """A hold at a weight (--pause-at) and who ended it."""

    step: int
    weight: int
    started_at: float
    seconds: float = 0.0
    ended_by: str = ""  # the resume-promotion caller, or what stopped it


@dataclass
class PromotionReport:
    """Everything one promotion did, in order."""

    id: str
    env: str
    blue: str | None
    green: str
    schedule: str
    # promoted | rolled_back | failed | nothing_to_do | deployed (a first deploy: no gate ran)
    outcome: str = "running"
    reason: str = ""
    steps: list[StepReport] = field(default_factory=list)
    overhead_s: list[float] = field(default_factory=list)
    bakes: list[BakeReport] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)  # hooks.HookResult.to_dict()
    pauses: list[PauseReport] = field(default_factory=list)
    directory: str = ""
    started_at: float | None = None  # the record's first transition (epoch seconds)
    ended_at: float | None = None
    # green's intended share of live over time: [{"at": epoch s, "weight": percent, "phase"}]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    slo: dict[str, Any] = field(default_factory=dict)  # the recorded plan's thresholds
    # What pruning deleted after a promotion ended `promoted` (prune.Pruned.to_dict(), or
    # {"error": ...} when it could not run); None: not pruned (not promoted).
    pruned: dict[str, Any] | None = None
    # Green's model contract against live's (release.Release._contract): models, change, schedule
    contract: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (report.json and `promote --json`)."""
        return {
            "id": self.id, "env": self.env, "blue": self.blue, "green": self.green, "schedule": self.schedule,
            "outcome": self.outcome, "reason": self.reason, "directory": self.directory,
            "overhead_s_per_step": [round(x, 3) for x in self.overhead_s],
            "steps": [s.__dict__ for s in self.steps],
            "bakes": [b.__dict__ for b in self.bakes], "hooks": self.hooks,
            "pauses": [p.__dict__ for p in self.pauses],
            "started_at": self.started_at, "ended_at": self.ended_at, "timeline": self.timeline,
            "slo": self.slo, "pruned": self.pruned, "contract": self.contract,
        }  # fmt: skip


def _contract_lines(contract: dict[str, Any] | None) -> list[str]:
    """report.md: the models and whether green keeps live's contract (why it moved all at once)."""
    if not contract:
        return []
    models = [f"{who} {m.get('name')} {m.get('version')} (sha256 {str(m.get('sha256'))[:12]}): {m.get('contract', 'contract unknown')}"
              for who, m in (("Live", contract.get("live") or {}), ("green", contract.get("green") or {}))]  # fmt: skip
    said = (
        contract.get("said")
        or contract.get("unknown")
        or ("Contract: " + ("; ".join(contract.get("notes") or []) or "unchanged") + " (not breaking).")
    )
    return ["", f"{'; '.join(models)}.", "", said[:1].upper() + said[1:]]


def markdown(report: PromotionReport) -> str:
    """report.md: one row per gate."""
    lines = [
        f"## edgeship promotion `{report.id}` on `{report.env}`: **{report.outcome.replace('_', ' ')}**",
        "",
        f"Blue v{report.blue} -> green v{report.green}, schedule `{report.schedule}`."
        + (f" Reason: {report.reason}" if report.reason else ""),
        *_contract_lines(report.contract),
        "",
        "| gate | green weight | green p50 / p95 / p99, errors | blue p50 / p95 / p99, errors "
        "| green vs blue | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for s in report.steps:
        lines.append(
            f"| {s.name}{f' (try {s.attempt})' if s.attempt > 1 else ''} | {'alone' if s.name == 'pre-traffic' else f'{s.weight}%'} "
            f"| {figures(s.green)} | {figures(s.blue)} | {versus(s.comparison)} "
            f"| {s.verdict}: {'; '.join(s.reasons)} |"
        )
    if report.bakes:
        lines += ["", "| bake | green weight | watched | looks | real-traffic metrics (last look) | verdict |",
                  "|---|---:|---:|---:|---|---|"]  # fmt: skip
        for bake in report.bakes:
            seen = "; ".join(f"{c['name']}: {c['detail']}" for c in bake.checks) or "nothing read"
            # why it waited past bake_s (Lambda's metrics arrive late), or ended as it did
            waited = f" (+{bake.waited_s:.0f} s for late metrics)" if bake.waited_s >= 0.5 else ""
            why = f": {bake.reason}" if bake.reason else ""
            lines.append(
                f"| {bake.name} | {bake.weight}% | {bake.seconds:.0f} s{waited} | {bake.looks} | {seen} "
                f"| {bake.verdict}{why} |"
            )
    if report.hooks:
        lines += ["", "| hook | when | outcome | seconds |", "|---|---|---|---:|"]
        for h in report.hooks:
            lines.append(f"| `{h['run']}` | {h['on']} | {h['outcome']} | {h['seconds']:.1f} |")
    for p in report.pauses:
        lines += ["", f"Paused at {p.weight}% for {p.seconds:.0f} s; {p.ended_by}."]
    ended = [f"- {s.name}: {s.sequential['stop']}" for s in report.steps if s.sequential]
    if ended:
        lines += ["", "Sequential gates:", *ended]
    skipped = sorted({f"- {s.name}: {why}" for s in report.steps for why in s.skipped})
    if skipped:
        lines += ["", "Checks not applied:", *skipped]
    caveats = [f"- {s.name}: {why}" for s in report.steps for why in s.caveats]
    if caveats:
        lines += ["", "Caveats:", *caveats]
    if report.pruned is not None:
        pruned = report.pruned
        if "error" in pruned:
            lines += ["", f"Old versions were not pruned: {pruned['error']}"]
        else:
            gone = ", ".join(f"v{v}" for v in pruned["deleted_versions"]) or "none"
            kept = ", ".join(f"v{v}" for v in pruned["kept"]) or "none"
            lines += [
                "",
                f"Pruned versions: {gone} ({len(pruned['deleted_code'])} code package(s)); kept {kept}.",
            ]
            lines += [f"- {problem}" for problem in pruned["problems"]]
    if report.directory:
        lines += ["", f"Report: `{report.directory}/report.html` (charts), `report.md`, `report.json`."]
    return "\n".join(lines) + "\n"


# Where a phase leaves green's share of live (percent), given the step it is at.
_ZERO = {"planned", "pre_traffic", "rolled_back", "aborted", "failed"}


def timeline(transitions: list[dict[str, Any]], steps: list[int]) -> list[dict[str, Any]]:
    """Green's intended weight after each transition of a promotion record (pure): 0 before the
    first shift and once rolled back, the step's weight while shifting, baking, gating or
    paused, 100 when promoting; `rolling_back` keeps the weight it left (the move takes time)."""
    points: list[dict[str, Any]] = []
    weight = 0
    for t in transitions:
        phase, step = str(t["phase"]), int(t.get("step", -1))
        if phase in _ZERO:
            weight = 0
        elif phase in ("promoting", "promoted"):
            weight = 100
        elif phase != "rolling_back" and 0 <= step < len(steps):
            weight = int(steps[step])
        if points and points[-1]["weight"] == weight and points[-1]["phase"] == phase:
            continue
        points.append({"at": float(t["at"]), "weight": weight, "phase": phase})
    return points


def write(report: PromotionReport, directory: Path) -> Path:
    """Write report.json, report.md and report.html; append to GITHUB_STEP_SUMMARY when set."""
    directory.mkdir(parents=True, exist_ok=True)
    report.directory = str(directory)
    (directory / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    text = markdown(report)
    (directory / "report.md").write_text(text)
    (directory / "report.html").write_text(htmlreport.render(report.to_dict()), encoding="utf-8")
    output.append_summary(text)
    return directory
