"""`tap kibana ...`: build the CEO dashboard's saved objects and import them into Kibana."""

from __future__ import annotations

from pathlib import Path

import typer

from tapstack.console import friendly_errors, say

app = typer.Typer(no_args_is_help=True)


@app.command("build")
@friendly_errors
def build(
    out: Path = typer.Option(None, help="Where to write the ndjson (default: the committed file)."),
) -> None:
    """Generate kibana/saved_objects/tap-ceo-dashboard.ndjson from tapstack/report/panels.py."""
    from tapstack.kibana import saved_objects

    path = saved_objects.write(out or saved_objects.NDJSON_FILE)
    say(f"Wrote {len(saved_objects.load(path))} saved objects to {path}")


@app.command("import")
@friendly_errors
def import_(
    url: str = typer.Option(
        None, help="Kibana base URL (default: $TAP_KIBANA_URL or http://localhost:<ports.kibana>)."
    ),
    file: Path = typer.Option(None, help="The ndjson to import (default: the committed file)."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for Kibana to be available."),
    space_settings: bool = typer.Option(
        True,
        help="Turn on courier:ignoreFilterIfFieldNotInIndex in the space (the dashboard mixes "
        "two data views).",
    ),
) -> None:
    """Wait for Kibana, then import the CEO dashboard (overwrite: re-running is safe)."""
    from tapstack.kibana import importer
    from tapstack.kibana.saved_objects import NDJSON_FILE, dashboard_id

    base = importer.kibana_url(url)
    say(f"Waiting for Kibana at {base} ...")
    result = importer.import_dashboard(
        url=base, path=file or NDJSON_FILE, timeout=timeout, space_settings=space_settings
    )
    say(
        f"Imported {result.success_count} saved objects; the CEO view is at "
        f"{base}/app/dashboards#/view/{dashboard_id()}"
    )
