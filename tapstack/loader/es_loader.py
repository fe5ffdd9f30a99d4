"""Topic_Dashboard -> Elasticsearch, with the Logstash pipeline's semantics.

Same consumer group (settings consumer_groups.loader, the original's logstash_v1), earliest
offsets, the same two indices and document ids. Offsets are committed only after a bulk write
succeeded, so a crash or an Elasticsearch outage re-reads, never skips; ids make re-reads
harmless. Documents Elasticsearch rejects (mapping errors) go to the dead-letter topic with the
reason, like Logstash's dead letter queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch
from kafka import KafkaConsumer, KafkaProducer
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


class PartialBulkFailure(RuntimeError):
    """Some items were refused for now (429/5xx): the request is sent again."""


def _retriable(exc: BaseException) -> bool:
    if isinstance(exc, (TransportConnectionError, ConnectionTimeout, PartialBulkFailure)):
        return True
    return isinstance(exc, ApiError) and exc.meta.status in RETRIABLE_STATUS


def bulk_operations(record_value: bytes) -> list[dict[str, Any]]:
    """The bulk body lines for one Topic_Dashboard record (raises ValueError if unusable)."""
    record = json.loads(record_value)
    if not isinstance(record, dict) or "order_id" not in record:
        raise ValueError("not a Topic_Dashboard record")
    operations: list[dict[str, Any]] = [
        {"index": {"_index": contracts.index("orders"), "_id": order_document_id(record)}},
        order_document(record),
    ]
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

    def step(self, timeout_ms: int = 200) -> int:
        """Poll one batch, write it, then commit; return how many records were handled."""
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        records = [record for part in batch.values() for record in part]
        if not records:
            return 0
        operations, owners, rejects = [], [], []
        for record in records:
            try:
                ops = bulk_operations(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                rejects.append((record, f"loader: {exc}"))
                continue
            operations += ops
            owners += [record] * (len(ops) // 2)
        if operations:
            response = self._bulk(operations)
            if response.get("errors"):
                rejects += self._rejected_items(response, owners)
        for record, reason in rejects:
            self._dead_letter(record, reason)
        self.producer.flush()
        self.consumer.commit()
        self.loaded += len(records) - len(rejects)
        self.dead_lettered += len(rejects)
        return len(records)

    @retry(
        retry=retry_if_exception(_retriable),
        wait=wait_exponential(multiplier=0.5, max=15),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )
    def _bulk(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        """One bulk request; retried until Elasticsearch is back, items retried on 429/5xx."""
        response = self.es.bulk(operations=operations).body
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
                    f"elasticsearch: {error.get('type')}: {error.get('reason')}",
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
        while not should_stop():
            self.step()

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()
