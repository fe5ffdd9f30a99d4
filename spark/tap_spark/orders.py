"""process_orders' logic as DataFrame transforms (batch or streaming alike, no I/O).

parse_lines -> one row per Kafka record with the parsed order and the list of reasons it is bad;
enrich     -> the Topic_Analysis columns of a good row.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from tap_spark.hashing import KeyedHash, fingerprint_key, keyed_hash
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


def _bound(bound: str, *path: str) -> float:
    """The contract's "minimum" or "maximum" of a field; path through objects and "items"
    for order lines."""
    node = _schema()
    for name in path:
        node = node["properties"][name]
        if node["type"] == "array":
            node = node["items"]
    return node[bound]


def _minimum(*path: str) -> float:
    return _bound("minimum", *path)


def _maximum(*path: str) -> float:
    return _bound("maximum", *path)


_INTEGER = r"BIGINT|INT|SMALLINT|TINYINT|DECIMAL\((1[0-8]|[1-9]),0\)"
# schema_of_variant names of each JSON Schema type. A JSON number with no fraction that fits a
# long (7 or 7.0) is an integer; 1e20 parses as a DOUBLE and is not.
_KINDS = {
    "integer": _INTEGER,
    "number": rf"{_INTEGER}|DECIMAL\(\d+,\d+\)|DOUBLE|FLOAT",
    "string": "STRING",
    "boolean": "BOOLEAN",
    "object": "OBJECT",
    "array": "ARRAY",
}
_KIND_PATTERNS = {name: f"^({kinds})$" for name, kinds in _KINDS.items()}


def _kind(value: Column) -> Column:
    """The JSON kind of a VARIANT: OBJECT, ARRAY or the scalar's type (BIGINT, STRING, ...).

    Containers are recognised by a cast that does not walk them: schema_of_variant on a whole
    order would build its full schema string, which costs more than everything else together.
    """
    return (
        F.when(F.try_variant_get(value, "$", "struct<>").isNotNull(), F.lit("OBJECT"))
        .when(F.try_variant_get(value, "$", "array<variant>").isNotNull(), F.lit("ARRAY"))
        .otherwise(F.schema_of_variant(value))
    )


def _is(kind: Column, expected: str) -> Column:
    return kind.rlike(_KIND_PATTERNS[expected])


def _get(variant: Column, path: str) -> Column:
    return F.try_variant_get(variant, path, "variant")


@dataclass(frozen=True)
class _Field:
    """A field of the contract, where it sits and the object that holds it."""

    path: str
    label: str
    expected: str
    parent: int | None  # index of the enclosing object's _Field, None at the top level
    required: bool  # in its object's "required" (optional ones are judged when present)


@functools.cache
def _fields() -> tuple[_Field, ...]:
    """Every field of the contract, required or optional, depth first; the lines of an array
    are checked apart."""
    fields: list[_Field] = []

    def walk(node: dict, prefix: str, parent: int | None) -> None:
        for name, child in node["properties"].items():
            path = f"{prefix}.{name}"
            fields.append(_Field(path, path[2:], child["type"], parent, name in node["required"]))
            if child["type"] == "object":
                walk(child, path, len(fields) - 1)

    walk(_schema(), "$", None)
    return tuple(fields)


def _field_kinds(records: DataFrame, variant: Column, wanted: Column) -> DataFrame:
    """Add `kinds`: the JSON kind of each required field (null when absent), in
    _fields() order, on rows where `wanted` holds (null elsewhere). Two projections, so each
    field is looked up once."""
    fields = _fields()
    lookups = F.array(*[_get(variant, f.path) for f in fields])
    values = records.withColumn("field_values", F.when(wanted, lookups))
    kinds = F.array(*[_kind(F.col("field_values")[i]) for i in range(len(fields))])
    return values.withColumn("kinds", F.when(wanted, kinds)).drop("field_values")


def _type_reasons(kinds: Column, variant: Column) -> Column:
    """'missing field x' for each required field and 'wrong type for x' for each field there,
    and 'malformed item' for a bad line of an array, judged on the JSON as written (a JSON
    false is no string, "12" no number). A field inside an object is judged only when that
    object is there and is one."""
    fields = _fields()
    reasons = []
    for i, field in enumerate(fields):
        kind = kinds[i]
        present = F.lit(True) if field.parent is None else kinds[field.parent] == "OBJECT"
        if field.required:
            reasons.append(F.when(present & kind.isNull(), F.lit(f"missing field {field.label}")))
        reasons.append(
            F.when(present & ~_is(kind, field.expected), F.lit(f"wrong type for {field.label}"))
        )
        node = _node(field.path)
        if field.expected == "array" and node["items"]["type"] == "object":
            item = "item" if field.parent is None else f"{field.label.rsplit('.', 1)[0]} item"
            malformed = _item_reason(variant, field.path, node["items"], f"malformed {item}")
            reasons.append(F.when(present & (kind == "ARRAY"), malformed))
    return F.array_compact(F.array(*reasons))


def _node(path: str) -> dict:
    """The contract's node of a field by its path ($.a.b)."""
    node = _schema()
    for name in path.split(".")[1:]:
        node = node["properties"][name]
    return node


