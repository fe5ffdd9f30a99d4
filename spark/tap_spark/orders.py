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


def _schema() -> dict:
    return contracts.order_schema()


def _maximum(field: str) -> float:
    return _schema()["properties"][field]["maximum"]


def _unwrap_collector(value: Column) -> Column:
    """Fluent Bit puts a line it could not parse as JSON under `log`; take the line back out."""
    logged = F.get_json_object(value, "$.log")
    has_order = F.get_json_object(value, "$.order_id").isNotNull()
    return F.when(~has_order & logged.isNotNull(), logged).otherwise(value)


_INTEGER_TYPES = ("BIGINT", "INT", "SMALLINT", "TINYINT")
# JSON numbers with no fraction (7 or 7.0) that fit a long; 1e20 does not.
_WHOLE_DECIMAL = r"^DECIMAL\((1[0-8]|[1-9]),0\)$"


def _has_json_type(value: Column, expected: str) -> Column:
    """Whether a VARIANT value is of the JSON Schema type `expected`."""
    kind = F.schema_of_variant(value)
    integer = kind.isin(*_INTEGER_TYPES) | kind.rlike(_WHOLE_DECIMAL)
    return {
        "integer": integer,
        "number": integer | kind.startswith("DECIMAL") | kind.isin("DOUBLE", "FLOAT"),
        "string": kind == "STRING",
        "boolean": kind == "BOOLEAN",
        "object": kind.startswith("OBJECT"),
        "array": kind.startswith("ARRAY"),
    }[expected]


def _get(variant: Column, path: str) -> Column:
    return F.try_variant_get(variant, path, "variant")


def _object_reasons(variant: Column, node: dict, prefix: str) -> list[Column]:
    """'missing field x' / 'wrong type for x' for each required field of a JSON Schema object,
    checked on the JSON as written (a JSON false is no string, "12" no number)."""
    reasons = []
    for name in node["required"]:
        child = node["properties"][name]
        value = _get(variant, f"$.{name}")
        label = f"{prefix}{name}"
        reasons.append(F.when(value.isNull(), F.lit(f"missing field {label}")))
        wrong = value.isNotNull() & ~_has_json_type(value, child["type"])
        reasons.append(F.when(wrong, F.lit(f"wrong type for {label}")))
        if child["type"] == "object":
            inner = _object_reasons(value, child, f"{label}.")
            reasons += [F.when(~wrong, reason) for reason in inner]
    return reasons


def _item_reasons(variant: Column) -> list[Column]:
    """One reason when any order line lacks a field or has one of the wrong type."""
    node = _schema()["properties"]["items"]["items"]
    items = F.try_variant_get(variant, "$.items", "array<variant>")

    def bad(item: Column) -> Column:
        problems = [item.isNull() | ~_has_json_type(item, "object")]
        for name in node["required"]:
            value = _get(item, f"$.{name}")
            problems.append(
                value.isNull() | ~_has_json_type(value, node["properties"][name]["type"])
            )
        return F.greatest(*problems)

    return [F.when(F.exists(items, bad), F.lit("malformed item"))]


def _value_reasons(order: Column, rules: Rules) -> list[Column]:
    """Impossible values of fields that parsed with the right type."""
    items = order["items"]
    line_sum = F.aggregate(
        items, F.lit(0.0), lambda acc, x: acc + F.coalesce(x["total"], F.lit(0.0))
    )
    return [
        F.when(order["order_id"] < 1, F.lit("order_id below 1")),
        F.when(order["total"] < 0, F.lit("negative total")),
        F.when(
            F.isnan(order["total"]) | (order["total"] > _maximum("total")),
            F.lit("implausible total"),
        ),
        F.when(
            order["schema_version"] != _schema()["properties"]["schema_version"]["const"],
            F.lit("unsupported schema_version"),
        ),
        F.when(
            order["pages_viewed"] > _maximum("pages_viewed"), F.lit("pages_viewed out of range")
        ),
        F.when(F.size(items) == 0, F.lit("no items")),
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

    The line is parsed once into a VARIANT: its JSON types are checked against the contract,
    then it is cast to the Spark schema derived from the contract. reason is null for a good
    line, else every problem found, separated by '; '.
    """
    line = _unwrap_collector(F.col("value").cast("string"))
    parsed = records.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
        line.alias("line"),
    ).withColumn("json", F.try_parse_json("line"))
    variant = F.col("json")
    parsed = parsed.withColumn(
        "order", F.try_variant_get(variant, "$", order_line_schema().simpleString())
    )
    is_object = _has_json_type(variant, "object")
    checks = [
        F.when(F.col("line").isNull(), F.lit("empty record")),
        F.when(F.col("line").isNotNull() & variant.isNull(), F.lit("not JSON")),
        F.when(variant.isNotNull() & ~is_object, F.lit("not a JSON object")),
    ]
    typed = _object_reasons(variant, _schema(), "") + _item_reasons(variant)
    type_checks = [F.when(is_object, c) for c in typed]
    # Values are judged only once every type is right (a cast of a wrong type says nothing).
    types_ok = F.size(F.array_compact(F.array(*type_checks))) == 0
    value_checks = [F.when(is_object & types_ok, c) for c in _value_reasons(F.col("order"), rules)]
    reasons = F.array_compact(F.array(*checks, *type_checks, *value_checks))
    return parsed.withColumn(
        "reason", F.when(F.size(reasons) > 0, F.concat_ws("; ", reasons))
    ).drop("json")


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
