"""The loader on the real Kafka and Elasticsearch: poison records, refused documents, throttling,
reused order ids and restarts. Each test has its own scratch topics, consumer group and indices
(made from the project's templates), and runs the real Loader in a thread of the test."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError

from tapstack import contracts, kafka_clients
from tapstack.elastic import templates
from tapstack.loader import documents
from tapstack.loader.es_loader import Loader, Names
from tapstack.native.kafka import admin
from tests.test_loader_documents import _item, event, record

TIMEOUT = 90


class Running:
    """A Loader running in a thread until stop(); error holds what ended it otherwise."""

    def __init__(self, loader: Loader):
        self.loader = loader
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-loader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loader.run(should_stop=self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001  (the test looks at it)
            self.error = exc
        finally:
            self.loader.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=TIMEOUT)
        assert not self.thread.is_alive(), "the loader did not stop"


@dataclass
class Flow:
    names: Names
    es: object
    started: list[Running]

    def produce(self, values: list[bytes], keys: list[bytes | None]) -> list:
        """Send values in order; their RecordMetadata (partition, offset)."""
        producer = KafkaProducer(**kafka_clients.config(), acks="all")
        try:
            futures = [
                producer.send(self.names.topic, key=key, value=value)
                for key, value in zip(keys, values, strict=True)
            ]
            producer.flush()
            return [f.get(timeout=30) for f in futures]
        finally:
            producer.close()

    def produce_records(self, records: list[dict]) -> list:
        return self.produce(
            [orjson.dumps(r) for r in records], [str(r["order_id"]).encode() for r in records]
        )

    def start(self, **options) -> Running:
        running = Running(Loader(es=self.es, names=self.names, batch_size=500, **options))
        self.started.append(running)
        return running

    def committed(self) -> dict[int, int]:
        """partition -> the group's committed offset (asked again while the broker's group
        coordinator is still loading, as on a fresh broker)."""
        deadline = time.monotonic() + TIMEOUT
        client = admin()
        try:
            while True:
                try:
                    offsets = client.list_group_offsets({self.names.group: None})
                    break
                except KafkaError as exc:
                    if not exc.retriable or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            client.close()
        found = offsets.get(self.names.group, {})
        return {tp.partition: m.offset for tp, m in found.items() if m.offset >= 0}

    def ends(self) -> dict[int, int]:
        consumer = KafkaConsumer(**kafka_clients.config())
        try:
            parts = [
                TopicPartition(self.names.topic, p)
                for p in consumer.partitions_for_topic(self.names.topic)
            ]
            return {tp.partition: o for tp, o in consumer.end_offsets(parts).items() if o}
        finally:
            consumer.close()

    def caught_up(self) -> bool:
        committed = self.committed()
        return all(committed.get(p, 0) >= end for p, end in self.ends().items())

    def wait(self, condition: Callable[[], bool], what: str, running: Running | None = None):
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if running is not None and running.error is not None:
                raise AssertionError(f"the loader failed while waiting for {what}") from (
                    running.error
                )
            if time.monotonic() > deadline:
                state = ""
                if running is not None:
                    loader = running.loader
                    state = (
                        f" (loaded {loader.loaded}, retries {loader.retries}, dead letters "
                        f"{loader.dead_lettered}, committed {self.committed()}, ends {self.ends()})"
                    )
                raise AssertionError(f"timed out waiting for {what}{state}")
            time.sleep(0.2)

    def dead_letters(self) -> list[dict]:
        consumer = KafkaConsumer(**kafka_clients.config(), enable_auto_commit=False)
        try:
            parts = [
                TopicPartition(self.names.dead_letter, p)
                for p in consumer.partitions_for_topic(self.names.dead_letter)
            ]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            ends = consumer.end_offsets(parts)
            out = []
            while any(consumer.position(tp) < ends[tp] for tp in parts):
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        out.append({"key": r.key, "value": r.value, **dict(r.headers)})
            return out
        finally:
            consumer.close()

    def docs(self, index: str) -> dict[str, dict]:
        self.es.indices.refresh(index=index)
        hits = self.es.search(index=index, size=10_000, query={"match_all": {}})["hits"]["hits"]
        return {hit["_id"]: hit["_source"] for hit in hits}


def _create_indices(es, names: Names, drift: dict[str, dict[str, dict]]) -> None:
    """The scratch indices from the project's templates, with mappings changed by drift."""
    for role in ("orders", "lines", "ledger", "statuses"):
        name = names.of(role)
        body = templates.load_template(role)["template"]
        mappings = {**body["mappings"]}
        mappings["properties"] = {**mappings["properties"], **drift.get(role, {})}
        es.indices.create(index=name, settings=body["settings"], mappings=mappings)


