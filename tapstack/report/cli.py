"""`tap report ...`: the CEO report as one HTML file (the native stand-in for Kibana)."""

from __future__ import annotations

from pathlib import Path

import typer

from tapstack.console import friendly_errors, say

app = typer.Typer(no_args_is_help=True)


@app.command("html")
@friendly_errors
def html_report(
    out: Path = typer.Option(Path("reports/ceo.html"), help="Where to write the HTML file."),
    behaviour: list[str] = typer.Option(
        None, help="Only these purchase behaviours (the dashboard's Behaviour control)."
    ),
    category: list[str] = typer.Option(
        None, help="Only orders with these categories (the dashboard's Category control)."
    ),
) -> None:
    """Build the CEO dashboard's panels from Elasticsearch into one self-contained HTML file."""
    from tapstack.elastic.client import connect
    from tapstack.report.html import build_report

    selections = {"purchase_behaviour": behaviour or [], "categories": category or []}
    path = build_report(connect(role="viewer"), out, selections=selections)
    say(f"CEO report written to {path.resolve()}")
