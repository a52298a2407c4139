"""report.html: one self-contained page per promotion, its charts drawn here as inline SVG.

No script, no stylesheet or font fetched, no JavaScript library: the page opens from a CI
artifact or a mail attachment as it is. Everything is a pure function of the report's JSON
form (report.json), so the page can be table-tested and re-rendered from an old report.

Charts: latency per gate (p50 and p95 of blue and green), error ratio per gate (with the
SLO's limit), green's share of live over time (from the promotion record's transitions),
and per sequential gate its evidence over time (orchestrator/gates/sequential.py): at each look,
how far the clearest-met SLO has to go to PASS and the clearest-broken one to FAIL, as a
share of its boundary (1 = the boundary: the look that reaches it may end the gate).
"""

from __future__ import annotations

import datetime
import itertools
from html import escape
from typing import Any

from orchestrator.release.figures import figures, versus

# Colours: blue and green as the versions' names, darker for the p95 bar.
COLORS = {
    "blue p50": "#9ecae1", "blue p95": "#3182bd", "green p50": "#a1d99b", "green p95": "#31a354",
    "blue": "#3182bd", "green": "#31a354",
}  # fmt: skip
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 20, 48


def _num(value: float) -> str:
    """SVG coordinates: short, and the same on every machine."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 < value:
        scale *= 10
    while scale > value:
        scale /= 10
    for factor in (1, 2, 5, 10):
        if scale * factor >= value:
            return scale * factor
    return scale * 10


def _axis(top: float, unit: str, ticks: int = 4) -> list[str]:
    """Horizontal grid lines with their labels, 0..top."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(ticks + 1):
        value = top * i / ticks
        y = TOP + plot_h - plot_h * i / ticks
        label = f"{value:g}{unit}"
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{escape(label)}</text>'
        )
    return parts


def _legend(names: list[str], colors: dict[str, str]) -> str:
    items = []
    x = LEFT
    for name in names:
        items.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colors[name]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}">{escape(name)}</text>'
        )
        x += 14 + 8 * len(name) + 16
    return "".join(items)


def bar_chart(
    title: str,
    categories: list[str],
    series: dict[str, list[float | None]],
    *,
    unit: str = "",
    limit: float | None = None,
    limit_label: str = "",
) -> str:
    """Grouped bars: one group per category, one bar per series (None: no bar, e.g. no blue in
    the pre-traffic gate); a dashed line at `limit` (the SLO's threshold)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    highest = max([*values, 0.0])
    # The data sets the scale; a limit far above it would flatten every bar, so it is drawn
    # only when within twice the highest bar, else named at the top.
    shown = limit is not None and limit > 0 and (highest == 0 or limit <= 2 * highest)
    top = nice_max(max(highest, limit if shown and limit else 0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [*_axis(top, unit)]
    for i, category in enumerate(categories):
        x0 = LEFT + i * group_w + group_w * 0.1
        for j, (name, vs) in enumerate(series.items()):
            value = vs[i] if i < len(vs) else None
            if value is None:
                continue
            h = max(1.0, plot_h * min(value, top) / top)  # a measured 0 still shows as a sliver
            parts.append(
                f'<rect x="{_num(x0 + j * bar_w)}" y="{_num(TOP + plot_h - h)}" width="{_num(bar_w - 1)}" '
                f'height="{_num(h)}" fill="{COLORS.get(name, "#888")}">'
                f"<title>{escape(f'{category}: {name} {value:g}{unit}')}</title></rect>"
            )
        parts.append(
            f'<text x="{_num(LEFT + i * group_w + group_w / 2)}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(category)}</text>'
        )
    if limit is not None and limit > 0 and not shown:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{TOP - 4}" text-anchor="end" fill="#d62728">'
            f"{escape(limit_label)} (above the chart)</text>"
        )
    elif limit is not None and limit > 0:
        y = TOP + plot_h - plot_h * min(limit, top) / top
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}" stroke="#d62728" '
            f'stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT}" y="{_num(y - 4)}" text-anchor="end" '
            f'fill="#d62728">{escape(limit_label)}</text>'
        )
    parts.append(_legend(list(series), {name: COLORS.get(name, "#888") for name in series}))
    return _svg(title, parts)


def step_chart(title: str, points: list[tuple[float, float]], *, unit: str = "%", top: float = 100) -> str:
    """A value held until the next point (green's weight over seconds since the start)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [*_axis(top, unit)]
    if points:
        end = max(points[-1][0], 1.0)

        def xy(t: float, v: float) -> str:
            return f"{_num(LEFT + plot_w * t / end)},{_num(TOP + plot_h - plot_h * min(v, top) / top)}"

        path = [xy(*points[0])]
        for (_, v0), (t1, v1) in itertools.pairwise(points):
            path += [xy(t1, v0), xy(t1, v1)]
        parts.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="#31a354" stroke-width="2"/>')
        for t, v in points:
            x, y = xy(t, v).split(",")
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="3" fill="#31a354"><title>{t:.0f} s: {v:g}{unit}</title></circle>'
            )
        for i in range(5):
            t = end * i / 4
            parts.append(
                f'<text x="{_num(LEFT + plot_w * i / 4)}" y="{TOP + plot_h + 16}" text-anchor="middle">{t:.0f} s</text>'
            )
    else:
        parts.append(
            f'<text x="{WIDTH / 2:g}" y="{HEIGHT / 2:g}" text-anchor="middle">no traffic moved</text>'
        )
    return _svg(title, parts)