def _wait_for_topics(topics: list[str], partitions: int) -> None:
    """Until the broker's metadata lists every partition of the new topics: a consumer that
    subscribes earlier joins its group with nothing assigned and asks again only minutes later
    (metadata.max.age.ms)."""
    consumer = KafkaConsumer(**kafka_clients.config())
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            found = {t: consumer.partitions_for_topic(t) or set() for t in topics}
            if all(len(parts) == partitions for parts in found.values()):
                return
            assert time.monotonic() < deadline, f"topics not in the metadata: {found}"
            consumer.close()
            time.sleep(0.2)
            consumer = KafkaConsumer(**kafka_clients.config())
    finally:
        consumer.close()


@pytest.fixture
def make_flow(engines, es):
    """make_flow(dead_letter_max_bytes=..., drift={role: {field: mapping}}) -> Flow."""
    made: list[Flow] = []

    def make(dead_letter_max_bytes: int = 16 * 2**20, drift=None) -> Flow:
        stamp = uuid.uuid4().hex[:10]
        names = Names(
            topic=f"LoaderTest{stamp}_Topic_Dashboard",
            group=f"LoaderTest{stamp}_logstash_v1",
            orders=f"loadertest{stamp}-orders",
            lines=f"loadertest{stamp}-lines",
            ledger=f"loadertest{stamp}-ledger",
            statuses=f"loadertest{stamp}-statuses",
            dead_letter=f"LoaderTest{stamp}_Topic_DeadLetter",
        )
        partitions = contracts.settings()["topics"]["partitions"]
        client = admin()
        try:
            client.create_topics(
                [
                    NewTopic(names.topic, partitions, 1),
                    NewTopic(
                        names.dead_letter,
                        partitions,
                        1,
                        topic_configs={"max.message.bytes": str(dead_letter_max_bytes)},
                    ),
                ]
            )
        finally:
            client.close()
        _wait_for_topics([names.topic, names.dead_letter], partitions)
        _create_indices(es, names, drift or {})
        flow = Flow(names, es, [])
        made.append(flow)
        return flow

    yield make
    for flow in made:
        for running in flow.started:
            running.stop()
        es.options(ignore_status=404).indices.delete(
            index=f"{flow.names.orders},{flow.names.lines},{flow.names.ledger},{flow.names.statuses}"
        )
        client = admin()
        try:
            client.delete_topics([flow.names.topic, flow.names.dead_letter])
        finally:
            client.close()


_ids = itertools.count(1)


def order(lines: int = 2, **changes) -> dict:
    """A good record with a fresh order id (or the one given) and a fingerprint of its own."""
    order_id = changes.pop("order_id", None) or next(_ids)
    items = [_item(100 + n, f"Product {n}", "Dresses", 1 + n % 3) for n in range(lines)]
    fields = {"items": items, "order_fingerprint": f"fp-{order_id}-{uuid.uuid4().hex[:6]}"}
    return record(order_id=order_id, **{**fields, **changes})


def assert_loaded(flow: Flow, records: list[dict]) -> None:
    """Each record's head (its order, or its ledger event) and exactly its parts (lines,
    ledger documents) are in the scratch indices."""
    roles = ("orders", "lines", "ledger")
    stored = {role: flow.docs(flow.names.of(role)) for role in roles}
    for r in records:
        expected = documents.order_of(orjson.dumps(r))
        head = stored[expected.head_role].get(expected.document_id)
        assert head == expected.document, expected.document_id
        for role, doc_id, doc in expected.parts:
            assert stored[role].get(doc_id) == doc, doc_id
        if expected.head_role == "orders":
            ids = {i for i in stored["lines"] if i.startswith(f"{r['order_id']}-")}
            assert ids == {line_id for line_id, _ in expected.lines}, "no other line of the order"


def assert_absent(flow: Flow, order_id: int) -> None:
    orders, lines = flow.docs(flow.names.orders), flow.docs(flow.names.lines)
    assert str(order_id) not in orders, "no order document"
    assert not [i for i in lines if i.startswith(f"{order_id}-")], "no line of it either"


