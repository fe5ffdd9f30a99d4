"""`tap privacy erase --email ADDRESS [--user-id N]`: the downstream half of a WordPress
erasure request."""

from __future__ import annotations

import os

import typer

from tapstack.console import friendly_errors, say

app = typer.Typer(no_args_is_help=True)


@app.command()
@friendly_errors
def erase(
    email: str | None = typer.Option(
        None, help="The customer's e-mail address, as the shop knew it."
    ),
    user_id: int | None = typer.Option(
        None,
        min=1,
        help="The customer's WordPress user id: also erases their orders without an e-mail "
        "(phone, admin and POS orders).",
    ),
    stack: str = typer.Option(
        "demo", help="Native stack whose customer key to use (TAP_CUSTOMER_KEY wins)."
    ),
) -> None:
    """Anonymise the customer's orders and lines in Elasticsearch, keeping every figure."""
    from tapstack.elastic.client import connect
    from tapstack.native.errors import StackError
    from tapstack.native.stack import Stack
    from tapstack.privacy.erase import erase as erase_customer

    if not email and not user_id:
        raise typer.BadParameter("name the customer with --email, --user-id or both")
    key = os.environ.get("TAP_CUSTOMER_KEY")
    if not key:
        stored = Stack(stack).secrets_dir / "customer_key"
        if not stored.exists():
            raise StackError(
                f"No customer key at {stored}: name the stack with --stack, or set "
                "TAP_CUSTOMER_KEY to the key process_orders uses."
            )
        key = stored.read_text().strip()
    es = connect(role="admin")
    try:
        done = erase_customer(es, key, email=email, user_id=user_id)
    finally:
        es.close()
    say(
        f"Erasure {done.erasure_id}: {done.orders} orders, {done.lines} lines, "
        f"{done.ledger} ledger and {done.statuses} status documents now carry "
        f"{done.placeholder} instead of the customer id, orders without the first name."
    )
