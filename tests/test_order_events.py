"""process_orders on every event of an order's life (contract v2): paid, refunded, cancelled
and failed lines are kept and carry their event; a version 1 line is a paid event; an event
that breaks the lifecycle rules is dead-lettered with its reason, as the oracle judges it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tap_spark.orders import Rules, enrich, parse_lines
from tap_spark.process_orders import to_records
from tapstack.simulator import Simulator
from tests.support import order_oracle

pytestmark = pytest.mark.spark

KEY = "order-events-test-key"
RULES = Rules.from_settings()
V1_FIELDS = (
    "schema_version",
    "order_id",
    "timestamp",
    "currency",
    "total",
    "payment_method",
    "items",
    "customer",
    "duration_session",
    "pages_viewed",
)


def _order() -> dict:
    """A simulated order with at least two lines, as a version 1 line holds it."""
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for simulated in Simulator(seed=21, start=start).orders(50):
        if len(simulated.event["items"]) >= 2:
            return {name: simulated.event[name] for name in V1_FIELDS} | {"schema_version": 1}
    raise AssertionError("no order with two lines in 50")


def _event(kind: str, status: str, **extra) -> dict:
    """The order as a version 2 event of `kind`, keys in the contract's order."""
    v1 = _order()
    refund_id = (extra.get("refund") or {}).get("refund_id", 1)
    what = f"refund-{refund_id}" if kind == "refunded" else kind
    event = {
        "schema_version": 2,
        "event_id": f"{v1['order_id']}-{what}",
        "event_type": kind,
        "order_id": v1["order_id"],
        "order_status": status,
    }
    event |= {name: v1[name] for name in V1_FIELDS[2:]}
    return event | extra


def _refund(order: dict, refund_id: int = 7, units: int = 1) -> dict:
    """A refund of `units` of the order's first line."""
    line = order["items"][0]
    amount = round(line["total"] / line["quantity"] * units, 2)
    returned = {name: line[name] for name in ("product_id", "product_name", "sku", "category")}
    return {
        "refund_id": refund_id,
        "amount": amount,
        "reason": "Wrong size",
        "items": [returned | {"quantity": units, "amount": amount}],
    }


def _refunded(change: Callable[[dict], object] | None = None) -> dict:
    event = _event("refunded", "processing", refund=_refund(_order()))
    if change is not None:
        change(event)
    return event


def _line(event: dict) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _analysed(spark, lines: list[str]) -> list[tuple[str | None, dict]]:
    """(reason, Topic_Analysis record or dead letter's fields) of each line, in order."""
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    parsed = parse_lines(frame, RULES)
    reasons = {
        r.source_offset: r.reason for r in parsed.select("source_offset", "reason").collect()
    }
    out = to_records(enrich(parsed, RULES, KEY)).collect()
    records = {}
    for row in out:
        if row.topic == "Topic_Analysis":
            record = json.loads(row.value)
            records[record["source_offset"]] = record
    return [(reasons[i], records.get(i, {})) for i in range(len(lines))]


def test_every_event_type_is_kept_and_carries_its_event(spark):
    order = _order()
    events = [
        _event("paid", "processing"),
        _event("refunded", "refunded", refund=_refund(order, refund_id=31, units=1)),
        _event("cancelled", "cancelled"),
        _event("failed", "failed"),
        _event("refunded", "completed", refund=_refund(order, refund_id=32) | {"items": []}),
    ]
    results = _analysed(spark, [_line(e) for e in events])
    assert [reason for reason, _ in results] == [None] * len(events)
    for event, (_, record) in zip(events, results, strict=True):
        assert record["event_id"] == event["event_id"]
        assert record["event_type"] == event["event_type"]
        assert record["order_status"] == event["order_status"]
        assert record.get("refund") == event.get("refund")
        assert record["total"] == event["total"]
        assert record["customer_id"]
        assert "customer" not in record


def test_a_version_1_line_is_the_orders_paid_event(spark):
    order = _order()
    ((reason, record),) = _analysed(spark, [_line(order)])
    assert reason is None
    assert record["event_type"] == "paid"
    assert record["event_id"] == f"{order['order_id']}-paid"
    assert "order_status" not in record and "refund" not in record


def test_a_paid_event_has_the_fingerprint_of_the_same_order_written_as_version_1(spark):
    """A replay after the plugin's upgrade must not look like a different order: the event
    fields are left out of the fingerprint of a version 1 line, not of a version 2 one."""
    v1 = _order()
    v1_again = copy.deepcopy(v1)
    results = _analysed(spark, [_line(v1), _line(v1_again), _line(_event("paid", "processing"))])
    fingerprints = [record["order_fingerprint"] for _, record in results]
    assert fingerprints[0] == fingerprints[1]
    assert fingerprints[2] != fingerprints[0]  # it holds the event fields too