def _item_reason(variant: Column, path: str, node: dict, reason: str) -> Column:
    """`reason` when any line of the array at `path` is no object or lacks a field or has one
    of the wrong type."""
    items = F.try_variant_get(variant, path, "array<variant>")

    def bad(item: Column) -> Column:
        problems = [F.coalesce(_kind(item) != "OBJECT", F.lit(True))]
        for name in node["required"]:
            kind = _kind(_get(item, f"$.{name}"))
            problems.append(F.coalesce(~_is(kind, node["properties"][name]["type"]), F.lit(True)))
        return F.greatest(*problems)

    return F.when(F.exists(items, bad), F.lit(reason))


def _unknown_field_reasons(line: Column) -> list[Column]:
    """'unknown field 'x'' for each name the contract does not know (additionalProperties:
    false), in the order, an object within it or any order line, judged on the line's text.
    Only lines off the exact shape get here: a line of that shape has no other field."""
    reasons = []

    def named(unknown: Column, label: str) -> Column:
        quoted = F.transform(unknown, lambda k: F.concat(F.lit("'"), k, F.lit("'")))
        text = F.concat(F.lit(f"unknown {label} "), F.array_join(quoted, ", "))
        return F.when(F.size(unknown) > 0, text)

    def walk(node: dict, path: str, label: str) -> None:
        known = F.array(*[F.lit(name) for name in node["properties"]])
        keys = F.json_object_keys(line if path == "$" else F.get_json_object(line, path))
        if node.get("additionalProperties") is False:
            reasons.append(named(F.array_except(keys, known), label))
        for name, child in node["properties"].items():
            if child["type"] == "object":
                walk(child, f"{path}.{name}", f"{name} field")
            elif child["type"] == "array" and child["items"]["type"] == "object":
                if child["items"].get("additionalProperties") is not False:
                    continue
                if any(
                    c["type"] in ("object", "array") for c in child["items"]["properties"].values()
                ):
                    raise ValueError(f"{name}: objects within array items are not checked")
                texts = F.from_json(F.get_json_object(line, f"{path}.{name}"), "array<string>")
                each = F.transform(texts, lambda x: F.coalesce(F.json_object_keys(x), F.array()))
                items_known = F.array(*[F.lit(n) for n in child["items"]["properties"]])
                unknown = F.array_except(F.flatten(each), items_known)
                where = name if path == "$" else f"{path[2:]}.{name}"
                reasons.append(named(unknown, f"{where} field"))

    walk(_schema(), "$", "field")
    return reasons


def _string_fields(node: dict, path: tuple[str, ...] = ()):
    """(path, node) of every string and array field of the contract; "[]" in a path steps
    into an array's items."""
    for name, child in node["properties"].items():
        here = (*path, name)
        if child["type"] == "object":
            yield from _string_fields(child, here)
        elif child["type"] == "array":
            yield here, child
            if child["items"]["type"] == "object":
                yield from _string_fields(child["items"], (*here, "[]"))
        elif child["type"] == "string":
            yield here, child


