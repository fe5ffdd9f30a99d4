"""How the loader judges a Topic_Dashboard record and an Elasticsearch answer (pure functions):
the reason a bad record is dead-lettered with, the documents of a good one, what each bulk
item's status means, and the dead-letter headers."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime

import orjson
import pytest

from tapstack import contracts
from tapstack.elastic.templates import mapping_properties
from tapstack.loader import dead_letters, documents
from tapstack.loader import es_loader as el


def _item(product_id=101, name="Basic Cotton Tee White", category="T-shirts", quantity=2):
    return {
        "product_id": product_id,
        "product_name": name,
        "sku": f"SKU-{product_id}",
        "category": category,
        "quantity": quantity,
        "unit_price": 19.9,
        "total": round(quantity * 19.9, 2),
    }


def record(**changes) -> dict:
    """A Topic_Dashboard record as the behaviour job writes it."""
    base = {
        "schema_version": 1,
        "order_id": 1001,
        "timestamp": "2026-03-01T10:15:00+01:00",
        "currency": "EUR",
        "total": 118.8,
        "payment_method": "cod",
        "items": [_item(), _item(133, 'Silk Scarf "Portofino"', "Accessories", 1)],
        "duration_session": 95,
        "pages_viewed": 4,
        "event_time": "2026-03-01T09:15:00.000Z",
        "processed_at": "2026-03-01T09:15:02.123Z",
        "customer_id": "c0ffee",
        "customer_first_name": "Lorenzo",
        "spender_type": "Standard Spender",
        "stock_alert": "Normal Demand",
        "items_count": 2,
        "units": 3,
        "avg_unit_price": 39.6,
        "order_hour": 10,
        "order_weekday": "Sunday",
        "order_fingerprint": "f1" * 32,
        "source_partition": 1,
        "source_offset": 12,
        "purchase_behaviour": "Impulsive",
        "behaviour_distance": 0.42,
        "model_version": "kmeans-v1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def reason(value: bytes | dict | list) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(documents.BadRecord) as caught:
        documents.order_of(data)
    return str(caught.value)


def test_a_good_record_gives_its_order_and_numbered_lines():
    good = record()
    order = documents.order_of(orjson.dumps(good))
    assert order.order_id == 1001 and order.document_id == "1001"
    assert order.fingerprint == good["order_fingerprint"]
    assert not set(documents._NOT_ON_ORDER) & set(order.document)
    assert order.document["products"] == ["Basic Cotton Tee White", 'Silk Scarf "Portofino"']
    assert order.document["categories"] == ["Accessories", "T-shirts"]
    assert [line_id for line_id, _ in order.lines] == ["1001-1", "1001-2"]
    line = order.lines[1][1]
    assert line["line_number"] == 2 and line["line_total"] == good["items"][1]["total"]
    assert set(line) <= set(mapping_properties("lines"))
    assert set(order.document) <= set(mapping_properties("orders"))


def test_the_spark_record_shapes_pass():
    """What the behaviour job leaves out (nulls dropped, no label) is no reason."""
    documents.order_of(orjson.dumps(record(purchase_behaviour=_DROP, avg_unit_price=None)))
    documents.order_of(orjson.dumps(record(items=[])))  # only the order, no lines
    documents.order_of(orjson.dumps(record(items=_DROP)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"hello world", "not JSON"),
        (b"", "not JSON"),
        (b'{"order_id": 1', "not JSON"),
        (b"NaN", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"an order"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (record(order_id=_DROP), "missing field order_id"),
        (record(order_id=None), "missing field order_id"),
        (record(order_fingerprint=_DROP), "missing field order_fingerprint"),
        (record(order_id="1001"), "wrong type for order_id"),
        (record(order_id=True), "wrong type for order_id"),
        (record(order_id=1001.0), "wrong type for order_id"),
        (record(order_id=2**63), "order_id out of range"),
        (record(order_id=10**30), "order_id out of range"),  # orjson: an integral float
        (record(pages_viewed=2**31), "pages_viewed out of range"),
        (record(total="99.90"), "wrong type for total"),
        (record(customer_id=7), "wrong type for customer_id"),
        (record(customer_id={"id": 7}), "wrong type for customer_id"),
        (record(customer_id=["a"]), "wrong type for customer_id"),
        (record(customer_id="x" * 40_000), "customer_id longer than 32766 bytes"),
        (record(event_time="24/11/2026 10:00"), "event_time is not a date"),
        (record(processed_at="2026-02-30T10:00:00Z"), "processed_at is not a date"),
        (record(processed_at="2026-03-01T24:00:00Z"), "processed_at is not a date"),
        (record(processed_at=1700000000000), "wrong type for processed_at"),
        (record(customer={"email": "a@b.c"}), "unknown field customer"),
        (record(items=None, extra=1), "unknown field extra"),
        (record(items=[None]), "wrong type for items[0]"),
        (record(items="tee"), "wrong type for items"),
        (record(items={"0": _item()}), "wrong type for items"),
        (record(items=[_item(), 42]), "wrong type for items[1]"),
        (record(items=[{**_item(), "quantity": "2"}]), "wrong type for items[0].quantity"),
        (record(items=[{**_item(), "quantity": 2.5}]), "wrong type for items[0].quantity"),
        (record(items=[{**_item(), "product_name": 5}]), "wrong type for items[0].product_name"),
        (record(items=[{**_item(), "unit_price": None}]), "missing field items[0].unit_price"),
        (
            record(items=[{k: v for k, v in _item().items() if k != "sku"}]),
            "missing field items[0].sku",
        ),
    ],
)
def test_a_bad_record_is_refused_with_its_reason(value, expected):
    assert reason(value) == expected


def test_every_problem_is_named_in_record_order_up_to_a_limit():
    assert reason(record(order_id="x", total="y", items=[None])) == (
        "wrong type for order_id; wrong type for total; wrong type for items[0]"
    )
    many = reason(record(items=[None] * 25))
    shown = many.split("; ")
    assert shown[: documents.MAX_REASONS] == [
        f"wrong type for items[{i}]" for i in range(documents.MAX_REASONS)
    ]
    assert shown[-1] == f"{25 - documents.MAX_REASONS} more"


def test_dates_are_a_strict_subset_of_what_elasticsearch_reads():
    good = [
        "2026-03-01",
        "2026-03-01T09:15",
        "2026-03-01T09:15:00",
        "2026-03-01T09:15:00.123456789Z",
        "2026-03-01T09:15:00+01:00",
        "2026-03-01T09:15:00+18:00",  # java.time.ZoneOffset's extremes
        "2026-03-01T09:15:00-18:00",
        "2024-02-29T00:00:00Z",
        "2000-02-29",
    ]
    bad = ["2026-3-1", "2026-03-01 09:15:00", "1900-02-29", "2026-13-01", "2026-03-01T09:15:60Z"]
    for text in good:
        assert documents._is_date(text), text
    beyond = ["2026-03-01T09:15:00+19:00", "2026-03-01T09:15:00+18:01", "2026-03-01T09:15:00-18:59"]
    for text in bad + beyond + ["2026-03-01T09:15:00.1234567891Z"]:
        assert not documents._is_date(text), text


def test_every_mapping_type_of_the_templates_has_a_rule():
    for role in ("orders", "lines"):
        for mapping in mapping_properties(role).values():
            # raises ValueError for a type with no rule
            assert documents._value_problem(object(), mapping["type"]) == "wrong type for {}"


def test_a_hostile_string_is_a_good_value():
    name = "<script>alert('x')</script> {{7*7}} \u202e 🛒"
    order = documents.order_of(orjson.dumps(record(items=[_item(name=name)])))
    assert order.document["products"] == [name]


# ── what Elasticsearch's answers mean ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("op", "status", "error", "whole", "alone", "expected"),
    [
        ("create", 201, None, False, False, el.OK),
        ("delete", 200, None, False, False, el.OK),
        ("create", 409, {"type": "version_conflict_engine_exception"}, False, False, el.EXISTS),
        ("delete", 404, None, False, False, el.GONE),
        ("create", 400, {"type": "document_parsing_exception"}, False, False, el.REFUSED),
        ("create", 404, {"type": "index_not_found_exception"}, False, False, el.REFUSED),
        ("create", 429, {"type": "es_rejected_execution_exception"}, False, False, el.RETRY),
        ("create", 429, {"type": "cluster_block_exception"}, False, False, el.RETRY),
        ("create", 403, {"type": "cluster_block_exception"}, False, False, el.RETRY),
        ("create", 403, {"type": "security_exception"}, False, False, el.RETRY),
        ("delete", 403, {"type": "security_exception"}, False, False, el.REFUSED),
        ("create", 503, {"type": "unavailable_shards_exception"}, False, False, el.RETRY),
        # a failed request is reported for each of its documents: never their fault ...
        ("create", 400, "bad request", True, False, el.RETRY),
        ("create", 401, "unauthorized", True, False, el.RETRY),
        ("create", 429, "too many requests", True, False, el.RETRY),
        # ... except a 413, which is the document's when it was alone in the request
        ("create", 413, "payload too large", True, False, el.TOO_LARGE),
        ("create", 413, "payload too large", True, True, el.REFUSED),
    ],
)
def test_what_a_bulk_answer_means(op, status, error, whole, alone, expected):
    assert el.outcome(op, status, error, whole, alone) == expected


def test_an_elasticsearch_reason_names_the_type_and_the_cause():
    error = {
        "type": "document_parsing_exception",
        "reason": "[1:15] failed to parse field [product_id] of type [integer]",
        "caused_by": {"type": "x_content_parse_exception", "reason": "Numeric value out of range"},
    }
    assert el.describe(error, 400) == (
        "elasticsearch: document_parsing_exception: [1:15] failed to parse field [product_id] "
        "of type [integer] (x_content_parse_exception: Numeric value out of range)"
    )
    assert el.describe("payload too large", 413) == "elasticsearch: status 413: payload too large"


# ── rounds and headers ───────────────────────────────────────────────────────────────────


def test_a_repeated_order_id_waits_for_the_next_round():
    def pending(order_id, tag):
        order = documents.order_of(orjson.dumps(record(order_id=order_id)))
        return el._Pending(message=tag, order=order)

    batch = [pending(1, "a"), pending(2, "b"), pending(1, "c"), pending(1, "d"), pending(3, "e")]
    rounds = [[p.message for p in group] for group in el._rounds(batch)]
    assert rounds == [["a", "b", "e"], ["c"], ["d"]]


def test_dead_letter_headers_are_the_spark_stages():
    now = datetime(2026, 3, 1, 9, 15, 0, 123456, tzinfo=UTC)
    headers = dead_letters.headers(
        "not JSON", "loader", topic="Topic_Dashboard", partition=1, offset=42, now=now
    )
    assert headers == [
        ("tap.error.reason", b"not JSON"),
        ("tap.error.stage", b"loader"),
        ("tap.source.topic", b"Topic_Dashboard"),
        ("tap.source.partition", b"1"),
        ("tap.source.offset", b"42"),
        ("tap.error.time", b"2026-03-01T09:15:00.123Z"),
    ]
    # the names and order of spark/tap_spark/kafka_io.py's dead_letter_headers
    source = contracts.ROOT / "spark" / "tap_spark" / "kafka_io.py"
    spark = re.findall(r'header\(\s*"(tap\.[a-z.]+)"', source.read_text("utf-8"))
    assert [key for key, _ in headers] == spark
    from_file = dead_letters.headers("r", "collector", file="/var/log/orders.log", offset=7)
    assert [k for k, _ in from_file] == [
        "tap.error.reason",
        "tap.error.stage",
        "tap.source.file",
        "tap.source.offset",
        "tap.error.time",
    ]


def test_a_record_is_not_changed_by_being_judged():
    good = record()
    kept = copy.deepcopy(good)
    documents.problems(good)
    documents.order_document(good)
    documents.line_documents(good)
    assert good == kept
    assert json.loads(json.dumps(good)) == kept


# ── events of an order's life (contract v2) ──────────────────────────────────────────────


def event(kind: str, order_id: int = 1001, offset: int = 12, **changes) -> dict:
    """A version 2 record of an order's event; a refund gives back one unit of the tee."""
    what = kind
    extra: dict = {}
    if kind == "refunded":
        refund_id = changes.pop("refund_id", 7)
        what = f"refund-{refund_id}"
        returned = {k: _item()[k] for k in ("product_id", "product_name", "sku", "category")}
        extra["refund"] = {
            "refund_id": refund_id,
            "amount": 24.85,
            "reason": "Wrong size",
            "items": [{**returned, "quantity": 1, "amount": 19.9}],
        }
    status = {"paid": "processing", "refunded": "processing"}.get(kind, kind)
    fields = {
        "schema_version": 2,
        "event_id": f"{order_id}-{what}",
        "event_type": kind,
        "order_status": status,
        "order_fingerprint": f"{kind}-{order_id}-{offset}",
        "source_offset": offset,
        **extra,
    }
    return record(order_id=order_id, **{**fields, **changes})