BAD_EVENTS: dict[str, tuple[Callable[[], dict], str]] = {
    "a version 2 line without its event fields": (
        lambda: {k: v for k, v in _event("paid", "processing").items() if k != "event_id"},
        "missing field event_id (schema_version 2)",
    ),
    "a version 1 line with an event type": (
        lambda: _order() | {"event_type": "paid"},
        "field event_type only with schema_version 2",
    ),
    "an unknown event type": (
        lambda: _event("shipped", "completed"),
        "event_type is not one of paid, refunded, cancelled, failed",
    ),
    "an event id of another order": (
        lambda: _event("paid", "processing") | {"event_id": "1-paid"},
        "event_id does not name this event (<order_id>-<event>)",
    ),
    "an event id of another event": (
        lambda: _event("cancelled", "cancelled") | {"event_id": f"{_order()['order_id']}-paid"},
        "event_id does not name this event (<order_id>-<event>)",
    ),
    "a status that is no slug": (
        lambda: _event("paid", "wc-Processing"),
        "order_status is not a status slug",
    ),
    "a refunded event without its refund": (
        lambda: _event("refunded", "refunded"),
        "missing field refund (event_type refunded)",
    ),
    "a refund on a cancelled event": (
        lambda: _event("cancelled", "cancelled", refund=_refund(_order())),
        "field refund only with event_type refunded",
    ),
    "a refund above the order total": (
        lambda: _refunded(lambda e: e["refund"].update(amount=e["total"] + 1)),
        "refund amount above the order total",
    ),
    "a negative refund": (
        lambda: _refunded(lambda e: e["refund"].update(amount=-1.0)),
        "negative refund amount",
    ),
    "refund lines above the refund": (
        lambda: _refunded(lambda e: e["refund"].update(amount=0.01)),
        "refund items add up to more than the refund amount",
    ),
    "a refunded product the order does not hold": (
        lambda: _refunded(lambda e: e["refund"]["items"][0].update(product_id=999_999_999)),
        "refund item not in the order",
    ),
    "more units refunded than ordered": (
        lambda: _refunded(lambda e: e["refund"]["items"][0].update(quantity=10_000)),
        "refund item quantity above the units ordered",
    ),
    "a refund line above the order line": (
        lambda: _refunded(
            lambda e: (
                e["refund"].update(amount=e["total"])
                or e["refund"]["items"][0].update(amount=e["items"][0]["total"] + 1)
            )
        ),
        "refund item amount above the line total",
    ),
    "a refund line with no units": (
        lambda: _refunded(lambda e: e["refund"]["items"][0].update(quantity=0)),
        "refund item quantity below 1",
    ),
    "a refund line of the wrong type": (
        lambda: _refunded(lambda e: e["refund"]["items"][0].update(amount="4.50")),
        "malformed refund item",
    ),
    "an unknown refund field": (
        lambda: _refunded(lambda e: e["refund"].update(note="x")),
        "unknown refund field 'note'",
    ),
    "an unknown refund line field": (
        lambda: _refunded(lambda e: e["refund"]["items"][0].update(colour="red")),
        "unknown refund.items field 'colour'",
    ),
    "a refund reason over maxLength": (
        lambda: _refunded(lambda e: e["refund"].update(reason="x" * 201)),
        "refund.reason longer than 200 characters",
    ),
    "a null refund": (
        lambda: _event("refunded", "refunded", refund=None),
        "wrong type for refund",
    ),
}


def test_events_that_break_the_lifecycle_rules_are_dead_lettered_with_their_reason(spark):
    lines = [_line(make()) for make, _ in BAD_EVENTS.values()]
    results = _analysed(spark, lines)
    for (name, (_, expected)), line, (reason, _) in zip(
        BAD_EVENTS.items(), lines, results, strict=True
    ):
        assert reason is not None and expected in reason.split("; "), (name, reason)
        assert not order_oracle.valid(line), name


def test_good_and_bad_events_are_judged_like_the_oracle(spark):
    order = _order()
    lines = [_line(make()) for make, _ in BAD_EVENTS.values()] + [
        _line(_event("paid", "completed")),
        _line(_event("refunded", "refunded", refund=_refund(order, units=1))),
        _line(_event("refunded", "on-hold", refund=_refund(order) | {"items": []})),
        _line(_event("failed", "failed")),
        _line(order),
    ]
    verdicts = [reason is None for reason, _ in _analysed(spark, lines)]
    assert verdicts == [order_oracle.valid(line) for line in lines]
    assert verdicts.count(True) == 5
