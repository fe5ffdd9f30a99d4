"""Topic_Dashboard -> Elasticsearch, with the Logstash pipeline's semantics.

Same consumer group (settings consumer_groups.loader, the original's logstash_v1), earliest
offsets, the same two indices and document ids. Offsets are committed only after a bulk write
succeeded, so a crash or an Elasticsearch outage re-reads, never skips; ids make re-reads
harmless. Documents Elasticsearch rejects (mapping errors) go to the dead-letter topic with the
reason, like Logstash's dead letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    wait_exponential,
)

from tapstack import contracts
from tapstack.elastic.client import connect
from tapstack.loader.documents import line_documents, order_document, order_document_id

log = logging.getLogger("tap.loader")

RETRIABLE_STATUS = {429, 500, 502, 503, 504}
# The loader reads only each item's status and error: the rest of a bulk answer (ids, versions,
# shard counts) is most of its bytes, and parsing it cost as much as building the request.
BULK_ANSWER = "errors,items.*.status,items.*.error"


class PartialBulkFailure(RuntimeError):
    """Some items were refused for now (429/5xx): the request is sent again."""


def _retriable(exc: BaseException) -> bool:
    if isinstance(exc, (TransportConnectionError, ConnectionTimeout, PartialBulkFailure)):
        return True
    return isinstance(exc, ApiError) and exc.meta.status in RETRIABLE_STATUS


def parse_record(record_value: bytes) -> dict[str, Any]:
    """One Topic_Dashboard record (ValueError if it is not one)."""
    record = orjson.loads(record_value)
    if not isinstance(record, dict) or "order_id" not in record:
        raise ValueError("not a Topic_Dashboard record")
    return record


def order_operations(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Bulk lines creating the order document: the first version of an order id wins."""
    return [
        {"create": {"_index": contracts.index("orders"), "_id": order_document_id(record)}},
        order_document(record),
    ]


