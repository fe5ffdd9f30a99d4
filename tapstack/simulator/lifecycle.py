"""What happens to an order after checkout: payment, cancellation, failure and refunds.

Opt-in (``Simulator(..., lifecycle=Lifecycle())``). Every order the simulator places gets a fate,
drawn from its own random stream (so the orders' contents and times stay those of the seed
without a lifecycle):

* **failed** (``failed_share`` of all orders): a card payment ("stripe") that the bank declined.
  One failed event at checkout, never a paid one. The order keeps its contents; only its
  payment method becomes the card gateway, since neither bank transfer nor cash on delivery
  can fail.
* **bank transfer** ("bacs"): the order waits unpaid at on-hold (nothing is logged). The shop
  cancels ``bacs_cancel_share`` of them unpaid after some days (a cancelled event, no paid event
  ever); the others are paid when the transfer arrives, hours to days later (the paid event then).
* **cash on delivery**: paid at checkout (WooCommerce moves it to processing at once).

A paid order may then get refunds, each on its own later date within ``return_window`` of the
payment (the counting rule: an order counts once paid, a refund counts negative on its own
date, cancelled and failed orders move no money):

* each line comes back with its category's rate (``refund_rates``, below), all its units or,
  for a line of several units, some of them (``partial_units_share``);
* ``whole_order_share`` of paid orders come back whole (every line, every unit); the per-line
  rates are lowered so that each category's line rate stays the configured one;
* the lines sent back are refunded in one refund, or in two (``split_share``: two parcels);
* ``goodwill_share`` of the orders with nothing sent back get an amount-only refund (a goodwill
  gesture, a late delivery): money, no lines.

A refund never gives back more than is left: its units at most those ordered on the line minus
those already refunded, its amount at most the order total minus what was refunded before. The
last refund of a line gives back exactly the rest of the line's total, so a full refund adds up
to the order total to the cent. Refund ids are ``order_id * 100 + n`` (n = 1, 2, ...): unique
across the shop whenever order ids are, also over runs with separate order-id blocks (a real
shop's refund ids come from WooCommerce's own sequence).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

CARD_GATEWAY = "stripe"
CENT = Decimal("0.01")

# Share of the sold lines of each category that come back (at least one unit). A fashion shop's
# returns are driven by fit: dresses (fit, and occasion wear bought for one evening), jeans
# (cut and length differ from brand to brand) and shoes (size) come back most, a third or more;
# jackets, shirts and knitwear are sized too, but more forgiving; t-shirts are cheap and stretch;
# accessories have no size at all (and socks are not taken back once opened), so few return.
# Over this catalogue's mix a fifth of the sold lines, nearly a third of the paid orders and
# about 23 % of the gross revenue come back: within the design's "a fifth to two fifths".
REFUND_RATES: Mapping[str, float] = MappingProxyType(
    {
        "Dresses": 0.38,
        "Jeans": 0.32,
        "Shoes": 0.30,
        "Jackets": 0.22,
        "Shirts": 0.20,
        "Knitwear": 0.18,
        "T-shirts": 0.12,
        "Accessories": 0.07,
    }
)
DEFAULT_REFUND_RATE = 0.15  # a category the table does not know

RETURN_REASONS = (
    ("Wrong size", 0.38),
    ("Changed mind", 0.20),
    ("Not as pictured", 0.10),
    ("Damaged", 0.05),
    ("Ordered two sizes", 0.05),
    ("", 0.22),  # many shops leave the reason empty
)
GOODWILL_REASONS = (
    ("Goodwill gesture", 0.40),
    ("Late delivery", 0.30),
    ("Shipping refund", 0.15),
    ("", 0.15),
)


@dataclass(frozen=True)
class Lifecycle:
    """Rates and delays of the order lifecycle (see the module's docstring)."""

    refund_rates: Mapping[str, float] = field(default_factory=lambda: dict(REFUND_RATES))
    whole_order_share: float = 0.04
    partial_units_share: float = 0.35
    split_share: float = 0.15
    goodwill_share: float = 0.02
    bacs_cancel_share: float = 0.25
    failed_share: float = 0.03
    return_window: timedelta = timedelta(days=30)
    min_refund_delay: timedelta = timedelta(days=2)
    bacs_pay_delay: tuple[timedelta, timedelta] = (timedelta(hours=2), timedelta(days=3))
    bacs_cancel_delay: tuple[timedelta, timedelta] = (timedelta(days=3), timedelta(days=8))

    def __post_init__(self) -> None:
        shares = {
            "whole_order_share": self.whole_order_share,
            "partial_units_share": self.partial_units_share,
            "split_share": self.split_share,
            "goodwill_share": self.goodwill_share,
            "bacs_cancel_share": self.bacs_cancel_share,
            "failed_share": self.failed_share,
            **{f"refund_rates[{k!r}]": v for k, v in self.refund_rates.items()},
        }
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], not {value}")
        lowest = min(self.refund_rates.values(), default=DEFAULT_REFUND_RATE)
        if self.whole_order_share > min(lowest, DEFAULT_REFUND_RATE):
            raise ValueError("whole_order_share cannot exceed the lowest refund rate")
        second = timedelta(seconds=1)
        if not second <= self.min_refund_delay <= self.return_window:
            raise ValueError("need 1 s <= min_refund_delay <= return_window")
        for name in ("bacs_pay_delay", "bacs_cancel_delay"):
            low, high = getattr(self, name)
            if not second <= low <= high:
                raise ValueError(f"{name} must be (low, high) with 1 s <= low <= high")

    def rate(self, category: str) -> float:
        """The configured share of this category's paid lines that come back."""
        return self.refund_rates.get(category, DEFAULT_REFUND_RATE)

    def compressed(self, return_window: timedelta) -> Lifecycle:
        """The same rates with every delay scaled so that the return window is this one: a
        month of returns in the few hours of a demo or a test (at least a second each)."""
        factor = return_window / self.return_window

        def scaled(delay: timedelta) -> timedelta:
            return max(timedelta(seconds=1), delay * factor)

        return replace(
            self,
            return_window=max(timedelta(seconds=1), return_window),
            min_refund_delay=scaled(self.min_refund_delay),
            bacs_pay_delay=(scaled(self.bacs_pay_delay[0]), scaled(self.bacs_pay_delay[1])),
            bacs_cancel_delay=(
                scaled(self.bacs_cancel_delay[0]),
                scaled(self.bacs_cancel_delay[1]),
            ),
        )


