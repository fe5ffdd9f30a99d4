"""Kafka in and out for both jobs: the source, the one sink that routes each row to its topic,
the dead-letter record, and the ready marker the native stack waits on."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from tap_spark import retention
from tapstack import contracts, kafka_clients
from tapstack.readiness import mark_ready  # noqa: F401  (re-exported for the jobs)


def read_topic(spark: SparkSession, topic: str) -> DataFrame:
    """A topic from the earliest offset; a truncated topic does not stop the query.

    failOnDataLoss=false lets the query go on past records that expired before it read them;
    write() attaches a RetentionWatch that reports each such gap (tap_spark.retention).
    """
    reader = (
        spark.readStream.format("kafka")
        .options(**kafka_clients.spark_source_options())
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "false")
    )
    if contracts.real_time_interval() is None:  # a real-time batch has no size cap
        reader = reader.option(
            "maxOffsetsPerTrigger", str(contracts.streaming("max_offsets_per_trigger"))
        )
    return reader.load()


def dead_letter_headers(stage: str, partition: str, offset: str) -> Column:
    """Why and where from, as Kafka headers: the value stays the original bytes untouched."""

    def header(name: str, value: Column) -> Column:
        return F.struct(
            F.lit(name).alias("key"), value.cast("string").cast("binary").alias("value")
        )

    return F.array(
        header("tap.error.reason", F.col("reason")),
        header("tap.error.stage", F.lit(stage)),
        header("tap.source.topic", F.col("source_topic")),
        header("tap.source.partition", F.col(partition)),
        header("tap.source.offset", F.col(offset)),
        header("tap.error.time", F.date_format(failure_time(), "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")),
    )


def failure_time() -> Column:
    """When this row was judged. Not current_timestamp(): Spark fixes that once per batch, and
    a real-time batch lasts the checkpoint interval (a minute), so it would name the batch's
    start. A call to System.currentTimeMillis through reflect() is evaluated row by row."""
    millis = F.expr("reflect('java.lang.System', 'currentTimeMillis')").cast("long")
    return F.timestamp_millis(millis)


def routed(
    rows: DataFrame,
    good_topic: str,
    key: Column,
    value: Column,
    stage: str,
    position: tuple[str, str] = ("source_partition", "source_offset"),
) -> DataFrame:
    """One Kafka record per row: good rows to good_topic, rows with a reason to the dead letter.

    position names the columns holding the input record's Kafka partition and offset.
    """
    bad = F.col("reason").isNotNull()
    no_headers = F.array().cast("array<struct<key:string,value:binary>>")
    return rows.select(
        F.when(bad, F.col("raw_key")).otherwise(key.cast("binary")).alias("key"),
        F.when(bad, F.col("raw_value")).otherwise(value.cast("binary")).alias("value"),
        F.when(bad, F.lit(contracts.topic("dead_letter")))
        .otherwise(F.lit(good_topic))
        .alias("topic"),
        F.when(bad, dead_letter_headers(stage, *position)).otherwise(no_headers).alias("headers"),
    )


def write(records: DataFrame, name: str) -> StreamingQuery:
    """Start the Kafka sink with a checkpoint per query and the configured trigger.

    A trigger "real-time <interval>" runs Spark 4.1's real-time mode: long-running tasks that
    pass each record on as it arrives, with a checkpoint every <interval>; any other trigger
    is a micro-batch processing time.
    """
    checkpoint = Path(os.environ.get("TAP_CHECKPOINT_DIR", "checkpoints")) / name
    watch = retention.watch(
        records.sparkSession, stage=name, query_name=name, checkpoint=checkpoint
    )
    writer = (
        records.writeStream.format("kafka")
        .queryName(name)
        .options(**kafka_clients.spark_options())
        .option("kafka.acks", "all")
        .option("kafka.linger.ms", "5")
        # Room for a backlog's records in one request (the default 16 KiB holds ~15 orders);
        # linger.ms, not this, bounds the wait at low rates.
        .option("kafka.batch.size", str(256 * 1024))
        .option("checkpointLocation", str(checkpoint))
    )
    interval = contracts.real_time_interval()
    if interval is None:
        trigger = contracts.streaming("trigger")
        return writer.outputMode("append").trigger(processingTime=trigger).start()
    if watch.resume_gaps:
        # Spark 4.1.1's real-time reader ignores failOnDataLoss: an offset below the log start
        # fails the task (OffsetOutOfRangeException from KafkaDataConsumer.nextWithTimeout, via
        # LowLatencyReaderWrap), and the query with it, on every restart. One micro-batch run
        # on the same checkpoint reads past the gap (the micro-batch reader skips to the
        # earliest offset) before the real-time query takes over.
        writer.outputMode("append").trigger(availableNow=True).start().awaitTermination()
    return _real_time(records.sparkSession, writer.outputMode("update"), interval).start()


def _real_time(spark: SparkSession, writer: DataStreamWriter, interval: str) -> DataStreamWriter:
    """PySpark 4.1 has no keyword for the real-time trigger yet; the JVM API has it."""
    trigger = spark._jvm.org.apache.spark.sql.streaming.Trigger.RealTime(interval)
    writer._jwrite = writer._jwrite.trigger(trigger)
    return writer


def required_env(name: str, hint: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set: {hint}")
    return value
