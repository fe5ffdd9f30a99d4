"""Simulated orders of the Garderobe shop, written exactly as the TAP plugin writes them.

``Simulator(seed).orders(n)`` yields ``SimulatedOrder`` objects: ``.event`` is one log line as a
dict (an event of contract v2, valid against contracts/order.schema.json, keys in the order of the
schema's "properties") and ``.behaviour`` the ground truth of the buyer population ("Impulsive" or
"Reasoned"). ``format_line`` turns an event into the exact bytes the PHP plugin appends to the
orders log.

By default every order is paid at checkout: one paid event per order (order_status
"processing"). With ``lifecycle=Lifecycle()`` (lifecycle.py) orders are also cancelled unpaid,
fail, get paid days later by bank transfer and get refunded, each event on its own date, all
emitted in time order; truth.py computes the money of such a log from its lines.

What makes the traffic look like a shop's:

* a fixed catalogue (catalogue.py) and a fixed pool of registered customers who come back, some
  far more often than others, plus guest checkouts (customer id 0);
* each registered customer leans to one behaviour, but not always;
* order times follow a time-of-day profile in the shop's time zone (quiet nights, a lunch bump,
  an evening peak), with one or two short bursts a day (newsletter, flash sale);
* cash on delivery or bank transfer as payment.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
import os
import random
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from faker import Faker

from tapstack.contracts import enrichment, settings
from tapstack.simulator.catalogue import CATALOGUE, Product
from tapstack.simulator.lifecycle import Lifecycle, plan_order
from tapstack.simulator.populations import IMPULSIVE, POPULATIONS, REASONED, Population

SCHEMA_VERSION = 2
CURRENCY = settings()["shop"]["currency"]
PAYMENT_METHODS = (("bacs", 0.55), ("cod", 0.45))

# The registered customers are the shop's, not the run's: the pool has its own fixed seed.
CUSTOMER_POOL_SIZE = 240
CUSTOMER_POOL_SEED = 20_260_101
FIRST_CUSTOMER_ID = 2  # WordPress user 1 is the administrator
GUEST_SHARE = 0.14
GUEST_IMPULSIVE_PROBABILITY = 0.6

# Orders per hour at profile weight 1.0, and the shop-local hourly profile.
BASE_ORDERS_PER_HOUR = 36.0
HOURLY_PROFILE = (
    0.30, 0.18, 0.10, 0.06, 0.05, 0.08, 0.20, 0.40, 0.60, 0.80, 0.90, 1.00,
    1.10, 1.05, 0.85, 0.80, 0.85, 0.95, 1.10, 1.30, 1.55, 1.60, 1.20, 0.65,
)  # fmt: skip
WEEKDAY_FACTOR = (0.95, 0.9, 0.9, 0.95, 1.05, 1.2, 1.15)  # Monday .. Sunday
# Bursts: how many a day (weights for 0, 1, 2), when they start, how long, how strong.
BURSTS_PER_DAY = (0.35, 0.45, 0.20)
BURST_START_HOURS = (9, 10, 11, 12, 13, 18, 19, 20, 21)
BURST_MINUTES = (15, 45)
BURST_MULTIPLIER = (4.0, 9.0)


def reassigned(event: dict, order_id: int) -> dict:
    """A copy of the event under another order id, its event id following (the bench's
    pooled orders, and tests' reused ids)."""
    moved = {**event, "order_id": order_id}
    if "event_id" in event:
        moved["event_id"] = f"{order_id}-{event['event_id'].split('-', 1)[1]}"
    return moved


def format_line(event: dict) -> str:
    r"""One log line, byte-identical to the plugin's ``wp_json_encode()`` of the event.

    The plugin encodes with JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_HEX_TAG |
    JSON_HEX_AMP | JSON_PRESERVE_ZERO_FRACTION. ``json.dumps`` never escapes ``<``, ``>`` or
    ``&``, so they are replaced afterwards by the escapes PHP writes, in upper-case hex:
    ``\u003C``, ``\u003E``, ``\u0026``. Outside strings JSON has none of these characters, so
    the replacement only touches text, which decodes to the same value.
    """
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026") + "\n"


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    email: str
    impulsive_probability: float
    visit_weight: float


@dataclass(frozen=True)
class SimulatedOrder:
    """One event of a simulated order (by default its paid event) and the buyer's true
    behaviour."""

    event: dict
    behaviour: str
    abandoned_tab: bool = False

    @property
    def order_id(self) -> int:
        return self.event["order_id"]

    @property
    def event_type(self) -> str:
        return self.event.get("event_type", "paid")

    @property
    def line(self) -> str:
        return format_line(self.event)


def _ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def _email(fake: Faker, rng: random.Random, first_name: str, last_name: str) -> str:
    first, last = _ascii_slug(first_name) or "cliente", _ascii_slug(last_name) or "garderobe"
    style = rng.randrange(4)
    local = (
        f"{first}.{last}",
        f"{first}{last}{rng.randrange(1, 99)}",
        f"{first[0]}{last}",
        f"{first}_{rng.randrange(1970, 2008)}",
    )[style]
    return f"{local}@{fake.free_email_domain()}"


@cache
def customer_pool() -> tuple[Customer, ...]:
    """The shop's registered customers: stable ids, names and e-mails, whatever the run's seed."""
    fake = Faker("it_IT")
    fake.seed_instance(CUSTOMER_POOL_SEED)
    rng = random.Random(CUSTOMER_POOL_SEED)
    customers = []
    seen: set[str] = set()
    for offset in range(CUSTOMER_POOL_SIZE):
        first_name, last_name = fake.first_name(), fake.last_name()
        email = _email(fake, rng, first_name, last_name)
        while email in seen:
            email = _email(fake, rng, first_name, last_name)
        seen.add(email)
        # Most customers lean clearly one way; a few are mixed.
        lean = rng.random()
        if lean < 0.42:
            impulsive_probability = 0.85
        elif lean < 0.90:
            impulsive_probability = 0.12
        else:
            impulsive_probability = 0.5
        # A long tail of loyalty: a few customers come back very often.
        visit_weight = 1.0 / (offset + 1) ** 0.6
        customers.append(
            Customer(
                id=FIRST_CUSTOMER_ID + offset,
                first_name=first_name,
                email=email,
                impulsive_probability=impulsive_probability,
                visit_weight=visit_weight,
            )
        )
    # Shuffle weights over ids so that loyalty does not follow the id order.
    weights = [c.visit_weight for c in customers]
    rng.shuffle(weights)
    return tuple(
        Customer(c.id, c.first_name, c.email, c.impulsive_probability, w)
        for c, w in zip(customers, weights, strict=True)
    )


class _Arrivals:
    """Order times as a non-homogeneous Poisson process (thinning), in whole seconds.

    Forward from ``start``, or, with ``backward``, from ``start`` into the past: the same
    process read in reverse, so a history can end at a given moment (now) instead of running
    from one into the future.
    """

    def __init__(
        self, rng: random.Random, start: datetime, tz: ZoneInfo, backward: bool = False
    ) -> None:
        self._rng = rng
        self._tz = tz
        self._sign = -1 if backward else 1
        self._t = start.timestamp()
        self._last = math.floor(self._t) + (1 if backward else 0)
        self._bursts: dict[date, list[tuple[float, float, float]]] = {}
        peak = max(HOURLY_PROFILE) * max(WEEKDAY_FACTOR) * BURST_MULTIPLIER[1]
        self._max_rate = BASE_ORDERS_PER_HOUR * peak / 3600.0

    def _bursts_of(self, day: date) -> list[tuple[float, float, float]]:
        bursts = self._bursts.get(day)
        if bursts is None:
            rng = random.Random(f"{self._rng.random()}-{day.isoformat()}")
            count = _weighted_choice(rng, range(len(BURSTS_PER_DAY)), BURSTS_PER_DAY)
            bursts = []
            for _ in range(count):
                hour = rng.choice(BURST_START_HOURS)
                begin = datetime(
                    day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=self._tz
                ).timestamp()
                length = rng.uniform(*BURST_MINUTES) * 60.0
                bursts.append((begin, begin + length, rng.uniform(*BURST_MULTIPLIER)))
            self._bursts[day] = bursts
        return bursts

    def rate(self, t: float) -> float:
        """Expected orders per second at Unix time t."""
        local = datetime.fromtimestamp(t, self._tz)
        rate = BASE_ORDERS_PER_HOUR / 3600.0
        rate *= HOURLY_PROFILE[local.hour] * WEEKDAY_FACTOR[local.weekday()]
        for begin, end, multiplier in self._bursts_of(local.date()):
            if begin <= t < end:
                rate *= multiplier
        return rate

    def next(self) -> int:
        while True:
            self._t += self._sign * self._rng.expovariate(self._max_rate)
            if self._rng.random() * self._max_rate <= self.rate(self._t):
                break
        # Whole seconds, strictly monotonic (a small shop does not take two orders a second).
        if self._sign > 0:
            self._last = max(self._last + 1, math.floor(self._t))
            self._t = max(self._t, float(self._last))
        else:
            self._last = min(self._last - 1, math.floor(self._t))
            self._t = min(self._t, float(self._last))
        return self._last


def _weighted_choice(rng: random.Random, options, weights):
    return rng.choices(list(options), weights=list(weights), k=1)[0]


class Simulator:
    """Orders of the Garderobe shop with the buyer's true behaviour.

    ``seed`` fixes everything (contents and times); order ids count up by one from
    ``order_id_start``, in checkout order. Two ways to use it, so that no order lies in the
    future:

    * ``backfill(n, end)``: the shop's recent past, n orders whose times end at ``end``
      (default: now), oldest first; what the demo and the tests write.
    * ``orders(n)`` with a ``start``: a stream forward from a moment in the past (training data,
      fixed histories in tests); successive calls continue it. Live traffic is stamped with the
      wall clock when written (``tap simulate orders --rate``), not by this clock.

    Without ``lifecycle`` each order is one paid event at its checkout time. With a
    ``Lifecycle``, n is the number of orders *placed*, and what is yielded is their events in
    time order: a failed or a paid event at checkout, a bank transfer's paid or cancelled event
    days later, refunds within the return window after the payment. An event that lies after
    the last checkout of a call waits in a heap (by time, then by when it was planned) and is
    emitted when simulated time passes it, so the stream is the same in any chunking:

    * ``orders(n)`` keeps the events still in the future for the next call; ``flush()`` yields
      them (the rest of the story: every order's whole life, dated after the last checkout).
    * ``backfill(n, end)`` never yields an event after ``end``: a transfer still on hold or a
      return still on its way at that moment has not happened yet, as in a real shop's log.

    The lifecycle draws from its own random stream, so the orders (contents, ids, checkout
    times) are those of the same seed without a lifecycle; only a failed order's payment method
    becomes the card gateway.

    A naive datetime is read in the shop's time zone.
    """

    def __init__(
        self,
        seed: int = 1,
        start: datetime | None = None,
        order_id_start: int = 1,
        populations: dict[str, Population] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        if order_id_start < 1:
            raise ValueError("order ids start at 1 or above")
        self.seed = seed
        self.tz = ZoneInfo(enrichment("shop_timezone"))
        self.start = self._aware(start) if start is not None else None
        self._next_id = order_id_start
        self._rng = random.Random(f"tap-simulator-{seed}-content")
        self._time_rng = random.Random(f"tap-simulator-{seed}-time")
        self.lifecycle = lifecycle
        self._life_rng = random.Random(f"tap-simulator-{seed}-lifecycle")
        self._pending: list[tuple[int, int, SimulatedOrder]] = []  # a heap: (time, seq, event)
        self._seq = 0
        self._arrivals = (
            _Arrivals(self._time_rng, self.start, self.tz) if self.start is not None else None
        )
        self._fake = Faker("it_IT")
        self._fake.seed_instance(seed)
        self._customers = customer_pool()
        self._customer_weights = [c.visit_weight for c in self._customers]
        # Another shop's buyers (other medians and spreads) for tests of drift and retraining.
        self.populations = populations or POPULATIONS
        self._product_weights = {
            name: [p.popularity * pop.affinity(p.category, p.premium) for p in CATALOGUE]
            for name, pop in self.populations.items()
        }

    def _aware(self, moment: datetime) -> datetime:
        return moment.replace(tzinfo=self.tz) if moment.tzinfo is None else moment

    # -- one order -------------------------------------------------------------------------
    def _customer(self) -> tuple[dict, float]:
        rng = self._rng
        if rng.random() < GUEST_SHARE:
            first_name, last_name = self._fake.first_name(), self._fake.last_name()
            customer = {
                "id": 0,
                "first_name": first_name,
                "email": _email(self._fake, rng, first_name, last_name),
            }
            return customer, GUEST_IMPULSIVE_PROBABILITY
        chosen = rng.choices(self._customers, weights=self._customer_weights, k=1)[0]
        customer = {"id": chosen.id, "first_name": chosen.first_name, "email": chosen.email}
        return customer, chosen.impulsive_probability

    def _items(self, behaviour: str) -> list[dict]:
        rng = self._rng
        population = self.populations[behaviour]
        wanted = population.line_count(rng)
        chosen: list[Product] = []
        weights = self._product_weights[behaviour]
        while len(chosen) < wanted:
            product = rng.choices(CATALOGUE, weights=weights, k=1)[0]
            if product not in chosen:
                chosen.append(product)
        items = []
        for product in chosen:
            quantity = population.quantity(rng)
            unit_price = round(float(product.price), 2)
            items.append(
                {
                    "product_id": product.product_id,
                    "product_name": product.name,
                    "sku": product.sku,
                    "category": product.category,
                    "quantity": quantity,
                    "unit_price": unit_price,
                    "total": round(quantity * unit_price, 2),
                }
            )
        return items

    def _order(self, paid_at: int) -> SimulatedOrder:
        rng = self._rng
        customer, impulsive_probability = self._customer()
        behaviour = IMPULSIVE if rng.random() < impulsive_probability else REASONED
        duration, pages, abandoned = self.populations[behaviour].session(rng)
        items = self._items(behaviour)
        payment = _weighted_choice(rng, *zip(*PAYMENT_METHODS, strict=True))
        event = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{self._next_id}-paid",
            "event_type": "paid",
            "order_id": self._next_id,
            "order_status": "processing",
            "timestamp": datetime.fromtimestamp(paid_at, self.tz).isoformat(timespec="seconds"),
            "currency": CURRENCY,
            "total": round(float(sum(item["total"] for item in items)), 2),
            "payment_method": payment,
            "items": items,
            "customer": customer,
            "duration_session": duration,
            "pages_viewed": pages,
        }
        self._next_id += 1
        return SimulatedOrder(event=event, behaviour=behaviour, abandoned_tab=abandoned)

    # -- the order's life ------------------------------------------------------------------
    def _place(self, placed_at: int, heap: list) -> Iterator[SimulatedOrder]:
        """Place an order at checkout time: without a lifecycle yield its paid event; with one,
        plan its events into the heap and yield every event due by now, oldest first."""
        order = self._order(placed_at)
        if self.lifecycle is None:
            yield order
            return
        for at, event in plan_order(
            order.event, placed_at, self._life_rng, self.lifecycle, self.tz
        ):
            heapq.heappush(
                heap, (at, self._seq, SimulatedOrder(event, order.behaviour, order.abandoned_tab))
            )
            self._seq += 1
        yield from self._due(placed_at, heap)

    @staticmethod
    def _due(until: float, heap: list) -> Iterator[SimulatedOrder]:
        while heap and heap[0][0] <= until:
            yield heapq.heappop(heap)[2]

    @property
    def pending(self) -> int:
        """Events of the forward stream planned after its last checkout (lifecycle only)."""
        return len(self._pending)

    def flush(self) -> Iterator[SimulatedOrder]:
        """The forward stream's events still in the future, in time order (lifecycle only)."""
        while self._pending:
            yield heapq.heappop(self._pending)[2]

    def orders(self, n: int) -> Iterator[SimulatedOrder]:
        """The next n orders forward from ``start`` (lazily): their paid events, or with a
        lifecycle every event of theirs due by the last checkout (see the class docstring)."""
        if self._arrivals is None:
            raise ValueError(
                "a forward stream needs start=...; for the recent past use backfill(n)"
            )
        for _ in range(n):
            yield from self._place(self._arrivals.next(), self._pending)

    def backfill(self, n: int, end: datetime | None = None) -> list[SimulatedOrder]:
        """n orders whose checkout times end at ``end`` (default: now) or just before, oldest
        first, with ids counting up in time order; with a lifecycle, their events up to ``end``
        in time order."""
        end = self._aware(end) if end is not None else datetime.now(self.tz)
        arrivals = _Arrivals(self._time_rng, end, self.tz, backward=True)
        times = sorted(arrivals.next() for _ in range(n))
        heap: list = []
        events = [event for placed_at in times for event in self._place(placed_at, heap)]
        events.extend(self._due(end.timestamp(), heap))
        return events


def append_orders(
    path: str | os.PathLike, orders: Iterable[SimulatedOrder], truth_path=None
) -> int:
    """Append orders' events to the log, one write per line, flushed; return how many lines
    were written.

    With ``truth_path``, also append "order_id,behaviour" rows to that CSV (header when new):
    one per order, on its paid, cancelled or failed event (not again on its refunds).
    """
    log_path = Path(path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    truth_file = None
    truth_writer = None
    if truth_path is not None:
        truth = Path(truth_path)
        truth.parent.mkdir(parents=True, exist_ok=True)
        new = not truth.exists() or truth.stat().st_size == 0
        truth_file = truth.open("a", encoding="utf-8", newline="")
        truth_writer = csv.writer(truth_file)
        if new:
            truth_writer.writerow(["order_id", "behaviour"])
    written = 0
    try:
        # Unbuffered: each line is a single write() of whole bytes, so a tailer never sees a
        # partial line sitting in our buffer.
        with open(log_path, "ab", buffering=0) as log:
            for order in orders:
                _append_whole(log, format_line(order.event).encode("utf-8"))
                if truth_writer is not None and order.event_type != "refunded":
                    truth_writer.writerow([order.event["order_id"], order.behaviour])
                    truth_file.flush()
                written += 1
    finally:
        if truth_file is not None:
            truth_file.close()
    return written


def _append_whole(log, data: bytes) -> None:
    """Append one line, all of it or none: after a short write and a failure (a full disk),
    the part written is cut off again, so the next line is not glued to half of this one."""
    start = os.fstat(log.fileno()).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[log.write(view) :]
    except OSError:
        os.ftruncate(log.fileno(), start)
        raise


def generate_training_data(rows: int = 4000, seed: int = 2026) -> list[dict]:
    """Training rows (duration_session, pages_viewed, behaviour) drawn from simulated orders.

    The rows come from the same Simulator as the traffic, so the model learns exactly the
    populations it will label.
    """
    simulator = Simulator(seed=seed, start=datetime(2026, 1, 1))
    return [
        {
            "duration_session": order.event["duration_session"],
            "pages_viewed": order.event["pages_viewed"],
            "behaviour": order.behaviour,
        }
        for order in simulator.orders(rows)
    ]


def write_training_csv(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write training rows as CSV (header duration_session,pages_viewed,behaviour)."""
    columns = ["duration_session", "pages_viewed", "behaviour"]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row[column] for column in columns})
            count += 1
    return count


__all__ = [
    "Customer",
    "Lifecycle",
    "SimulatedOrder",
    "Simulator",
    "append_orders",
    "customer_pool",
    "format_line",
    "generate_training_data",
    "write_training_csv",
]