def line_operations(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Bulk lines (re)writing the order's line documents; ids make a rewrite harmless."""
    operations: list[dict[str, Any]] = []
    for doc_id, doc in line_documents(record):
        operations += [{"index": {"_index": contracts.index("lines"), "_id": doc_id}}, doc]
    return operations


class Loader:
    def __init__(self, es: Elasticsearch | None = None, batch_size: int = 2000):
        self.es = es or connect()
        self.batch_size = batch_size
        self.consumer = KafkaConsumer(
            contracts.topic("dashboard"),
            bootstrap_servers=contracts.kafka_bootstrap(),
            group_id=contracts.consumer_group("loader"),
            client_id="tap-loader",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
        )
        self.producer = KafkaProducer(
            bootstrap_servers=contracts.kafka_bootstrap(), client_id="tap-loader-dlq", acks="all"
        )
        self.loaded = 0
        self.dead_lettered = 0

    def _poll(self, timeout_ms: int) -> list:
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        return [record for part in batch.values() for record in part]

    def _write(self, records: list) -> None:
        """Write one batch; on return its dead letters are acknowledged too.

        Orders are created first; a conflict is a replay when the stored order has the same
        fingerprint (fine) and a different order under a reused id otherwise (dead letter).
        Lines are written for new orders and replays only.
        """
        parsed, rejects = [], []
        for message in records:
            try:
                parsed.append((message, parse_record(message.value)))
            except (ValueError, KeyError, TypeError) as exc:
                rejects.append((message, f"loader: {exc}"))
        accepted = self._write_orders(parsed, rejects)
        self._write_lines(accepted, rejects)
        for message, reason in rejects:
            self._dead_letter(message, reason)
        self.producer.flush()
        self.loaded += len(records) - len(rejects)
        self.dead_lettered += len(rejects)

    def _write_orders(self, parsed, rejects) -> list:
        if not parsed:
            return []
        operations = [op for _, record in parsed for op in order_operations(record)]
        response = self._bulk(operations)
        accepted, conflicts = [], []
        for (message, record), item in zip(parsed, response["items"], strict=True):
            result = item["create"]
            if result.get("status") == 409:
                conflicts.append((message, record))
            elif result.get("error"):
                rejects.append((message, _describe(result["error"])))
            else:
                accepted.append((message, record))
        if conflicts:
            stored = self._fingerprints([order_document_id(r) for _, r in conflicts])
            for message, record in conflicts:
                if stored.get(order_document_id(record)) == record.get("order_fingerprint"):
                    accepted.append((message, record))
                else:
                    rejects.append(
                        (
                            message,
                            f"order_id {record['order_id']} was already loaded with "
                            "different content",
                        )
                    )
        return accepted

    def _write_lines(self, accepted, rejects) -> None:
        operations, owners = [], []
        for message, record in accepted:
            ops = line_operations(record)
            operations += ops
            owners += [message] * (len(ops) // 2)
        if not operations:
            return
        response = self._bulk(operations)
        if response.get("errors"):
            rejects += self._rejected_items(response, owners)

    def _fingerprints(self, ids: list[str]) -> dict[str, str | None]:
        docs = self.es.mget(
            index=contracts.index("orders"), ids=ids, source_includes=["order_fingerprint"]
        )["docs"]
        return {d["_id"]: d.get("_source", {}).get("order_fingerprint") for d in docs if d["found"]}

    @retry(
        retry=retry_if_exception(_retriable),
        wait=wait_exponential(multiplier=0.5, max=15),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )
    def _bulk(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        """One bulk request; retried until Elasticsearch is back, items retried on 429/5xx."""
        response = self.es.bulk(operations=operations, filter_path=BULK_ANSWER).body
        statuses = [next(iter(item.values())).get("status", 200) for item in response["items"]]
        if any(status in RETRIABLE_STATUS for status in statuses):
            # Resend the whole request: ids make the already written items harmless.
            raise PartialBulkFailure(f"{statuses.count(429)} items throttled, others failed")
        return response

    @staticmethod
    def _rejected_items(response, owners) -> list[tuple[Any, str]]:
        rejected = {}
        for item, owner in zip(response["items"], owners, strict=True):
            result = next(iter(item.values()))
            if result.get("error") and id(owner) not in rejected:
                error = result["error"]
                rejected[id(owner)] = (
                    owner,
                    _describe(error),
                )
        return list(rejected.values())

    def _dead_letter(self, record, reason: str) -> None:
        headers = [
            ("tap.error.reason", reason.encode()),
            ("tap.error.stage", b"loader"),
            ("tap.source.topic", record.topic.encode()),
            ("tap.source.partition", str(record.partition).encode()),
            ("tap.source.offset", str(record.offset).encode()),
        ]
        self.producer.send(
            contracts.topic("dead_letter"), key=record.key, value=record.value, headers=headers
        )

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll, write and commit batch after batch, as a two-stage pipeline: the next batch is
        fetched while the bulk requests of the one before are in flight. Batches are written
        one at a time, in order, and each one's offsets are committed only after it was
        written, so a crash or an outage re-reads and never skips."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tap-loader-bulk") as writer:
            in_flight = None
            while not should_stop():
                records = self._poll(200)
                if in_flight is not None:
                    self._commit_when_written(*in_flight)
                    in_flight = None
                if records:
                    in_flight = (writer.submit(self._write, records), _next_offsets(records))
            if in_flight is not None:
                self._commit_when_written(*in_flight)

    def _commit_when_written(self, written: Future, offsets: dict) -> None:
        written.result()  # a batch that could not be written stops the loader uncommitted
        self.consumer.commit(offsets)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()


def _next_offsets(records: list) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once records are written: one past the last of each partition."""
    last: dict[TopicPartition, int] = {}
    for record in records:
        part = TopicPartition(record.topic, record.partition)
        last[part] = max(last.get(part, -1), record.offset)
    return {part: OffsetAndMetadata(offset + 1, "", -1) for part, offset in last.items()}


def _describe(error: dict[str, Any]) -> str:
    return f"elasticsearch: {error.get('type')}: {error.get('reason')}"
