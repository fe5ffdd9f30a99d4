"""The CEO summary printed by the demo and `tap summary`: the dashboard's panels as terminal tables.

Every figure comes from the panel queries (panels.py -> queries.py), as in Kibana and the HTML
report.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch
from rich.console import Console
from rich.table import Table

from tapstack.report import queries
from tapstack.report.html import fmt
from tapstack.report.panels import DASHBOARD, Panel

# The columns a terminal has room for, of the panels wider than that (default: every one).
_TERMINAL_COLUMNS = {
    "model-drift": ("psi", "verdict", "orders", "measured_at"),
    "behaviour-models": ("training_rows", "boundary_seconds", "boundary_pages", "silhouette"),
}


def _table(panel: Panel, result: queries.PanelResult, limit: int = 5) -> Table:
    table = Table(title=panel.title)
    split = panel.split
    keys = _TERMINAL_COLUMNS.get(panel.key)
    metrics = [m for m in panel.metrics if keys is None or m.key in keys]
    if split:
        table.add_column(split.label)
    for metric in metrics:
        table.add_column(metric.label, justify="left" if metric.format == "text" else "right")
    for row in result.rows[:limit]:
        first = []
        if split:
            first = [str(row[split.key])]
            if split.key == "customer":
                first = [first[0][:12] + "\u2026"]
        table.add_row(*first, *(fmt(row[m.key], m.format) for m in metrics))
    return table


def print_summary(es: Elasticsearch, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    results = queries.run_dashboard(es)
    figures = queries.kpis(es, results)

    head = Table(title=DASHBOARD.title, show_header=False)
    for key in (
        "gross-revenue",
        "refunds",
        "total-revenue",
        "orders",
        "average-order-value",
        "cancellations",
        "high-demand-orders",
        "order-id-conflicts",
    ):
        panel = DASHBOARD.panel(key)
        head.add_row(panel.title, fmt(results[key].value, panel.metrics[0].format))
    console.print(head)

    split = Table(title="Behavioural segmentation")
    for column in ("Behaviour", "Orders", "Share", "Net revenue"):
        split.add_column(column, justify="left" if column == "Behaviour" else "right")
    for name, bucket in sorted(figures["behaviour"].items()):
        share = bucket["orders"] / figures["orders"] if figures["orders"] else 0
        split.add_row(name, str(bucket["orders"]), f"{share:.0%}", fmt(bucket["revenue"], "money"))
    console.print(split)

    for key in (
        "spender-type",
        "top-products-units",
        "top-refunded-products",
        "orders-by-status",
        "top-customers",
        "data-freshness",
        "model-versions",
        "model-drift",
        "behaviour-models",
        "label-confidence",
    ):
        if results[key].rows:  # drift: none until `tap model drift --record` ran
            console.print(_table(DASHBOARD.panel(key), results[key]))

    products = queries.top_products(es, size=5, by="units")
    return {
        **figures,
        "high_demand_orders": results["high-demand-orders"].value,
        "top_products": products,
        "panels": {key: result.rows for key, result in results.items()},
    }
