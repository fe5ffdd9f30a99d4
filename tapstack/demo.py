"""The demo: the whole flow on real engines, from simulated orders to the CEO summary.

Starts a fresh native stack, streams simulated orders through every leg, waits until each order
is searchable, prints the CEO summary and checks it against the log it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tapstack import contracts, model_registry
from tapstack.console import console, say
from tapstack.elastic.client import connect
from tapstack.native.errors import StackError
from tapstack.native.stack import Stack
from tapstack.report import queries
from tapstack.report.summary import print_summary
from tapstack.simulator import SimulatedOrder, Simulator, append_orders


@dataclass
class Written:
    orders: int = 0
    revenue: float = 0.0


def paced(
    orders: Iterable[SimulatedOrder], rate: float, tally: Written
) -> Iterator[SimulatedOrder]:
    """Yield orders at most `rate` per second (0: as fast as possible), adding up what passes."""
    start = time.monotonic()
    for number, order in enumerate(orders):
        if rate > 0:
            delay = start + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        tally.orders += 1
        tally.revenue += order.event["total"]
        yield order


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def ensure_model(stack: Stack) -> None:
    if (stack.model_dir / "tap_model.json").exists():
        say(f"Behaviour model found in {stack.model_dir}.")
        return
    say("Training the behaviour model from training_data/training_data.csv (Spark MLlib)...")
    from tap_spark.model import train

    metadata = train(contracts.ROOT / "training_data" / "training_data.csv", stack.model_dir)
    say(f"Model {metadata.get('version')} trained on {metadata.get('training_rows')} rows.")


def _measure_drift(stack: Stack, es, timeout: float = 120) -> None:
    """Drift of the orders just indexed, so that the summary's drift panel measures them."""
    say("Measuring how far these orders are from the model's training data (tap model drift)...")
    started = datetime.now(UTC).isoformat()
    stack.measure_drift_now()
    features = len(model_registry.metadata(stack.model_dir)["drift_reference"])
    deadline = time.monotonic() + timeout
    index = contracts.index("drift")
    query = {"bool": {"filter": [{"range": {"measured_at": {"gte": started}}}]}}
    while time.monotonic() < deadline:
        # The viewer may search but not refresh: the index's own refresh shows the documents.
        found = es.count(index=index, query=query, ignore_unavailable=True)["count"]
        if found >= features:
            return
        time.sleep(0.5)
    say(f"No drift measured within {timeout:g} s: see {stack.run_dir / 'logs' / 'model_drift.log'}")


def run(orders: int = 300, rate: float = 50.0, seed: int = 7, keep_running: bool = False) -> bool:
    stack = Stack("demo")
    say("Preparing a fresh native stack in .run/demo ...")
    stack.stop(say=lambda _: None, purge=True)
    try:
        stack.start_engines(say=say)
        ensure_model(stack)
        stack.start_pipeline(say=say)
        say("Waiting for the tailer, both Spark jobs and the loader to serve...")
        stack.wait_pipeline_ready()

        tally = Written()
        truth = stack.run_dir / "shop" / "ground_truth.csv"
        say(
            f"The shop simulator writes its last {orders} orders (a history ending now) to "
            f"{stack.log_path} at {rate:g}/s."
        )
        simulated = Simulator(seed=seed).backfill(orders)
        with _progress() as progress:
            task = progress.add_task("orders written", total=orders)

            def counted():
                for order in paced(simulated, rate, tally):
                    progress.advance(task)
                    yield order

            append_orders(stack.log_path, counted(), truth_path=truth)

        es = connect(role="viewer")  # what the CEO may see, nothing more
        say("Waiting until every order is searchable in Elasticsearch...")
        with _progress() as progress:
            task = progress.add_task("orders indexed", total=orders)
            deadline = time.monotonic() + 240
            while True:
                count = queries.order_count(es)
                progress.update(task, completed=count)
                if count >= orders:
                    break
                if time.monotonic() > deadline:
                    raise StackError(
                        f"only {count} of {orders} orders reached Elasticsearch in 240 s; "
                        f"see {stack.run_dir / 'logs'}"
                    )
                time.sleep(0.5)

        _measure_drift(stack, es)
        figures = print_summary(es, console)
        from tapstack.report.html import build_report

        report = build_report(es, contracts.ROOT / "reports" / "ceo.html")
        say(f"The CEO dashboard's panels as an HTML report: {report}")
        ok = figures["orders"] == tally.orders and round(figures["revenue"], 2) == round(
            tally.revenue, 2
        )
        currency = contracts.settings()["shop"]["currency"]
        if ok:
            console.print(
                f"[bold green]Checked:[/] Elasticsearch holds {figures['orders']} orders and "
                f"{figures['revenue']:,.2f} {currency} of revenue, exactly the sum of `total` over "
                f"the {tally.orders} lines the simulator wrote."
            )
        else:
            console.print(
                f"[bold red]Mismatch:[/] the log holds {tally.orders} orders for "
                f"{tally.revenue:,.2f} {currency}; Elasticsearch shows {figures['orders']} for "
                f"{figures['revenue']:,.2f}."
            )
        return ok
    finally:
        if keep_running:
            say("The stack keeps running: `tap stack status`, `tap summary`, `tap stack stop`.")
        else:
            say("Stopping the stack (use --keep-running to explore it)...")
            stack.stop(say=lambda _: None)