# ── tests ────────────────────────────────────────────────────────────────────────────────


def test_poison_records_are_dead_lettered_with_their_reason_and_the_rest_still_loads(make_flow):
    flow = make_flow()
    before = [order() for _ in range(3)]
    poison = {
        orjson.dumps(record(order_id=90001, items=[None])): "wrong type for items[0]",
        orjson.dumps(record(order_id=90002, items="a tee")): "wrong type for items",
        orjson.dumps(record(order_id=90003, items=[7, _item()])): "wrong type for items[0]",
        orjson.dumps(record(order_id=90004, items=[{**_item(), "quantity": "2"}])): (
            "wrong type for items[0].quantity"
        ),
        b"hello world": "not JSON",
        b'{"order_id": 90005, "items": [': "not JSON",
        orjson.dumps([record(order_id=90006)]): "not a JSON object",
        orjson.dumps({k: v for k, v in record().items() if k != "order_id"}): (
            "missing field order_id"
        ),
        orjson.dumps(record(order_id=90007, total="99.90")): "wrong type for total",
        b"": "not JSON",
    }
    after = [order() for _ in range(3)]
    flow.produce_records(before)
    meta = flow.produce(list(poison), [b"poison-%d" % i for i in range(len(poison))])
    flow.produce_records(after)

    running = flow.start()
    flow.wait(flow.caught_up, "every record committed", running)

    letters = {d["value"]: d for d in flow.dead_letters()}
    assert len(flow.dead_letters()) == len(poison), "each poison record once"
    for (value, reason), where in zip(poison.items(), meta, strict=True):
        letter = letters[value]
        assert letter["tap.error.reason"] == reason.encode()
        assert letter["tap.error.stage"] == b"loader"
        assert letter["tap.source.topic"] == flow.names.topic.encode()
        assert letter["tap.source.partition"] == str(where.partition).encode()
        assert letter["tap.source.offset"] == str(where.offset).encode()
        assert letter["tap.error.time"].endswith(b"Z")
        assert letter["key"] is not None and letter["key"].startswith(b"poison-")
    assert_loaded(flow, before + after)
    assert running.loader.dead_lettered == len(poison) and running.loader.loaded == 6


@pytest.mark.parametrize(
    ("drift", "bad_changes", "field"),
    [
        # A line the lines index refuses (its product_id does not fit the drifted mapping):
        # the order's other lines were created first and are removed again.
        (
            {"lines": {"product_id": {"type": "integer"}}},
            {"items": [_item(101), _item(2**40), _item(103)]},
            "product_id",
        ),
        # The order document refused after all its lines were in: the lines are removed.
        ({"orders": {"pages_viewed": {"type": "byte"}}}, {"pages_viewed": 300}, "pages_viewed"),
    ],
    ids=["a line refused", "the order refused"],
)
def test_a_document_refused_by_the_mapping_leaves_no_half_order(
    make_flow, drift, bad_changes, field
):
    flow = make_flow(drift=drift)
    good = [order(), order()]
    bad = order(**bad_changes)
    flow.produce_records([good[0], bad, good[1]])

    running = flow.start()
    flow.wait(flow.caught_up, "every record committed", running)

    assert_absent(flow, bad["order_id"])
    assert_loaded(flow, good)
    [letter] = flow.dead_letters()
    assert letter["value"] == orjson.dumps(bad)
    reason = letter["tap.error.reason"].decode()
    assert reason.startswith("elasticsearch: ") and f"[{field}]" in reason, reason
    assert "could not be removed" not in reason


