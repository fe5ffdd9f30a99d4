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
- A line is shipped as at most its first longest_shipped_line() bytes, as Fluent Bit's tail
  with truncate_long_lines cuts a line that fills buffer_max_size (plugins/in_tail/
  tail_file.c:571-603 at v4.2.2): the rest is read past to its newline but never held, and
  process_orders dead-letters the cut line with that reason. Both paths give the same record.
- Lines go out byte for byte, as Fluent Bit's raw format ships them, so Spark judges the same
  bytes on both paths (a repeated key is dead-lettered on both).
- Memory is bounded: the file is read read_chunk bytes at a time, a batch is the lines that end
  within one read, and a line longer than a read is gathered across reads up to the cut.
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

log = logging.getLogger("tap.collector")

READ_CHUNK = 4 * 2**20


def order_key(line: bytes) -> bytes | None:
    """The Kafka key: the order id when the line is a JSON object that has one."""
    if not line.rstrip().endswith(b"}"):
        return None  # no object; and orjson's error would copy a cut line many times over
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
        # Smaller values are for tests.
        read_chunk: int = READ_CHUNK,
        longest_line: int | None = None,
    ):
        self.longest_line = longest_line or contracts.longest_shipped_line()
        if self.longest_line < 1 or read_chunk < 1:
            raise ValueError("need longest_line >= 1 and read_chunk >= 1")
        self.read_chunk = read_chunk
        self.log_path = Path(log_path)
        self.store = OffsetStore(state_path)
        self.position = self.store.load()
        self.producer = producer_factory()
        self.topic = contracts.topic("purchase")
        self.shipped = 0

    # -- shipping --------------------------------------------------------------------------

    def _ship(self, lines: list[Line]) -> None:
        """Send lines and wait until Kafka has acknowledged all of them."""
        futures = []
        for line in lines:
            if line.length > len(line.data):
                log.warning(
                    "%s: the line at offset %d has %d bytes; shipped cut to its first %d, as"
                    " Fluent Bit would",
                    self.log_path, line.offset, line.length, len(line.data),
                )  # fmt: skip
            key = order_key(line.data)
            futures.append(self.producer.send(self.topic, key=key, value=line.data))
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
                keep=self.longest_line,
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
