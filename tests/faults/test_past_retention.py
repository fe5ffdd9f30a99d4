"""The loader down past retention: the Topic_Dashboard records it had not read expire (the
topic's retention cut to 100 ms until the broker's log start offset passed them). When it comes
back it must report the gap (tapstack.deadletter.gaps: a dead letter per partition with the
number of records lost), not skip it in silence, and load what came after.

The row's "lost" counts the expired orders: lost, but every one of them reported."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from tapstack import contracts
from tapstack.deadletter import gaps
from tapstack.deadletter import headers as h
from tapstack.native import kafka, processes, progress
from tests.support import kafka_io, tally

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]

N = 100
WEEK_MS = str(7 * 24 * 3600 * 1000)


def _retention(topic: str, retention_ms: str, segment_ms: str) -> None:
    client = kafka.admin()
    try:
        configs = {"retention.ms": retention_ms, "segment.ms": segment_ms}
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        client.close()


def _log_starts(topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**kafka_io.client_config())
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.beginning_offsets(parts).items()}
    finally:
        consumer.close()


def _expire(topic: str, ends: dict[int, int]) -> None:
    """Every record before `ends` gone from the broker; the topic's retention then a week."""
    _retention(topic, "100", "100")
    try:
        processes.wait_until(
            lambda: all(_log_starts(topic)[p] >= end for p, end in ends.items()),
            timeout=120,
            what=f"{topic} to expire",
        )
    finally:
        _retention(topic, WEEK_MS, WEEK_MS)


def test_the_loader_down_past_retention(pipeline, report):
    stack, run_dir = pipeline.stack, pipeline.stack.run_dir
    dashboard, group = contracts.topic("dashboard"), contracts.consumer_group("loader")
    # The loader must have committed on every partition before it goes down: a group with no
    # committed offset cannot tell expired records from none (a known limit, issue 15).
    warm_up = pipeline.simulate(40, seed=189)
    pipeline.append(warm_up)
    assert pipeline.wait_indexed([o.order_id for o in warm_up]) == len(warm_up)
    partitions = contracts.settings()["topics"]["partitions"]
    processes.wait_until(
        lambda: (
            len(progress.group_committed(group, dashboard)) == partitions
            and progress.lag(
                progress.group_committed(group, dashboard), progress.end_offsets(dashboard)
            )
            == 0
        ),
        timeout=120,
        what="the loader to catch up",
    )
    processes.stop(run_dir, "loader")
    committed = progress.group_committed(group, dashboard)
    expired_orders = pipeline.simulate(N, seed=190)
    pipeline.append(expired_orders)
    processes.wait_until(
        lambda: progress.lag(committed, progress.end_offsets(dashboard)) >= N,
        timeout=120,
        what="behaviour to write the orders to Topic_Dashboard",
    )
    ends = progress.end_offsets(dashboard)
    unread = progress.lag(committed, ends)
    _expire(dashboard, ends)

    later = pipeline.simulate(N, seed=191)
    pipeline.append(later)
    stack.start_process("loader")
    stack.wait_pipeline_ready(processes_=("loader",))
    figures = tally.tally(pipeline, later)

    def is_this_gap(d) -> bool:
        return (
            d.get(h.REASON, "").startswith(gaps.GAP_REASON_PREFIX)
            and d.get(h.STAGE) == h.LOADER
            and d.get(h.SOURCE_TOPIC) == dashboard
            and int(d[h.SOURCE_OFFSET]) >= committed.get(int(d[h.SOURCE_PARTITION]), 0)
        )

    letters = pipeline.wait_dead_letters(is_this_gap, expected=len(ends))
    reported = sum(json.loads(d["value"])["gap"]["records"] for d in letters)
    loaded_anyway = pipeline.count_orders([o.order_id for o in expired_orders])
    case = "loader down past retention (expired: reported)"
    report(
        case,
        2 * N,
        figures.found + loaded_anyway,
        N - loaded_anyway,
        figures.duplicated,
        len(letters),
        figures.stuck,
    )
    assert loaded_anyway == 0, "the expired orders were gone before the loader read them"
    assert reported == unread, f"{unread} records expired, {reported} reported"
    tally.assert_clean(case, figures, later)