def _size_reasons(order: Column) -> list[Column]:
    """The contract's minLength, maxLength and maxItems (minItems is "no items" below)."""

    def holds(path: tuple[str, ...], test) -> Column:
        if "[]" in path:
            at = path.index("[]")
            array = functools.reduce(lambda col, n: col[n], path[:at], order)
            return F.exists(
                array, lambda x: test(functools.reduce(lambda c, n: c[n], path[at + 1 :], x))
            )
        return test(functools.reduce(lambda col, n: col[n], path, order))

    reasons = []
    for path, node in _string_fields(_schema()):
        label = ".".join(path).replace(".[]", "[]")
        if "maxLength" in node:
            most = node["maxLength"]
            too_long = holds(path, lambda v, n=most: F.length(v) > n)
            reasons.append(F.when(too_long, F.lit(f"{label} longer than {most} characters")))
        if "minLength" in node:
            least = node["minLength"]
            too_short = holds(path, lambda v, n=least: F.length(v) < n)
            text = f"empty {label}" if least == 1 else f"{label} shorter than {least} characters"
            reasons.append(F.when(too_short, F.lit(text)))
        if "maxItems" in node:
            most = node["maxItems"]
            reasons.append(
                F.when(holds(path, lambda v, n=most: F.size(v) > n), f"more than {most} {label}")
            )
    return reasons


def _value_reasons(order: Column, event_time: Column, rules: Rules) -> list[Column]:
    """Impossible values of fields that parsed with the right type (event_time: the
    timestamp read as one)."""
    items = order["items"]
    line_sum = F.aggregate(
        items, F.lit(0.0), lambda acc, x: acc + F.coalesce(x["total"], F.lit(0.0))
    )
    return [
        F.when(
            order["order_id"] < _minimum("order_id"),
            F.lit(f"order_id below {_minimum('order_id'):g}"),
        ),
        F.when(order["total"] < _minimum("total"), F.lit("negative total")),
        F.when(
            F.isnan(order["total"]) | (order["total"] > _maximum("total")),
            F.lit("implausible total"),
        ),
        F.when(
            ~order["schema_version"].isin(_schema()["properties"]["schema_version"]["enum"]),
            F.lit("unsupported schema_version"),
        ),
        F.when(
            order["pages_viewed"] > _maximum("pages_viewed"), F.lit("pages_viewed out of range")
        ),
        F.when(F.size(items) == 0, F.lit("no items")),
        F.when(
            F.exists(items, lambda x: x["quantity"] < _minimum("items", "quantity")),
            F.lit(f"item quantity below {_minimum('items', 'quantity'):g}"),
        ),
        F.when(
            F.exists(items, lambda x: x["product_id"] < _minimum("items", "product_id")),
            F.lit(f"item product_id below {_minimum('items', 'product_id'):g}"),
        ),
        F.when(
            order["customer"]["id"] < _minimum("customer", "id"),
            F.lit(f"customer.id below {_minimum('customer', 'id'):g}"),
        ),
        F.when(
            F.exists(
                items,
                lambda x: (
                    (x["unit_price"] < _minimum("items", "unit_price"))
                    | (x["total"] < _minimum("items", "total"))
                ),
            ),
            F.lit("negative item price or total"),
        ),
        F.when(
            F.abs(line_sum - order["total"]) > rules.total_tolerance,
            F.lit("items do not add up to the total"),
        ),
        F.when(
            (order["duration_session"] < _minimum("duration_session"))
            | (order["duration_session"] > rules.max_session_seconds),
            F.lit("duration_session out of range"),
        ),
        F.when(
            order["pages_viewed"] < _minimum("pages_viewed"),
            F.lit(f"pages_viewed below {_minimum('pages_viewed'):g}"),
        ),
        F.when(~order["currency"].rlike("^[A-Z]{3}$"), F.lit("currency is not an ISO 4217 code")),
        F.when(
            event_time.isNull(),
            F.lit("timestamp is not ISO 8601 with an offset"),
        ),
        *_size_reasons(order),
        *_conditional_reasons(order),
        *_event_reasons(order),
        *_refund_reasons(order, rules),
    ]


