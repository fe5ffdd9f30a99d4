"""process_orders' logic as DataFrame transforms (batch or streaming alike, no I/O).

parse_lines -> one row per Kafka record with the parsed order and the list of reasons it is bad;
enrich     -> the Topic_Analysis columns of a good row.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from tap_spark.hashing import hmac_sha256_hex
from tap_spark.schemas import CARRIED_ORDER_FIELDS, ENRICHMENT_FIELDS, order_line_schema
from tapstack import contracts

ISO_WITH_OFFSET = "yyyy-MM-dd'T'HH:mm:ssXXX"


@dataclass(frozen=True)
class Rules:
    """Enrichment thresholds; defaults are the original design's, overridable from the env."""

    high_spender_above: float
    high_demand_above: float
    shop_timezone: str
    total_tolerance: float
    max_session_seconds: int

    @classmethod
    def from_settings(cls) -> Rules:
        return cls(
            high_spender_above=contracts.enrichment("high_spender_above"),
            high_demand_above=contracts.enrichment("high_demand_above"),
            shop_timezone=contracts.enrichment("shop_timezone"),
            total_tolerance=contracts.enrichment("total_tolerance"),
            max_session_seconds=contracts.settings()["shop"]["max_session_seconds"],
        )


def _unwrap_collector(value: Column) -> Column:
    """Fluent Bit puts a line it could not parse as JSON under `log`; take the line back out."""
    logged = F.get_json_object(value, "$.log")
    has_order = F.get_json_object(value, "$.order_id").isNotNull()
    return F.when(~has_order & logged.isNotNull(), logged).otherwise(value)


def _present(line: Column, path: str) -> Column:
    return F.get_json_object(line, path).isNotNull()


def _field_reasons(line: Column, order: Column) -> list[Column]:
    """'missing field x' / 'wrong type for x' for each required top-level and customer field."""
    schema = contracts.order_schema()
    reasons = []
    for name in schema["required"]:
        present = _present(line, f"$.{name}")
        reasons.append(F.when(~present, F.lit(f"missing field {name}")))
        reasons.append(F.when(present & order[name].isNull(), F.lit(f"wrong type for {name}")))
    for name in schema["properties"]["customer"]["required"]:
        present = _present(line, f"$.customer.{name}")
        ok_parent = order["customer"].isNotNull()
        reasons.append(F.when(ok_parent & ~present, F.lit(f"missing field customer.{name}")))
        reasons.append(
            F.when(
                ok_parent & present & order["customer"][name].isNull(),
                F.lit(f"wrong type for customer.{name}"),
            )
        )
    return reasons


def _value_reasons(order: Column, rules: Rules) -> list[Column]:
    """Impossible values of fields that parsed with the right type."""
    items = order["items"]
    item_fields = contracts.order_schema()["properties"]["items"]["items"]["required"]
    malformed_item = F.exists(
        items, lambda x: x.isNull() | F.greatest(*[x[f].isNull() for f in item_fields])
    )
    line_sum = F.aggregate(
        items, F.lit(0.0), lambda acc, x: acc + F.coalesce(x["total"], F.lit(0.0))
    )
    return [
        F.when(order["order_id"] < 1, F.lit("order_id below 1")),
        F.when(order["total"] < 0, F.lit("negative total")),
        F.when(F.isnan(order["total"]) | (order["total"] > 1e7), F.lit("implausible total")),
        F.when(F.size(items) == 0, F.lit("no items")),
        F.when(malformed_item, F.lit("malformed item")),
        F.when(F.exists(items, lambda x: x["quantity"] < 1), F.lit("item quantity below 1")),
        F.when(
            F.exists(items, lambda x: (x["unit_price"] < 0) | (x["total"] < 0)),
            F.lit("negative item price or total"),
        ),
        F.when(
            F.abs(line_sum - order["total"]) > rules.total_tolerance,
            F.lit("items do not add up to the total"),
        ),
        F.when(
            (order["duration_session"] < 0)
            | (order["duration_session"] > rules.max_session_seconds),
            F.lit("duration_session out of range"),
        ),
        F.when(order["pages_viewed"] < 1, F.lit("pages_viewed below 1")),
        F.when(~order["currency"].rlike("^[A-Z]{3}$"), F.lit("currency is not an ISO 4217 code")),
        F.when(
            F.try_to_timestamp(order["timestamp"], F.lit(ISO_WITH_OFFSET)).isNull(),
            F.lit("timestamp is not ISO 8601 with an offset"),
        ),
        F.when(F.trim(order["customer"]["email"]) == "", F.lit("empty customer.email")),
    ]


