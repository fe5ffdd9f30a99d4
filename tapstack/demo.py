"""The demo: the whole flow on real engines, from simulated orders to the CEO summary.

Starts a fresh native stack, streams simulated orders and what follows them (refunds,
cancellations, failed payments) through every leg, waits until each event is searchable, prints
the CEO summary and checks its gross, refunds and net against the log it wrote.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tapstack import contracts, model_registry
from tapstack.console import console, say
from tapstack.elastic.client import connect
from tapstack.native.errors import StackError
from tapstack.native.stack import Stack
from tapstack.report import queries
from tapstack.report.summary import print_summary
from tapstack.simulator import (
    KnownTruth,
    Lifecycle,
    SimulatedOrder,
    Simulator,
    append_orders,
    known_truth_of_log,
)

CENTS = Decimal("0.01")


# The shop's month of returns and bank transfers, played in the demo's history of a few hours.
DEMO_RETURN_WINDOW = timedelta(hours=2)


def paced(orders: Iterable[SimulatedOrder], rate: float) -> Iterator[SimulatedOrder]:
    """Yield events at most `rate` per second (0: as fast as possible)."""
    start = time.monotonic()
    for number, order in enumerate(orders):
        if rate > 0:
            delay = start + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
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

        truth = stack.run_dir / "shop" / "ground_truth.csv"
        lifecycle = Lifecycle().compressed(DEMO_RETURN_WINDOW)
        simulated = Simulator(seed=seed, lifecycle=lifecycle).backfill(orders)
        say(
            f"The shop simulator writes its last {orders} orders (a history ending now) to "
            f"{stack.log_path} at {rate:g}/s, with what followed them: payments, refunds, "
            f"cancellations and failed payments, {len(simulated)} events in all."
        )
        with _progress() as progress:
            task = progress.add_task("events written", total=len(simulated))

            def counted():
                for order in paced(simulated, rate):
                    progress.advance(task)
                    yield order

            append_orders(stack.log_path, counted(), truth_path=truth)

        es = connect(role="viewer")  # what the CEO may see, nothing more
        say("Waiting until every event is searchable in Elasticsearch...")
        with _progress() as progress:
            task = progress.add_task("events indexed", total=len(simulated))
            deadline = time.monotonic() + 240
            while True:
                count = queries.event_count(es)
                progress.update(task, completed=count)
                if count >= len(simulated):
                    break
                if time.monotonic() > deadline:
                    raise StackError(
                        f"only {count} of {len(simulated)} events reached Elasticsearch in "
                        f"240 s; see {stack.run_dir / 'logs'}"
                    )
                time.sleep(0.5)

        _measure_drift(stack, es)
        figures = print_summary(es, console)
        from tapstack.report.html import build_report

        report = build_report(es, contracts.ROOT / "reports" / "ceo.html")
        say(f"The CEO dashboard's panels as an HTML report: {report}")
        return _check_against_the_log(figures, known_truth_of_log(stack.log_path))
    finally:
        if keep_running:
            say("The stack keeps running: `tap stack status`, `tap summary`, `tap stack stop`.")
        else:
            say("Stopping the stack (use --keep-running to explore it)...")
            stack.stop(say=lambda _: None)


def _check_against_the_log(figures: dict, truth: KnownTruth) -> bool:
    """The summary's paid orders, gross, refunds and net against the same figures added up
    from the orders log alone (the simulator's known truth, in exact decimals)."""
    currency = contracts.settings()["shop"]["currency"]
    seen = {
        "paid orders": figures["orders"],
        "gross": _cents(figures["gross"]),
        "refunds": _cents(-figures["refunds"]),
        "net": _cents(figures["revenue"]),
    }
    logged = {
        "paid orders": truth.paid,
        "gross": truth.gross.quantize(CENTS),
        "refunds": truth.refunds.quantize(CENTS),
        "net": truth.net.quantize(CENTS),
    }
    if seen == logged:
        console.print(
            f"[bold green]Checked:[/] Elasticsearch holds {truth.paid} paid orders, "
            f"{logged['gross']:,} {currency} gross, {logged['refunds']:,} {currency} refunded "
            f"({truth.refunded} refunds) and {logged['net']:,} net: exactly what the orders "
            f"log adds up to ({truth.cancelled} cancelled and {truth.failed} failed orders "
            "moved no money)."
        )
        return True
    wrong = ", ".join(f"{k} {seen[k]} (the log: {logged[k]})" for k in seen if seen[k] != logged[k])
    console.print(f"[bold red]Mismatch:[/] Elasticsearch shows {wrong}.")
    return False


def _cents(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(CENTS)