def _conditional_reasons(order: Column) -> list[Column]:
    """The contract's allOf rules, each "if field F is V, then these fields are required,
    else those are not allowed" (the only form it uses)."""
    reasons = []
    for rule in _schema()["allOf"]:
        ((name, test),) = rule["if"]["properties"].items()
        value = test["const"]
        holds = F.coalesce(order[name] == F.lit(value), F.lit(False))
        for needed in rule["then"]["required"]:
            missing = holds & order[needed].isNull()
            reasons.append(F.when(missing, F.lit(f"missing field {needed} ({name} {value})")))
        for banned, allowed in rule["else"]["properties"].items():
            if allowed is not False:
                raise ValueError(f"{banned}: only 'false' is understood in an else branch")
            there = ~holds & order[banned].isNotNull()
            reasons.append(F.when(there, F.lit(f"field {banned} only with {name} {value}")))
    return reasons


def expected_event_id(order: Column) -> Column:
    """The event id the contract gives an event: <order_id>-<paid|cancelled|failed> or
    <order_id>-refund-<refund id>."""
    kind = order["event_type"]
    what = F.when(kind == "refunded", F.concat(F.lit("refund-"), order["refund"]["refund_id"]))
    return F.concat(order["order_id"].cast("string"), F.lit("-"), what.otherwise(kind))


def _event_reasons(order: Column) -> list[Column]:
    """The event fields' enum and patterns, and an event id that names this event."""
    kinds = _schema()["properties"]["event_type"]["enum"]
    status = _schema()["properties"]["order_status"]["pattern"]
    return [
        F.when(
            ~order["event_type"].isin(kinds),
            F.lit(f"event_type is not one of {', '.join(kinds)}"),
        ),
        F.when(
            order["event_id"] != expected_event_id(order),
            F.lit("event_id does not name this event (<order_id>-<event>)"),
        ),
        F.when(~order["order_status"].rlike(status), F.lit("order_status is not a status slug")),
    ]


def _refund_reasons(order: Column, rules: Rules) -> list[Column]:
    """Impossible refunds: below the contract's minimums, more than the order, or lines the
    order does not hold. Each refund is judged alone: that several refunds of one order add up
    to more than its total cannot be seen statelessly."""
    refund, lines = order["refund"], order["refund"]["items"]
    tolerance = rules.total_tolerance

    def ordered(line: Column, field: str) -> Column:
        same = F.filter(order["items"], lambda x: x["product_id"] == line["product_id"])
        return F.aggregate(same, F.lit(0).cast(_type_of(field)), lambda a, x: a + x[field])

    line_sum = F.aggregate(lines, F.lit(0.0), lambda acc, x: acc + x["amount"])
    least = functools.partial(_minimum, "refund")
    return [
        F.when(refund["refund_id"] < least("refund_id"), F.lit("refund.refund_id below 1")),
        F.when(refund["amount"] < least("amount"), F.lit("negative refund amount")),
        F.when(
            F.isnan(refund["amount"]) | (refund["amount"] > _maximum("refund", "amount")),
            F.lit("implausible refund amount"),
        ),
        F.when(
            refund["amount"] > order["total"] + tolerance,
            F.lit("refund amount above the order total"),
        ),
        F.when(
            F.exists(lines, lambda x: x["quantity"] < least("items", "quantity")),
            F.lit(f"refund item quantity below {least('items', 'quantity'):g}"),
        ),
        F.when(
            F.exists(lines, lambda x: x["product_id"] < least("items", "product_id")),
            F.lit(f"refund item product_id below {least('items', 'product_id'):g}"),
        ),
        F.when(
            F.exists(lines, lambda x: x["amount"] < least("items", "amount")),
            F.lit("negative refund item amount"),
        ),
        F.when(
            line_sum > refund["amount"] + tolerance,
            F.lit("refund items add up to more than the refund amount"),
        ),
        F.when(
            F.exists(lines, lambda x: ordered(x, "quantity") == 0),
            F.lit("refund item not in the order"),
        ),
        F.when(
            F.exists(
                lines,
                lambda x: (ordered(x, "quantity") > 0) & (x["quantity"] > ordered(x, "quantity")),
            ),
            F.lit("refund item quantity above the units ordered"),
        ),
        F.when(
            F.exists(
                lines,
                lambda x: (
                    (ordered(x, "quantity") > 0) & (x["amount"] > ordered(x, "total") + tolerance)
                ),
            ),
            F.lit("refund item amount above the line total"),
        ),
    ]


