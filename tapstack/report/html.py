"""The CEO report as one self-contained HTML file: the dashboard's panels, on the dashboard's grid,
from the dashboard's queries (panels.py -> queries.py), with charts drawn here as inline SVG.

No scripts, no external assets: the file opens anywhere, and a headless browser can render it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from tapstack import contracts
from tapstack.report import queries
from tapstack.report.panels import CURRENCY, DASHBOARD, SHOP, Dashboard, Format, Panel

PALETTE = (
    "#54B399", "#6092C0", "#D36086", "#9170B8", "#CA8EAE",
    "#D6BF57", "#B9A888", "#DA8B45", "#AA6556", "#E7664C",
)  # fmt: skip
# The same colour for the same label in every chart.
KNOWN_COLOURS = {
    "Impulsive": "#E7664C",
    "Reasoned": "#6092C0",
    "High Spender": "#D6BF57",
    "Standard Spender": "#54B399",
}
ROW_PX = 20  # one grid row, as on a Kibana dashboard
GAP_PX = 6
PAGE_PX = 1232  # grid width at a 1280 px wide window (24 px page margins)


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _tz() -> ZoneInfo:
    return ZoneInfo(contracts.enrichment("shop_timezone"))


def fmt(value: Any, kind: Format) -> str:
    """A value as the CEO reads it."""
    if value is None:
        return "-"
    if kind == "money":
        return f"{float(value):,.2f} {CURRENCY}"
    if kind == "integer":
        return f"{int(value):,}"
    if kind == "number":
        return f"{float(value):,.2f}"
    if kind == "datetime":
        try:
            stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(_tz())
        return stamp.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _short(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "\u2026"


class _Colours:
    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        if label in KNOWN_COLOURS:
            return KNOWN_COLOURS[label]
        if label not in self._given:
            self._given[label] = PALETTE[len(self._given) % len(PALETTE)]
        return self._given[label]


# -- charts ------------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def chart_box(panel: Panel) -> tuple[int, int]:
    """The panel's drawing area in CSS pixels at a 1280 px window: the SVG's viewBox, so text
    keeps its size whatever the panel's width."""
    column = (PAGE_PX + GAP_PX) / 48
    width = panel.grid.w * column - GAP_PX - 30  # padding and border
    height = panel.grid.h * (ROW_PX + GAP_PX) - GAP_PX - 52  # padding and title
    return max(200, int(width)), max(80, int(height))


def _no_data() -> str:
    return '<div class="empty">No data</div>'


def metric_html(panel: Panel, result: queries.PanelResult) -> str:
    metric = panel.metrics[0]
    value = _esc(fmt(result.value, metric.format))
    if metric.format == "money" and result.value is not None:
        value = f'{_esc(f"{float(result.value):,.2f}")}<span class="unit">{_esc(CURRENCY)}</span>'
    return (
        f'<div class="metric"><div class="metric-value">{value}</div>'
        f'<div class="metric-label">{_esc(panel.description)}'
        "</div></div>"
    )


