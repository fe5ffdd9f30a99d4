"""A Spark stage for tests: one topic copied to another through the jobs' own Kafka source and
sink (tap_spark.kafka_io: read_topic, write and the RetentionWatch it attaches).

    python -m tests.support.copy_stage <source topic> <target topic> <stage name>

The trigger comes from TAP_TRIGGER (contracts.streaming), the checkpoint from
TAP_CHECKPOINT_DIR, the Kafka connector from TAP_SPARK_JARS, as for the real jobs.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from tap_spark.kafka_io import read_topic, write
from tap_spark.session import local_session


def main(source: str, target: str, stage: str) -> None:
    spark = local_session(stage)
    records = read_topic(spark, source).select("key", "value", F.lit(target).alias("topic"))
    write(records, stage).awaitTermination()


if __name__ == "__main__":
    main(*sys.argv[1:4])
