"""The tailer through its producer seam: what reaches Kafka for what is written to the log.

No Kafka here: a recording producer stands in at `producer_factory`, the seam under test. No
clock either: each test calls step() itself, so "the tailer ran now" is explicit.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.errors import KafkaTimeoutError

from tapstack import contracts
from tapstack.collector import tailer as tailer_module
from tapstack.collector.tailer import Tailer

PURCHASE = contracts.topic("purchase")


class Acked:
    def get(self, timeout=None):
        return None


class Unacked:
    def get(self, timeout=None):
        raise KafkaTimeoutError("not acknowledged")


class RecordingProducer:
    """Keeps every send in order; `acks=False` makes every send fail at get()."""

    def __init__(self, acks: bool = True):
        self.sent: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = []
        self.acks = acks

    def send(self, topic, key=None, value=None, headers=None):
        self.sent.append((topic, key, value, dict(headers or [])))
        return Acked() if self.acks else Unacked()

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass

    def values(self, topic: str = PURCHASE) -> list[bytes]:
        return [value for sent_topic, _, value, _ in self.sent if sent_topic == topic]


class Shop:
    """A log directory, its tailer state, and one producer shared by every tailer started."""

    def __init__(self, root: Path, **tailer_options):
        self.log = root / "orders.log"
        self.state = root / "state" / "position.json"
        self.log.touch()
        self.producer = RecordingProducer()
        self.options = tailer_options
        self.tailer = self.start()
        self.tailer.step()  # running before the shop writes: it knows the log's inode
        self.rotations = 0

    def start(self) -> Tailer:
        """A tailer as after a (re)start: it knows only what the state file says."""
        return Tailer(self.log, self.state, producer_factory=lambda: self.producer, **self.options)

    def write(self, data: bytes) -> None:
        with open(self.log, "ab") as out:
            out.write(data)

    def rotate(self) -> Path:
        """Rename the log away (as logrotate does without copytruncate) and start a new one."""
        self.rotations += 1
        rotated = self.log.with_name(f"{self.log.name}.{self.rotations}")
        os.rename(self.log, rotated)
        # Its last write, as a clock fine enough to order rotations (file-system clocks are
        # coarse: back-to-back rotations could otherwise tie).
        os.utime(rotated, ns=(self.rotations * 10**9, self.rotations * 10**9))
        self.log.touch()
        return rotated

    def drain(self) -> None:
        """step() until a step neither ships nor moves (a rotation's step may only move)."""
        while True:
            before = self.tailer.position
            if not self.tailer.step() and self.tailer.position == before:
                return


@pytest.fixture
def shop(tmp_path):
    return lambda **options: Shop(tmp_path, **options)


def order_line(order_id: int, size: int) -> bytes:
    """A JSON order line of exactly `size` bytes (without its newline)."""
    head = orjson.dumps({"order_id": order_id, "pad": ""})
    line = head[:-2] + b"x" * (size - len(head)) + b'"}'
    assert len(line) == size
    return line


def lines_of(lengths, start_id: int = 1) -> list[bytes]:
    return [order_line(start_id + i, n) for i, n in enumerate(lengths)]


def body(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


# -- the reproduction (issue 15): a rotated log drained in chunks ------------------------------


def test_a_rotated_log_of_8000_lines_drained_at_the_default_chunk_gives_8000_records(shop):
    """8,000 lines of ~600 bytes span two 4 MiB chunks: the line across the boundary used to come
    out as two malformed records (8,001 records)."""
    s = shop()
    lines = lines_of(580 + i % 41 for i in range(8000))
    s.write(body(lines))
    assert len(body(lines)) > tailer_module.READ_CHUNK
    s.rotate()

    s.drain()

    records = s.producer.values()
    assert len(records) == 8000
    assert records == lines
    assert all(orjson.loads(record)["order_id"] for record in records)


def test_a_rotated_log_drained_in_small_chunks_gives_each_line_once_none_malformed(shop):
    """997-byte chunks (a prime, so the boundaries fall at ever-different places in the lines)."""
    s = shop(read_chunk=997)
    lines = lines_of(30 + (i * 7) % 150 for i in range(2000))
    s.write(body(lines))
    s.rotate()
    # Lines with a boundary after their first byte and at or before their newline.
    starts = itertools.accumulate((len(line) + 1 for line in lines), initial=0)
    straddling = sum(
        start // 997 != (start + len(line)) // 997
        for line, start in zip(lines, starts, strict=False)
    )
    assert straddling > 150

    s.drain()

    assert s.producer.values() == lines


# -- chunk boundaries ---------------------------------------------------------------------------

CHUNK = 16
AROUND_THE_CHUNK = [1, 2, *range(CHUNK - 3, CHUNK + 4), *range(2 * CHUNK - 2, 2 * CHUNK + 3), 50]


@pytest.mark.parametrize("length", AROUND_THE_CHUNK)
@pytest.mark.parametrize("where", ["live", "rotated"])
@pytest.mark.parametrize("prefix", range(CHUNK))
def test_lines_of_every_length_around_the_chunk_size_arrive_once_and_whole(
    shop, length, where, prefix
):
    """Lines of one length after a prefix of 0..CHUNK-1 bytes, so that lines start at every
    position within a chunk and the boundaries fall at every position within a line."""
    s = shop(read_chunk=CHUNK)
    lines = [b"p" * prefix] if prefix else []
    lines += [bytes([ord("a") + i % 26]) * length for i in range(7)]
    s.write(body(lines))
    if where == "rotated":
        s.rotate()

    s.drain()

    assert s.producer.values() == lines


def test_lines_written_across_several_steps_in_the_live_file_arrive_once_and_whole(shop):
    s = shop(read_chunk=CHUNK)
    lines = lines_of(range(30, 70))
    data = body(lines)
    for at in range(0, len(data), 23):  # 23 bytes a write, no regard for lines or chunks
        s.write(data[at : at + 23])
        s.tailer.step()

    assert s.producer.values() == lines


def test_bytes_arrive_as_written_including_carriage_returns_and_non_utf8(shop):
    s = shop(read_chunk=CHUNK)
    lines = [b'{"order_id": 1}\r', b"\xff\xfe not text \x00", b"  padded  ", b"\t{}"]
    s.write(body(lines))

    s.drain()

    assert s.producer.values() == lines


def test_blank_lines_are_passed_over_and_the_rest_arrive(shop):
    s = shop(read_chunk=CHUNK)
    s.write(b"\n   \n" + b"a" * 40 + b"\n\t\n\n" + b"b\n" + b" " * 40 + b"\n")

    s.drain()

    assert s.producer.values() == [b"a" * 40, b"b"]


# -- a line in two writes -----------------------------------------------------------------------


def test_a_line_written_in_two_writes_waits_for_its_newline(shop):
    s = shop(read_chunk=CHUNK)
    line = order_line(7, 40)
    s.write(line[:25])

    assert s.tailer.step() == 0
    assert s.producer.sent == []
    assert s.start().position.offset == 0  # nothing of it counted as read

    s.write(line[25:] + b"\n")
    assert s.tailer.step() == 1
    assert s.producer.values() == [line]
    assert s.producer.sent[0][1] == b"7"  # keyed by its order id


def test_the_unterminated_last_line_of_a_rotated_file_is_complete_at_its_end(shop):
    """Once the log is renamed away it will not grow again: its end ends the last line."""
    s = shop(read_chunk=CHUNK)
    s.write(b"first\n" + b"last, never terminated" * 3)
    assert s.tailer.step() == 1

    s.rotate()
    s.write(b"new file\n")
    s.drain()

    assert s.producer.values() == [b"first", b"last, never terminated" * 3, b"new file"]


# -- rotation -----------------------------------------------------------------------------------


def test_rotation_drains_the_old_file_then_reads_the_new_one_from_the_top(shop):
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([30] * 3)))
    s.drain()
    s.write(body(lines_of([30] * 3, start_id=4)))  # written before the rename, not yet read
    s.rotate()
    s.write(body(lines_of([30] * 3, start_id=7)))

    s.drain()

    assert s.producer.values() == lines_of([30] * 9)