def _type_of(field: str) -> str:
    return "long" if field == "quantity" else "double"


def _parse_exact(records: DataFrame, text: str, out: str) -> DataFrame:
    """Add column `out`: column `text` parsed into a VARIANT, or null unless the text is
    exactly one JSON value.

    Spark's JSON parsers stop after the first value and ignore what follows, so `{..}junk`
    would pass and in `{..}{..}` (two orders missing their newline) the second would be lost.
    In `[text,seal]`, where seal is a hash of text, finding the seal as the second element
    proves that the first value ended where text did: a line cannot hold its own hash.
    get_json_object finds it with a streaming parser that skips over the first element
    without building it; the text itself is then parsed once.
    """
    sealed = records.withColumn("_seal", F.xxhash64(text).cast("string"))
    framed = F.concat(F.lit("["), F.col(text), F.lit(","), F.col("_seal"), F.lit("]"))
    ends_with_text = F.get_json_object(framed, "$[1]") == F.col("_seal")
    return sealed.withColumn(out, F.when(ends_with_text, F.try_parse_json(F.col(text)))).drop(
        "_seal"
    )


def _unwrap_collector(records: DataFrame) -> DataFrame:
    """Add `line` (the log line as text) and `order_json` (it parsed into a VARIANT, null when
    it is not exactly one JSON value).

    Fluent Bit puts a line it could not parse as JSON under `log`; that line is taken back out
    and parsed (the only records parsed twice).
    """
    text = records.withColumn("_text", F.col("raw_value").cast("string"))
    first = _parse_exact(text, "_text", "_json")
    logged = F.try_variant_get("_json", "$.log", "string")
    wrapped = logged.isNotNull() & _get(F.col("_json"), "$.order_id").isNull()
    unwrapped = first.select(
        "*",
        F.when(wrapped, logged).alias("_logged"),
        F.when(wrapped, logged).otherwise(F.col("_text")).alias("line"),
    )
    second = _parse_exact(unwrapped, "_logged", "_logged_json")
    return second.withColumn(
        "order_json",
        F.when(F.col("_logged").isNotNull(), F.col("_logged_json")).otherwise(F.col("_json")),
    ).drop("_text", "_json", "_logged", "_logged_json")


def _exact_shape_pattern() -> str:
    """A regex that schema_of_variant of a line matches only when the line is an object with
    the contract's required fields and none but its optional ones, each of its JSON type (one
    schema for all items).

    Keys come sorted and unusual ones quoted, so nothing but the expected text can match.
    Extra fields, null values, empty arrays and odd number kinds do not match: those lines
    take the detailed checks, which judge them right.
    """

    def pattern(node: dict) -> str:
        if node["type"] == "object":
            entries = []
            for name in sorted(node["properties"]):
                entry = f"{re.escape(name)}: {pattern(node['properties'][name])}"
                if name in node["required"]:
                    entries.append(entry if not entries else f", {entry}")
                else:
                    # An optional field first in its object would need no comma: none is.
                    if not entries:
                        raise ValueError(f"{name}: an optional field sorts first")
                    entries.append(f"(?:, {entry})?")
            return f"OBJECT<{''.join(entries)}>"
        if node["type"] == "array":
            return f"ARRAY<{pattern(node['items'])}>"
        return f"(?:{_KINDS[node['type']]})"

    return f"^{pattern(_schema())}$"


