"""Spark MLlib job: Topic_Analysis -> Topic_Dashboard.

Loads the saved behaviour model once at start (a missing or incompatible model stops the job
with a clear message), labels each order Impulsive or Reasoned, adds the distance to the chosen
centre and the model version, and passes every Topic_Analysis field through unchanged.

    TAP_MODEL_DIR=.run/model python -m tap_spark.behaviour
"""

from __future__ import annotations

import os

from pyspark.sql import functions as F

from tap_spark.kafka_io import mark_ready, read_topic, routed, write
from tap_spark.model import ModelError, load
from tap_spark.schemas import BEHAVIOUR_FIELDS, analysis_schema
from tap_spark.session import local_session
from tapstack import contracts

NAME = "behaviour"


def label_records(records, model):
    """Kafka records of Topic_Analysis -> routed Topic_Dashboard / dead-letter records."""
    record = F.from_json(F.col("value").cast("string"), analysis_schema())
    parsed = records.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("input_partition"),
        F.col("offset").alias("input_offset"),
        record.alias("record"),
    )
    unusable = F.col("record").isNull()
    for name in ("order_id", "duration_session", "pages_viewed"):
        unusable = unusable | F.col("record")[name].isNull()
    flat = parsed.select(
        "*", F.when(unusable, F.lit("not a Topic_Analysis record")).alias("reason"), "record.*"
    ).drop("record")
    labelled = model.label(flat)
    fields = [f.name for f in analysis_schema().fields] + [name for name, _ in BEHAVIOUR_FIELDS]
    value = F.to_json(F.struct(*fields))
    key = F.col("order_id").cast("string")
    return routed(
        labelled,
        contracts.topic("dashboard"),
        key,
        value,
        NAME,
        position=("input_partition", "input_offset"),
    )


def main() -> None:
    model_dir = os.environ.get("TAP_MODEL_DIR", str(contracts.ROOT / ".run" / "model"))
    spark = local_session(NAME)
    try:
        model = load(model_dir, spark=spark)
    except ModelError as exc:
        raise SystemExit(f"behaviour: {exc}") from exc
    records = read_topic(spark, contracts.topic("analysis"))
    query = write(label_records(records, model), NAME)
    mark_ready(NAME)
    query.awaitTermination()


if __name__ == "__main__":
    main()
