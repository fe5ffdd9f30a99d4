"""An independent judge of an orders-log line: the JSON Schema of the contract (less the
keywords process_orders deliberately leaves alone) plus the cross-field rules, written apart
from spark/tap_spark/orders.py so that the two can be held against each other."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from datetime import datetime

from jsonschema import Draft202012Validator

from tapstack.contracts import (
    ORDER_KEYWORDS_NOT_ENFORCED,
    enrichment,
    longest_shipped_line,
    order_schema,
)

TOLERANCE = enrichment("total_tolerance")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")


def relaxed_schema() -> dict:
    """The contract without the keywords the Spark stage deliberately does not enforce (one
    list, with the reasons: tapstack.contracts.ORDER_KEYWORDS_NOT_ENFORCED)."""
    schema = copy.deepcopy(order_schema())

    def strip(node):
        if isinstance(node, dict):
            for key in ORDER_KEYWORDS_NOT_ENFORCED:
                node.pop(key, None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(schema)
    return schema


VALIDATOR = Draft202012Validator(relaxed_schema())


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _no_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def valid(line: str) -> bool:
    """Whether process_orders must keep the line (False: dead-letter it)."""
    if len(line.encode("utf-8")) >= longest_shipped_line():
        return False  # the collectors cut a line there
    try:
        order = json.loads(
            line, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys
        )
    except (ValueError, RecursionError):
        return False
    if not isinstance(order, dict) or not VALIDATOR.is_valid(order):
        return False
    if abs(sum(item["total"] for item in order["items"]) - order["total"]) > TOLERANCE:
        return False
    try:
        datetime.fromisoformat(order["timestamp"])
    except ValueError:
        return False
    if not _ISO.match(order["timestamp"]):
        return False
    return _event_holds(order) and _refund_holds(order)


def event_id(order: dict) -> str:
    kind = order.get("event_type", "paid")
    what = f"refund-{order['refund']['refund_id']}" if kind == "refunded" else kind
    return f"{int(order['order_id'])}-{what}"


def _event_holds(order: dict) -> bool:
    return "event_id" not in order or order["event_id"] == event_id(order)


def _refund_holds(order: dict) -> bool:
    """Each refund alone: at most the order's total, its lines at most the refund, and each
    line at most what the order holds of that product."""
    refund = order.get("refund")
    if refund is None:
        return True
    if refund["amount"] > order["total"] + TOLERANCE:
        return False
    if sum(line["amount"] for line in refund["items"]) > refund["amount"] + TOLERANCE:
        return False
    units: dict[int, int] = defaultdict(int)
    money: dict[int, float] = defaultdict(float)
    for item in order["items"]:
        units[item["product_id"]] += item["quantity"]
        money[item["product_id"]] += item["total"]
    return all(
        units[line["product_id"]] >= line["quantity"]
        and line["amount"] <= money[line["product_id"]] + TOLERANCE
        for line in refund["items"]
    )
