"""Replaying dead letters without duplicates: the plan (pure), the ledger entries, the run.

The ledger is a compacted Kafka topic (settings topics.dead_letter_replays): one entry per
replayed failure, keyed by records.ledger_key, holding when and where it went. It lives with
the data it describes (same broker, same lifetime, same backups), is shared by everyone who
runs `tap deadletter`, survives restarts, and compaction keeps an entry per failure for as
long as the topic exists, whatever the retention of the other topics.

Order of a replay: the record is sent and acknowledged first, its ledger entry after. A crash
in between leaves no entry, so a later replay sends the record again, which the pipeline
absorbs (at least once, with idempotent ids: order document id = order id, same fingerprint).
The other order would lose a fix for good: a ledger entry for a record never sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tapstack.deadletter import gaps
from tapstack.deadletter import headers as h
from tapstack.deadletter.records import DeadLetter, ledger_key, replay_key, replay_topic


@dataclass(frozen=True)
class Plan:
    """What replaying one dead letter will do, or why it will not (skip)."""

    letter: DeadLetter
    topic: str | None = None
    key: bytes | None = None
    value: bytes | None = None
    corrected: bool = False
    skip: str | None = None


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    partition: int | None = None
    offset: int | None = None
    error: str | None = None

    @property
    def sent(self) -> bool:
        return self.offset is not None


class SendError(RuntimeError):
    """A record or ledger entry Kafka did not acknowledge."""


def plan(
    letters: Iterable[DeadLetter],
    ledger: dict[str, dict],
    purchase_topic: str,
    value: bytes | None = None,
) -> list[Plan]:
    """One plan per selected letter, in replay order (oldest first, so an order's events
    keep their order). value: the corrected value, for a selection of exactly one letter.

    A failure (records.ledger_key) goes back at most once as it was and at most once
    corrected: a failure replayed as it was can still be sent with a fix (its replay failed
    again, unchanged), one replayed corrected is not sent again (were that replay to fail, its
    own new dead letter is the one to fix). A second dead letter of the same failure in the
    selection is skipped too.
    """
    chosen = sorted(letters, key=lambda d: (d.time, d.partition, d.offset))
    if value is not None and len(chosen) != 1:
        raise ValueError(f"a corrected value replaces one record; {len(chosen)} are selected")
    plans, seen = [], {}
    for letter in chosen:
        key = ledger_key(letter)
        entry = ledger.get(key)
        if entry is not None and (value is None or entry.get("corrected")):
            plans.append(Plan(letter, skip=f"already replayed: {describe(entry)}"))
            continue
        if key in seen:
            plans.append(Plan(letter, skip=f"the same failure as {seen[key]}, replayed once"))
            continue
        seen[key] = letter.id
        if gaps.is_gap(letter.value):
            plans.append(Plan(letter, skip="records lost past retention: nothing left to send"))
            continue
        try:
            topic = replay_topic(letter, purchase_topic)
        except ValueError as exc:
            plans.append(Plan(letter, skip=str(exc)))
            continue
        sent = letter.value if value is None else value
        plans.append(
            Plan(
                letter,
                topic=topic,
                key=replay_key(letter.key, sent),
                value=sent,
                corrected=value is not None,
            )
        )
    return plans


def describe(entry: dict) -> str:
    """A ledger entry in words: "corrected, 2026-03-01T12:00:00.000Z to Topic_Purchase 0/7"."""
    to = entry.get("to", {})
    how = "corrected" if entry.get("corrected") else "as it was"
    where = f"{to.get('topic')} {to.get('partition')}/{to.get('offset')}"
    return f"{how}, {entry.get('replayed_at', '?')} to {where}"


def ledger_entry(p: Plan, partition: int, offset: int, now: datetime) -> dict:
    """What the ledger keeps of one replay."""
    return {
        "dead_letter": p.letter.address,
        "stage": p.letter.stage,
        "reason": p.letter.reason,
        "replayed_at": h.format_time(now),
        "to": {"topic": p.topic, "partition": partition, "offset": offset},
        "key": p.key.decode("utf-8", "backslashreplace") if p.key is not None else None,
        "corrected": p.corrected,
        "value_sha256": hashlib.sha256(p.value or b"").hexdigest(),
    }


def encode_entry(entry: dict) -> bytes:
    return json.dumps(entry, separators=(",", ":"), sort_keys=True).encode()


def read_ledger(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, dict]:
    """(key, value) pairs of the ledger topic, oldest first -> entry by ledger key; the last
    entry of a key wins (what compaction keeps), a tombstone forgets it."""
    entries: dict[str, dict] = {}
    for key, value in records:
        if key is None:
            continue
        name = key.decode("utf-8", "backslashreplace")
        if value is None:
            entries.pop(name, None)
            continue
        try:
            entries[name] = json.loads(value)
        except ValueError:
            entries[name] = {}  # unreadable, but there: the failure was replayed
    return entries


class Sender(Protocol):
    def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: h.Headers
    ) -> tuple[int, int]:
        """Send one record and wait for its acknowledgement: (partition, offset); SendError
        when it is not acknowledged."""

    def record(self, key: str, entry: bytes) -> None:
        """Write one ledger entry and wait for its acknowledgement."""


def execute(plans: Iterable[Plan], sender: Sender, now=lambda: datetime.now(UTC)) -> list[Outcome]:
    """Send the plans that are not skipped, each acknowledged before its ledger entry is
    written; a failure is reported for its record and the others still go."""
    outcomes = []
    for p in plans:
        if p.skip:
            outcomes.append(Outcome(p))
            continue
        try:
            partition, offset = sender.send(
                p.topic, p.key, p.value, h.replay_headers(p.letter.address, now())
            )
        except SendError as exc:
            outcomes.append(Outcome(p, error=f"not sent: {exc}"))
            continue
        try:
            entry = ledger_entry(p, partition, offset, now())
            sender.record(ledger_key(p.letter), encode_entry(entry))
        except SendError as exc:
            outcomes.append(Outcome(p, partition, offset, error=f"sent, not in the ledger: {exc}"))
            continue
        outcomes.append(Outcome(p, partition, offset))
    return outcomes
