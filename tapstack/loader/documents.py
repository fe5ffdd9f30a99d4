"""How one Topic_Dashboard record becomes Elasticsearch documents, or why it cannot.

The Logstash pipeline does the same (logstash/pipeline/tap.conf and tap_record.rb, which judges
records by these rules and gives the same reasons); tests/test_logstash_contract.py holds the two
against each other. Pure functions, no I/O.

A record is judged whole before anything of it is written. It must be a JSON object whose fields
are the orders template's (or ones the order document leaves out), each value of its mapping's
type, with `items` an array of objects that carry every line field. The rules are stricter than
Elasticsearch (no "12" for a number, no 5.0 for an integer), so a record that passes cannot be
refused by the strict templates for its shape or its types, and its order is written whole.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from tapstack.elastic.templates import mapping_properties

SOURCE_SYSTEM = "spark_mllib"

# Fields of a Topic_Dashboard record that are not copied onto the order document.
_NOT_ON_ORDER = ("items", "timestamp", "schema_version", "source_partition", "source_offset")
# Order-template fields the loader sets itself; a record's own values for them are replaced.
_DERIVED = ("products", "categories", "source_system")
# Order fields repeated on each line so that line panels can be filtered like order panels.
_ORDER_FIELDS_ON_LINE = (
    "order_id",
    "event_time",
    "currency",
    "customer_id",
    "purchase_behaviour",
    "spender_type",
)
# Item field -> line document field, in the order they are judged.
_LINE_FIELDS = {
    "product_id": "product_id",
    "product_name": "product_name",
    "sku": "sku",
    "category": "category",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "total": "line_total",
}
REQUIRED = ("order_id", "order_fingerprint")
MAX_REASONS = 10  # a record with thousands of bad items gets a readable reason
KEYWORD_MAX_BYTES = 32766  # Lucene's longest term: a longer keyword is refused
_RANGES = {"long": 2**63, "integer": 2**31}  # [-r, r)
_DATE = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?"
    r"(?:Z|[+-](\d{2}):(\d{2}))?)?\Z"
)


class BadRecord(ValueError):
    """The record cannot be turned into documents; str() is the reason."""


@dataclass(frozen=True)
class Order:
    """What one good record writes: the order document and its lines, with their ids."""

    order_id: int
    fingerprint: str
    document: dict[str, Any]
    lines: list[tuple[str, dict[str, Any]]]

    @property
    def document_id(self) -> str:
        return order_document_id(self.document)


def order_document_id(record: dict[str, Any]) -> str:
    return str(record["order_id"])


def line_document_id(order_id: int | str, line_number: int) -> str:
    return f"{order_id}-{line_number}"


def conflict_reason(order_id: int | str) -> str:
    """Why a different order under an id already loaded is dead-lettered (first version wins)."""
    return f"order_id {order_id} was already loaded with different content"


# The data-quality check an order-id conflict is recorded under (index role "quality").
CONFLICT_CHECK = "order_id_conflict"


def conflict_document(
    order: Order,
    kept: str | None,
    stage: str,
    source: tuple[str, int, int],
    detected_at: str,
) -> tuple[str, dict[str, Any]]:
    """(id, document) of one order-id conflict in the data-quality index. The id is the order
    id and the rejected version's fingerprint: a record read again counts once."""
    topic, partition, offset = source
    document = {
        "check": CONFLICT_CHECK,
        "order_id": order.order_id,
        "order_fingerprint": order.fingerprint,
        "kept_fingerprint": kept,
        "stage": stage,
        "detected_at": detected_at,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
    }
    return f"{order.order_id}-{order.fingerprint}", document


def parse(value: bytes | None) -> dict[str, Any]:
    """The record as a JSON object (BadRecord otherwise)."""
    if not value:
        raise BadRecord("not JSON")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise BadRecord("not JSON") from None
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    return record


def order_of(value: bytes | None) -> Order:
    """The documents of one Topic_Dashboard record, or BadRecord with every reason found."""
    record = parse(value)
    found = problems(record)
    if found:
        shown = found[:MAX_REASONS]
        if len(found) > MAX_REASONS:
            shown.append(f"{len(found) - MAX_REASONS} more")
        raise BadRecord("; ".join(shown))
    return Order(
        order_id=record["order_id"],
        fingerprint=record["order_fingerprint"],
        document=order_document(record),
        lines=line_documents(record),
    )


@cache
def _types(role: str) -> dict[str, str]:
    """field -> mapping type of an index template. A TAP_HOME may hold only contracts/ (the
    bench's scratch homes rename indices, not fields): then the templates beside this package."""
    try:
        properties = mapping_properties(role)
    except FileNotFoundError:
        path = Path(__file__).resolve().parents[2] / "kibana" / "index-templates" / f"{role}.json"
        properties = json.loads(path.read_text("utf-8"))["template"]["mappings"]["properties"]
    return {name: mapping["type"] for name, mapping in properties.items()}