def sequential_chart(title: str, looks: list[dict[str, Any]]) -> str:
    """A sequential gate's looks: the PASS and FAIL statistics over time, each as a share of
    its boundary. PASS needs every SLO met (the smallest share); FAIL any SLO broken (the largest)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = 1.5
    parts = [*_axis(top, "", ticks=3)]
    if not looks:
        parts.append(f'<text x="{WIDTH / 2:g}" y="{HEIGHT / 2:g}" text-anchor="middle">no look</text>')
        return _svg(title, parts)
    end = max(float(looks[-1]["elapsed_s"]), 1.0)

    def share(value: float, boundary: float) -> float:
        return max(0.0, min(top, value / boundary)) if boundary > 0 else 0.0

    def xy(t: float, v: float) -> str:
        return f"{_num(LEFT + plot_w * t / end)},{_num(TOP + plot_h - plot_h * v / top)}"

    series = {
        "pass (every SLO met)": ("#31a354", [
            share(min(c["log_pass"] for c in lk["checks"]), lk["pass_at"]) for lk in looks
        ]),
        "fail (any SLO broken)": ("#d62728", [
            share(max(c["log_fail"] for c in lk["checks"]), lk["fail_at"]) for lk in looks
        ]),
    }  # fmt: skip
    for color, values in series.values():
        points = " ".join(xy(float(lk["elapsed_s"]), v) for lk, v in zip(looks, values, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
    y = TOP + plot_h - plot_h / top
    parts.append(
        f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}" stroke="#444" stroke-dasharray="6 4"/>'
        f'<text x="{WIDTH - RIGHT}" y="{_num(y - 4)}" text-anchor="end">boundary</text>'
    )
    for i in range(5):
        parts.append(
            f'<text x="{_num(LEFT + plot_w * i / 4)}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{end * i / 4:.0f} s</text>"
        )
    parts.append(_legend(list(series), {name: color for name, (color, _) in series.items()}))
    return _svg(title, parts)


def _svg(title: str, parts: list[str]) -> str:
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        + "".join(parts)
        + "</svg></figure>"
    )


def _gate_label(step: dict[str, Any]) -> str:
    return step["name"] + (f" (try {step['attempt']})" if step.get("attempt", 1) > 1 else "")


def charts(report: dict[str, Any]) -> list[str]:
    """The three pictures of a report (pure)."""
    steps = report.get("steps", [])
    labels = [_gate_label(s) for s in steps]

    def stat(step: dict[str, Any], who: str, key: str, scale: float = 1.0) -> float | None:
        stats = step.get(who)
        return None if not stats else round(float(stats.get(key, 0.0)) * scale, 3)

    slo = report.get("slo") or {}
    latency = bar_chart(
        "Latency per gate (ms, successful requests)", labels,
        {f"{who} {q}": [stat(s, who, f"{q}_ms") for s in steps] for who in ("blue", "green") for q in ("p50", "p95")},
        unit=" ms", limit=slo.get("p95_ms"), limit_label=f"p95 limit {slo['p95_ms']:g} ms" if slo.get("p95_ms") else "",
    )  # fmt: skip
    errors = bar_chart(
        "Error ratio per gate (%)", labels,
        {who: [stat(s, who, "error_ratio", 100) for s in steps] for who in ("blue", "green")},
        unit="%", limit=slo["max_error_ratio"] * 100 if slo.get("max_error_ratio") else None,
        limit_label=f"limit {slo['max_error_ratio']:.1%}" if slo.get("max_error_ratio") else "",
    )  # fmt: skip
    timeline = report.get("timeline") or []
    start = timeline[0]["at"] if timeline else 0.0
    weights = step_chart(
        "Green's share of live over time", [(p["at"] - start, float(p["weight"])) for p in timeline]
    )
    evidence = [
        sequential_chart(
            f"Gate {_gate_label(s)}: sequential evidence ({s['sequential'].get('stop', '')})",
            s["sequential"]["looks"],
        )
        for s in steps
        if s.get("sequential") and s["sequential"].get("looks")
    ]
    return [latency, errors, weights, *evidence]


def _utc(ts: float | None) -> str:
    if ts is None:
        return "?"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:4px}"
    ".promoted{color:#31a354}.rolled_back,.failed,.aborted,.rollback_incomplete,.deposed,.stopped_lease_unconfirmed{color:#d62728}"
)


def render(report: dict[str, Any]) -> str:
    """The whole page (pure: the same report gives the same bytes)."""
    outcome = str(report.get("outcome", "?"))
    steps = report.get("steps", [])
    gate_rows = [
        [
            _gate_label(s), "alone" if s["name"] == "pre-traffic" else f"{s['weight']}%",
            figures(s.get("green")), figures(s.get("blue")), versus(s.get("comparison")),
            f"{s['verdict']}: {'; '.join(s.get('reasons', []))}",
        ]
        for s in steps
    ]  # fmt: skip
    bake_rows = [
        [b["name"], f"{b['weight']}%", f"{b['seconds']:.0f} s", b["verdict"] + (f": {b['reason']}" if b.get("reason") else "")]
        for b in report.get("bakes", [])
    ]  # fmt: skip
    hook_rows = [[h["run"], h["on"], h["outcome"], f"{h['seconds']:.1f} s"] for h in report.get("hooks", [])]
    notes = sorted(
        {f"{s['name']}: {why}" for s in steps for why in [*s.get("skipped", []), *s.get("caveats", [])]}
    )
    title = f"edgeship promotion {report.get('id', '?')} on {report.get('env', '?')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f'<h1>{escape(title)}: <span class="{escape(outcome)}">{escape(outcome.replace("_", " "))}</span></h1>',
        f"<p>Blue v{escape(str(report.get('blue')))} &rarr; green v{escape(str(report.get('green')))}, "
        f"schedule {escape(str(report.get('schedule', '?')))}; started {_utc(report.get('started_at'))}, "
        f"ended {_utc(report.get('ended_at'))}.</p>",
        *([f"<p>Reason: {escape(str(report['reason']))}</p>"] if report.get("reason") else []),
        *charts(report),
        "<h2>Gates</h2>",
        _table(
            [
                "gate",
                "green weight",
                "green p50 / p95 / p99, errors",
                "blue p50 / p95 / p99, errors",
                "green vs blue",
                "verdict",
            ],
            gate_rows,
        ),
        *(
            ["<h2>Bakes</h2>", _table(["bake", "green weight", "watched", "verdict"], bake_rows)]
            if bake_rows
            else []
        ),
        *(["<h2>Hooks</h2>", _table(["hook", "when", "outcome", "took"], hook_rows)] if hook_rows else []),
        *(["<h2>Notes</h2><ul>", *(f"<li>{escape(n)}</li>" for n in notes), "</ul>"] if notes else []),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