def line_svg(panel: Panel, result: queries.PanelResult) -> str:
    rows = result.rows
    if not rows:
        return _no_data()
    metric = panel.metrics[0]
    key = panel.split.key
    width, height = chart_box(panel)
    left, right, top, bottom = 70, 14, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(r[metric.key] or 0) for r in rows]
    top_value = _nice_max(max(values))
    n = len(rows)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(v: float) -> float:
        return top + plot_h - v / top_value * plot_h

    parts = [
        f'<svg class="chart line" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(panel.title)}">'
    ]
    for step in range(5):
        v = top_value * step / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{_esc(f'{v:,.0f}')}</text>"
        )
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    base = top + plot_h
    parts.append(
        f'<polygon class="area" points="{x(0):.1f},{base} {points} {x(n - 1):.1f},{base}"/>'
        f'<polyline class="stroke" points="{points}"/>'
    )
    label_every = max(1, math.ceil(n / max(2, width // 110)))
    for i, (row, v) in enumerate(zip(rows, values, strict=True)):
        if n <= 40:
            parts.append(
                f'<circle class="dot" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5">'
                f"<title>{_esc(row[key])}: {_esc(fmt(v, metric.format))}</title></circle>"
            )
        if i % label_every == 0 and (n - 1 - i >= label_every / 2 or i == n - 1):
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">'
                f"{_esc(row[key])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def hbar_svg(panel: Panel, result: queries.PanelResult, colours: _Colours) -> str:
    rows = result.rows
    if not rows:
        return _no_data()
    metric = panel.metrics[0]
    key = panel.split.key
    width, height = chart_box(panel)
    row_h = min(26, (height - 6) // len(rows))
    label_w = int(min(200, width * 0.36))
    value_w = 100
    bar_w = width - label_w - value_w
    height = row_h * len(rows) + 6
    width_chars = max(8, label_w // 7)
    top_value = max(float(r[metric.key] or 0) for r in rows) or 1.0
    parts = [
        f'<svg class="chart hbar" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(panel.title)}">'
    ]
    for i, row in enumerate(rows):
        v = float(row[metric.key] or 0)
        y = 4 + i * row_h
        length = max(2.0, v / top_value * bar_w)
        colour = colours(str(row[key])) if panel.split.field == "category" else PALETTE[1]
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.66:.1f}" text-anchor="end">'
            f"{_esc(_short(str(row[key]), width_chars))}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{length:.1f}" '
            f'height="{row_h - 7}" rx="2" fill="{colour}"><title>{_esc(row[key])}</title></rect>'
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + row_h * 0.66:.1f}">'
            f"{_esc(fmt(v, metric.format))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def vbar_svg(panel: Panel, result: queries.PanelResult, colours: _Colours) -> str:
    rows = result.rows
    if not rows:
        return _no_data()
    metric = panel.metrics[0]
    key = panel.split.key
    width, height = chart_box(panel)
    top, bottom = 24, 26
    plot_h = height - top - bottom
    slot = width / len(rows)
    bar_w = min(110.0, slot * 0.6)
    top_value = max(float(r[metric.key] or 0) for r in rows) or 1.0
    parts = [
        f'<svg class="chart vbar" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(panel.title)}">',
        f'<line class="axis" x1="0" x2="{width}" y1="{top + plot_h}" y2="{top + plot_h}"/>',
    ]
    for i, row in enumerate(rows):
        v = float(row[metric.key] or 0)
        h = max(2.0, v / top_value * plot_h)
        cx = slot * i + slot / 2
        parts.append(
            f'<rect class="bar" x="{cx - bar_w / 2:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}" rx="2" fill="{colours(str(row[key]))}">'
            f"<title>{_esc(row[key])}</title></rect>"
            f'<text class="value" x="{cx:.1f}" y="{top + plot_h - h - 6:.1f}" '
            f'text-anchor="middle">{_esc(fmt(v, metric.format))}</text>'
            f'<text class="label" x="{cx:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{_esc(_short(str(row[key]), 22))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def donut_svg(panel: Panel, result: queries.PanelResult, colours: _Colours) -> str:
    rows = [r for r in result.rows if (r[panel.metrics[0].key] or 0) > 0]
    if not rows:
        return _no_data()
    metric = panel.metrics[0]
    key = panel.split.key
    total = sum(float(r[metric.key]) for r in rows)
    radius, stroke, size = 70, 34, 200
    circumference = 2 * math.pi * radius
    parts = [
        f'<svg class="chart donut" viewBox="0 0 {size} {size}" role="img" '
        f'aria-label="{_esc(panel.title)}"><g transform="rotate(-90 100 100)">'
    ]
    offset = 0.0
    for row in rows:
        share = float(row[metric.key]) / total
        length = share * circumference
        parts.append(
            f'<circle class="slice" cx="100" cy="100" r="{radius}" fill="none" '
            f'stroke="{colours(str(row[key]))}" stroke-width="{stroke}" '
            f'stroke-dasharray="{length:.2f} {circumference - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}"><title>{_esc(row[key])}: {share:.0%}</title>'
            "</circle>"
        )
        offset += length
    parts.append(
        f'</g><text class="donut-total" x="100" y="98" text-anchor="middle">'
        f"{_esc(fmt(total, metric.format))}</text>"
        f'<text class="donut-caption" x="100" y="118" text-anchor="middle">'
        f"{_esc(metric.label.lower())}</text></svg>"
    )
    legend = "".join(
        f'<li><span class="swatch" style="background:{colours(str(r[key]))}"></span>'
        f"{_esc(r[key])}<b>{float(r[metric.key]) / total:.0%}</b>"
        f'<span class="muted">{_esc(fmt(r[metric.key], metric.format))}</span></li>'
        for r in rows
    )
    return f'<div class="donut-wrap">{"".join(parts)}<ul class="legend">{legend}</ul></div>'


def table_html(panel: Panel, result: queries.PanelResult) -> str:
    if not result.rows:
        return _no_data()
    if panel.chart == "records":
        heads = [(c.field, c.label, c.format) for c in panel.columns]
    else:
        split = panel.split
        heads = [(split.key, split.label, split.format)] if split else []
        heads += [(m.key, m.label, m.format) for m in panel.metrics]
    numeric = {"money", "integer", "number"}
    head = "".join(
        f"<th{' class=num' if kind in numeric else ''}>{_esc(label)}</th>"
        for _, label, kind in heads
    )
    body = []
    for row in result.rows:
        cells = []
        for key, _, kind in heads:
            text = fmt(row.get(key), kind)
            attrs = ' class="num"' if kind in numeric else ""
            if key in ("customer", "customer_id"):  # a 64-digit keyed hash: show its start
                attrs += f' title="{_esc(text)}"'
                text = _short(text, 13)
            cells.append(f"<td{attrs}>{_esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _indices(dashboard: Dashboard) -> list[str]:
    """The indices the panels read, in panel order, each once."""
    return list(dict.fromkeys(p.index for p in dashboard.panels))


def panel_body(panel: Panel, result: queries.PanelResult, colours: _Colours) -> str:
    if panel.chart == "metric":
        return metric_html(panel, result)
    if panel.chart == "line":
        return line_svg(panel, result)
    if panel.chart == "bar_horizontal":
        return hbar_svg(panel, result, colours)
    if panel.chart == "bar":
        return vbar_svg(panel, result, colours)
    if panel.chart == "donut":
        return donut_svg(panel, result, colours)
    return table_html(panel, result)


# -- the page ----------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f1f4fa;color:#343741;font:14px/1.4 "Inter","DejaVu Sans","Helvetica",
 "Arial",sans-serif}
header{background:#fff;border-bottom:1px solid #d3dae6;padding:14px 24px;display:flex;
 align-items:center;gap:24px;flex-wrap:wrap}
header h1{font-size:20px;margin:0;font-weight:700}
header .sub{color:#69707d;font-size:12px}
.controls{display:flex;gap:10px;margin-left:auto}
.control{border:1px solid #d3dae6;border-radius:6px;padding:6px 10px;background:#fbfcfd;
 font-size:12px}
.control b{margin-right:6px;color:#1a1c21}
main{display:grid;grid-template-columns:repeat(48,minmax(0,1fr));grid-auto-rows:%(row)spx;
 gap:%(gap)spx;padding:16px 24px}
.panel{background:#fff;border:1px solid #d3dae6;border-radius:6px;padding:10px 14px;
 overflow:hidden;display:flex;flex-direction:column;box-shadow:0 1px 2px rgba(0,0,0,.05)}
.panel h2{font-size:14px;margin:0 0 6px;font-weight:600;color:#1a1c21}
.panel .body{flex:1;min-height:0;overflow:auto;display:flex;flex-direction:column;
 justify-content:center}
.panel.table .body,.panel.records .body{justify-content:flex-start}
.metric{text-align:center}
.metric-value{font-size:32px;font-weight:700;color:#1a1c21;white-space:nowrap}
.metric-value .unit{font-size:16px;font-weight:600;color:#69707d;margin-left:6px}
.metric-label{color:#69707d;font-size:12px}
svg.chart{width:100%%;height:100%%;max-height:100%%}
.grid{stroke:#e9edf3}.axis{stroke:#98a2b3}
.tick,.label,.value{font-size:12px;fill:#535966}.value{fill:#1a1c21;font-weight:600}
.area{fill:#6092C0;fill-opacity:.25}.stroke{fill:none;stroke:#6092C0;stroke-width:2.5}
.dot{fill:#fff;stroke:#6092C0;stroke-width:2}
.donut-wrap{display:flex;align-items:center;gap:18px;height:100%%}
.donut-wrap svg{width:44%%;height:100%%;flex:none}
.donut-total{font-size:20px;font-weight:700;fill:#1a1c21}.donut-caption{font-size:11px;fill:#69707d}
.legend{list-style:none;margin:0;padding:0;font-size:13px}
.legend li{margin:6px 0;display:flex;align-items:center;gap:6px;flex-wrap:wrap}
.legend b{margin-left:4px}.muted{color:#69707d;font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px}
table{border-collapse:collapse;width:100%%;font-size:12.5px}
th{text-align:left;color:#69707d;font-weight:600;border-bottom:1px solid #d3dae6;padding:4px 6px;
 position:sticky;top:0;background:#fff}
td{padding:2px 6px;border-bottom:1px solid #f1f4fa;white-space:nowrap;line-height:17px}
.num{text-align:right;font-variant-numeric:tabular-nums}
.empty{color:#98a2b3;text-align:center}
footer{color:#69707d;font-size:12px;padding:0 24px 24px}
"""


def _control_chips(dashboard: Dashboard, selections: queries.Selections | None) -> str:
    chips = []
    for control in dashboard.controls:
        chosen = (selections or {}).get(control.field) or []
        value = ", ".join(chosen) if chosen else "All"
        chips.append(
            f'<div class="control" data-field="{_esc(control.field)}"><b>{_esc(control.title)}</b>'
            f"{_esc(value)}</div>"
        )
    return "".join(chips)


def render(
    results: Mapping[str, queries.PanelResult],
    dashboard: Dashboard = DASHBOARD,
    selections: queries.Selections | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The report page for already computed panel results."""
    generated_at = generated_at or datetime.now(_tz())
    colours = _Colours()
    panels = []
    for panel in dashboard.panels:
        g = panel.grid
        style = f"grid-column:{g.x + 1} / span {g.w};grid-row:{g.y + 1} / span {g.h}"
        panels.append(
            f'<section class="panel {panel.chart}" id="panel-{_esc(panel.key)}" style="{style}" '
            f'title="{_esc(panel.description)}"><h2>{_esc(panel.title)}</h2>'
            f'<div class="body">{panel_body(panel, results[panel.key], colours)}</div></section>'
        )
    css = _CSS % {"row": ROW_PX, "gap": GAP_PX}
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_esc(dashboard.title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style></head><body>"
        f"<header><div><h1>{_esc(dashboard.title)}</h1>"
        f'<div class="sub">{_esc(dashboard.description)}</div></div>'
        f'<div class="controls">{_control_chips(dashboard, selections)}</div></header>'
        f"<main>{''.join(panels)}</main>"
        f"<footer>{_esc(SHOP)} &middot; generated "
        f"{_esc(generated_at.strftime('%Y-%m-%d %H:%M %Z'))}"
        f" from Elasticsearch indices {_esc(', '.join(_indices(dashboard)))} "
        "&middot; the native stand-in for the Kibana dashboard "
        "of the same name: same panels, same queries, over every order in the indices (the "
        f"dashboard opens on {_esc(dashboard.time_from)} to {_esc(dashboard.time_to)}).</footer>"
        "</body></html>\n"
    )


def build_report(
    es: Elasticsearch,
    out: Path,
    dashboard: Dashboard = DASHBOARD,
    selections: queries.Selections | None = None,
    extra: Sequence[dict] = (),
) -> Path:
    """Run every panel's query and write the report to `out`."""
    results = queries.run_dashboard(es, dashboard, selections, extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(results, dashboard, selections), encoding="utf-8")
    return out
