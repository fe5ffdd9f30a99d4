"""Records that expire past retention before a consumer reads them are reported, not skipped:
the pure rules, then the loader and a Spark stage (micro-batch and real-time) on the real
broker, each with a scratch topic whose retention is cut to expire a stopped consumer's backlog.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from tap_spark.retention import lost, offsets, resume_offsets
from tapstack import contracts, kafka_clients
from tapstack.deadletter import gaps
from tapstack.deadletter import headers as h
from tapstack.deadletter.records import DeadLetter, count
from tapstack.native import engines as native_engines
from tapstack.native.kafka import admin
from tests.test_loader_delivery import (  # noqa: F401  (make_flow is a fixture)
    _wait_for_topics,
    assert_absent,
    assert_loaded,
    make_flow,
    order,
)

TIMEOUT = 180
WEEK_MS = str(7 * 24 * 3600 * 1000)

# ── the rules (pure) ────────────────────────────────────────────────────────────────────────


def test_a_gap_is_where_the_next_offset_lies_below_the_log_start():
    found = gaps.expired({("T", 0): 3, ("T", 1): 5, ("T", 2): 9}, {("T", 0): 8, ("T", 1): 5})
    assert found == [gaps.Gap("T", 0, 3, 7)]
    assert found[0].records == 5


def test_a_gap_dead_letter_says_what_was_lost_with_the_common_headers():
    gap = gaps.Gap("Topic_Dashboard", 1, 40, 44)
    reason = gap.reason("loader")
    assert reason == (
        "expired past retention before loader read it: Topic_Dashboard[1] offsets 40..44, 5 records"
    )
    assert reason.startswith(gaps.GAP_REASON_PREFIX)
    headers = h.decode(gap.headers("loader"))
    assert headers[h.REASON] == reason
    assert headers[h.STAGE] == "loader"
    assert (headers[h.SOURCE_TOPIC], headers[h.SOURCE_PARTITION]) == ("Topic_Dashboard", "1")
    assert headers[h.SOURCE_OFFSET] == "40"
    assert h.TIME in headers
    assert json.loads(gap.value())["gap"]["records"] == 5
    assert gaps.is_gap(gap.value())
    assert not gaps.is_gap(b'{"order_id": 1}') and not gaps.is_gap(b"not json")


def test_gaps_are_counted_by_stage_and_reason():
    letters = [
        _letter(gaps.Gap("T", 0, 3, 7), "loader"),
        _letter(gaps.Gap("T", 1, 100, 199), "loader"),
        _letter(gaps.Gap("T", 0, 3, 7), "behaviour"),
    ]
    rows = {(r["stage"], r["reason"]): r["count"] for r in count(letters)}
    kind = "expired past retention before loader read it: T[N] offsets N..N, N records"
    assert rows[("loader", kind)] == 2
    assert rows[("behaviour", kind.replace("loader", "behaviour"))] == 1


def test_a_spark_batch_that_read_fewer_rows_than_its_offsets_span_lost_the_first_ones():
    start = offsets('{"T": {"0": 3, "1": 10}}')
    end = offsets('{"T": {"0": 10, "1": 12}}')
    # 9 offsets spanned, 4 rows read: offsets 3..7 of partition 0 had expired (log start 8).
    assert lost(start, end, 4, {("T", 0): 8, ("T", 1): 0}) == [gaps.Gap("T", 0, 3, 7)]
    assert lost(start, end, 9, {("T", 0): 8, ("T", 1): 0}) == [], "all read: expired later"
    # The log start has moved on since, past records the batch did read: only the missing.
    assert lost(start, end, 6, {("T", 0): 10, ("T", 1): 0}) == [gaps.Gap("T", 0, 3, 5)]
    assert offsets(None) == {}
    assert offsets("None") == {}, "a first batch's start, as PySpark's listener passes it on"
    # Offsets 3..7 were reported as a gap when the stage resumed: not counted again.
    assert lost(start, end, 4, {("T", 0): 8}, reported={("T", 0): 8}) == []
    assert lost(start, end, 3, {("T", 0): 9}, reported={("T", 0): 8}) == [gaps.Gap("T", 0, 8, 8)]


def _letter(gap: gaps.Gap, stage: str) -> DeadLetter:
    return DeadLetter("Topic_DeadLetter", 0, 0, 0, None, gap.value(), h.decode(gap.headers(stage)))


# ── on the real broker ──────────────────────────────────────────────────────────────────────


def _produce(topic: str, values: list[bytes], partition: int = 0) -> list[int]:
    producer = KafkaProducer(**kafka_clients.config(), acks="all")
    try:
        futures = [producer.send(topic, value=v, partition=partition) for v in values]
        producer.flush()
        return [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close()


def _set_retention(topic: str, retention_ms: str) -> None:
    client = admin()
    try:
        configs = {"retention.ms": retention_ms, "segment.ms": "100"}
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        client.close()


def _log_start(topic: str, partition: int) -> int:
    consumer = KafkaConsumer(**kafka_clients.config())
    try:
        tp = TopicPartition(topic, partition)
        return consumer.beginning_offsets([tp])[tp]
    finally:
        consumer.close()


def _expire(topic: str, partition: int, end: int) -> None:
    """Cut the topic's retention until the broker's log start offset passed `end` (every
    record so far has expired), then give it back a week."""
    _set_retention(topic, "100")
    deadline = time.monotonic() + TIMEOUT
    while _log_start(topic, partition) < end:
        assert time.monotonic() < deadline, f"{topic}[{partition}] did not expire"
        time.sleep(0.5)
    _set_retention(topic, WEEK_MS)


def _gap_letters(records, source_topic: str) -> list[DeadLetter]:
    letters = [DeadLetter.from_record(r) for r in records]
    return [d for d in letters if d.source_topic == source_topic and gaps.is_gap(d.value)]


def _read(topic: str) -> list:
    from tapstack.deadletter.kafka import read_topic

    return read_topic(topic)


def test_records_expired_before_the_loader_read_them_are_one_gap_dead_letter(make_flow):  # noqa: F811
    flow = make_flow()
    topic = flow.names.topic
    first = [order() for _ in range(3)]
    _produce(topic, [orjson.dumps(r) for r in first])
    running = flow.start()
    flow.wait(flow.caught_up, "the first records committed", running)
    running.stop()

    expired = [order() for _ in range(5)]
    offsets_lost = _produce(topic, [orjson.dumps(r) for r in expired])
    assert offsets_lost == [3, 4, 5, 6, 7]
    _expire(topic, 0, end=8)
    later = [order() for _ in range(2)]
    _produce(topic, [orjson.dumps(r) for r in later])

    running = flow.start()
    flow.wait(flow.caught_up, "the later records committed", running)
    assert_loaded(flow, first + later)
    for r in expired:
        assert_absent(flow, r["order_id"])
    [letter] = _gap_letters(_read(flow.names.dead_letter), topic)
    assert letter.reason == gaps.Gap(topic, 0, 3, 7).reason("loader")
    assert (letter.stage, letter.source_partition, letter.source_offset) == ("loader", 0, 3)
    assert json.loads(letter.value)["gap"]["records"] == 5
    assert running.loader.expired == 5


def test_records_expired_before_a_loader_that_never_committed_read_them_are_a_gap(make_flow):  # noqa: F811
    """A loader that was assigned its partitions but had read nothing yet when it went down:
    the group's offsets were committed on assignment, so the reset to earliest on its return
    does not hide the records that expired meanwhile."""
    flow = make_flow()
    topic = flow.names.topic
    partitions = contracts.settings()["topics"]["partitions"]
    running = flow.start()
    flow.wait(
        lambda: len(flow.committed()) == partitions, "offsets committed on assignment", running
    )
    running.stop()
    assert flow.committed() == dict.fromkeys(range(partitions), 0)

    expired = [order() for _ in range(4)]
    assert _produce(topic, [orjson.dumps(r) for r in expired]) == [0, 1, 2, 3]
    _expire(topic, 0, end=4)
    later = [order() for _ in range(2)]
    _produce(topic, [orjson.dumps(r) for r in later])

    running = flow.start()
    flow.wait(flow.caught_up, "the later records committed", running)
    assert_loaded(flow, later)
    for r in expired:
        assert_absent(flow, r["order_id"])
    [letter] = _gap_letters(_read(flow.names.dead_letter), topic)
    assert letter.reason == gaps.Gap(topic, 0, 0, 3).reason("loader")
    assert running.loader.expired == 4


def _checkpointed(folder: Path) -> dict[tuple[str, int], int]:
    """The source offsets of the last batch the query committed (offsets/N, commits/N)."""
    return resume_offsets(folder) if folder.exists() else {}


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


class _Stage:
    """tests/support/copy_stage.py as a process: the jobs' source, sink and retention watch."""

    def __init__(self, source: str, target: str, trigger: str, run_dir: Path):
        self.args = [sys.executable, "-m", "tests.support.copy_stage", source, target]
        self.stage = "process_orders"  # a stage name the dead-letter headers know
        self.env = {
            **os.environ,
            "TAP_TRIGGER": trigger,
            "TAP_CHECKPOINT_DIR": str(run_dir / "checkpoints"),
            "TAP_SPARK_JARS": str(native_engines.spark_kafka_dir()),
            "TAP_KAFKA_BOOTSTRAP": contracts.kafka_bootstrap(),
            "PYTHONUNBUFFERED": "1",
        }
        self.checkpoint = run_dir / "checkpoints" / self.stage
        self.log = run_dir / "stage.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.args, self.stage],
                env=self.env,
                cwd=contracts.ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the Spark JVM is a child of it
            )

    def stop(self) -> None:
        """SIGTERM to the stage's process group, then wait until the JVM is gone as well:
        it outlives the Python process for a moment and may plan one more batch."""
        if self.process is None:
            return
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        self.process.wait(timeout=90)
        deadline = time.monotonic() + 90
        while _group_alive(group):
            if time.monotonic() > deadline:
                os.killpg(group, signal.SIGKILL)
            time.sleep(0.2)
        self.process = None

    def wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert self.process is not None and self.process.poll() is None, (
                f"the stage exited while waiting for {what}:\n{self.log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)


@pytest.mark.spark
@pytest.mark.parametrize("trigger", ["0 seconds", "real-time 5 seconds"])
@pytest.mark.parametrize("later", ["before the restart", "after the restart"])
def test_records_expired_before_a_spark_stage_read_them_are_one_gap_dead_letter(
    engines, tmp_path, trigger, later
):
    stamp = uuid.uuid4().hex[:10]
    source, target = f"RetentionTest{stamp}_In", f"RetentionTest{stamp}_Out"
    partitions = contracts.settings()["topics"]["partitions"]
    client = admin()
    try:
        client.create_topics([NewTopic(t, partitions, 1) for t in (source, target)])
    finally:
        client.close()
    _wait_for_topics([source, target], partitions)
    stage = _Stage(source, target, trigger, tmp_path)
    values = [f"record {n}".encode() for n in range(10)]
    try:
        _produce(source, values[:3])
        stage.start()
        stage.wait(lambda: _checkpointed(stage.checkpoint).get((source, 0)) == 3, "a checkpoint")
        stage.stop()

        assert _produce(source, values[3:8]) == [3, 4, 5, 6, 7]
        _expire(source, 0, end=8)
        if later == "before the restart":
            _produce(source, values[8:])

        stage.start()
        dead_letter = contracts.topic("dead_letter")
        stage.wait(lambda: _gap_letters(_read(dead_letter), source), "the gap's dead letter")
        if later == "after the restart":
            _produce(source, values[8:])
        stage.wait(lambda: len(_read(target)) >= 5, "the later records copied")
        stage.stop()

        assert sorted(r.value for r in _read(target)) == sorted(values[:3] + values[8:])
        [letter] = _gap_letters(_read(dead_letter), source)
        assert letter.reason == gaps.Gap(source, 0, 3, 7).reason("process_orders")
        assert (letter.stage, letter.source_partition, letter.source_offset) == (
            "process_orders",
            0,
            3,
        )
        assert "expired past retention before process_orders" in stage.log.read_text()
    finally:
        stage.stop()
        client = admin()
        try:
            client.delete_topics([source, target])
        finally:
            client.close()


def test_a_gap_dead_letter_is_never_replayed():
    """tap deadletter replay has nothing to send for a gap: its value is the report."""
    from tapstack.deadletter.replay import plan

    [only] = plan([_letter(gaps.Gap("Topic_Purchase", 0, 3, 7), "process_orders")], {}, "P")
    assert only.skip and "retention" in only.skip


def test_every_python_stage_writes_the_same_dead_letter_headers():
    """The loader's helper and the shared one give the same headers (names, values, time)."""
    from datetime import UTC, datetime

    from tapstack.loader import dead_letters

    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    where = {"topic": "T", "partition": 0, "offset": 1, "now": now}
    loader = dict(dead_letters.headers("r", "loader", **where))
    shared = dict(h.dead_letter_headers("loader", "r", **where))
    assert loader == shared