def test_a_dead_letter_is_acknowledged_before_the_offsets_are_committed(make_flow):
    """A dead letter Kafka refuses (larger than the dead-letter topic takes) stops the loader
    with its batch uncommitted; once the topic takes it, a restarted loader dead-letters it
    exactly once and loads everything else once; a third start repeats nothing."""
    flow = make_flow(dead_letter_max_bytes=4096)
    first = [order(), order()]
    poison = b"not json " * 2000  # 18 kB
    later = [order(), order()]
    flow.produce_records(first)
    [where] = flow.produce([poison], [b"poison"])
    flow.produce_records(later)

    running = flow.start()
    flow.wait(lambda: running.error is not None, "the loader to stop on the refused dead letter")
    assert isinstance(running.error, KafkaError), repr(running.error)
    assert flow.committed().get(where.partition, 0) <= where.offset, "the poison is not skipped"
    assert flow.dead_letters() == []

    client = admin()
    try:
        client.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    flow.names.dead_letter,
                    configs={"max.message.bytes": str(16 * 2**20)},
                )
            ]
        )
    finally:
        client.close()
    second = flow.start()
    flow.wait(flow.caught_up, "the restarted loader to commit everything", second)
    second.stop()
    letters = flow.dead_letters()
    assert [d["value"] for d in letters] == [poison], "dead-lettered exactly once"
    assert letters[0]["tap.error.reason"] == b"not JSON"
    assert_loaded(flow, first + later)

    third = flow.start()
    last = order()
    flow.produce_records([last])
    flow.wait(flow.caught_up, "the third loader to commit the newest record", third)
    assert len(flow.dead_letters()) == 1, "nothing dead-lettered twice"
    assert_loaded(flow, first + later + [last])
    orders = flow.docs(flow.names.orders)
    assert len(orders) == len(first + later) + 1


@pytest.fixture
def throttled(es):
    """throttled(index): Elasticsearch answers 429 to every write of index, until the fixture
    ends. The block is the flood-stage one (read_only_allow_delete, TOO_MANY_REQUESTS/12).
    Elasticsearch lifts it by itself at a disk check: always while the disk threshold is off (as
    on the native node), and when the node has room once it is on. So the threshold is turned
    on with watermarks that demand more free space than any disk has (flood stage aside): a
    node over its high watermark keeps the blocks of its indices (DiskThresholdMonitor)."""
    blocked: list[str] = []
    watermarks = {
        f"cluster.routing.allocation.disk.watermark.{level}": value
        for level, value in (("low", "100tb"), ("high", "100tb"), ("flood_stage", "1b"))
    }
    watermarks["cluster.routing.allocation.disk.threshold_enabled"] = True

    def block(index: str) -> None:
        es.cluster.put_settings(persistent=watermarks)
        es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
        blocked.append(index)

    yield block
    es.cluster.put_settings(persistent=dict.fromkeys(watermarks))
    for index in blocked:
        es.options(ignore_status=404).indices.put_settings(
            index=index, settings={"index.blocks.read_only_allow_delete": None}
        )


def test_a_throttled_index_is_retried_until_it_takes_the_orders_and_nothing_is_skipped(
    make_flow, es, throttled
):
    """Elasticsearch answers 429 (a flood-stage block): the loader retries with backoff, logs,
    commits no order and dead-letters nothing, and stays in its consumer group for longer than
    max.poll.interval.ms; once the block is lifted every order lands once."""
    flow = make_flow()
    throttled(flow.names.orders)
    records = [order() for _ in range(5)]
    flow.produce_records(records)

    poll_interval_s = 6
    running = flow.start(
        consumer_options={
            "max_poll_interval_ms": poll_interval_s * 1000,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        }
    )
    started = time.monotonic()
    flow.wait(
        lambda: running.loader.retries >= 2 and time.monotonic() - started > 2 * poll_interval_s,
        "retries for longer than two poll intervals",
        running,
    )
    # Only each partition's start (0: the anchor of a group that never committed), nothing
    # past an order not written.
    assert set(flow.committed().values()) <= {0}, "committed past orders not written"
    assert flow.dead_letters() == []
    assert flow.docs(flow.names.orders) == {}

    es.indices.put_settings(
        index=flow.names.orders, settings={"index.blocks.read_only_allow_delete": None}
    )
    flow.wait(flow.caught_up, "every record committed after the block", running)
    assert running.error is None
    assert_loaded(flow, records)
    assert flow.dead_letters() == []
    assert running.loader.loaded == len(records)


def test_the_first_version_of_an_order_wins_for_its_lines_too(make_flow):
    """A replay changes nothing; a different order under the same id, in the same batch or a
    later one, is dead-lettered as a conflict and adds no line (it has more)."""
    flow = make_flow()
    first = order(lines=2)
    same_batch = order(lines=3, order_id=first["order_id"])
    other = order()
    flow.produce_records([first, first, same_batch, other])
    running = flow.start()
    flow.wait(flow.caught_up, "the first batch committed", running)

    later = order(lines=4, order_id=first["order_id"])
    flow.produce_records([later, first])
    flow.wait(flow.caught_up, "the later batch committed", running)

    assert_loaded(flow, [first, other])
    letters = flow.dead_letters()
    assert [d["value"] for d in letters] == [orjson.dumps(same_batch), orjson.dumps(later)]
    reason = documents.conflict_reason(first["order_id"]).encode()
    assert all(d["tap.error.reason"] == reason for d in letters)
    loader = running.loader
    assert (loader.loaded, loader.conflicts, loader.replayed) == (2, 2, 2)