def _order_of(r: dict) -> documents.Order:
    return documents.order_of(orjson.dumps(r))


def test_a_paid_event_writes_its_order_lines_and_ledger_and_status():
    written = _order_of(event("paid"))
    assert (written.head_role, written.document_id) == ("orders", "1001")
    assert not {"event_id", "event_type", "order_status", "refund"} & set(written.document)
    ledger = {doc_id: doc for role, doc_id, doc in written.parts if role == "ledger"}
    assert ledger["1001-paid"]["amount"] == 118.8 and ledger["1001-paid"]["entry"] == "event"
    assert [ledger[f"1001-paid-{n}"]["line_amount"] for n in (1, 2)] == [39.8, 19.9]
    assert [ledger[f"1001-paid-{n}"]["quantity"] for n in (1, 2)] == [2, 1]
    assert {d["event_time"] for d in ledger.values()} == {"2026-03-01T09:15:00.000Z"}
    status, version = written.status
    assert status["order_status"] == "processing" and version == 12


def test_a_refund_writes_only_negative_ledger_documents_under_its_event_id():
    written = _order_of(event("refunded", offset=40))
    assert (written.head_role, written.document_id) == ("ledger", "1001-refund-7")
    assert written.document["amount"] == -24.85 and written.document["refund_id"] == 7
    assert written.document["refund_reason"] == "Wrong size"
    assert written.document["order_fingerprint"] == "refunded-1001-40"
    [(role, doc_id, line)] = written.parts
    assert (role, doc_id) == ("ledger", "1001-refund-7-1")
    assert (line["quantity"], line["line_amount"], line["category"]) == (-1, -19.9, "T-shirts")
    assert written.lines == [] and written.status[1] == 40


