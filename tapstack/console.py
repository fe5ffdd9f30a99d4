"""Shared terminal output: one console, and clear messages instead of bare stack traces."""

from __future__ import annotations

import functools
import logging

import typer
from rich.console import Console

from tapstack.native.errors import StackError

console = Console()


def say(message: str) -> None:
    console.print(f"[bold cyan]>[/] {message}")


def friendly_errors(command):
    """Turn the errors a user can act on into one red line and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except StackError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