def test_rotation_while_the_tailer_is_down_finds_the_old_file_by_its_inode(shop):
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([30] * 3)))
    s.drain()
    s.write(body(lines_of([40] * 3, start_id=4)))
    del s.tailer  # down, as after kill -9: only the saved position survives

    s.rotate()  # orders.log -> orders.log.1
    # A decoy the rotated-file glob also matches: only the inode tells them apart. (Not named
    # orders.log.N: a file of that name appearing after the rotation would be a later rotation.)
    s.log.with_name("orders.log.bak").write_bytes(b"not the rotated file\n")
    s.write(body(lines_of([30] * 2, start_id=7)))
    s.tailer = s.start()
    s.drain()

    assert s.producer.values() == lines_of([30] * 3 + [40] * 3 + [30] * 2)


@pytest.mark.parametrize("rotations", [2, 3])
@pytest.mark.parametrize("down", [False, True], ids=["running", "stopped"])
def test_several_rotations_between_two_steps_ship_every_line_once_in_order(shop, rotations, down):
    """Each file rotated after the saved one is drained in turn (issue 15): the middle files'
    lines used to be lost, as only the file holding the saved inode was drained."""
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([30] * 2)))
    s.drain()
    s.write(body(lines_of([30] * 2, start_id=3)))  # the saved file's unread tail
    if down:
        del s.tailer  # stopped: a new Tailer on the same state file takes over
    for r in range(rotations):
        s.rotate()
        s.write(body(lines_of([30 + r] * 2, start_id=5 + 2 * r)))
    if down:
        s.tailer = s.start()

    s.drain()
    s.tailer = s.start()  # and a restart afterwards re-reads none of them
    s.write(body(lines_of([50], start_id=99)))
    s.drain()

    expected = lines_of([30] * 4) + [
        line for r in range(rotations) for line in lines_of([30 + r] * 2, start_id=5 + 2 * r)
    ]
    assert s.producer.values() == expected + lines_of([50], start_id=99)


