"""The thin Kafka layer of `tap deadletter`: read a topic whole, keep the ledger, send replays.

Reading joins no consumer group and commits nothing (assign, seek to the beginning, stop at the
end offsets taken first): looking at dead letters changes no one's position, and a listing is
a snapshot even while stages keep adding to the topic.
"""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tapstack import contracts, kafka_clients
from tapstack.deadletter import headers as h
from tapstack.deadletter.records import DeadLetter
from tapstack.deadletter.replay import SendError, read_ledger
from tapstack.native.errors import StackError

CLIENT_ID = "tap-deadletter"
# The dead-letter topic takes records up to 16 MiB (tapstack/native/kafka.py); a fetch must
# hold the largest of them.
MAX_FETCH_BYTES = 17 * 2**20
ACK_TIMEOUT = 30.0


def dead_letter_topic() -> str:
    return contracts.topic("dead_letter")


def ledger_topic() -> str:
    return contracts.topic("dead_letter_replays")


def _unreachable(exc: Exception) -> StackError:
    return StackError(
        f"Kafka at {contracts.kafka_bootstrap()} did not answer ({exc}). Is the stack running "
        "(tap stack status)? Elsewhere, set TAP_KAFKA_BOOTSTRAP."
    )


def read_topic(topic: str, timeout: float = 60.0) -> list:
    """Every record of a topic up to its end offsets when called; [] for no such topic."""
    try:
        consumer = KafkaConsumer(
            **kafka_clients.config(),
            client_id=CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=MAX_FETCH_BYTES,
            fetch_max_bytes=2 * MAX_FETCH_BYTES,
        )
    except KafkaError as exc:
        raise _unreachable(exc) from exc
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + timeout
        # Positions, not record counts, say when to stop: compaction and transaction markers
        # leave offsets that hold no record.
        while pending := [tp for tp in partitions if consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise StackError(f"Reading {topic} took over {timeout:.0f}s; {pending} unfinished")
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records += [r for r in batch if r.offset < ends[tp]]
        return sorted(records, key=lambda r: (r.partition, r.offset))
    except KafkaError as exc:
        raise _unreachable(exc) from exc
    finally:
        consumer.close()


def dead_letters() -> list[DeadLetter]:
    return [DeadLetter.from_record(r) for r in read_topic(dead_letter_topic())]


def ledger() -> dict[str, dict]:
    """The replay ledger: entry by ledger key; empty before the first replay."""
    return read_ledger((r.key, r.value) for r in read_topic(ledger_topic()))


def ensure_ledger_topic() -> bool:
    """Create the ledger topic, compacted, unless it is there; True when it was made here.

    The stack's `tap topics create` should make it with the others; this covers a stack set up
    before the ledger existed.
    """
    settings = contracts.settings()["topics"]
    try:
        admin = KafkaAdminClient(**kafka_clients.config(), client_id=CLIENT_ID)
    except KafkaError as exc:
        raise _unreachable(exc) from exc
    try:
        if ledger_topic() in admin.list_topics():
            return False
        topic = NewTopic(
            ledger_topic(),
            1,  # a small topic read whole each time: one partition is plenty
            settings["replication_factor"],
            # compact only (no delete): an entry lasts as long as the topic, not 7 days
            topic_configs={"cleanup.policy": "compact"},
        )
        admin.create_topics([topic])
        return True
    except TopicAlreadyExistsError:
        return False
    except KafkaError as exc:
        raise _unreachable(exc) from exc
    finally:
        admin.close()


class KafkaSender:
    """Sends replays and ledger entries, each acknowledged by all in-sync replicas."""

    def __init__(self):
        try:
            self.producer = KafkaProducer(
                **kafka_clients.config(),
                client_id=CLIENT_ID,
                acks="all",
                max_block_ms=int(ACK_TIMEOUT * 1000),
            )
        except KafkaError as exc:
            raise _unreachable(exc) from exc

    def _sent(self, future) -> tuple[int, int]:
        try:
            metadata = future.get(timeout=ACK_TIMEOUT)
        except KafkaError as exc:
            raise SendError(repr(exc)) from exc
        return metadata.partition, metadata.offset

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: h.Headers
    ) -> tuple[int, int]:
        try:
            future = self.producer.send(topic, key=key, value=value, headers=headers)
        except KafkaError as exc:  # too large, or no metadata within max_block_ms
            raise SendError(repr(exc)) from exc
        return self._sent(future)

    def record(self, key: str, entry: bytes) -> None:
        try:
            future = self.producer.send(ledger_topic(), key=key.encode(), value=entry)
        except KafkaError as exc:
            raise SendError(repr(exc)) from exc
        self._sent(future)

    def close(self) -> None:
        self.producer.close(timeout=ACK_TIMEOUT)
