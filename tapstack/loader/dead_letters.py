"""The headers of a dead-letter record, as every stage writes them.

Spark's stages build the same list in spark/tap_spark/kafka_io.py (dead_letter_headers) and the
Logstash pipeline in logstash/pipeline/tap.conf (message_headers): the reason, the stage, where
the record came from, and when it was judged, in that order. The value of a dead letter is the
original record, untouched. A stage that reads a file rather than a topic (the collector) names
the file instead of a topic and partition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tapstack.deadletter import headers as names

# The header names, from the one place that names them (tapstack/deadletter/headers.py).
REASON = names.REASON
STAGE = names.STAGE
TOPIC = names.SOURCE_TOPIC
PARTITION = names.SOURCE_PARTITION
OFFSET = names.SOURCE_OFFSET
FILE = names.SOURCE_FILE
TIME = names.TIME


def error_time(now: datetime | None = None) -> str:
    """UTC with milliseconds, as Spark's `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` in a UTC session."""
    return names.format_time(now or datetime.now(UTC))


def headers(
    reason: str,
    stage: str,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    file: str | None = None,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """Kafka headers for one dead letter: the source is a topic position or a file offset."""
    pairs: list[tuple[str, object]] = [(REASON, reason), (STAGE, stage)]
    if file is not None:
        pairs.append((FILE, file))
    else:
        pairs += [(TOPIC, topic), (PARTITION, partition)]
    pairs += [(OFFSET, offset), (TIME, error_time(now))]
    return [(key, str(value).encode("utf-8")) for key, value in pairs if value is not None]
