"""Dead letters as values, and the pure functions `tap deadletter` is made of: ids, filters,
masking, previews, counting by kind of reason, and where and with which key a replay goes.

Nothing here talks to Kafka (see tapstack.deadletter.kafka); everything here is unit-tested.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath

from tapstack.deadletter import gaps
from tapstack.deadletter import headers as h


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic: where it sits there, its key, value and headers."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record) -> DeadLetter:
        """From a kafka-python ConsumerRecord."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=h.decode(record.headers),
        )

    @property
    def id(self) -> str:
        """What the user types: the dead letter's partition and offset, "1/42"."""
        return f"{self.partition}/{self.offset}"

    @property
    def address(self) -> str:
        """The id with the topic, unique across topics: "Topic_DeadLetter/1/42"."""
        return f"{self.topic}/{self.id}"

    @property
    def stage(self) -> str:
        return self.headers.get(h.STAGE, "")

    @property
    def reason(self) -> str:
        return self.headers.get(h.REASON, "")

    @property
    def source_topic(self) -> str | None:
        return self.headers.get(h.SOURCE_TOPIC) or None

    @property
    def source_file(self) -> str | None:
        return self.headers.get(h.SOURCE_FILE) or None

    @property
    def source_partition(self) -> int | None:
        return _int(self.headers.get(h.SOURCE_PARTITION))

    @property
    def source_offset(self) -> int | None:
        return _int(self.headers.get(h.SOURCE_OFFSET))

    @property
    def time(self) -> datetime:
        """When it was dead-lettered: the Kafka record's timestamp, set as it was sent (the
        same clock for every stage; tap.error.time says when the stage judged the record)."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def source(self) -> str:
        """Where the failed record came from, in one short phrase."""
        if self.source_topic:
            return f"{self.source_topic} {self.source_partition}/{self.source_offset}"
        if self.source_file:
            return f"{PurePath(self.source_file).name} @{self.source_offset}"
        return "?"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# -- ids -------------------------------------------------------------------------------------

_ID = re.compile(r"^\s*(\d+)\s*[/:]\s*(\d+)\s*$")


def parse_id(text: str) -> tuple[int, int]:
    """ "1/42" (or "1:42") -> (partition 1, offset 42); ValueError otherwise."""
    match = _ID.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a dead-letter id: partition/offset, e.g. 0/42")
    return int(match[1]), int(match[2])


# -- masking and previews --------------------------------------------------------------------

# Anything shaped local@domain, without asking for a valid address: a preview must not show
# half-broken addresses either (the dead-letter topic holds raw lines, e-mail and all). The
# parts are bounded by the longest an address may have (64 @ 255).
_EMAIL_CHAR = r"[^\s\"'<>()\[\]{},;:\\@]"
_LOCAL = re.compile(_EMAIL_CHAR + "{1,64}$")  # searched up to the "@" (endpos)
_DOMAIN = re.compile(_EMAIL_CHAR + "{1,255}")
# A preview looks at no more of a value than can reach its first `width` characters: an
# address running over the cut is still whole in this much, and so is masked.
_PREVIEW_MARGIN = 64 + 1 + 255
MASK = "***@***"


def mask_emails(text: str) -> str:
    """Each address replaced by MASK. The search starts from each "@", not from each
    character: one regex over a megabyte line took seconds, this takes its length once."""
    out, done = [], 0
    at = text.find("@")
    while at >= 0:
        local = _LOCAL.search(text, max(done, at - 64), at)
        domain = _DOMAIN.match(text, at + 1)
        if local and domain:
            out += [text[done : local.start()], MASK]
            done = domain.end()
            at = text.find("@", done)
        else:
            at = text.find("@", at + 1)
    out.append(text[done:])
    return "".join(out)


def printable(value: bytes | None) -> str:
    """Bytes as text a terminal shows safely: UTF-8 as is, other bytes and control
    characters escaped (\\xNN, \\n)."""
    if value is None:
        return ""
    text = value.decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def preview(value: bytes | None, width: int = 60) -> str:
    """A one-line glimpse of a value, e-mails masked before it is cut (no half address)."""
    head = (value or b"")[: 4 * (width + _PREVIEW_MARGIN)]  # 4: the longest UTF-8 character
    text = " ".join(mask_emails(printable(head)).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def pretty_value(value: bytes | None, mask: bool = False) -> str:
    """The whole value: indented JSON when it is JSON, else its bytes escaped."""
    try:
        text = json.dumps(json.loads(value or b""), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        text = printable(value)
    return mask_emails(text) if mask else text


# -- filtering and selecting -----------------------------------------------------------------


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is the machine's local time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.astimezone()


def matches(
    letter: DeadLetter,
    stage: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
) -> bool:
    """stage: exactly (any case); reason: a part of the reason text (any case); since: at or
    after that moment."""
    if stage and letter.stage.lower() != stage.lower():
        return False
    if reason and reason.lower() not in letter.reason.lower():
        return False
    return not (since and letter.time < since)


def select(
    letters: Iterable[DeadLetter],
    stage: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """The letters that match, oldest first; with limit, the newest `limit` of them."""
    chosen = sorted(
        (d for d in letters if matches(d, stage, reason, since)),
        key=lambda d: (d.time, d.partition, d.offset),
    )
    return chosen[-limit:] if limit else chosen


def by_ids(letters: Iterable[DeadLetter], ids: Iterable[str]) -> list[DeadLetter]:
    """The letters with these ids, in the order given; KeyError names an id that is not there."""
    index = {(d.partition, d.offset): d for d in letters}
    chosen = []
    for text in ids:
        position = parse_id(text)
        if position not in index:
            raise KeyError(f"no dead letter {position[0]}/{position[1]}")
        chosen.append(index[position])
    return chosen


# -- counting --------------------------------------------------------------------------------

# A number in a reason is a size or an id that differs from record to record; counting by it
# would give a row per record. Kept: single digits (the contract's bounds, "below 1") and the
# number of a named standard ("ISO 8601").
_NUMBER = re.compile(r"(?<![A-Z] )\b\d{2,}(?:\.\d+)?\b")
# A quote opens after a non-letter and closes before one: "field's" is no quote.
_QUOTED = re.compile(r"(?<!\w)'[^']*'(?!\w)|(?<!\w)\"[^\"]*\"(?!\w)")


def reason_kinds(reason: str) -> list[str]:
    """The kinds of problem in one reason: the Spark stages list several, "; " between them;
    the varying parts (numbers, quoted values) are replaced, so like problems count together."""
    kinds = []
    for part in reason.split("; "):
        kind = _NUMBER.sub("N", _QUOTED.sub("'…'", mask_emails(part.strip())))
        kind = gaps.reason_kind(kind)  # a gap's offsets and counts, single digits too
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds or ["(no reason given)"]


def count(letters: Iterable[DeadLetter], replayed: Set[str] = frozenset()) -> list[dict]:
    """Rows of stage, reason kind, dead letters and how many of them were replayed, the
    largest first. A letter with several problems counts once under each of them."""
    total: Counter[tuple[str, str]] = Counter()
    done: Counter[tuple[str, str]] = Counter()
    for letter in letters:
        for kind in reason_kinds(letter.reason):
            total[(letter.stage, kind)] += 1
            done[(letter.stage, kind)] += ledger_key(letter) in replayed
    rows = [
        {"stage": stage, "reason": kind, "count": n, "replayed": done[(stage, kind)]}
        for (stage, kind), n in total.items()
    ]
    return sorted(rows, key=lambda r: (-r["count"], r["stage"], r["reason"]))


# -- replaying -------------------------------------------------------------------------------


def ledger_key(letter: DeadLetter) -> str:
    """What makes two dead letters the same failure, so that it is replayed once: the stage
    and the exact bytes that failed there.

    The same bytes come to a stage's dead letter again when it runs again after a restart (at
    least once), when the collector re-sends a batch, and when a record replayed as it was
    fails again; each is the failure already seen. Positions would not do: a rotated log
    reuses its byte offsets, a topic made anew its offsets, and a replay has a new one.
    Two events never share their bytes (each has its own event_id), so bytes that are the
    same are the same event.
    """
    return f"{letter.stage}|{hashlib.sha256(letter.value or b'').hexdigest()}"


def replay_topic(letter: DeadLetter, purchase_topic: str) -> str:
    """Where a replay goes: back to the topic the record was read from; the collector's
    lines, read from the log, go where the collector would have sent them."""
    if letter.source_topic:
        return letter.source_topic
    if letter.stage == h.COLLECTOR:
        return purchase_topic
    raise ValueError(f"dead letter {letter.id} names no source topic: nowhere to replay it to")


def order_key(value: bytes | None) -> bytes | None:
    """The order id as every order topic keys it, when the value is a JSON object with one."""
    try:
        order_id = json.loads(value or b"").get("order_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        return str(order_id).encode()
    return None


def replay_key(original: bytes | None, value: bytes | None) -> bytes | None:
    """The key of a replay: the order id of the value sent when it has one (so the record
    joins its order's partition, as the collector would key it, also when a fix changed the
    id), else the dead letter's own key."""
    return order_key(value) or original


def corrected_value(text: bytes) -> bytes:
    """A value file's content as the record to send: a JSON value is sent compact, one line,
    as the shop writes it; anything else as it is, less the newline an editor adds.

    A repeated key is refused: json.loads would keep one of them in silence.
    """

    def no_repeats(pairs):
        names = [name for name, _ in pairs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"the value file repeats the key {', '.join(repeated)}")
        return dict(pairs)

    try:
        parsed = json.loads(text, object_pairs_hook=no_repeats)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return text.removesuffix(b"\n").removesuffix(b"\r")
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