@pytest.mark.parametrize("kind", ["cancelled", "failed"])
def test_a_cancellation_or_failure_moves_no_money(kind):
    written = _order_of(event(kind))
    assert written.head_role == "ledger" and written.document["amount"] == 0.0
    assert written.parts == [] and written.status[0]["order_status"] == kind


def test_a_record_without_event_fields_is_its_orders_paid_event_without_a_status():
    written = _order_of(record())
    assert written.head_role == "orders"
    ledger = {doc_id for role, doc_id, _ in written.parts if role == "ledger"}
    assert ledger == {"1001-paid", "1001-paid-1", "1001-paid-2"}
    assert written.status is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_type": "shipped"}, "unknown event_type shipped"),
        ({"event_type": 3}, "wrong type for event_type"),
        ({"refund": None, "event_type": "refunded"}, "missing field refund"),
        ({"refund": {"refund_id": 1}}, "refund on a non-refunded event"),
        ({"source_offset": "12"}, "wrong type for source_offset"),
        ({"source_offset": -1}, "wrong type for source_offset"),
        ({"total": None}, "missing field total"),
    ],
)
def test_bad_event_fields_are_named(changes, reason):
    with pytest.raises(documents.BadRecord) as caught:
        _order_of(event("paid", **changes))
    assert reason in str(caught.value).split("; ")


def test_a_refund_of_the_wrong_shape_is_named():
    bad = event("refunded")
    bad["refund"] = {**bad["refund"], "amount": "24.85"}
    bad["refund"]["items"] = [{**bad["refund"]["items"][0], "quantity": 1.5}, 7]
    with pytest.raises(documents.BadRecord) as caught:
        _order_of(bad)
    assert str(caught.value).split("; ") == [
        "wrong type for refund.amount",
        "wrong type for refund.items[0].quantity",
        "wrong type for refund.items[1]",
    ]


def test_a_paid_record_with_a_null_event_id_gets_its_own():
    written = _order_of(event("paid", event_id=None))
    assert {doc_id for _, doc_id, _ in written.parts if doc_id.startswith("1001-paid")} == {
        "1001-paid",
        "1001-paid-1",
        "1001-paid-2",
    }


def test_a_refund_without_its_lines_is_named():
    bad = event("refunded")
    del bad["refund"]["items"]
    with pytest.raises(documents.BadRecord) as caught:
        _order_of(bad)
    assert "missing field refund.items" in str(caught.value).split("; ")
