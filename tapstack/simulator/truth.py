"""The known truth of an orders log: what the shop earned, computed from the lines alone.

``known_truth(lines)`` reads log lines (text, bytes, or event dicts, which are formatted first)
and adds up money with ``Decimal`` (the JSON numbers are parsed as decimals, never as floats), by
the counting rule of contract v2, WooCommerce Analytics' own:

* a **paid** event counts its order total as gross revenue (a version 1 line is a paid event);
* a **refunded** event counts its ``refund.amount`` as refunds, negative on the refund's date;
* **cancelled** and **failed** events move no money (they are only counted).

Net = gross - refunds, in total, by day (the shop-local date of each event's timestamp, as the
timestamp's own offset gives it), by product_id and by category. For products and categories,
gross is the paid lines' totals and refunds the refunded lines' amounts; what no line carries
(an order total beyond its lines, such as shipping; the amount-only part of a refund, such as a
goodwill gesture) is ``unattributed``, so that the products' or the categories' figures plus
``unattributed`` add up to the totals.

An event counts once: a line whose event_id was seen before (a rewrite, a replay) is counted in
``duplicates`` and otherwise skipped, as the ledger's idempotent ids skip it. A line that is not
a JSON object is counted in ``skipped``. The lines are not validated against the contract.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from tapstack.simulator.orders import format_line

ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass
class Money:
    """Gross revenue and refunds of some slice of the log; net is their difference."""

    gross: Decimal = ZERO
    refunds: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunds

    def __add__(self, other: Money) -> Money:
        return Money(self.gross + other.gross, self.refunds + other.refunds)

    def as_dict(self) -> dict[str, str]:
        return {
            "gross": str(self.gross.quantize(CENT)),
            "refunds": str(self.refunds.quantize(CENT)),
            "net": str(self.net.quantize(CENT)),
        }


@dataclass
class KnownTruth:
    """The figures of an orders log (see the module's docstring)."""

    total: Money = field(default_factory=Money)
    by_day: dict[str, Money] = field(default_factory=dict)
    by_product: dict[int, Money] = field(default_factory=dict)
    by_category: dict[str, Money] = field(default_factory=dict)
    unattributed: Money = field(default_factory=Money)
    paid: int = 0
    refunded: int = 0  # refund events
    cancelled: int = 0
    failed: int = 0
    refunded_orders: int = 0  # distinct orders with at least one refund
    orders_by_status: dict[str, int] = field(default_factory=dict)  # after each order's last event
    duplicates: int = 0
    skipped: int = 0

    @property
    def gross(self) -> Decimal:
        return self.total.gross

    @property
    def refunds(self) -> Decimal:
        return self.total.refunds

    @property
    def net(self) -> Decimal:
        return self.total.net

    @property
    def events(self) -> int:
        return self.paid + self.refunded + self.cancelled + self.failed

    def as_dict(self) -> dict:
        """JSON-ready: money as strings of cents ("1234.50"), exact."""
        return {
            "total": self.total.as_dict(),
            "unattributed": self.unattributed.as_dict(),
            "counts": {
                "paid": self.paid,
                "refunded": self.refunded,
                "cancelled": self.cancelled,
                "failed": self.failed,
                "refunded_orders": self.refunded_orders,
                "duplicates": self.duplicates,
                "skipped": self.skipped,
            },
            "orders_by_status": dict(sorted(self.orders_by_status.items())),
            "by_day": {k: v.as_dict() for k, v in sorted(self.by_day.items())},
            "by_product": {str(k): v.as_dict() for k, v in sorted(self.by_product.items())},
            "by_category": {k: v.as_dict() for k, v in sorted(self.by_category.items())},
        }


def _decimal(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"not a number: {value!r}")
    return Decimal(value)


def _slot(table: dict, key) -> Money:
    money = table.get(key)
    if money is None:
        money = table[key] = Money()
    return money


def _text(line: str | bytes | Mapping) -> str:
    if isinstance(line, Mapping):
        return format_line(dict(line))
    if isinstance(line, bytes | bytearray):
        return line.decode("utf-8")
    return line


@dataclass(frozen=True)
class _Event:
    kind: str
    event_id: str
    order_id: int
    moment: datetime
    status: str
    amount: Decimal  # the order total of a paid event, the refund amount of a refund
    lines: tuple[tuple[int, str, Decimal], ...]  # (product_id, category, money) of those lines


def _read(text: str) -> _Event:
    """One line as the figures it carries; ValueError (or KeyError, TypeError) if it has none."""
    event = json.loads(text, parse_float=Decimal)
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    order_id = event["order_id"]
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        raise ValueError("order_id is not an integer")
    kind = event.get("event_type", "paid")  # a version 1 line is a paid event
    amount, lines = ZERO, ()
    if kind == "paid":
        amount = _decimal(event["total"])
        lines = tuple(
            (item["product_id"], item["category"], _decimal(item["total"]))
            for item in event["items"]
        )
    elif kind == "refunded":
        amount = _decimal(event["refund"]["amount"])
        lines = tuple(
            (item["product_id"], item["category"], _decimal(item["amount"]))
            for item in event["refund"]["items"]
        )
    elif kind not in ("cancelled", "failed"):
        raise ValueError(f"unknown event_type {kind!r}")
    return _Event(
        kind=kind,
        event_id=event.get("event_id", f"{order_id}-paid"),
        order_id=order_id,
        moment=datetime.fromisoformat(event["timestamp"]),
        status=event.get("order_status", "processing"),
        amount=amount,
        lines=lines,
    )


def known_truth(lines: Iterable[str | bytes | Mapping]) -> KnownTruth:
    """The known truth of these log lines, in the order they were written."""
    truth = KnownTruth()
    seen: set[str] = set()
    refunded_orders: set[int] = set()
    last: dict[int, tuple[datetime, int, str]] = {}
    for number, line in enumerate(lines):
        try:
            text = _text(line).strip()
            if not text:
                continue
            event = _read(text)
        except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
            truth.skipped += 1
            continue
        if event.event_id in seen:
            truth.duplicates += 1
            continue
        seen.add(event.event_id)
        previous = last.get(event.order_id)
        if previous is None or (event.moment, number) >= previous[:2]:
            last[event.order_id] = (event.moment, number, event.status)

        if event.kind in ("cancelled", "failed"):
            setattr(truth, event.kind, getattr(truth, event.kind) + 1)
            continue
        day = _slot(truth.by_day, event.moment.date().isoformat())
        lines_money = sum((money for _, _, money in event.lines), ZERO)
        if event.kind == "paid":
            truth.paid += 1
            truth.total.gross += event.amount
            day.gross += event.amount
            truth.unattributed.gross += event.amount - lines_money
            for product_id, category, money in event.lines:
                _slot(truth.by_product, product_id).gross += money
                _slot(truth.by_category, category).gross += money
        else:
            truth.refunded += 1
            refunded_orders.add(event.order_id)
            truth.total.refunds += event.amount
            day.refunds += event.amount
            truth.unattributed.refunds += event.amount - lines_money
            for product_id, category, money in event.lines:
                _slot(truth.by_product, product_id).refunds += money
                _slot(truth.by_category, category).refunds += money
    truth.refunded_orders = len(refunded_orders)
    for _, _, status in last.values():
        truth.orders_by_status[status] = truth.orders_by_status.get(status, 0) + 1
    return truth


def known_truth_of_log(path: str | os.PathLike) -> KnownTruth:
    """The known truth of an orders log file."""
    with Path(path).open("rb") as log:
        return known_truth(log)


__all__ = ["KnownTruth", "Money", "known_truth", "known_truth_of_log"]