def _all_present(node: dict, value: Column) -> list[Column]:
    """One condition per field of the typed `value` (a JSON Schema object): a required one is
    there, and every field of every line of an array is; an optional object that is there
    holds its own required fields.

    The merged schema of the items cannot tell a missing or null field of one line (the other
    lines supply it), and a null line disappears from it; the typed order can.
    """
    checks = []
    for name, child in node["properties"].items():
        field = value[name]
        if name in node["required"]:
            checks.append(field.isNotNull())
        if child["type"] == "object":
            inner = _all([F.lit(True), *_all_present(child, field)])
            checks.append(field.isNull() | inner if name not in node["required"] else inner)
        elif child["type"] == "array":
            lines_ok = F.forall(field, functools.partial(_line_present, child["items"]))
            checks.append(F.coalesce(lines_ok, F.lit(name not in node["required"])))
    return checks


def _line_present(node: dict, line: Column) -> Column:
    return _all([line.isNotNull(), *_all_present(node, line)])


def _all(conditions: list[Column]) -> Column:
    return functools.reduce(operator.and_, conditions)


def _cut_reason() -> Column:
    """Both collectors ship at most contracts.longest_shipped_line() bytes of a line and cut a
    longer one there: a record that long is judged cut, whatever else it is (a cut that
    happens to be JSON included)."""
    most = contracts.longest_shipped_line()
    return F.when(
        F.octet_length("raw_value") >= most,
        F.lit(f"line of {most} bytes or more: cut by the collector (whole in the orders log)"),
    )


def parse_lines(records: DataFrame, rules: Rules) -> DataFrame:
    """Kafka records (key, value, topic, partition, offset) -> (raw, order, event_time,
    reason) rows.

    The line is parsed into a VARIANT, which judges the JSON as written. A line whose JSON
    shape is exactly the contract's (one schema_of_variant and a regex) goes straight to the
    value checks with the order Spark's JSON reader made of it; any other line gets the
    detailed checks of its JSON types, which name each problem, and the VARIANT cast to the
    contract's Spark schema. reason is null for a good line, else every problem found,
    separated by '; '. Each step is its own projection so that Spark computes the parse, the
    kinds and the typed order once per record, however often the checks read them.
    """
    raw = records.select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.col("topic").alias("source_topic"),
        F.col("partition").alias("source_partition"),
        F.col("offset").alias("source_offset"),
    )
    variant = F.col("order_json")
    schema = order_line_schema()
    # The typed order of a line of the exact shape comes from Spark's JSON reader, which is
    # cheaper than casting the VARIANT; any line it reads differently (7.0 for an integer)
    # misses a field and takes the detailed path, whose order is the VARIANT's cast.
    unwrapped = _unwrap_collector(raw).withColumn(
        "read", F.from_json("line", schema, {"mode": "PERMISSIVE"})
    )
    exact = F.coalesce(
        F.schema_of_variant(variant).rlike(_exact_shape_pattern())
        & _all(_all_present(_schema(), F.col("read"))),
        F.lit(False),
    )
    shaped = unwrapped.withColumn("exact", exact)
    detailed = ~F.col("exact")
    with_kinds = _field_kinds(
        shaped.withColumn("root_kind", F.when(detailed, _kind(variant))), variant, detailed
    )
    is_object = F.col("root_kind") == "OBJECT"
    framing = F.array_compact(
        F.array(
            F.when(F.col("line").isNull(), F.lit("empty record")),
            F.when(F.col("line").isNotNull() & variant.isNull(), F.lit("not JSON")),
            F.when(variant.isNotNull() & ~is_object, F.lit("not a JSON object")),
        )
    )
    typed = with_kinds.select(
        "*",
        F.when(detailed, framing).otherwise(F.array()).alias("framing"),
        F.when(
            detailed & is_object,
            F.concat(
                _type_reasons(F.col("kinds"), variant),
                F.array_compact(F.array(*_unknown_field_reasons(F.col("line")))),
            ),
        ).alias("type_reasons"),
    )
    # Values are judged only once every type is right (a cast of a wrong type says nothing).
    types_ok = F.col("exact") | ((F.size("framing") == 0) & (F.size("type_reasons") == 0))
    ordered = typed.select("*", types_ok.alias("types_ok")).withColumn(
        "order",
        F.when(F.col("exact"), F.col("read")).when(
            F.col("types_ok"), F.try_variant_get(variant, "$", schema.simpleString())
        ),
    )
    # Read once here for the check and for enrich.
    timed = ordered.withColumn(
        "event_time", F.try_to_timestamp(F.col("order")["timestamp"], F.lit(ISO_WITH_OFFSET))
    )
    checks = _value_reasons(F.col("order"), F.col("event_time"), rules)
    values = [F.when(F.col("types_ok"), c) for c in checks]
    reasons = F.array_compact(
        F.concat(
            F.array(_cut_reason()),
            F.col("framing"),
            F.coalesce(F.col("type_reasons"), F.array()),
            F.array(*values),
        )
    )
    return (
        timed.withColumn("reasons", reasons)
        .withColumn("reason", F.when(F.size("reasons") > 0, F.concat_ws("; ", "reasons")))
        .drop(
            "order_json",
            "read",
            "exact",
            "root_kind",
            "kinds",
            "framing",
            "type_reasons",
            "types_ok",
            "reasons",
        )
    )


