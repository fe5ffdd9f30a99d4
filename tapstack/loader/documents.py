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

# Fields of a Topic_Dashboard record that are not copied onto the order document (the event
# fields go to the ledger and the order's status document).
_NOT_ON_ORDER = (
    "items",
    "timestamp",
    "schema_version",
    "source_partition",
    "source_offset",
    "event_id",
    "event_type",
    "order_status",
    "refund",
)
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
# Record field -> ledger field, on every ledger document of an event.
_EVENT_FIELDS_ON_LEDGER = {
    "event_id": "event_id",
    "event_type": "event_type",
    "order_id": "order_id",
    "order_status": "order_status",
    "event_time": "event_time",
    "currency": "currency",
    "customer_id": "customer_id",
    "purchase_behaviour": "purchase_behaviour",
    "spender_type": "spender_type",
}
# Refund field -> ledger field of the event's document, and refund line field -> ledger field.
_REFUND_FIELDS = {"refund_id": "refund_id", "amount": "amount", "reason": "refund_reason"}
_REFUND_LINE_FIELDS = {
    "product_id": "product_id",
    "product_name": "product_name",
    "sku": "sku",
    "category": "category",
    "quantity": "quantity",
    "amount": "line_amount",
}
# A paid event writes an order document, the others only the ledger. A record without event
# fields (written before contract v2) is its order's paid event, as process_orders reads a
# version 1 line.
PAID = "paid"
EVENT_TYPES = ("paid", "refunded", "cancelled", "failed")
REQUIRED = ("order_id", "order_fingerprint")
MAX_REASONS = 10  # a record with thousands of bad items gets a readable reason
KEYWORD_MAX_BYTES = 32766  # Lucene's longest term: a longer keyword is refused
# The longest event id: ledger ids are it and "-<line>", and Elasticsearch refuses an _id over
# 512 bytes for the whole bulk request (IndexRequest.validate, "id [...] is too long").
EVENT_ID_MAX_BYTES = 256
_RANGES = {"long": 2**63, "integer": 2**31}  # [-r, r)
_DATE = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?"
    r"(?:Z|[+-](\d{2}):(\d{2}))?)?\Z"
)


class BadRecord(ValueError):
    """The record cannot be turned into documents; str() is the reason."""


@dataclass(frozen=True)
class Order:
    """What one good record (one event of an order) writes, with the ids.

    head: the document created once, first version wins, whose fingerprint tells a replay
    from a reused id: the order document (index role "orders") for a paid event, the event's
    ledger document ("ledger") for the others. parts: (role, id, document) written with it
    and taken back when it is refused: a paid order's lines and its ledger documents, a
    refund's ledger lines. status: the order's status document and its external version,
    written once the head is in (None for a version 1 record, which has no status).
    """

    order_id: int
    fingerprint: str
    head_role: str
    document_id: str
    document: dict[str, Any]
    parts: list[tuple[str, str, dict[str, Any]]]
    status: tuple[dict[str, Any], int] | None = None

    @property
    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, document) of the parts in the lines index."""
        return [(doc_id, doc) for role, doc_id, doc in self.parts if role == "lines"]


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
    if not found:
        record = with_event(record)
    if found:
        shown = found[:MAX_REASONS]
        if len(found) > MAX_REASONS:
            shown.append(f"{len(found) - MAX_REASONS} more")
        raise BadRecord("; ".join(shown))
    ledger = [("ledger", doc_id, doc) for doc_id, doc in ledger_documents(record)]
    if record["event_type"] == PAID:
        head_role, document_id, document = (
            "orders",
            order_document_id(record),
            order_document(record),
        )
        parts = [("lines", doc_id, doc) for doc_id, doc in line_documents(record)] + ledger
    else:
        (_, document_id, document), *parts = ledger
        head_role = "ledger"
    return Order(
        order_id=record["order_id"],
        fingerprint=record["order_fingerprint"],
        head_role=head_role,
        document_id=document_id,
        document=document,
        parts=parts,
        status=status_document(record),
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
    found += _event_problems(record)
    found += _lines_problems(record.get("items"), "items", _item_types())
    refund = record.get("refund")
    if refund is not None:
        if not isinstance(refund, dict):
            found.append("wrong type for refund")
        else:
            found += _object_problems(refund, "refund", _refund_types())
            if refund.get("items") is None:
                found.append("missing field refund.items")
            found += _lines_problems(refund.get("items"), "refund.items", _refund_line_types())
    return found


def _event_problems(record: dict[str, Any]) -> list[str]:
    """The event fields the ledger and the status document need, judged like the others."""
    found = []
    for name in ("event_id", "event_type", "order_status"):
        value = record.get(name)
        problem = None if value is None else _value_problem(value, "keyword")
        if problem:
            found.append(problem.format(name))
    event_id = record.get("event_id")
    if isinstance(event_id, str) and len(event_id.encode("utf-8", "surrogatepass")) > (
        EVENT_ID_MAX_BYTES
    ):
        found.append(f"event_id longer than {EVENT_ID_MAX_BYTES} bytes")
    kind = record.get("event_type")
    if isinstance(kind, str) and kind not in EVENT_TYPES:
        found.append(f"unknown event_type {kind[:40]}")
    expected = _expected_event_id(record)
    if isinstance(event_id, str) and expected is not None and event_id != expected:
        # Ledger ids derive from it: an id of another order's event would take its place.
        found.append("event_id does not name this event (<order_id>-<event>)")
    if kind not in (None, PAID) and record.get("event_id") is None:
        found.append("missing field event_id")
    if kind in (None, PAID) and record.get("total") is None:
        found.append("missing field total")  # the paid event's money in the ledger
    if kind == "refunded" and record.get("refund") is None:
        found.append("missing field refund")
    elif kind != "refunded" and record.get("refund") is not None:
        found.append("refund on a non-refunded event")
    if record.get("order_status") is not None:
        # The status document's external version: a non-negative long.
        offset = record.get("source_offset")
        if type(offset) is not int or not 0 <= offset < _RANGES["long"]:
            found.append("wrong type for source_offset")
    return found


def _expected_event_id(record: dict[str, Any]) -> str | None:
    """The id the contract gives the record's event (as process_orders checks it), or None
    when the fields it is made of are not there or not of their types."""
    order_id, kind, refund = record.get("order_id"), record.get("event_type"), record.get("refund")
    if type(order_id) is not int or kind not in EVENT_TYPES:
        return None
    if kind != "refunded":
        return f"{order_id}-{kind}"
    refund_id = refund.get("refund_id") if isinstance(refund, dict) else None
    return f"{order_id}-refund-{refund_id}" if type(refund_id) is int else None


def _lines_problems(items: Any, where: str, fields: tuple[tuple[str, str], ...]) -> list[str]:
    """The problems of an array of order or refund lines (none when it is absent)."""
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"wrong type for {where}"]
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            found.append(f"wrong type for {where}[{index}]")
        else:
            found += _object_problems(item, f"{where}[{index}]", fields)
    return found


def _object_problems(value: dict, where: str, fields: tuple[tuple[str, str], ...]) -> list[str]:
    found = []
    for field, mapping_type in fields:
        item = value.get(field)
        if item is None:
            found.append(f"missing field {where}.{field}")
        elif not _plainly_good(item, mapping_type):
            problem = _value_problem(item, mapping_type)
            if problem:
                found.append(problem.format(f"{where}.{field}"))
    return found


_SKIPPED = frozenset(_DERIVED + _NOT_ON_ORDER)


@cache
def _item_types() -> tuple[tuple[str, str], ...]:
    """(item field, mapping type of the line field it becomes), in _LINE_FIELDS order."""
    lines = _types("lines")
    return tuple((field, lines[line_field]) for field, line_field in _LINE_FIELDS.items())


@cache
def _refund_types() -> tuple[tuple[str, str], ...]:
    ledger = _types("ledger")
    return tuple((field, ledger[name]) for field, name in _REFUND_FIELDS.items())


@cache
def _refund_line_types() -> tuple[tuple[str, str], ...]:
    ledger = _types("ledger")
    return tuple((field, ledger[name]) for field, name in _REFUND_LINE_FIELDS.items())


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


def with_event(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its event named: a record without event fields is a paid event."""
    if record.get("event_type") is not None and record.get("event_id") is not None:
        return record
    kind = record.get("event_type") or PAID
    return {**record, "event_id": f"{record['order_id']}-{kind}", "event_type": kind}


