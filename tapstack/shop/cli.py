"""`tap shop run`: shoppers that place real orders in the compose stack's WooCommerce shop.

    tap shop run --orders 20 --speed 60 --seed 3
    tap shop run --orders 5 --persona reasoned --payment bacs --base-url http://shop.local:8000

Speed divides every wait: at 60 a reasoned twenty-minute visit takes twenty seconds (and the
plugin logs a twenty-second session); 0 means no waits at all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import requests
import typer
from rich.console import Console
from rich.table import Table

from tapstack.shop.bot import ShopError, ShopperBot, default_base_url

app = typer.Typer(
    help="Place real orders in a running shop through the WooCommerce Store API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


class PersonaChoice(StrEnum):
    mixed = "mixed"
    impulsive = "impulsive"
    reasoned = "reasoned"


class PaymentChoice(StrEnum):
    cod = "cod"
    bacs = "bacs"


@app.command()
def run(
    orders: Annotated[int, typer.Option(min=1, help="How many orders to place.")] = 10,
    base_url: Annotated[
        str | None,
        typer.Option(help="The shop's address [default: http://localhost:<ports.wordpress>]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for personas, pages, carts, addresses.")] = 1,
    speed: Annotated[
        float, typer.Option(min=0.0, help="Divide every wait by this (0 = no waits).")
    ] = 1.0,
    persona: Annotated[
        PersonaChoice, typer.Option(help="Who shops: mixed, impulsive or reasoned.")
    ] = PersonaChoice.mixed,
    impulsive_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of impulsive shoppers when mixed.")
    ] = 0.5,
    payment: Annotated[
        PaymentChoice, typer.Option(help="Offline gateway: cod (processing) or bacs (on-hold).")
    ] = PaymentChoice.cod,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds per HTTP request.")] = 20.0,
    attempts: Annotated[
        int, typer.Option(min=1, help="Tries per request on connection errors (backing off).")
    ] = 5,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Browse the shop like real visitors and check out through the Store API."""
    console = Console()
    url = (base_url or default_base_url()).rstrip("/")
    bot = ShopperBot(
        base_url=url,
        seed=seed,
        speed=speed,
        persona=persona.value,
        payment_method=payment.value,
        impulsive_share=impulsive_share,
        timeout=timeout,
        attempts=attempts,
    )
    try:
        report = bot.run(orders, progress=progress, console=console)
    except ShopError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except requests.RequestException as exc:
        console.print(f"[bold red]error:[/] the shop at {url} did not answer: {exc}")
        raise typer.Exit(1) from None

    table = Table(title=f"Orders placed at {url}")
    numeric = ("pages", "lines", "seconds")
    for column in ("order", "status", "persona", "pages", "lines", "payment", "seconds"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for placed in report.placed:
        table.add_row(
            str(placed.order_id),
            placed.status,
            placed.persona,
            str(placed.pages),
            str(placed.lines),
            placed.payment_method,
            f"{placed.seconds:.1f}",
        )
    console.print(table)
    for failure in report.failures:
        console.print(f"[red]failed:[/] {failure}")
    console.print(f"{len(report.placed)} of {orders} orders placed.")
    if not report.ok:
        raise typer.Exit(1)
