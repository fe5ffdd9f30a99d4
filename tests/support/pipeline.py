"""A handle on the running test pipeline: write orders to its log, wait for them downstream."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from elasticsearch.helpers import scan
from kafka import KafkaConsumer, TopicPartition

from tapstack import contracts, kafka_clients
from tapstack.elastic.client import connect
from tapstack.native.stack import Stack
from tapstack.simulator import Lifecycle, SimulatedOrder, Simulator, append_orders, format_line

# A month of refunds and bank transfers played in the half hour before the tests' clock.
LIFE_WINDOW = timedelta(minutes=30)

_blocks = itertools.count(1)


class Pipeline:
    def __init__(self, stack: Stack, now: datetime):
        self.stack = stack
        self.now = now  # the test stack's clock (tests/support/clock.py)
        self.es = connect()

    @property
    def log_path(self):
        return self.stack.log_path

    @staticmethod
    def order_id_block() -> int:
        """A first order id no other test in this session uses (blocks of a million)."""
        return next(_blocks) * 1_000_000

    def simulate(self, n: int, seed: int = 1, end: datetime | None = None) -> list[SimulatedOrder]:
        """n simulated orders with ids from a fresh block (not yet written), the shop's history
        up to `end` (default: the test stack's clock)."""
        simulator = Simulator(seed=seed, order_id_start=self.order_id_block())
        return simulator.backfill(n, end=end or self.now)

    def simulate_life(
        self, n: int, seed: int = 1, end: datetime | None = None
    ) -> list[SimulatedOrder]:
        """As simulate, with every event that followed the orders up to `end`: refunds,
        cancellations, failed payments (contract v2)."""
        lifecycle = Lifecycle().compressed(LIFE_WINDOW)
        simulator = Simulator(seed=seed, order_id_start=self.order_id_block(), lifecycle=lifecycle)
        return simulator.backfill(n, end=end or self.now)

    def ledger_events(self, order_ids: list[int]) -> dict[str, dict]:
        """event id -> the ledger's event document, of these orders."""
        self.es.indices.refresh(index=contracts.index("ledger"))
        of = [{"term": {"entry": "event"}}, {"terms": {"order_id": order_ids}}]
        hits = scan(
            self.es, index=contracts.index("ledger"), query={"query": {"bool": {"filter": of}}}
        )
        return {hit["_id"]: hit["_source"] for hit in hits}

    def append(self, orders: Iterable[SimulatedOrder]) -> int:
        return append_orders(self.log_path, orders)

    def append_raw(self, lines: Iterable[str | bytes]) -> None:
        """Append raw lines (each gets a newline) in one write each, as a broken shop might."""
        with open(self.log_path, "ab", buffering=0) as log:
            for line in lines:
                data = line if isinstance(line, bytes) else line.encode("utf-8")
                log.write(data + b"\n")

    @staticmethod
    def line(order: SimulatedOrder) -> str:
        return format_line(order.event)

    def count_orders(self, order_ids: Iterable[int]) -> int:
        self.es.indices.refresh(index=contracts.index("orders"))
        return self.es.count(
            index=contracts.index("orders"), query={"terms": {"order_id": list(order_ids)}}
        )["count"]

    def count_events(self, order_ids: Iterable[int]) -> int:
        """The orders' events in the ledger (one event document each)."""
        self.es.indices.refresh(index=contracts.index("ledger"))
        of = [{"term": {"entry": "event"}}, {"terms": {"order_id": list(order_ids)}}]
        query = {"bool": {"filter": of}}
        return self.es.count(index=contracts.index("ledger"), query=query)["count"]

    def wait_events(self, order_ids: list[int], expected: int, timeout: float = 240) -> int:
        """Wait until the orders' events in the ledger number `expected`; return how many are."""
        deadline = time.monotonic() + timeout
        count = self.count_events(order_ids)
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            count = self.count_events(order_ids)
        return count

    def wait_statuses(self, latest: dict[int, str], timeout: float = 120) -> dict[int, str]:
        """Wait until each order's status document names the event expected (order id ->
        event id); return what they name (a status is written once its event is in)."""
        index = contracts.index("statuses")
        query = {"terms": {"order_id": list(latest)}}
        deadline = time.monotonic() + timeout
        while True:
            self.es.indices.refresh(index=index)
            hits = self.es.search(index=index, query=query, size=len(latest))["hits"]["hits"]
            found = {h["_source"]["order_id"]: h["_source"]["event_id"] for h in hits}
            if found == latest or time.monotonic() > deadline:
                return found
            time.sleep(0.5)

    def wait_indexed(self, order_ids: list[int], timeout: float = 120) -> int:
        """Wait until all order_ids are searchable; return how many are (== len on success)."""
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            count = self.count_orders(order_ids)
            if count >= len(order_ids):
                break
            time.sleep(0.5)
        return count

    def orders_by_id(self, order_ids: list[int]) -> dict[int, dict]:
        hits = self.es.search(
            index=contracts.index("orders"),
            query={"terms": {"order_id": order_ids}},
            size=len(order_ids),
        )["hits"]["hits"]
        return {hit["_source"]["order_id"]: hit["_source"] for hit in hits}

    def wait_lines(self, order_ids: list[int], expected: int, timeout: float = 120) -> list[dict]:
        """Wait until the orders' line documents number `expected`; return them.

        The loader writes an order's document before its lines, so a visible order does not
        mean its lines are searchable yet (they may wait on a bulk retry after an outage).
        """
        deadline = time.monotonic() + timeout
        lines = self.lines_of(order_ids)
        while len(lines) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            lines = self.lines_of(order_ids)
        return lines

    def lines_of(self, order_ids: list[int]) -> list[dict]:
        self.es.indices.refresh(index=contracts.index("lines"))
        result = self.es.search(
            index=contracts.index("lines"),
            query={"terms": {"order_id": order_ids}},
            size=10_000,
        )
        return [hit["_source"] | {"_id": hit["_id"]} for hit in result["hits"]["hits"]]

    @staticmethod
    def read_topic(topic: str, timeout: float = 5.0) -> list:
        """Every record of a topic, from the beginning (no consumer group)."""
        consumer = KafkaConsumer(
            **kafka_clients.config(),
            enable_auto_commit=False,
            consumer_timeout_ms=int(timeout * 1000),
        )
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        for record in consumer:
            records.append(record)
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
        consumer.close()
        return records

    def dead_letters(self) -> list[dict]:
        """The dead-letter records: value, reason and stage from the headers."""
        out = []
        for record in self.read_topic(contracts.topic("dead_letter")):
            headers = {key: value.decode("utf-8", "replace") for key, value in record.headers}
            out.append({"value": record.value, "key": record.key, **headers})
        return out

    def wait_dead_letters(self, predicate, expected: int, timeout: float = 90) -> list[dict]:
        deadline = time.monotonic() + timeout
        found: list[dict] = []
        while time.monotonic() < deadline:
            found = [d for d in self.dead_letters() if predicate(d)]
            if len(found) >= expected:
                break
            time.sleep(1)
        return found

    @staticmethod
    def decode(value: bytes) -> dict:
        return json.loads(value)
