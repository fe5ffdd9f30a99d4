"""Tail the orders log into Topic_Purchase with Fluent Bit's guarantees.

- At least once: a position is saved only after Kafka acknowledged every line before it, so a
  crash re-sends at most the last batch (downstream writes are idempotent by order id).
- Only complete lines are shipped; a line written in two pieces waits for its newline. A line
  ends at its newline, or, in a rotated file (it will not grow again), at the end of the file:
  never at the end of a read, whatever the line's length.
- Rotation (rename + new file) drains the old file first, also across a restart (the rotated
  file is found by inode). Rotated more than once between two steps (or while down), it then
  drains every later rotated sibling orders.log.N, oldest modification first, before the new
  file; the position store lists the sibling inodes already drained or older, so none is read
  twice. Truncation (copytruncate) starts over from the top.
- Lines too large for Kafka go whole to the dead-letter topic with a reason. The hard limit is
  the dead-letter topic's: of a longer line only its first max_dead_letter_bytes are kept, the
  rest is read past to its newline but never held, and the reason gives its full length.
  Fluent Bit differs here (fluent-bit/fluent-bit.yaml): a line over its buffer_max_size (1M) is
  skipped with no record (plugins/in_tail/tail_file.c:1639-1655 at v4.2.2). Not yet aligned.
- Lines go out byte for byte, as Fluent Bit's raw format ships them, so Spark judges the same
  bytes on both paths (a repeated key is dead-lettered on both).
- Memory is bounded: the file is read read_chunk bytes at a time, a batch is the lines that end
  within one read, and a line longer than a read is gathered across reads up to the hard limit.
  (A live line still waiting for its newline is read again from its start at each step.)
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from tapstack import contracts, kafka_clients
from tapstack.collector.offsets import OffsetStore, Position
from tapstack.deadletter.headers import COLLECTOR, dead_letter_headers

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
        **kafka_clients.config(),
        client_id="tap-tailer",
        acks="all",
        linger_ms=5,
        retries=2**31 - 1,
        max_request_size=MAX_DEAD_LETTER_BYTES + 2**20,
        request_timeout_ms=30000,
        delivery_timeout_ms=120000,
    )


@dataclass(frozen=True)
class Line:
    """A complete line as read: its bytes (all, or the first `keep`), full length and offset."""

    data: bytes
    length: int  # in the file, without its newline
    offset: int  # where it starts in the file


class _Unterminated:
    """The line begun in an earlier read, its newline not yet read: at most `keep` bytes of it."""

    def __init__(self, offset: int, keep: int):
        self.offset, self.keep = offset, keep
        self.kept = bytearray()
        self.length = 0
        self.blank = True

    def add(self, piece: bytes) -> None:
        room = self.keep - len(self.kept)
        if room > 0:
            self.kept += piece[:room]
        self.length += len(piece)
        self.blank = self.blank and not piece.strip()

    def line(self) -> Line:
        return Line(bytes(self.kept), self.length, self.offset)


def read_lines(
    handle: BinaryIO, start: int, *, final: bool, chunk: int, keep: int
) -> Iterator[tuple[list[Line], int]]:
    """Batches of the complete lines from `start`, each with the offset just after it.

    A batch is the lines whose newline falls in one read of `chunk` bytes; a line that began in
    an earlier read joins the batch of the read that ends it. final: the file will not grow
    again, so its end also ends a last line that has no newline. Blank lines are not in any
    batch, but their bytes still move the offset on.
    """
    handle.seek(start)
    at = start  # the offset of the read's first byte
    open_line: _Unterminated | None = None
    while data := handle.read(chunk):
        lines: list[Line] = []
        begin = 0
        while (cut := data.find(b"\n", begin)) >= 0:
            if open_line is not None:
                open_line.add(data[begin:cut])
                if not open_line.blank:
                    lines.append(open_line.line())
                open_line = None
            elif (piece := data[begin:cut]).strip():
                lines.append(Line(piece[:keep], cut - begin, at + begin))
            begin = cut + 1
        if begin < len(data):
            if open_line is None:
                open_line = _Unterminated(at + begin, keep)
            open_line.add(data[begin:])
        if begin:
            yield lines, at + begin
        at += len(data)
    if final and open_line is not None:
        yield ([] if open_line.blank else [open_line.line()]), at


class Tailer:
    def __init__(
        self,
        log_path: Path,
        state_path: Path,
        producer_factory: Callable[[], KafkaProducer] = make_producer,
        *,
        # Smaller values are for tests; make_producer's max_request_size fits the default limits.
        read_chunk: int = READ_CHUNK,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_dead_letter_bytes: int = MAX_DEAD_LETTER_BYTES,
    ):
        if not 0 < max_message_bytes <= max_dead_letter_bytes or read_chunk < 1:
            raise ValueError("need 0 < max_message_bytes <= max_dead_letter_bytes, read_chunk >= 1")
        self.read_chunk = read_chunk
        self.max_message_bytes = max_message_bytes
        self.max_dead_letter_bytes = max_dead_letter_bytes
        self.log_path = Path(log_path)
        self.store = OffsetStore(state_path)
        self.position = self.store.load()
        self.producer = producer_factory()
        self.topic = contracts.topic("purchase")
        self.dead_letter = contracts.topic("dead_letter")
        self.shipped = 0

    # -- shipping --------------------------------------------------------------------------

    def _ship(self, lines: list[Line]) -> None:
        """Send lines and wait until Kafka has acknowledged all of them."""
        futures = []
        for line in lines:
            if line.length <= self.max_message_bytes:
                futures.append(
                    self.producer.send(self.topic, key=order_key(line.data), value=line.data)
                )
                continue
            reason = (
                f"line of {line.length} bytes exceeds the {self.max_message_bytes}-byte message"
                " limit"
            )
            if line.length > self.max_dead_letter_bytes:
                reason += f"; first {self.max_dead_letter_bytes} bytes kept"
            # The headers every stage writes (tap.error.time included).
            headers = dead_letter_headers(
                COLLECTOR, reason, file=str(self.log_path), offset=line.offset
            )
            futures.append(self.producer.send(self.dead_letter, value=line.data, headers=headers))
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

    def _siblings(self) -> list[tuple[Path, os.stat_result]]:
        """The rotated files beside the log (orders.log.N), oldest modification first."""
        found = []
        for candidate in self.log_path.parent.glob(self.log_path.name + ".*"):
            if not re.fullmatch(r"\.\d+", candidate.name[len(self.log_path.name) :]):
                continue
            try:
                found.append((candidate, candidate.stat()))
            except FileNotFoundError:
                continue
        # mtime first; on a tie (coarse file-system clocks), the earlier-created inode first.
        return sorted(found, key=lambda item: (item[1].st_mtime_ns, item[1].st_ino))

    def _start_current(self, current: int | None) -> None:
        """Begin the live file at 0; every rotated sibling there now is drained or older."""
        passed = sorted({st.st_ino for _, st in self._siblings()} - {current})
        self._commit(Position(current, 0, passed))

    def step(self) -> int:
        """Ship what is new; return how many lines were shipped."""
        current = self._inode()
        if self.position.inode is not None and current != self.position.inode:
            # Rotated, perhaps several times: finish the old file wherever it went, then each
            # file rotated after it (oldest first), then start the new one at 0. The position
            # moves to each file before it is drained, so a crash resumes inside it.
            shipped = 0
            old = self._rotated_file(self.position.inode)
            if old:
                shipped += self._drain(old, final=True)
            for path, st in self._siblings():
                skip = {*self.position.passed, self.position.inode, current}
                if st.st_ino in skip:
                    continue
                passed = sorted({*self.position.passed, self.position.inode})
                self._commit(Position(st.st_ino, 0, passed))
                shipped += self._drain(path, final=True)
            self._start_current(current)
            return shipped
        if current is None:
            return 0
        if self.position.inode is None:
            self._start_current(current)
        if os.stat(self.log_path).st_size < self.position.offset:
            log.warning("%s was truncated; reading it again from the start", self.log_path)
            self._commit(Position(current, 0, self.position.passed))
        return self._drain(self.log_path, final=False)

    def _drain(self, path: Path, final: bool) -> int:
        total = 0
        with open(path, "rb") as handle:
            batches = read_lines(
                handle,
                self.position.offset,
                final=final,
                chunk=self.read_chunk,
                keep=self.max_dead_letter_bytes,
            )
            for lines, offset in batches:
                self._ship(lines)
                self._commit(Position(self.position.inode, offset, self.position.passed))
                total += len(lines)
        return total

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