def _customer_id(customer_ids: KeyedHash, customer: Column) -> Column:
    """The keyed hash of the trimmed, lower-cased e-mail. Phone, admin and POS orders often
    have none ("" in the log): such an order is its WordPress user's, hashed as
    contracts.USER_CUSTOMER_PREFIX + customer.id, and a guest's has no customer id."""
    email = F.lower(F.trim(customer["email"]))
    user = F.concat(F.lit(contracts.USER_CUSTOMER_PREFIX), customer["id"].cast("string"))
    return F.when(email != "", customer_ids.hex(email)).when(
        customer["id"] > 0, customer_ids.hex(user)
    )


def enrich(parsed: DataFrame, rules: Rules, customer_key: str) -> DataFrame:
    """Add the Topic_Analysis columns (meaningful on good rows; bad rows keep their raw record).

    Order fields are carried unchanged; the e-mail is replaced by a keyed hash and dropped.
    """
    customer_ids = keyed_hash(parsed.sparkSession, customer_key.encode("utf-8"))
    fingerprints = keyed_hash(parsed.sparkSession, fingerprint_key(customer_key))
    order = F.col("order")
    local_time = F.from_utc_timestamp(F.col("event_time"), rules.shop_timezone)
    units = F.aggregate(order["items"], F.lit(0).cast("long"), lambda acc, x: acc + x["quantity"])
    line_sum = F.aggregate(order["items"], F.lit(0.0), lambda acc, x: acc + x["total"])
    added = {
        "event_time": F.col("event_time"),
        "processed_at": F.current_timestamp(),
        "customer_id": _customer_id(customer_ids, order["customer"]),
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
        # id; the loader keeps the first and dead-letters the other. Keyed: the order holds the
        # raw e-mail and the record everything else, so a plain hash would let any reader of a
        # topic or the index confirm a guessed address. A hash of the pseudonymous fields only
        # would still give away customer.id, which is small enough to try every value.
        "order_fingerprint": fingerprints.hex(
            F.to_json(F.struct(*[order[n] for n in CARRIED_ORDER_FIELDS], order["customer"]))
        ),
        "source_partition": F.col("source_partition"),
        "source_offset": F.col("source_offset"),
    }
    assert list(added) == [name for name, _ in ENRICHMENT_FIELDS]
    # A version 1 line is a paid event; downstream, every record names its event.
    defaults = {
        "event_type": F.lit("paid"),
        "event_id": F.concat(order["order_id"].cast("string"), F.lit("-paid")),
    }
    carried = [
        F.coalesce(order[name], defaults[name]).alias(name)
        if name in defaults
        else order[name].alias(name)
        for name in CARRIED_ORDER_FIELDS
    ]
    columns = [*carried, *[column.alias(name) for name, column in added.items()]]
    raw = ["raw_key", "raw_value", "source_topic", "reason"]
    return parsed.select(*raw, *columns)


def analysis_columns() -> list[str]:
    """Column names of a Topic_Analysis record, in output order."""
    return [*CARRIED_ORDER_FIELDS, *(name for name, _ in ENRICHMENT_FIELDS)]
