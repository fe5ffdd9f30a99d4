"""tap.error.time from the Spark stages is when the record was judged, not when its batch began
(a real-time batch lasts the checkpoint interval): the expression is evaluated row by row."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import functions as F

from tap_spark.kafka_io import failure_time
from tapstack.deadletter.headers import SPARK_TIME_FORMAT


def test_the_failure_time_is_taken_per_row_not_once_per_batch(spark):
    before = datetime.now(UTC)
    times = spark.range(0, 300_000, numPartitions=1).select(
        F.date_format(failure_time(), SPARK_TIME_FORMAT).alias("t")
    )
    [row] = times.agg(F.min("t"), F.max("t"), F.count_distinct("t")).collect()
    first, last, distinct = row
    assert distinct > 1, "one time for every row: the batch's, not each record's"
    floor = before.replace(microsecond=before.microsecond // 1000 * 1000)  # SSS: milliseconds
    assert datetime.fromisoformat(first) >= floor
    assert first < last
