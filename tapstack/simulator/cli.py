"""`tap simulate`: write simulated orders to an orders log, as the shop's plugin would.

    tap simulate orders .run/orders.log --count 1000 --seed 7 --rate 20 --truth .run/truth.csv
    tap simulate orders .run/orders.log --count 1000 --lifecycle --return-window-days 1
    tap simulate truth .run/orders.log      # gross, refunds and net of a log, as JSON

The orders are the shop's recent past: a history that ends now (or at ``--end``), oldest first,
with the simulator's time-of-day profile and bursts. With ``--rate`` above zero they are paced in
real time and, unless ``--simulated-clock`` is given, stamped with the wall clock when written:
live traffic. Either way no order lies in the future.

By default every order is one paid event. ``--lifecycle`` adds the rest of an order's life
(lifecycle.py): failed card payments, bank transfers paid or cancelled days later, refunds within
the return window; the events are written in time order, and those that would lie after the end
of the history (a return still on its way) are not written. ``--return-window-days`` scales every
lifecycle delay, so that a short history still holds refunds. With the wall clock every event is
stamped when written, in the same order.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tapstack.contracts import ROOT
from tapstack.simulator.lifecycle import Lifecycle
from tapstack.simulator.orders import (
    SimulatedOrder,
    Simulator,
    append_orders,
    generate_training_data,
    write_training_csv,
)
from tapstack.simulator.truth import known_truth_of_log

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
    lifecycle: Annotated[
        bool,
        typer.Option(
            "--lifecycle/--paid-only",
            help="Also write cancellations, failures, late bank transfers and refunds.",
        ),
    ] = False,
    return_window_days: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Return window in days (with --lifecycle); every lifecycle delay scales with it.",
        ),
    ] = 30.0,
) -> None:
    """Append COUNT simulated orders (their events, with --lifecycle) to LOG."""
    life = None
    if lifecycle:
        life = Lifecycle()
        window = timedelta(days=return_window_days)
        if window != life.return_window:
            life = life.compressed(window)
    simulator = Simulator(seed=seed, order_id_start=order_id_start, lifecycle=life)
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
    kinds = Counter(order.event_type for order in history)
    with progress:
        task = progress.add_task("orders", total=len(history))

        def counted() -> Iterator[SimulatedOrder]:
            for order in paced(history, rate, wall_clock, simulator.tz):
                yield order
                progress.advance(task)

        written = append_orders(log, counted(), truth_path=truth)
    ids = f"{order_id_start}..{order_id_start + count - 1}"
    where = f"{log}" + (f", truth in {truth}" if truth else "")
    if life is None:
        console.print(f"wrote {written} orders (ids {ids}) to {where}")
    else:
        detail = ", ".join(f"{kinds[k]} {k}" for k in ("paid", "refunded", "cancelled", "failed"))
        console.print(f"wrote {written} events ({detail}) of orders {ids} to {where}")


@app.command("truth")
def truth_command(
    log: Annotated[Path, typer.Argument(help="Orders log to read.", exists=True, dir_okay=False)],
) -> None:
    """Print the known truth of LOG as JSON: gross, refunds and net in total, by day, product
    and category, and the events counted."""
    typer.echo(json.dumps(known_truth_of_log(log).as_dict(), ensure_ascii=False, indent=2))


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