def _money(value: float) -> Decimal:
    return Decimal(repr(value))


def _number(value: Decimal) -> float:
    """A Decimal of cents as the float the log writes (59.0, 19.9): exact to the cent."""
    return float(value.quantize(CENT))


def _choice(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*options, strict=True)
    return rng.choices(names, weights=weights, k=1)[0]


def _seconds(rng: random.Random, low: timedelta, high: timedelta) -> int:
    return rng.randint(max(1, int(low.total_seconds())), max(1, int(high.total_seconds())))


def _event(
    template: dict, kind: str, status: str, at: int, tz: ZoneInfo, refund: dict | None = None
) -> dict:
    """A copy of the order's event as another event: the keys keep the schema's order, the
    refund (only on refunds) comes last."""
    event = dict(template)
    event["event_id"] = f"{event['order_id']}-{kind}"
    event["event_type"] = "refunded" if refund is not None else kind
    event["order_status"] = status
    event["timestamp"] = datetime.fromtimestamp(at, tz).isoformat(timespec="seconds")
    if refund is not None:
        event["refund"] = refund
    return event


def plan_order(
    order: dict, placed_at: int, rng: random.Random, lifecycle: Lifecycle, tz: ZoneInfo
) -> list[tuple[int, dict]]:
    """The events of one order's life as (Unix time, event), in time order.

    ``order`` is the order as placed (the simulator's paid event at checkout time); every draw
    comes from ``rng``, the lifecycle's own stream.
    """
    if rng.random() < lifecycle.failed_share:
        failed = dict(order, payment_method=CARD_GATEWAY)
        return [(placed_at, _event(failed, "failed", "failed", placed_at, tz))]
    paid_at = placed_at
    if order["payment_method"] == "bacs":
        if rng.random() < lifecycle.bacs_cancel_share:
            at = placed_at + _seconds(rng, *lifecycle.bacs_cancel_delay)
            return [(at, _event(order, "cancelled", "cancelled", at, tz))]
        paid_at = placed_at + _seconds(rng, *lifecycle.bacs_pay_delay)
    events = [(paid_at, _event(order, "paid", "processing", paid_at, tz))]
    events.extend(_refunds(order, paid_at, rng, lifecycle, tz))
    return events


