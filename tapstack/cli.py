"""The `tap` command: one entry point for the native stack, the demo and the tools around it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="TAP: log-driven behavioural analytics for online shops.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Sub-commands register below, one line each.

from tapstack.simulator.cli import app as simulate_app  # noqa: E402

app.add_typer(simulate_app, name="simulate", help="Write simulated shop orders to an orders log.")

from tapstack.behaviour_cli import app as model_app  # noqa: E402

app.add_typer(model_app, name="model", help="Train and evaluate the behaviour model.")

from tapstack import faults_cli, pipeline_cli  # noqa: E402
from tapstack.console import friendly_errors  # noqa: E402
from tapstack.native.cli import app as stack_app  # noqa: E402

app.add_typer(stack_app, name="stack", help="Start, inspect and stop the native stack.")
app.add_typer(pipeline_cli.topics_app, name="topics", help="Kafka topics from the settings.")
app.add_typer(pipeline_cli.es_app, name="es", help="Elasticsearch index templates and indices.")
app.add_typer(pipeline_cli.kafka_app, name="kafka", help="Kafka users and ACLs from the contract.")
app.command(help="Tail the orders log into Topic_Purchase (the native Fluent Bit).")(
    pipeline_cli.collect
)
app.command(help="Load Topic_Dashboard into Elasticsearch (the native Logstash).")(
    pipeline_cli.load
)
app.command(help="Print the CEO summary from Elasticsearch.")(pipeline_cli.summary)
app.command(help="Run the fault and bad-input suite and print its table.")(faults_cli.faults)


@app.command()
@friendly_errors
def demo(
    orders: int = typer.Option(300, help="How many simulated orders to stream."),
    rate: float = typer.Option(50.0, help="Orders per second written to the log."),
    seed: int = typer.Option(7, help="Simulator seed."),
    keep_running: bool = typer.Option(False, help="Leave the stack running afterwards."),
) -> None:
    """Run the whole pipeline on real engines and print the CEO summary."""
    from tapstack import demo as demo_module
    from tapstack import preflight

    preflight.check()
    if not demo_module.run(orders=orders, rate=rate, seed=seed, keep_running=keep_running):
        raise typer.Exit(1)


from tapstack.shop.cli import app as shop_app  # noqa: E402

app.add_typer(shop_app, name="shop", help="Place real orders in a running shop (Store API bot).")

from tapstack.kibana.cli import app as kibana_app  # noqa: E402

app.add_typer(kibana_app, name="kibana", help="Build and import the Kibana CEO dashboard.")

from tapstack.report.cli import app as report_app  # noqa: E402

app.add_typer(report_app, name="report", help="The CEO report as one self-contained HTML file.")

from tapstack.bench.cli import app as bench_app  # noqa: E402

app.add_typer(bench_app, name="bench", help="Benchmark throughput and latency on the native stack.")

from tapstack.deadletter.cli import app as deadletter_app  # noqa: E402

app.add_typer(deadletter_app, name="deadletter", help="List, count, show and replay dead letters.")

from tapstack.privacy.cli import app as privacy_app  # noqa: E402

app.add_typer(privacy_app, name="privacy", help="Erase a customer downstream (GDPR requests).")
