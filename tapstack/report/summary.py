"""The CEO summary printed by the demo: the headline panels as terminal tables."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from rich.console import Console
from rich.table import Table

from tapstack import contracts
from tapstack.report import queries


def print_summary(es: Elasticsearch, console: Console | None = None) -> dict:
    console = console or Console()
    currency = contracts.settings()["shop"]["currency"]
    figures = queries.kpis(es)
    products = queries.top_products(es, size=5, by="units")

    head = Table(title=f"{contracts.settings()['shop']['name']} - CEO view", show_header=False)
    head.add_row("Total revenue", f"{figures['revenue']:,.2f} {currency}")
    head.add_row("Orders", f"{figures['orders']:,}")
    head.add_row("Average order value", f"{figures['average_order_value']:,.2f} {currency}")
    console.print(head)

    split = Table(title="Behavioural segmentation")
    for column in ("Behaviour", "Orders", "Share", "Revenue"):
        split.add_column(column, justify="left" if column == "Behaviour" else "right")
    for name, bucket in sorted(figures["behaviour"].items()):
        share = bucket["orders"] / figures["orders"] if figures["orders"] else 0
        split.add_row(name, str(bucket["orders"]), f"{share:.0%}", f"{bucket['revenue']:,.2f}")
    console.print(split)

    top = Table(title="Top selling products (units)")
    for column in ("Product", "Units", "Revenue"):
        top.add_column(column, justify="left" if column == "Product" else "right")
    for row in products:
        top.add_row(row["product"], str(row["units"]), f"{row['revenue']:,.2f}")
    console.print(top)
    return {**figures, "top_products": products}