def problems(record: dict[str, Any]) -> list[str]:
    """Every reason the record cannot be written, in a fixed order: the required fields, then
    each field as it comes in the record, then each item's fields as listed in _LINE_FIELDS."""
    orders = _types("orders")
    found = [f"missing field {name}" for name in REQUIRED if record.get(name) is None]
    for name, value in record.items():
        mapping_type = orders.get(name)
        if mapping_type is None:
            if name not in _SKIPPED:
                found.append(f"unknown field {name}")
        elif value is not None and name not in _SKIPPED and not _plainly_good(value, mapping_type):
            problem = _value_problem(value, mapping_type)
            if problem:
                found.append(problem.format(name))
    items = record.get("items")
    if items is None:
        return found
    if not isinstance(items, list):
        return [*found, "wrong type for items"]
    item_fields = _item_types()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            found.append(f"wrong type for items[{index}]")
            continue
        for field, mapping_type in item_fields:
            value = item.get(field)
            if value is None:
                found.append(f"missing field items[{index}].{field}")
            elif not _plainly_good(value, mapping_type):
                problem = _value_problem(value, mapping_type)
                if problem:
                    found.append(problem.format(f"items[{index}].{field}"))
    return found


_SKIPPED = frozenset(_DERIVED + _NOT_ON_ORDER)


@cache
def _item_types() -> tuple[tuple[str, str], ...]:
    """(item field, mapping type of the line field it becomes), in _LINE_FIELDS order."""
    lines = _types("lines")
    return tuple((field, lines[line_field]) for field, line_field in _LINE_FIELDS.items())


def _plainly_good(value: Any, mapping_type: str) -> bool:
    """The common good values, told apart quickly (the loader judges ~40 values a record);
    False sends the value to _value_problem for the verdict."""
    kind = type(value)
    if mapping_type == "keyword":
        return kind is str and len(value) * 4 <= KEYWORD_MAX_BYTES
    if mapping_type == "double":
        return kind is int or (kind is float and value - value == 0.0)  # finite
    if kind is int and mapping_type in _RANGES:
        limit = _RANGES[mapping_type]
        return -limit <= value < limit
    return False


def _value_problem(value: Any, mapping_type: str) -> str | None:
    """Why value cannot be a `mapping_type` field, judged on the JSON as written: a reason
    with {} for the field's name, or None."""
    kind = type(value)
    if kind is bool:
        return "wrong type for {}"
    if mapping_type == "keyword":
        if kind is not str:
            return "wrong type for {}"
        # 4 bytes at most per character: only long strings need encoding to be measured.
        if len(value) * 4 > KEYWORD_MAX_BYTES and (
            len(value.encode("utf-8", "surrogatepass")) > KEYWORD_MAX_BYTES
        ):
            return "{} longer than " + f"{KEYWORD_MAX_BYTES} bytes"
    elif mapping_type in _RANGES:
        limit = _RANGES[mapping_type]
        if kind is not int:
            # A big integer may reach us as an integral float (orjson): too big either way.
            if kind is float and value.is_integer() and abs(value) >= limit:
                return "{} out of range"
            return "wrong type for {}"
        if not -limit <= value < limit:
            return "{} out of range"
    elif mapping_type == "double":
        if kind is not float and kind is not int:
            return "wrong type for {}"
        if kind is float and not math.isfinite(value):
            return "{} out of range"
    elif mapping_type == "date":
        if kind is not str:
            return "wrong type for {}"
        if not _is_date(value):
            return "{} is not a date"
    else:
        raise ValueError(f"mapping type {mapping_type} has no rule")
    return None


def _is_date(text: str) -> bool:
    """ISO 8601 as Elasticsearch's default format reads it (a strict subset of that format)."""
    match = _DATE.match(text)
    if not match:
        return False
    year, month, day, hour, minute, second, offset_h, offset_m = (
        int(part) if part is not None else 0 for part in match.groups()
    )
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return (
        1 <= day <= days
        and hour < 24
        and minute < 60
        and second < 60
        and offset_m < 60
        # java.time.ZoneOffset, which Elasticsearch's parser builds: -18:00 to +18:00 inclusive
        # (ZoneOffset.MAX_SECONDS = 18 * 3600, java/time/ZoneOffset.java in OpenJDK 17).
        and offset_h * 60 + offset_m <= 18 * 60
    )


def order_document(record: dict[str, Any]) -> dict[str, Any]:
    """The order document: the record without its items, plus product and category lists."""
    doc = {key: value for key, value in record.items() if key not in _NOT_ON_ORDER}
    items = record.get("items") or []
    doc["products"] = sorted({item["product_name"] for item in items})
    doc["categories"] = sorted({item["category"] for item in items})
    doc["source_system"] = SOURCE_SYSTEM
    return doc


def line_documents(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) for each order line, numbered from 1 in the order of the log line."""
    shared = {key: record[key] for key in _ORDER_FIELDS_ON_LINE if key in record}
    docs = []
    for number, item in enumerate(record.get("items") or [], start=1):
        doc = {**shared, "line_number": number}
        doc.update({line_field: item[field] for field, line_field in _LINE_FIELDS.items()})
        doc["source_system"] = SOURCE_SYSTEM
        docs.append((line_document_id(record["order_id"], number), doc))
    return docs
