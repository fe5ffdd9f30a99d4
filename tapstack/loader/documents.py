"""How one Topic_Dashboard record becomes Elasticsearch documents.

The Logstash pipeline (logstash/pipeline/tap.conf) does the same; tests/test_logstash_contract.py
holds the two against each other. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

SOURCE_SYSTEM = "spark_mllib"

# Fields of a Topic_Dashboard record that are not copied onto the order document.
_NOT_ON_ORDER = ("items", "timestamp", "schema_version", "source_partition", "source_offset")
# Order fields repeated on each line so that line panels can be filtered like order panels.
_ORDER_FIELDS_ON_LINE = (
    "order_id",
    "event_time",
    "currency",
    "customer_id",
    "purchase_behaviour",
    "spender_type",
)


def order_document_id(record: dict[str, Any]) -> str:
    return str(record["order_id"])


def line_document_id(order_id: int | str, line_number: int) -> str:
    return f"{order_id}-{line_number}"


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
        doc = {
            **shared,
            "line_number": number,
            "product_id": item["product_id"],
            "product_name": item["product_name"],
            "sku": item["sku"],
            "category": item["category"],
            "quantity": item["quantity"],
            "unit_price": item["unit_price"],
            "line_total": item["total"],
            "source_system": SOURCE_SYSTEM,
        }
        docs.append((line_document_id(record["order_id"], number), doc))
    return docs
