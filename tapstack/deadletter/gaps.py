"""Records that expired past retention before a consumer read them: found, dead-lettered, logged.

Every consumer of the pipeline (the loader, both Spark stages) reports such a gap instead of
skipping it in silence. One gap is one partition's run of offsets first..last that the
consumer was due to read next but the broker no longer holds (its log start offset passed
them). It becomes:

- one dead letter on Topic_DeadLetter with the headers every dead letter has
  (tapstack.deadletter.headers): tap.error.reason as GAP_REASON below, tap.error.stage the
  consumer, tap.source.topic/partition the partition and tap.source.offset the first lost
  offset; its value is a JSON object {"gap": {"topic", "partition", "first", "last",
  "records"}} (the lost records' bytes are gone), its key None;
- one log line at ERROR on logger "tap.retention";
- a row of `tap deadletter count` (stage, reason kind), with no extra code: the reason's
  numbers are folded there like any other's.

Interface for other code (the fault suite): `Gap`, `expired(next_offsets, log_starts)`,
`log_start_offsets(consumer, parts)`, `report(producer, dead_letter_topic, stage, gaps)`, and
`is_gap(value)` to tell a gap's dead letter from a record's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tapstack.deadletter import headers as h

log = logging.getLogger("tap.retention")

GAP_REASON = "expired past retention before {stage} read it: {topic}[{partition}] offsets {first}..{last}, {records} records"  # noqa: E501
# What every gap's reason starts with (for filters and the fault suite).
GAP_REASON_PREFIX = "expired past retention before "

Partition = tuple[str, int]  # (topic, partition)
_GAP_NUMBERS = re.compile(r"\[\w+\] offsets \w+\.\.\w+, \w+ records$")


@dataclass(frozen=True)
class Gap:
    topic: str
    partition: int
    first: int  # the first offset lost
    last: int  # the last offset lost (inclusive)

    @property
    def records(self) -> int:
        return self.last - self.first + 1

    def reason(self, stage: str) -> str:
        return GAP_REASON.format(
            stage=stage,
            topic=self.topic,
            partition=self.partition,
            first=self.first,
            last=self.last,
            records=self.records,
        )

    def value(self) -> bytes:
        """The dead letter's value: the gap itself, since the records' bytes are gone."""
        gap = {
            "topic": self.topic,
            "partition": self.partition,
            "first": self.first,
            "last": self.last,
            "records": self.records,
        }
        return json.dumps({"gap": gap}, sort_keys=True).encode()

    def headers(self, stage: str) -> h.Headers:
        return h.dead_letter_headers(
            stage,
            self.reason(stage),
            topic=self.topic,
            partition=self.partition,
            offset=self.first,
        )


def expired(
    next_offsets: Mapping[Partition, int], log_starts: Mapping[Partition, int]
) -> list[Gap]:
    """The gaps where the next offset to read lies below the partition's log start offset."""
    gaps = []
    for (topic, partition), nxt in sorted(next_offsets.items()):
        start = log_starts.get((topic, partition))
        if start is not None and nxt < start:
            gaps.append(Gap(topic, partition, nxt, start - 1))
    return gaps


def reason_kind(reason: str) -> str:
    """A gap's reason with its partition, offsets and count as N (so `tap deadletter count`
    gives one row per stage and topic); any other reason unchanged."""
    if not reason.startswith(GAP_REASON_PREFIX):
        return reason
    return _GAP_NUMBERS.sub("[N] offsets N..N, N records", reason)


def is_gap(value: bytes | None) -> bool:
    """Whether a dead letter's value is a gap report rather than a failed record."""
    try:
        parsed = json.loads(value or b"")
    except ValueError:
        return False
    return isinstance(parsed, dict) and set(parsed) == {"gap"} and isinstance(parsed["gap"], dict)


def log_start_offsets(consumer, parts: Iterable[Partition]) -> dict[Partition, int]:
    """The broker's log start offset of each partition (a kafka-python KafkaConsumer)."""
    from kafka import TopicPartition

    wanted = [TopicPartition(topic, partition) for topic, partition in parts]
    if not wanted:
        return {}
    found = consumer.beginning_offsets(wanted)
    return {(tp.topic, tp.partition): offset for tp, offset in found.items()}


def report(producer, dead_letter_topic: str, stage: str, gaps: Iterable[Gap]) -> list:
    """Log each gap at ERROR and send its dead letter; the send futures (the caller waits on
    them before it commits past the gap)."""
    futures = []
    for gap in gaps:
        log.error("%s", gap.reason(stage))
        futures.append(
            producer.send(
                dead_letter_topic, key=None, value=gap.value(), headers=gap.headers(stage)
            )
        )
    return futures