def _ledger_amounts(flow: Flow) -> dict[str, float]:
    """event id -> the signed amount of its ledger event document."""
    docs = flow.docs(flow.names.ledger)
    return {d["event_id"]: d["amount"] for d in docs.values() if d["entry"] == "event"}


def test_an_orders_life_is_loaded_once_and_a_replay_changes_nothing(make_flow):
    flow = make_flow()
    amount_only = event("refunded", order_id=501, refund_id=8, offset=25)
    amount_only["refund"] = {**amount_only["refund"], "amount": 5.0, "items": []}
    life = [
        event("paid", order_id=501, offset=10),
        event("refunded", order_id=501, refund_id=7, offset=20),
        amount_only,
        event("cancelled", order_id=502, offset=30),  # a bank transfer never paid
        event("failed", order_id=503, offset=31),
        event("paid", order_id=504, offset=32),
        event("cancelled", order_id=504, offset=33),
    ]
    flow.produce_records(life)
    running = flow.start()
    flow.wait(flow.caught_up, "every event committed", running)

    assert_loaded(flow, life)
    assert set(flow.docs(flow.names.orders)) == {"501", "504"}, "orders are the paid ones"
    assert _ledger_amounts(flow) == {
        "501-paid": 118.8,
        "501-refund-7": -24.85,
        "501-refund-8": -5.0,
        "502-cancelled": 0.0,
        "503-failed": 0.0,
        "504-paid": 118.8,
        "504-cancelled": 0.0,
    }
    statuses = {i: d["order_status"] for i, d in flow.docs(flow.names.statuses).items()}
    assert statuses == {
        "501": "processing",
        "502": "cancelled",
        "503": "failed",
        "504": "cancelled",
    }
    before = {role: flow.docs(flow.names.of(role)) for role in ("orders", "lines", "ledger")}
    before_statuses = flow.docs(flow.names.statuses)

    # Every event again, the latest first: nothing changes, each is a replay.
    flow.produce_records(list(reversed(life)))
    flow.wait(flow.caught_up, "the replay committed", running)
    after = {role: flow.docs(flow.names.of(role)) for role in ("orders", "lines", "ledger")}
    assert after == before
    assert flow.docs(flow.names.statuses) == before_statuses
    assert running.loader.loaded == len(life) and running.loader.replayed == len(life)
    assert flow.dead_letters() == []


def test_a_different_refund_under_a_refund_id_already_loaded_is_a_conflict(make_flow):
    flow = make_flow()
    first = event("refunded", order_id=601, offset=5)
    other = event("refunded", order_id=601, offset=9, order_fingerprint="another-refund")
    other["refund"] = {**other["refund"], "amount": 3.0, "items": []}
    flow.produce_records([first, other])
    running = flow.start()
    flow.wait(flow.caught_up, "both committed", running)

    assert_loaded(flow, [first])
    [letter] = flow.dead_letters()
    assert letter["tap.error.reason"] == documents.conflict_reason(601).encode()
    assert orjson.loads(letter["value"])["order_fingerprint"] == "another-refund"
    # The refused refund's status is not written: the first one's stays.
    assert flow.docs(flow.names.statuses)["601"]["event_id"] == "601-refund-7"


def test_a_refund_whose_ledger_line_is_refused_leaves_no_half_refund(make_flow):
    flow = make_flow(drift={"ledger": {"quantity": {"type": "byte"}}})
    refund = event("refunded", order_id=701)
    refund["refund"]["items"] = [
        {**refund["refund"]["items"][0], "quantity": 1},
        {**refund["refund"]["items"][0], "quantity": 300, "amount": 0.0},  # -300: no byte
    ]
    flow.produce_records([refund])
    running = flow.start()
    flow.wait(flow.caught_up, "the refund committed", running)

    [letter] = flow.dead_letters()
    assert b"quantity" in letter["tap.error.reason"]
    assert not [i for i in flow.docs(flow.names.ledger) if i.startswith("701-")]
    assert "701" not in flow.docs(flow.names.statuses)
