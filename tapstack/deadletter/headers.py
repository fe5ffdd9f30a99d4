"""The dead-letter headers, named once: every stage writes them, `tap deadletter` reads them.

A dead letter keeps the failed record's bytes untouched as its value (and its key, where it had
one); why and where it failed travel as Kafka headers, UTF-8 text each:

    tap.error.reason      what is wrong, in words ("; " between several problems)
    tap.error.stage       the stage that gave up on it: collector, process_orders, behaviour, loader
    tap.error.time        when, ISO 8601 with milliseconds and offset
    tap.source.topic      the topic the record was read from (absent for the collector)
    tap.source.partition  its partition there
    tap.source.offset     its offset there; for the collector, the byte offset of the line
    tap.source.file       the collector only: the log file the line was read from

A record sent back by `tap deadletter replay` carries two more, so it can be traced:

    tap.replay.of         the dead letter it replays, "<dead-letter topic>/<partition>/<offset>"
    tap.replay.time       when it was replayed
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

REASON = "tap.error.reason"
STAGE = "tap.error.stage"
TIME = "tap.error.time"
SOURCE_TOPIC = "tap.source.topic"
SOURCE_PARTITION = "tap.source.partition"
SOURCE_OFFSET = "tap.source.offset"
SOURCE_FILE = "tap.source.file"
REPLAY_OF = "tap.replay.of"
REPLAY_TIME = "tap.replay.time"

# The stages, as they name themselves in tap.error.stage.
COLLECTOR = "collector"
PROCESS_ORDERS = "process_orders"
BEHAVIOUR = "behaviour"
LOADER = "loader"
STAGES = (COLLECTOR, PROCESS_ORDERS, BEHAVIOUR, LOADER)

# The same pattern as the Spark stages' date_format(current_timestamp(), ...), so that every
# stage's tap.error.time reads alike.
SPARK_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

Headers = list[tuple[str, bytes]]


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and "Z", as Spark's SSSXXX writes a UTC time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_headers(
    stage: str,
    reason: str,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    file: str | None = None,
    now: datetime | None = None,
) -> Headers:
    """The header list of one dead letter from a Python stage (collector, loader).

    Give topic and partition for a record read from Kafka, file for a line read from a log;
    offset in both cases. A source left out is left out of the headers, not sent empty.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    pairs: list[tuple[str, object]] = [
        (REASON, reason),
        (STAGE, stage),
        (TIME, format_time(now or datetime.now(UTC))),
        (SOURCE_TOPIC, topic),
        (SOURCE_PARTITION, partition),
        (SOURCE_OFFSET, offset),
        (SOURCE_FILE, file),
    ]
    return [(name, str(value).encode()) for name, value in pairs if value is not None]


def replay_headers(dead_letter_id: str, now: datetime | None = None) -> Headers:
    """The headers a replayed record carries: which dead letter it replays, and when."""
    return [
        (REPLAY_OF, dead_letter_id.encode()),
        (REPLAY_TIME, format_time(now or datetime.now(UTC)).encode()),
    ]


def decode(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka headers as text; the last of a repeated name wins, bytes that are not UTF-8 are
    escaped (a header is never lost to its encoding)."""
    out: dict[str, str] = {}
    for name, value in headers or ():
        out[name] = (value or b"").decode("utf-8", "backslashreplace")
    return out
