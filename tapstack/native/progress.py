"""How far each stage has got: end offsets of its input versus what it has consumed.

Spark keeps its offsets in the checkpoint (offsets/<batch> once a batch is planned, commits/<batch>
once it is written); the loader keeps them in its consumer group. A stage has caught up when what
it consumed equals its input topic's end offsets.
"""

from __future__ import annotations

import json
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from tapstack import contracts, kafka_clients

SPARK_INPUTS = {"process_orders": "purchase", "behaviour": "analysis"}


def end_offsets(topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**kafka_clients.config())
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def spark_committed(checkpoint: Path, topic: str) -> dict[int, int]:
    """Offsets up to which the query's last committed batch has read topic."""
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")]
    if not commits:
        return {}
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    offsets = json.loads(lines[-1]).get(topic, {})
    return {int(partition): offset for partition, offset in offsets.items()}


def group_committed(group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def lag(consumed: dict[int, int], ends: dict[int, int]) -> int:
    """Records not yet consumed, summed over partitions (a missing partition counts whole)."""
    return sum(max(end - consumed.get(partition, 0), 0) for partition, end in ends.items())


def stage_lags(checkpoint_dir: Path) -> dict[str, int]:
    """Lag of every stage after the tailer: both Spark queries and the loader."""
    lags = {}
    for query, role in SPARK_INPUTS.items():
        topic = contracts.topic(role)
        lags[query] = lag(spark_committed(checkpoint_dir / query, topic), end_offsets(topic))
    dashboard = contracts.topic("dashboard")
    lags["loader"] = lag(
        group_committed(contracts.consumer_group("loader"), dashboard), end_offsets(dashboard)
    )
    return lags