def _returned_units(order: dict, rng: random.Random, lifecycle: Lifecycle) -> dict[int, int]:
    """Line index -> units sent back."""
    items = order["items"]
    if rng.random() < lifecycle.whole_order_share:
        return {index: item["quantity"] for index, item in enumerate(items)}
    whole = lifecycle.whole_order_share
    returned = {}
    for index, item in enumerate(items):
        # P(line back) = whole + (1 - whole) * p = the category's rate.
        p = (lifecycle.rate(item["category"]) - whole) / (1.0 - whole)
        if rng.random() < p:
            quantity = item["quantity"]
            if quantity > 1 and rng.random() < lifecycle.partial_units_share:
                returned[index] = rng.randint(1, quantity - 1)
            else:
                returned[index] = quantity
    return returned


def _refund_times(paid_at: int, count: int, rng: random.Random, lifecycle: Lifecycle) -> list[int]:
    """Refund dates after the payment, within the return window; most in the second week."""
    low = max(1, int(lifecycle.min_refund_delay.total_seconds()))
    high = max(low, int(lifecycle.return_window.total_seconds()))
    mode = low + (high - low) * 0.25
    return sorted(paid_at + min(high, int(rng.triangular(low, high, mode))) for _ in range(count))


def _refunds(
    order: dict, paid_at: int, rng: random.Random, lifecycle: Lifecycle, tz: ZoneInfo
) -> list[tuple[int, dict]]:
    items = order["items"]
    total = _money(order["total"])
    returned = _returned_units(order, rng, lifecycle)
    if returned:
        lines = list(returned)
        if len(lines) >= 2 and rng.random() < lifecycle.split_share:
            rng.shuffle(lines)
            cut = rng.randint(1, len(lines) - 1)
            parcels = [sorted(lines[:cut]), sorted(lines[cut:])]
        else:
            parcels = [lines]
        reasons = [_choice(rng, RETURN_REASONS) for _ in parcels]
    elif rng.random() < lifecycle.goodwill_share:
        parcels = [[]]
        reasons = [_choice(rng, GOODWILL_REASONS)]
    else:
        return []
    times = _refund_times(paid_at, len(parcels), rng, lifecycle)

    refunded_units = [0] * len(items)
    refunded_amounts = [Decimal(0)] * len(items)
    refunded = Decimal(0)
    events = []
    for number, (parcel, reason, at) in enumerate(zip(parcels, reasons, times, strict=True), 1):
        refund_items = []
        amount = Decimal(0)
        for index in parcel:
            item = items[index]
            units = returned[index]
            line_total = _money(item["total"])
            if refunded_units[index] + units >= item["quantity"]:
                units = item["quantity"] - refunded_units[index]
                line_amount = line_total - refunded_amounts[index]  # the rest, to the cent
            else:
                share = line_total * units / item["quantity"]
                line_amount = share.quantize(CENT, rounding=ROUND_HALF_UP)
            refunded_units[index] += units
            refunded_amounts[index] += line_amount
            amount += line_amount
            refund_items.append(
                {
                    "product_id": item["product_id"],
                    "product_name": item["product_name"],
                    "sku": item["sku"],
                    "category": item["category"],
                    "quantity": units,
                    "amount": _number(line_amount),
                }
            )
        if not parcel:  # amount only: a fixed gesture or a share of the order, at most half
            gesture = _choice(rng, (("5", 0.3), ("10", 0.3), ("share", 0.4)))
            if gesture == "share":
                amount = (total * Decimal(repr(rng.uniform(0.1, 0.25)))).quantize(CENT)
            else:
                amount = Decimal(gesture)
            amount = max(CENT, min(amount, (total / 2).quantize(CENT)))
        amount = min(amount, total - refunded)
        refunded += amount
        refund = {
            "refund_id": order["order_id"] * 100 + number,
            "amount": _number(amount),
            "reason": reason,
            "items": refund_items,
        }
        status = "refunded" if refunded >= total else "completed"
        kind = f"refund-{refund['refund_id']}"
        events.append((at, _event(order, kind, status, at, tz, refund=refund)))
    return events


__all__ = [
    "CARD_GATEWAY",
    "DEFAULT_REFUND_RATE",
    "REFUND_RATES",
    "Lifecycle",
    "plan_order",
]
