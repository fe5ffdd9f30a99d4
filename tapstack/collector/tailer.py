"""Tail the orders log into Topic_Purchase with Fluent Bit's guarantees.

- At least once: a position is saved only after Kafka acknowledged every line before it, so a
  crash re-sends at most the last batch (downstream writes are idempotent by order id).
- Only complete lines are shipped; a line written in two pieces waits for its newline.
- Rotation (rename + new file) drains the old file first, also across a restart (the rotated
  file is found by inode); truncation (copytruncate) starts over from the top.
- Lines too large for Kafka go whole to the dead-letter topic (up to a hard limit) with a reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from tapstack import contracts
from tapstack.collector.offsets import OffsetStore, Position

log = logging.getLogger("tap.collector")

MAX_MESSAGE_BYTES = 1_000_000  # the broker's default message.max.bytes, less headroom
MAX_DEAD_LETTER_BYTES = 15 * 2**20  # Topic_DeadLetter accepts up to 16 MiB
READ_CHUNK = 4 * 2**20


def order_key(line: bytes) -> bytes | None:
    """The Kafka key: the order id when the line is a JSON object that has one."""
    try:
        order_id = orjson.loads(line).get("order_id")
    except (ValueError, AttributeError):
        return None
    if isinstance(order_id, int) and not isinstance(order_id, bool):
        return str(order_id).encode()
    return None


def make_producer() -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=contracts.kafka_bootstrap(),
        client_id="tap-tailer",
        acks="all",
        linger_ms=5,
        retries=2**31 - 1,
        max_request_size=MAX_DEAD_LETTER_BYTES + 2**20,
        request_timeout_ms=30000,
        delivery_timeout_ms=120000,
    )


class Tailer:
    def __init__(
        self,
        log_path: Path,
        state_path: Path,
        producer_factory: Callable[[], KafkaProducer] = make_producer,
    ):
        self.log_path = Path(log_path)
        self.store = OffsetStore(state_path)
        self.position = self.store.load()
        self.producer = producer_factory()
        self.topic = contracts.topic("purchase")
        self.dead_letter = contracts.topic("dead_letter")
        self.shipped = 0

    # -- reading ---------------------------------------------------------------------------

    def _complete_lines(self, handle, final: bool) -> tuple[list[bytes], int]:
        """Complete lines from the saved offset, and the offset after the last one.

        final: the file will not grow again (rotated away), so a last line without its
        newline is complete as it stands.
        """
        handle.seek(self.position.offset)
        data = handle.read(READ_CHUNK)
        end = data.rfind(b"\n")
        if end < 0 and not (final and data):
            if len(data) >= READ_CHUNK:
                # One line longer than a chunk: read on until its end.
                return self._one_huge_line(handle, final)
            return [], self.position.offset
        body = data if (final and end < len(data) - 1) else data[: end + 1]
        lines = [line for line in body.split(b"\n") if line.strip()]
        return lines, self.position.offset + len(body)

    def _one_huge_line(self, handle, final: bool) -> tuple[list[bytes], int]:
        handle.seek(self.position.offset)
        parts, size = [], 0
        while True:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                if final and parts:
                    break
                return [], self.position.offset
            cut = chunk.find(b"\n")
            if cut >= 0:
                parts.append(chunk[: cut + 1])
                size += cut + 1
                break
            parts.append(chunk)
            size += len(chunk)
        return [b"".join(parts).rstrip(b"\n")], self.position.offset + size

    # -- shipping --------------------------------------------------------------------------

    def _ship(self, lines: list[bytes]) -> None:
        """Send lines and wait until Kafka has acknowledged all of them."""
        futures = []
        for line in lines:
            if len(line) <= MAX_MESSAGE_BYTES:
                futures.append(self.producer.send(self.topic, key=order_key(line), value=line))
                continue
            kept = line[:MAX_DEAD_LETTER_BYTES]
            reason = f"line of {len(line)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte message limit"
            if len(line) > MAX_DEAD_LETTER_BYTES:
                reason += f"; first {MAX_DEAD_LETTER_BYTES} bytes kept"
            headers = [
                ("tap.error.reason", reason.encode()),
                ("tap.error.stage", b"collector"),
                ("tap.source.file", str(self.log_path).encode()),
                ("tap.source.offset", str(self.position.offset).encode()),
            ]
            futures.append(self.producer.send(self.dead_letter, value=kept, headers=headers))
        self.producer.flush()
        for future in futures:
            future.get(timeout=60)  # raises if any line was not acknowledged
        self.shipped += len(lines)

    # -- the loop --------------------------------------------------------------------------

    def _inode(self) -> int | None:
        try:
            return os.stat(self.log_path).st_ino
        except FileNotFoundError:
            return None

    def _rotated_file(self, inode: int) -> Path | None:
        """The file that now holds inode, when the log was rotated by renaming it."""
        for candidate in self.log_path.parent.glob(self.log_path.name + "*"):
            try:
                if candidate.stat().st_ino == inode and candidate != self.log_path:
                    return candidate
            except FileNotFoundError:
                continue
        return None

    def step(self) -> int:
        """Ship what is new; return how many lines were shipped."""
        current = self._inode()
        if self.position.inode is not None and current != self.position.inode:
            # Rotated: finish the old file wherever it went, then start the new one at 0.
            old = self._rotated_file(self.position.inode)
            shipped = self._drain(old, final=True) if old else 0
            self._commit(Position(current, 0))
            return shipped
        if current is None:
            return 0
        if self.position.inode is None:
            self._commit(Position(current, 0))
        if os.stat(self.log_path).st_size < self.position.offset:
            log.warning("%s was truncated; reading it again from the start", self.log_path)
            self._commit(Position(current, 0))
        return self._drain(self.log_path, final=False)

    def _drain(self, path: Path, final: bool) -> int:
        total = 0
        with open(path, "rb") as handle:
            while True:
                lines, offset = self._complete_lines(handle, final)
                if offset == self.position.offset:
                    return total
                self._ship(lines)
                self._commit(Position(self.position.inode, offset))
                total += len(lines)

    def _commit(self, position: Position) -> None:
        self.position = position
        self.store.save(position)

    def run(
        self, idle_sleep: float = 0.05, should_stop: Callable[[], bool] = lambda: False
    ) -> None:
        backoff = 0.5
        while not should_stop():
            try:
                shipped = self.step()
                backoff = 0.5
            except (KafkaError, OSError) as exc:
                log.warning("shipping failed (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            if not shipped:
                time.sleep(idle_sleep)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()