def test_rotated_files_already_there_when_the_tailer_first_starts_are_not_read(tmp_path):
    log = tmp_path / "orders.log"
    log.with_name("orders.log.1").write_bytes(b"rotated before the tailer existed\n")
    log.write_bytes(b"live\n")
    s = Shop(tmp_path, read_chunk=CHUNK)  # its first step reads the live file from the top
    s.rotations = 1
    s.rotate()  # -> orders.log.2
    s.write(b"new\n")

    s.drain()

    assert s.producer.values() == [b"live", b"new"]


def test_a_crash_inside_a_middle_rotated_file_resumes_there(shop):
    s = shop(read_chunk=CHUNK)
    s.rotate()
    s.write(body(lines_of([30] * 3)))
    s.rotate()
    s.write(body(lines_of([30], start_id=4)))
    s.producer.acks = False
    with pytest.raises(KafkaTimeoutError):
        s.tailer.step()  # dies while shipping orders.log.2's lines
    s.producer.acks = True
    s.producer.sent.clear()
    s.tailer = s.start()

    s.drain()

    assert s.producer.values() == lines_of([30] * 4)


def test_a_restart_resumes_at_the_saved_position_without_resending(shop):
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([25] * 4)))
    s.drain()
    s.tailer = s.start()
    s.write(body(lines_of([25] * 2, start_id=5)))

    s.drain()

    assert s.producer.values() == lines_of([25] * 6)


# -- huge lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["live", "rotated"])
def test_a_line_longer_than_several_chunks_arrives_whole(shop, where):
    s = shop(read_chunk=CHUNK)
    lines = [b"before", order_line(1, 10 * CHUNK + 3), b"after"]
    s.write(body(lines))
    if where == "rotated":
        s.rotate()

    s.drain()

    assert s.producer.values() == lines


def test_a_huge_line_in_the_live_file_waits_for_its_newline(shop):
    s = shop(read_chunk=CHUNK)
    line = order_line(1, 10 * CHUNK + 3)
    s.write(line[:100])
    assert s.tailer.step() == 0
    s.write(line[100:])
    assert s.tailer.step() == 0
    s.write(b"\n")

    assert s.tailer.step() == 1
    assert s.producer.values() == [line]


# -- long lines: cut where Fluent Bit cuts them --------------------------------------------------


@pytest.mark.parametrize("where", ["live", "rotated"])
def test_a_line_over_the_longest_is_shipped_cut_there_and_the_next_line_is_whole(shop, where):
    """Fluent Bit's truncate_long_lines ships the first buffer_max_size - 1 bytes of a longer
    line and skips the rest to its newline (plugins/in_tail/tail_file.c:571-603, :626-631 at
    v4.2.2); process_orders dead-letters the cut."""
    s = shop(read_chunk=CHUNK, longest_line=100)
    big = order_line(2, 500)
    s.write(order_line(1, 60) + b"\n" + big + b"\n" + order_line(3, 60) + b"\n")
    if where == "rotated":
        s.rotate()

    s.drain()

    assert s.producer.values() == [order_line(1, 60), big[:100], order_line(3, 60)]
    assert [key for _, key, _, _ in s.producer.sent] == [b"1", None, b"3"]  # a cut is no JSON


