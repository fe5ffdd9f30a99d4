"""`tap stack ...`: start, inspect and stop the native stack."""

from __future__ import annotations

import typer
from rich.table import Table

from tapstack.console import console, friendly_errors, say
from tapstack.native.stack import Stack

app = typer.Typer(no_args_is_help=True)

NameOption = typer.Option("demo", "--name", help="Run folder under .run/ (one stack per name).")


@app.command()
@friendly_errors
def start(
    name: str = NameOption,
    pipeline: bool = typer.Option(True, help="Also start the tailer, Spark jobs and loader."),
) -> None:
    """Fetch the engines if needed, start Kafka and Elasticsearch, then the pipeline."""
    from tapstack import credentials, preflight

    preflight.check()
    stack = Stack(name)
    stack.start_engines(say=say)
    if pipeline:
        stack.start_pipeline(say=say)
        say("Waiting for the Spark jobs to serve...")
        stack.wait_pipeline_ready()
    say(f"Stack '{name}' is running; the orders log is {stack.log_path}")
    if stack.secrets_dir != credentials.secrets_dir():
        # Commands run by hand (tap summary, tap deadletter, ...) log in with these secrets.
        say(f"For commands against this stack: export TAP_SECRETS_DIR={stack.secrets_dir}")


@app.command()
@friendly_errors
def status(name: str = NameOption) -> None:
    """What runs, with its pid and resident memory."""
    table = Table(title=f"TAP native stack '{name}'")
    for column in ("process", "state", "pid", "RSS MiB"):
        table.add_column(column)
    rows = Stack(name).status()
    for row in rows:
        state = "[green]running[/]" if row["running"] else "[dim]stopped[/]"
        if row["running"] and row["ready"] is False:
            state = "[yellow]starting[/]"
        table.add_row(row["process"], state, str(row["pid"] or "-"), f"{row['rss_mib']:.0f}")
    console.print(table)
    total = sum(row["rss_mib"] for row in rows)
    console.print(f"Total resident memory: {total:,.0f} MiB")


@app.command()
@friendly_errors
def stop(
    name: str = NameOption,
    purge: bool = typer.Option(False, help="Also delete the run folder (data, logs, offsets)."),
) -> None:
    """Stop every process of the stack (pipeline first, then the engines)."""
    Stack(name).stop(say=say, purge=purge)
    say("Nothing of the stack is running.")


@app.command(hidden=True)
def supervise(name: str = NameOption) -> None:
    """Restart crashed pipeline processes (started by `stack start`)."""
    from tapstack.console import setup_logging
    from tapstack.pipeline_cli import stop_flag

    setup_logging()
    Stack(name).supervise(should_stop=stop_flag())