def ledger_document_id(event_id: str, line_number: int | None = None) -> str:
    return event_id if line_number is None else f"{event_id}-{line_number}"


def ledger_documents(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) of the event's ledger documents: first the event's own (its whole
    money movement: + the total when paid, - the refund, 0 when cancelled or failed), then
    one per line it moves (+ each order line when paid, - each refunded line), numbered from
    1. Amounts not tied to a line (shipping, a refund of an amount only) are in the event's
    document alone, so sums by product need not add up to the net."""
    shared = {
        name: record[field] for field, name in _EVENT_FIELDS_ON_LEDGER.items() if field in record
    }
    shared["source_system"] = SOURCE_SYSTEM
    event_id, kind = record["event_id"], record["event_type"]
    head = {**shared, "entry": "event", "order_fingerprint": record["order_fingerprint"]}
    if "payment_method" in record:
        head["payment_method"] = record["payment_method"]
    lines: list[dict[str, Any]] = []
    if kind == PAID:
        head["amount"] = record["total"]
        for item in record.get("items") or []:
            line = {name: item[field] for field, name in _LINE_FIELDS.items()}
            line["line_amount"] = line.pop("line_total")
            line.pop("unit_price")
            lines.append(line)
    elif kind == "refunded":
        refund = record["refund"]
        head["amount"] = -refund["amount"]
        head["refund_id"] = refund["refund_id"]
        head["refund_reason"] = refund["reason"]
        for item in refund["items"]:
            line = {name: item[field] for field, name in _REFUND_LINE_FIELDS.items()}
            line["quantity"], line["line_amount"] = -line["quantity"], -line["line_amount"]
            lines.append(line)
    else:
        head["amount"] = 0.0
    docs = [(ledger_document_id(event_id), head)]
    for number, line in enumerate(lines, start=1):
        doc = {**shared, "entry": "line", "line_number": number, **line}
        docs.append((ledger_document_id(event_id, number), doc))
    return docs


def status_document(record: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """The order's status document and its external version (the event's offset in
    Topic_Purchase, where an order's events keep their order), or None without a status."""
    if record.get("order_status") is None:
        return None
    fields = ("order_id", "order_status", "event_id", "event_type", "event_time", "currency")
    doc = {name: record[name] for name in (*fields, "customer_id") if name in record}
    doc["source_system"] = SOURCE_SYSTEM
    return doc, record["source_offset"]
