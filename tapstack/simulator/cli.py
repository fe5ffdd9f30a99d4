"""`tap simulate`: write simulated paid orders to an orders log, as the shop's plugin would.

    tap simulate orders .run/orders.log --count 1000 --seed 7 --rate 20 --truth .run/truth.csv

The orders are the shop's recent past: a history that ends now (or at ``--end``), oldest first,
with the simulator's time-of-day profile and bursts. With ``--rate`` above zero they are paced in
real time and, unless ``--simulated-clock`` is given, stamped with the wall clock when written:
live traffic. Either way no order lies in the future.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tapstack.contracts import ROOT
from tapstack.simulator.orders import (
    SimulatedOrder,
    Simulator,
    append_orders,
    generate_training_data,
    write_training_csv,
)

__all__ = ["app", "generate_training_data", "paced", "write_training_csv"]

app = typer.Typer(
    help="Write simulated Garderobe orders to an orders log.",
    pretty_exceptions_show_locals=False,
)


def paced(
    orders: Iterable[SimulatedOrder], rate: float, wall_clock: bool, tz=None
) -> Iterator[SimulatedOrder]:
    """Yield orders no faster than ``rate`` per second (0: unpaced), optionally re-stamped now."""
    interval = 1.0 / rate if rate > 0 else 0.0
    due = time.monotonic()
    for order in orders:
        if interval:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            due = max(due + interval, time.monotonic() - 1.0)
        if wall_clock:
            # Reassigning keeps the key in its place, so the line keeps the schema's order.
            order.event["timestamp"] = datetime.now(tz).isoformat(timespec="seconds")
        yield order


@app.command("orders")
def orders_command(
    log: Annotated[Path, typer.Argument(help="Orders log to append to (created if missing).")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many orders.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed: same seed, same orders.")] = 1,
    rate: Annotated[
        float, typer.Option(min=0.0, help="Orders per second; 0 = as fast as possible.")
    ] = 0.0,
    truth: Annotated[
        Path | None, typer.Option(help="CSV side file for the ground truth (order_id,behaviour).")
    ] = None,
    order_id_start: Annotated[int, typer.Option(min=1, help="First order id.")] = 1,
    end: Annotated[
        datetime | None,
        typer.Option(help="End of the simulated history (shop time zone); default now."),
    ] = None,
    simulated_clock: Annotated[
        bool,
        typer.Option(
            "--simulated-clock/--wall-clock",
            help="Stamp with the simulator's clock, or with the time of writing. "
            "Default: wall clock when --rate is set, simulated otherwise.",
            show_default=False,
        ),
    ] = None,  # type: ignore[assignment]
) -> None:
    """Append COUNT simulated paid orders to LOG."""
    simulator = Simulator(seed=seed, order_id_start=order_id_start)
    now = datetime.now(simulator.tz)
    end = end.replace(tzinfo=simulator.tz) if end and end.tzinfo is None else end
    if end is not None and end > now:
        raise typer.BadParameter("the history cannot end in the future", param_hint="--end")
    history = simulator.backfill(count, end=end or now)
    wall_clock = (rate > 0) if simulated_clock is None else not simulated_clock
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]orders"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task("orders", total=count)

        def counted() -> Iterator[SimulatedOrder]:
            for order in paced(history, rate, wall_clock, simulator.tz):
                yield order
                progress.advance(task)

        written = append_orders(log, counted(), truth_path=truth)
    ids = f"{order_id_start}..{order_id_start + written - 1}"
    where = f"{log}" + (f", truth in {truth}" if truth else "")
    console.print(f"wrote {written} orders (ids {ids}) to {where}")


@app.command("training-data")
def training_data_command(
    out: Annotated[Path, typer.Option(help="CSV to write (replaced).")] = (
        ROOT / "training_data" / "training_data.csv"
    ),
    rows: Annotated[int, typer.Option(min=2, help="How many rows.")] = 4000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated orders.")] = 2026,
) -> None:
    """Write the behaviour model's training CSV (duration_session,pages_viewed,behaviour)."""
    written = write_training_csv(out, generate_training_data(rows=rows, seed=seed))
    Console(stderr=True).print(f"wrote {written} training rows to {out} (seed {seed})")
