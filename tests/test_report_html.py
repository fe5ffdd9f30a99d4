"""The HTML report (the native stand-in for the Kibana dashboard): built by `tap report html` from
the test stack, it carries every panel of the dashboard with its chart, and a headless Chromium
renders it into something that is not blank."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapstack.cli import app
from tapstack.report import html as report_html
from tapstack.report import queries
from tapstack.report.panels import DASHBOARD

pytestmark = [pytest.mark.engines, pytest.mark.spark]

N = 120
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def delivered(pipeline):
    orders = pipeline.simulate(N, seed=31)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids, timeout=180) == N
    return orders, ids


@pytest.fixture(scope="module")
def report(delivered, tmp_path_factory) -> Path:
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
    assert report_html.fmt(revenue, "money") in page
    assert f'<div class="metric-value">{N}</div>' in page
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
    assert f'<div class="metric-value">{reasoned}</div>' in filtered


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
        "--window-size=1280,2000", report.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert shot.exists(), done.stderr[-2000:]
    keep = os.environ.get("TAP_REPORT_SCREENSHOT")
    if keep:  # to look at it: TAP_REPORT_SCREENSHOT=/tmp/ceo.png pytest tests/test_report_html.py
        shutil.copy(shot, keep)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot is (nearly) blank"
    background = max(colours)[1]
    painted = sum(count for count, colour in colours if colour != background)
    assert painted / (1280 * 2000) > 0.08  # background and panels aside, ~18 % is drawn
    # The charts' own colours are on the page: the bars, the donut slices, the area line.
    present = {colour for _, colour in colours}
    for hex_colour in ("#6092C0", "#E7664C", "#54B399"):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        assert rgb in present, f"{hex_colour} not drawn"
