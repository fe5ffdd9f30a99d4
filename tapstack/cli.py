"""The `tap` command: one entry point for the native stack, the demo and the tools around it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="TAP: log-driven behavioural analytics for online shops.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Sub-commands register below, one line each.