def test_a_line_of_exactly_the_longest_is_whole_and_one_byte_more_is_cut(shop):
    s = shop(read_chunk=CHUNK, longest_line=100)
    s.write(order_line(1, 100) + b"\n" + order_line(2, 101) + b"\n")

    s.drain()

    assert s.producer.values() == [order_line(1, 100), order_line(2, 101)[:100]]


def test_a_cut_that_happens_to_be_json_is_keyed_as_fluent_bit_keys_it(shop):
    """Fluent Bit's parser filter reads the order id from the record it was given, the cut."""
    s = shop(read_chunk=CHUNK, longest_line=60)
    s.write(order_line(7, 60) + b"trailing bytes past the cut\n")

    s.drain()

    [(_, key, value, _)] = s.producer.sent
    assert value == order_line(7, 60) and key == b"7"


def test_a_cut_line_is_logged_with_its_offset_and_length(shop, caplog):
    s = shop(read_chunk=CHUNK, longest_line=100)
    s.write(b"ok\n" + order_line(2, 500) + b"\n")

    with caplog.at_level("WARNING", logger="tap.collector"):
        s.drain()

    [warning] = [r.getMessage() for r in caplog.records if r.name == "tap.collector"]
    assert "offset 3 has 500 bytes; shipped cut to its first 100" in warning


def test_a_rotated_5_mib_line_at_the_default_limit_is_one_cut_record_not_pieces(shop):
    """Over one 4 MiB chunk and over the limit: one record, the line's first bytes."""
    s = shop()
    line = order_line(5, 5 * 2**20)
    s.write(line + b"\n" + order_line(6, 80) + b"\n")
    s.rotate()

    s.drain()

    assert s.producer.values() == [line[: contracts.longest_shipped_line()], order_line(6, 80)]


def test_reading_a_line_far_over_the_longest_holds_no_more_than_the_cut_in_memory(shop):
    """A 64 MiB line, a 1 MiB cut: the tailer's peak allocation stays near cut + chunk."""
    s = shop(read_chunk=64 * 2**10, longest_line=2**20)
    piece = b"y" * 2**20
    with open(s.log, "ab") as out:
        for _ in range(64):
            out.write(piece)
        out.write(b"\nafter\n")

    tracemalloc.start()
    try:
        s.drain()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert s.producer.values() == [piece, b"after"]
    assert peak < 4 * 2**20, f"peak {peak:,} bytes for a 1 MiB cut"


# -- truncation and acknowledgements ------------------------------------------------------------


def test_truncation_starts_over_from_the_top(shop):
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([40] * 5)))
    s.drain()
    with open(s.log, "wb") as out:  # copytruncate: same inode, emptied, then written again
        out.write(body(lines_of([30], start_id=6)))

    s.drain()

    assert s.producer.values() == lines_of([40] * 5) + lines_of([30], start_id=6)


def test_a_position_is_saved_only_after_kafka_acknowledged_the_lines_before_it(shop):
    s = shop(read_chunk=CHUNK)
    s.write(body(lines_of([30] * 2)))
    s.drain()
    s.producer.acks = False
    s.write(body(lines_of([30] * 3, start_id=3)))

    with pytest.raises(KafkaTimeoutError):
        s.tailer.step()
    s.producer.acks = True
    s.producer.sent.clear()
    s.tailer = s.start()  # the crash after the failed send
    s.drain()

    assert s.producer.values() == lines_of([30] * 3, start_id=3)


# -- the property -------------------------------------------------------------------------------

line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"."))
# After each whole line: nothing, a step, a rotation (then a step, so no rotation is missed), or a
# restart; and each line is written in up to three pieces with a step between them.
events = st.lists(
    st.tuples(
        line_bytes,
        st.lists(st.integers(min_value=0, max_value=40), max_size=2),
        st.sampled_from(["none", "step", "rotate", "restart"]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=events, chunk=st.integers(min_value=1, max_value=24))
def test_any_lines_in_any_pieces_with_rotations_arrive_exactly_once_in_order(script, chunk):
    with tempfile.TemporaryDirectory() as root:
        s = Shop(Path(root), read_chunk=chunk)
        for line, cuts, after in script:
            data = line + b"\n"
            start = 0
            for cut in sorted(cuts):
                s.write(data[start:cut])
                start = max(start, cut)
                s.tailer.step()
            s.write(data[start:])
            if after == "step":
                s.tailer.step()
            elif after == "rotate":
                s.rotate()
                s.tailer.step()
            elif after == "restart":
                s.tailer = s.start()
        s.drain()

        assert s.producer.values() == [line for line, _, _ in script if line.strip()]
