"""Spark SQL job: Topic_Purchase -> Topic_Analysis (+ the dead-letter topic).

Parses each line with the schema derived from the order contract, dead-letters what is not a
valid order (original bytes, reason and source offset), enriches the rest and replaces the
customer's e-mail with a keyed hash. One stateless query, one Kafka sink, one checkpoint.

    TAP_CUSTOMER_KEY=... python -m tap_spark.process_orders
"""

from __future__ import annotations

from pyspark.sql import functions as F

from tap_spark.kafka_io import mark_ready, read_topic, required_env, routed, write
from tap_spark.orders import Rules, analysis_columns, enrich, parse_lines
from tap_spark.session import local_session
from tapstack import contracts

NAME = "process_orders"


def build(spark, rules: Rules, customer_key: str):
    """The query's output records, before the sink (the tests run it in batch too)."""
    enriched = enrich(
        parse_lines(read_topic(spark, contracts.topic("purchase")), rules), rules, customer_key
    )
    return to_records(enriched)


def to_records(enriched):
    value = F.to_json(F.struct(*analysis_columns()))
    key = F.col("order_id").cast("string")
    return routed(enriched, contracts.topic("analysis"), key, value, NAME)


def main() -> None:
    key = required_env("TAP_CUSTOMER_KEY", "set the HMAC key for customer ids (never commit it).")
    spark = local_session(NAME)
    query = write(build(spark, Rules.from_settings(), key), NAME)
    mark_ready(NAME)
    query.awaitTermination()


if __name__ == "__main__":
    main()
