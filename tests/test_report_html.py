"""The HTML report (the native stand-in for the Kibana dashboard): built by `tap report html` from
the test stack, it carries every panel of the dashboard with its chart, and a headless Chromium
renders it into something that is not blank."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapstack.cli import app
from tapstack.report import html as report_html
from tapstack.report import queries
from tapstack.report.panels import DASHBOARD
from tests.support.clock import SHOP_TZ

pytestmark = [pytest.mark.engines, pytest.mark.spark]

N = 120


def panel_section(page: str, key: str) -> str:
    found = re.search(rf'<section class="panel [^"]*" id="panel-{key}".*?</section>', page, re.S)
    assert found, f"panel {key} missing"
    return found.group(0)


def metric_card(page: str, key: str) -> str:
    """The text a reader sees on a metric card: the value and its unit, as one string."""
    value = re.search(r'<div class="metric-value">(.*?)</div>', panel_section(page, key), re.S)
    assert value, f"panel {key} has no metric value"
    return " ".join(html.unescape(part) for part in re.split(r"<[^>]+>", value.group(1)) if part)


def chart_points(page: str, key: str) -> dict[str, str]:
    """A line chart's points as its tooltips give them: label -> formatted value."""
    titles = re.findall(r"<circle [^>]*><title>(.*?)</title>", panel_section(page, key))
    return dict(html.unescape(t).split(": ", 1) for t in titles)


def revenue_by_shop_day(orders) -> dict[str, float]:
    days: dict[str, float] = defaultdict(float)
    for order in orders:
        paid = datetime.fromisoformat(order.event["timestamp"]).astimezone(SHOP_TZ)
        days[paid.date().isoformat()] += order.event["total"]
    return dict(days)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def delivered(pipeline):
    orders = pipeline.simulate(N, seed=31)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids, timeout=180) == N
    assert pipeline.wait_events(ids, N) == N, "the money panels read the ledger"
    return orders, ids


@pytest.fixture(scope="module")
def report(pipeline, delivered, tmp_path_factory) -> Path:
    # The drift panel's figures: one measurement, as compose's model-drift service takes hourly.
    model = str(pipeline.stack.model_dir)
    result = CliRunner().invoke(app, ["model", "drift", "--model", model, "--record"])
    assert result.exit_code == 0, result.output
    out = tmp_path_factory.mktemp("report") / "ceo.html"
    result = CliRunner().invoke(app, ["report", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_has_every_panel_and_its_chart(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>{DASHBOARD.title}</title>" in page
    for panel in DASHBOARD.panels:
        section = re.search(
            rf'<section class="panel {panel.chart}" id="panel-{panel.key}".*?</section>', page
        )
        assert section, f"panel {panel.key} missing"
        body = section.group(0)
        assert f"<h2>{panel.title}</h2>" in body
        assert "No data" not in body, f"panel {panel.key} is empty"
        if panel.chart == "metric":
            assert 'class="metric-value"' in body
        elif panel.chart == "line":
            assert "<polyline" in body and "<polygon" in body
        elif panel.chart in ("bar", "bar_horizontal"):
            assert body.count('<rect class="bar"') >= 2
        elif panel.chart == "donut":
            assert body.count('<circle class="slice"') >= 2
        else:
            assert body.count("<tr>") >= 2
    for control in DASHBOARD.controls:
        assert f'data-field="{control.field}"' in page
    # Self-contained: no scripts, nothing fetched from elsewhere.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_report_shows_the_panel_figures(es, delivered, tmp_path):
    """Restricted to this test's orders, the page shows exactly what the panel queries return."""
    orders, ids = delivered
    restrict = [{"terms": {"order_id": ids}}]
    results = queries.run_dashboard(es, extra=restrict)
    page = report_html.render(results)
    revenue = sum(o.event["total"] for o in orders)
    assert metric_card(page, "total-revenue") == report_html.fmt(revenue, "money")
    assert metric_card(page, "orders") == str(N)
    newest = max(orders, key=lambda o: o.event["timestamp"])
    assert f"<td>{newest.order_id}</td>" in page
    # A control selection shows on the page and changes the figures.
    chosen = {"purchase_behaviour": ["Reasoned"]}
    out = report_html.build_report(
        es, tmp_path / "reasoned.html", selections=chosen, extra=restrict
    )
    filtered = out.read_text(encoding="utf-8")
    assert "<b>Behaviour</b>Reasoned" in filtered
    reasoned = queries.run_panel(es, DASHBOARD.panel("orders"), chosen, restrict).value
    assert 0 < reasoned < N
    assert metric_card(filtered, "orders") == str(reasoned)


def test_report_of_orders_straddling_midnight(pipeline, es):
    """Orders on both sides of a shop-local midnight: the revenue card shows their total, and
    the per-day chart splits it at the shop's midnight, as the log's paid times do."""
    end = datetime(2026, 10, 17, 0, 40, tzinfo=SHOP_TZ)  # a Saturday, 40 minutes past midnight
    orders = pipeline.simulate(N, seed=32, end=end)
    by_day = revenue_by_shop_day(orders)
    assert len(by_day) == 2, f"the history should straddle midnight: {sorted(by_day)}"
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids, timeout=180) == N
    assert pipeline.wait_events(ids, N) == N, "the money panels read the ledger"
    page = report_html.render(queries.run_dashboard(es, extra=[{"terms": {"order_id": ids}}]))
    revenue = sum(o.event["total"] for o in orders)
    assert metric_card(page, "total-revenue") == report_html.fmt(revenue, "money")
    assert metric_card(page, "orders") == str(N)
    assert chart_points(page, "revenue-per-day") == {
        day: report_html.fmt(total, "money") for day, total in by_day.items()
    }


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install chromium fonts-dejavu-core)",
)
def test_headless_chromium_renders_a_dashboard(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "ceo.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1280,2400", report.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert shot.exists(), done.stderr[-2000:]
    keep = os.environ.get("TAP_REPORT_SCREENSHOT")
    if keep:  # to look at it: TAP_REPORT_SCREENSHOT=/tmp/ceo.png pytest tests/test_report_html.py
        shutil.copy(shot, keep)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot is (nearly) blank"
    background = max(colours)[1]
    painted = sum(count for count, colour in colours if colour != background)
    assert painted / (1280 * 2400) > 0.08  # background and panels aside, ~18 % is drawn
    # The charts' own colours are on the page: the bars, the donut slices, the area line.
    present = {colour for _, colour in colours}
    for hex_colour in ("#6092C0", "#E7664C", "#54B399"):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in present, f"{hex_colour} not drawn"
