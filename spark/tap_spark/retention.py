"""Records that expired past retention before a Spark stage read them: reported, not skipped.

The jobs read with failOnDataLoss=false, so a query goes on past a gap (a stopped stage must
not stay down because its backlog aged out); this listener makes the gap visible: one dead
letter per gap, an ERROR line and a row of `tap deadletter count` (tapstack.deadletter.gaps).

How a gap is found, and why this way. Each progress event of the query says, per source,
where the batch started and ended (startOffset, endOffset: {topic: {partition: offset}}) and
how many rows the source gave (numInputRows). The jobs' input topics are written without
transactions and never compacted, so every offset in start..end is one record, and a batch
that gave fewer rows than end - start lost the difference: the records that expired before
its reader reached them (Spark's Kafka reader skips to the earliest offset it still finds).
That count comes from what the batch really read, so it is exact in both trigger modes (a
real-time batch reports its progress when its interval ends, like a micro-batch) and it never
flags records that were read and expired later. Comparing offsets alone (a checkpoint's or a
progress's against the broker's earliest, sampled after the fact) could not tell those two
apart. The lost records are the first ones of a partition's range (retention deletes from the
log's start), so the broker's log start offset, asked then, says which partitions they were in.

One case gives no progress event: Spark 4.1.1's micro-batch Kafka source fails the query while
it reports the progress of a batch planned by an earlier run (KafkaMicroBatchStream.metrics
wraps a latest-offsets map that only latestOffset() sets, null in a run that never called it:
an NPE at KafkaMicroBatchStream.scala:520). So before the query starts, the watch also
compares where the checkpoint will resume (the offsets of its last committed batch) with the
broker's log start offsets: nothing has been read yet then, and a log start never moves back,
so every offset below it is certainly lost to this stage. Offsets reported once are not
reported again by a later batch.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from pyspark.sql.streaming import StreamingQueryListener

from tapstack import contracts, kafka_clients
from tapstack.deadletter import gaps as retention

log = logging.getLogger("tap.retention")

Offsets = dict[tuple[str, int], int]


def offsets(text: str | None) -> Offsets:
    """A Kafka source's offsets JSON ({"topic": {"0": 12}}) as {(topic, partition): offset}.

    A first batch has no start offset, and PySpark hands its null on as the text "None"
    (SourceProgress.fromJObject: str(jprogress.startOffset()), pyspark/sql/streaming/
    listener.py in 4.1)."""
    if not text or text == "None":
        return {}
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        return {}
    return {
        (topic, int(partition)): int(offset)
        for topic, by_partition in parsed.items()
        if isinstance(by_partition, dict)
        for partition, offset in by_partition.items()
    }


def resume_offsets(checkpoint: Path) -> Offsets:
    """Where a query restarted from this checkpoint reads first: the end offsets of its last
    committed batch (a batch planned after it runs again from there); {} for a new query."""
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")]
    if not commits:
        return {}
    lines = (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    return offsets(lines[2]) if len(lines) > 2 else {}


def lost(
    start: Offsets, end: Offsets, rows: int, log_starts: Offsets, reported: Offsets | None = None
) -> list[retention.Gap]:
    """The gaps of one batch: rows fewer than its offsets span, placed at the start of the
    partitions whose log start offset passed the batch's start. reported: per partition, the
    offset up to which (exclusive) a gap was reported already; those are neither counted nor
    reported again."""
    reported = reported or {}
    missing = sum(max(0, end.get(p, s) - s) for p, s in start.items()) - rows
    shifted = {}
    for part, first in start.items():
        skip = max(0, min(reported.get(part, first), end.get(part, first)) - first)
        missing -= skip
        shifted[part] = first + skip
    gaps = []
    for part, first in sorted(shifted.items()):
        if missing <= 0:
            break
        ceiling = min(log_starts.get(part, first), end.get(part, first))
        count = min(ceiling - first, missing)
        if count > 0:
            gaps.append(retention.Gap(part[0], part[1], first, first + count - 1))
            missing -= count
    return gaps


class RetentionWatch(StreamingQueryListener):
    """Reports the gaps of the query named query_name, as stage, on dead_letter."""

    def __init__(self, stage: str, query_name: str, dead_letter: str | None = None):
        self.stage = stage
        self.query_name = query_name
        self.dead_letter = dead_letter or contracts.topic("dead_letter")
        self._clients = None
        self._lock = threading.Lock()
        self.reported: Offsets = {}  # partition -> end (exclusive) of the gaps reported
        self.resume_gaps: list[retention.Gap] = []  # found before the query started

    def check_resume(self, checkpoint: Path) -> list[retention.Gap]:
        """Before the query starts: report what expired below where it will resume."""
        resume = resume_offsets(checkpoint) if checkpoint.exists() else {}
        if not resume:
            return []
        consumer, _ = self._kafka()
        found = retention.expired(resume, retention.log_start_offsets(consumer, resume))
        self._report(found)
        self.resume_gaps = found
        return found

    def _report(self, found: list[retention.Gap]) -> None:
        if not found:
            return
        _, producer = self._kafka()
        futures = retention.report(producer, self.dead_letter, self.stage, found)
        producer.flush()
        for future in futures:
            future.get(timeout=60)
        for gap in found:
            part = (gap.topic, gap.partition)
            self.reported[part] = max(self.reported.get(part, 0), gap.last + 1)

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        if progress.name != self.query_name:
            return
        try:
            for source in progress.sources:
                self._check(offsets(source.startOffset), offsets(source.endOffset), source)
        except Exception:  # a failed report must be seen, but it must not stop the listener bus
            log.exception(
                "could not check batch %s for records lost past retention", progress.batchId
            )

    def _check(self, start: Offsets, end: Offsets, source) -> None:
        span = sum(max(0, end.get(p, s) - s) for p, s in start.items())
        if not start or span <= int(source.numInputRows):
            return
        consumer, _ = self._kafka()
        log_starts = retention.log_start_offsets(consumer, start)
        self._report(lost(start, end, int(source.numInputRows), log_starts, self.reported))

    def _kafka(self):
        """The watch's own consumer (for log start offsets) and producer, made once."""
        from kafka import KafkaConsumer, KafkaProducer

        with self._lock:
            if self._clients is None:
                self._clients = (
                    KafkaConsumer(**kafka_clients.config()),
                    KafkaProducer(**kafka_clients.config(), acks="all"),
                )
            return self._clients


def watch(
    spark, stage: str, query_name: str, checkpoint: Path, dead_letter: str | None = None
) -> RetentionWatch:
    """Before a query starts: report the gaps below where its checkpoint resumes, and attach a
    RetentionWatch for the batches to come (returned so a caller can remove it)."""
    listener = RetentionWatch(stage, query_name, dead_letter)
    listener.check_resume(checkpoint)
    spark.streams.addListener(listener)
    return listener
