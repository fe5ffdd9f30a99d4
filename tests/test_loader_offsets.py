"""What the loader commits after writing a batch: one past the last record of each partition,
whatever order the records came in (pure function; the fault suite covers the real loader)."""

from __future__ import annotations

from collections import namedtuple

from kafka import OffsetAndMetadata, TopicPartition

from tapstack.loader.es_loader import _next_offsets

Record = namedtuple("Record", "topic partition offset")


def test_one_past_the_last_record_of_each_partition():
    records = [Record("T", 1, 40), Record("T", 0, 7), Record("T", 1, 42), Record("T", 0, 5)]
    assert _next_offsets(records) == {
        TopicPartition("T", 0): OffsetAndMetadata(8, "", -1),
        TopicPartition("T", 1): OffsetAndMetadata(43, "", -1),
    }


def test_partitions_not_in_the_batch_are_left_alone():
    assert list(_next_offsets([Record("T", 1, 0)])) == [TopicPartition("T", 1)]
