"""Spark schemas: the order line derived from contracts/order.schema.json, and the records of
Topic_Analysis and Topic_Dashboard built on it. No field is typed twice by hand."""

from __future__ import annotations

from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from tapstack.contracts import order_schema

_SCALARS: dict[str, DataType] = {
    "integer": LongType(),
    "number": DoubleType(),
    "string": StringType(),
    "boolean": BooleanType(),
}


def spark_type(node: dict[str, Any]) -> DataType:
    """The Spark type of one JSON Schema node (objects, arrays and scalars)."""
    kind = node.get("type")
    if kind == "object":
        return StructType(
            [
                StructField(name, spark_type(child), True)
                for name, child in node["properties"].items()
            ]
        )
    if kind == "array":
        return ArrayType(spark_type(node["items"]), True)
    if kind in _SCALARS:
        return _SCALARS[kind]
    raise ValueError(f"no Spark type for JSON Schema node {node!r}")


def order_line_schema() -> StructType:
    """The schema Spark parses a log line with."""
    return spark_type(order_schema())


# Fields process_orders adds (name, type), in output order after the carried order fields.
ENRICHMENT_FIELDS: list[tuple[str, DataType]] = [
    ("event_time", TimestampType()),
    ("processed_at", TimestampType()),
    ("customer_id", StringType()),
    ("customer_first_name", StringType()),
    ("spender_type", StringType()),
    ("stock_alert", StringType()),
    ("items_count", IntegerType()),
    ("units", LongType()),
    ("avg_unit_price", DoubleType()),
    ("order_hour", IntegerType()),
    ("order_weekday", StringType()),
    ("order_fingerprint", StringType()),
    ("source_partition", IntegerType()),
    ("source_offset", LongType()),
]

# Order fields carried unchanged to Topic_Analysis (customer is replaced by customer_id).
CARRIED_ORDER_FIELDS = [name for name in order_schema()["properties"] if name != "customer"]

# Fields the behaviour job adds.
BEHAVIOUR_FIELDS: list[tuple[str, DataType]] = [
    ("purchase_behaviour", StringType()),
    ("behaviour_distance", DoubleType()),
    ("behaviour_margin", DoubleType()),
    ("label_confidence", StringType()),
    ("model_version", StringType()),
]


def analysis_schema() -> StructType:
    """One Topic_Analysis record."""
    order = order_line_schema()
    carried = [order[name] for name in CARRIED_ORDER_FIELDS]
    added = [StructField(name, dtype, True) for name, dtype in ENRICHMENT_FIELDS]
    return StructType(carried + added)


def dashboard_schema() -> StructType:
    """One Topic_Dashboard record: the analysis record plus the behaviour fields."""
    added = [StructField(name, dtype, True) for name, dtype in BEHAVIOUR_FIELDS]
    return StructType(list(analysis_schema().fields) + added)