def parse_lines(records: DataFrame, rules: Rules) -> DataFrame:
    """Kafka records (key, value, topic, partition, offset) -> (raw, order, reason) rows.

    reason is null for a good line, else every problem found, separated by '; '.
    """
    line = _unwrap_collector(F.col("value").cast("string"))
    parsed = records.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
        line.alias("line"),
    ).withColumn("order", F.from_json("line", order_line_schema(), {"mode": "PERMISSIVE"}))
    is_object = F.try_parse_json("line").isNotNull() & F.ltrim("line").startswith("{")
    checks = [
        F.when(F.col("line").isNull(), F.lit("empty record")),
        F.when(F.col("line").isNotNull() & F.try_parse_json("line").isNull(), F.lit("not JSON")),
        F.when(
            F.try_parse_json("line").isNotNull() & ~F.ltrim("line").startswith("{"),
            F.lit("not a JSON object"),
        ),
    ]
    field_checks = [F.when(is_object, c) for c in _field_reasons(F.col("line"), F.col("order"))]
    value_checks = [F.when(is_object, c) for c in _value_reasons(F.col("order"), rules)]
    reasons = F.array_compact(F.array(*checks, *field_checks, *value_checks))
    return parsed.withColumn("reason", F.when(F.size(reasons) > 0, F.concat_ws("; ", reasons)))


def enrich(parsed: DataFrame, rules: Rules, customer_key: str) -> DataFrame:
    """Add the Topic_Analysis columns (meaningful on good rows; bad rows keep their raw record).

    Order fields are carried unchanged; the e-mail is replaced by a keyed hash and dropped.
    """
    order = F.col("order")
    local_time = F.from_utc_timestamp(F.col("event_time"), rules.shop_timezone)
    units = F.aggregate(order["items"], F.lit(0).cast("long"), lambda acc, x: acc + x["quantity"])
    line_sum = F.aggregate(order["items"], F.lit(0.0), lambda acc, x: acc + x["total"])
    added = {
        "event_time": F.try_to_timestamp(order["timestamp"], F.lit(ISO_WITH_OFFSET)),
        "processed_at": F.current_timestamp(),
        "customer_id": hmac_sha256_hex(F.lower(F.trim(order["customer"]["email"])), customer_key),
        "customer_first_name": order["customer"]["first_name"],
        "spender_type": F.when(order["total"] > rules.high_spender_above, "High Spender").otherwise(
            "Standard Spender"
        ),
        "stock_alert": F.when(order["total"] > rules.high_demand_above, "High Demand").otherwise(
            "Normal Demand"
        ),
        "items_count": F.size(order["items"]),
        "units": units,
        "avg_unit_price": F.round(F.try_divide(line_sum, units), 2),
        "order_hour": F.hour(local_time),
        "order_weekday": F.date_format(local_time, "EEEE"),
        # Tells a replay of an order (same fingerprint) from a different order under a reused
        # id; the loader keeps the first and dead-letters the other.
        "order_fingerprint": F.sha2(
            F.to_json(F.struct(*[order[n] for n in CARRIED_ORDER_FIELDS], order["customer"])), 256
        ),
        "source_partition": F.col("source_partition"),
        "source_offset": F.col("source_offset"),
    }
    assert list(added) == [name for name, _ in ENRICHMENT_FIELDS]
    carried = [order[name].alias(name) for name in CARRIED_ORDER_FIELDS]
    with_time = parsed.withColumn("event_time", added.pop("event_time"))
    columns = [
        *carried,
        F.col("event_time"),
        *[column.alias(name) for name, column in added.items()],
    ]
    raw = ["raw_key", "raw_value", "source_topic", "reason"]
    return with_time.select(*raw, *columns)


def analysis_columns() -> list[str]:
    """Column names of a Topic_Analysis record, in output order."""
    return [*CARRIED_ORDER_FIELDS, *(name for name, _ in ENRICHMENT_FIELDS)]
