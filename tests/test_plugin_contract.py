r"""The PHP plugin and the Python simulator write the same contract (v2), byte for byte.

- The plugin's own PHPUnit suite (wordpress_plugin/tests/run.sh) passes.
- Lines written by the plugin's real code path (WooCommerce doubles -> the plugin's status,
  payment and refund hooks -> formatter -> log writer, driven by
  wordpress_plugin/tests/emit-lines.php), every event type (paid, refunded, cancelled, failed),
  and lines from the simulator are valid against contracts/order.schema.json (jsonschema,
  draft 2020-12, formats on), keys in the order of the schema's "properties".
- Whole lifecycles through the plugin write what the counting rule says: nothing at on-hold,
  paid once paid, one line per refund, cancelled and failed once each.
- For the same order data the plugin and ``format_line`` produce identical bytes for the paid
  event: a fixed order (whole-number floats, "Lorenzo Müller", a slash in a product name, an
  escaped category name), an order whose texts carry ``<``, ``>`` and ``&`` (written as
  ``\u003C``, ``\u003E``, ``\u0026`` by both: JSON_HEX_TAG | JSON_HEX_AMP), and a few hundred
  simulated paid orders fed to the plugin as WooCommerce would hold them (amounts as decimal
  strings split into net + 22 % VAT, dates in UTC).

Needs ``php`` (and Debian's ``phpunit`` for the suite): ``apt-get install php-cli phpunit``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tapstack.contracts import ROOT, enrichment, order_schema

PLUGIN_TESTS = ROOT / "wordpress_plugin" / "tests"
RUN_SH = PLUGIN_TESTS / "run.sh"
EMIT = PLUGIN_TESTS / "emit-lines.php"
PHP = shutil.which("php")

needs_php = pytest.mark.skipif(
    PHP is None, reason="php is not installed (apt-get install php-cli phpunit)"
)


def _validator() -> Draft202012Validator:
    schema = order_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _assert_valid_lines(lines: list[str], who: str) -> list[dict]:
    validator = _validator()
    schema = order_schema()
    keys = list(schema["properties"])
    item_keys = schema["properties"]["items"]["items"]["required"]
    customer_keys = schema["properties"]["customer"]["required"]
    refund_keys = schema["properties"]["refund"]["required"]
    refund_item_keys = schema["properties"]["refund"]["properties"]["items"]["items"]["required"]
    assert lines, f"{who}: no lines"
    events = []
    for number, line in enumerate(lines, 1):
        assert line.endswith("\n") and line.count("\n") == 1, f"{who} line {number}: not one line"
        event = json.loads(line)
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        assert not errors, f"{who} line {number}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors
        )
        # Key order (json.loads keeps it): the schema's "properties", refund only on refunds.
        expected = [key for key in keys if key in event]
        assert list(event) == expected, f"{who} line {number}: top-level key order"
        if event.get("schema_version") == 2:
            assert expected == keys[: len(expected)], f"{who} line {number}: keys missing"
        for item in event["items"]:
            assert list(item) == item_keys, f"{who} line {number}: item key order"
            assert isinstance(item["unit_price"], float) and isinstance(item["total"], float)
        assert list(event["customer"]) == customer_keys, f"{who} line {number}: customer keys"
        assert isinstance(event["total"], float), f"{who} line {number}: total must be a float"
        if "refund" in event:
            refund = event["refund"]
            assert list(refund) == refund_keys, f"{who} line {number}: refund key order"
            assert isinstance(refund["amount"], float)
            for item in refund["items"]:
                assert list(item) == refund_item_keys, f"{who} line {number}: refund item keys"
                assert isinstance(item["amount"], float)
        events.append(event)
    return events


def _cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def spec_from_event(event: dict) -> dict:
    """The order as WooCommerce holds it: decimal strings, VAT split out, UTC dates."""
    paid = datetime.fromisoformat(event["timestamp"]).astimezone(UTC)
    items = []
    for item in event["items"]:
        gross = Decimal(repr(item["total"]))
        net = (gross / Decimal("1.22")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        items.append(
            {
                "product_id": item["product_id"],
                "name": item["product_name"],
                "quantity": item["quantity"],
                "total": _cents(net),
                "total_tax": _cents(gross - net),
                "sku": item["sku"],
                "categories": [item["category"]] if item["category"] else [],
            }
        )
    spec = {
        "id": event["order_id"],
        "currency": event["currency"],
        "total": _cents(Decimal(repr(event["total"]))),
        "payment_method": event["payment_method"],
        "customer_id": event["customer"]["id"],
        "billing_first_name": event["customer"]["first_name"],
        "billing_email": event["customer"]["email"],
        "date_created": paid.strftime("%Y-%m-%d %H:%M:%S"),
        "date_paid": paid.strftime("%Y-%m-%d %H:%M:%S"),
        "items": items,
        "session": {
            "duration_session": event["duration_session"],
            "pages_viewed": event["pages_viewed"],
        },
    }
    # A paid event: the order is paid into the status the event carries.
    if event.get("order_status"):
        spec["lifecycle"] = [{"status": event["order_status"]}]
    return spec


def plugin_lines(specs: list[dict], now: int | None = None) -> list[str]:
    """Runs the plugin's code path on the orders and returns the log lines it wrote."""
    payload = {"timezone": enrichment("shop_timezone"), "orders": specs}
    if now is not None:
        payload["now"] = now
    done = subprocess.run(
        [PHP, str(EMIT)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    text = done.stdout.decode("utf-8")
    return text.splitlines(keepends=True)


# The fixed order of the byte-for-byte test: its paid event, as the simulator would emit it.
FIXED_EVENT = {
    "schema_version": 2,
    "event_id": "1042-paid",
    "event_type": "paid",
    "order_id": 1042,
    "order_status": "processing",
    "timestamp": "2026-11-24T10:15:03+01:00",
    "currency": "EUR",
    "total": 80.0,
    "payment_method": "cod",
    "items": [
        {
            "product_id": 11,
            "product_name": "T-Shirt 100% cotone / bio",
            "sku": "TS-BIO/M",
            "category": "Magliette & Top",
            "quantity": 3,
            "unit_price": 20.0,
            "total": 60.0,
        },
        {
            "product_id": 27,
            "product_name": "Sciarpa «Città» Müller",
            "sku": "",
            "category": "",
            "quantity": 1,
            "unit_price": 20.0,
            "total": 20.0,
        },
    ],
    "customer": {"id": 7, "first_name": "Lorenzo Müller", "email": "lorenzo.muller@example.com"},
    "duration_session": 75,
    "pages_viewed": 4,
}

FIXED_LINE = (
    '{"schema_version":2,"event_id":"1042-paid","event_type":"paid","order_id":1042,'
    '"order_status":"processing","timestamp":"2026-11-24T10:15:03+01:00",'
    '"currency":"EUR","total":80.0,"payment_method":"cod","items":[{"product_id":11,'
    '"product_name":"T-Shirt 100% cotone / bio","sku":"TS-BIO/M",'
    '"category":"Magliette \\u0026 Top",'
    '"quantity":3,"unit_price":20.0,"total":60.0},{"product_id":27,'
    '"product_name":"Sciarpa «Città» Müller","sku":"","category":"","quantity":1,'
    '"unit_price":20.0,"total":20.0}],"customer":{"id":7,"first_name":"Lorenzo Müller",'
    '"email":"lorenzo.muller@example.com"},"duration_session":75,"pages_viewed":4}\n'
)


# Texts with the characters JSON_HEX_TAG and JSON_HEX_AMP escape: a billing first name that is
# PHP code, markup in a product name and an SKU, an ampersand in a category (stored by WordPress
# as "&amp;", decoded by the plugin) and in an e-mail's local part.
MARKUP_EVENT = {
    **FIXED_EVENT,
    "event_id": "1043-paid",
    "order_id": 1043,
    "total": 20.0,
    "items": [
        {
            "product_id": 31,
            "product_name": 'Tee <b>"Riviera"</b> & co </script>',
            "sku": "<TEE>&1",
            "category": "Shirts & Tops <new>",
            "quantity": 1,
            "unit_price": 20.0,
            "total": 20.0,
        }
    ],
    "customer": {"id": 0, "first_name": "<?php system($_GET['c']); ?>", "email": "a&b@example.com"},
}


@pytest.fixture(scope="module")
def simulator():
    return pytest.importorskip(
        "tapstack.simulator", reason="the simulator (tapstack.simulator) is not there yet"
    )


@needs_php
def test_php_suite_passes():
    done = subprocess.run(
        ["sh", str(RUN_SH)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "OK (" in done.stdout


@needs_php
def test_fixed_order_same_bytes_from_plugin_and_simulator(simulator):
    python_line = simulator.format_line(FIXED_EVENT)
    assert python_line == FIXED_LINE
    [php_line] = plugin_lines([spec_from_event(FIXED_EVENT)])
    assert php_line.encode("utf-8") == python_line.encode("utf-8")


def test_format_line_escapes_tags_and_ampersands_as_php_does(simulator):
    line = simulator.format_line(MARKUP_EVENT)
    for raw in "<>&":
        assert raw not in line
    assert '"first_name":"\\u003C?php system($_GET[\'c\']); ?\\u003E"' in line  # upper-case hex
    assert '"category":"Shirts \\u0026 Tops \\u003Cnew\\u003E"' in line
    assert json.loads(line) == MARKUP_EVENT


@needs_php
def test_tags_and_ampersands_same_bytes_from_plugin_and_simulator(simulator):
    python_line = simulator.format_line(MARKUP_EVENT)
    [php_line] = plugin_lines([spec_from_event(MARKUP_EVENT)])
    assert php_line.encode("utf-8") == python_line.encode("utf-8")
    assert json.loads(php_line) == MARKUP_EVENT
    _assert_valid_lines([php_line], "plugin, markup in texts")


@needs_php
def test_plugin_and_simulator_lines_are_valid_and_identical(simulator):
    events = [
        order.event
        for order in simulator.Simulator(seed=1, start=datetime(2026, 9, 5, 8, 0)).orders(300)
    ]
    # The plugin's paid event is what both write from the same order data.
    events = [event for event in events if event.get("event_type", "paid") == "paid"]
    python_lines = [simulator.format_line(event) for event in events]
    _assert_valid_lines(python_lines, "simulator")

    php_lines = plugin_lines([spec_from_event(event) for event in events])
    _assert_valid_lines(php_lines, "plugin")
    assert len(php_lines) == len(python_lines)
    for php_line, python_line in zip(php_lines, python_lines, strict=True):
        assert php_line == python_line


@needs_php
def test_plugin_edge_cases_are_valid():
    base = spec_from_event(FIXED_EVENT)
    specs = [
        # Guest checkout, bank transfer marked paid by the shop: the paid date WooCommerce sets.
        {**base, "id": 1, "customer_id": 0, "billing_first_name": "", "payment_method": "bacs",
         "date_paid": None, "lifecycle": [{"status": "on-hold"}, {"status": "processing"}]},
        # Free order, long texts cut to the schema's limits.
        {**base, "id": 2, "total": "0.00", "items": [
            {"product_id": 5, "name": "x" * 250, "quantity": 1, "total": "0.00",
             "sku": "s" * 150, "categories": ["c" * 150]},
        ]},
        # Large quantities and amounts; session figures out of bounds are clamped.
        {**base, "id": 3, "total": "99999.99", "items": [
            {"product_id": 6, "name": "Cappotto", "quantity": 500, "total": "81967.21",
             "total_tax": "18032.78", "sku": "CAP", "categories": ["Cappotti"]},
        ], "session": {"duration_session": 10**9, "pages_viewed": 0}},
        # An order whose visit was never recorded (created in the admin).
        {**{k: v for k, v in base.items() if k != "session"}, "id": 4},
        # A phone order without a billing e-mail: valid, process_orders keys it by the user.
        {**base, "id": 5, "billing_email": ""},
    ]  # fmt: skip
    lines = plugin_lines(specs, now=NOW)
    events = _assert_valid_lines(lines, "plugin edge cases")
    assert [event["event_id"] for event in events] == [f"{n}-paid" for n in range(1, 6)]
    assert events[0]["timestamp"] == "2026-11-24T10:20:00+01:00"
    assert events[2]["duration_session"] == 86400 and events[2]["pages_viewed"] == 1
    assert events[3]["duration_session"] == 0 and events[3]["pages_viewed"] == 1
    assert events[4]["customer"]["email"] == "" and events[4]["customer"]["id"] > 0


# 2026-11-24 09:20:00 UTC (10:20 in the shop), as the PHP tests' clock.
NOW = 1795512000


def _lifecycle_specs() -> list[dict]:
    base = spec_from_event(FIXED_EVENT)
    del base["lifecycle"]
    unpaid = {**base, "date_paid": None, "payment_method": "bacs"}
    tshirts = {"line": 1, "qty": 2, "refund_total": "32.79", "refund_tax": "7.21"}
    return [
        # Cash on delivery, paid, then one T-shirt of three refunded with a reason.
        {**base, "id": 11, "lifecycle": [
            {"status": "processing"}, {"status": "completed"},
            {"at": NOW + 86400, "refund": {"amount": "20.00", "reason": "Taglia sbagliata",
                                           "lines": [{"line": 1, "qty": 1, "refund_total": "16.39",
                                                      "refund_tax": "3.61"}]}},
        ]},
        # Paid, refunded in two goes: two T-shirts, then what is left (amount only: no lines).
        {**base, "id": 12, "lifecycle": [
            {"payment_complete": True},
            {"refund": {"amount": "40.00", "lines": [tshirts]}},
            {"refund": {"amount": "40.00", "reason": "Reso completo"}},
        ]},
        # Bank transfer never paid, cancelled a week later: cancelled, no paid.
        {**unpaid, "id": 13, "lifecycle": [
            {"status": "on-hold"}, {"at": NOW + 7 * 86400, "status": "cancelled"},
        ]},
        # Bank transfer waiting at on-hold: nothing yet.
        {**unpaid, "id": 14, "lifecycle": [{"status": "on-hold"}]},
        # Card declined, then paid; later cancelled by the shop (it keeps its revenue).
        {**unpaid, "id": 15, "payment_method": "stripe", "lifecycle": [
            {"status": "failed"}, {"status": "failed"}, {"payment_complete": True},
            {"status": "cancelled"}, {"status": "processing"}, {"status": "cancelled"},
        ]},
        # A phone order without an e-mail, paid and refunded.
        {**base, "id": 16, "billing_email": "", "lifecycle": [
            {"status": "processing"}, {"refund": {"amount": "5.00", "reason": "Sconto"}},
        ]},
        # Paid before the upgrade (1.x flag): not paid again; its refund counts.
        {**base, "id": 17, "logged_by_v1": True, "lifecycle": [
            {"status": "processing"}, {"refund": {"amount": "20.00"}},
        ]},
    ]  # fmt: skip


@needs_php
def test_plugin_lifecycle_events_are_valid_and_written_once():
    events = _assert_valid_lines(plugin_lines(_lifecycle_specs(), now=NOW), "plugin lifecycle")
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids)), "an event written twice"
    by_order: dict[int, list[tuple[str, str]]] = {}
    for event in events:
        by_order.setdefault(event["order_id"], []).append(
            (event["event_type"], event["order_status"])
        )
    assert by_order == {
        11: [("paid", "processing"), ("refunded", "completed")],
        12: [("paid", "processing"), ("refunded", "processing"), ("refunded", "refunded")],
        13: [("cancelled", "cancelled")],
        15: [("failed", "failed"), ("paid", "processing"), ("cancelled", "cancelled")],
        16: [("paid", "processing"), ("refunded", "processing")],
        17: [("refunded", "processing")],
    }
    refunds = {event["event_id"]: event for event in events if event["event_type"] == "refunded"}
    [first] = [e for e in refunds.values() if e["order_id"] == 11]
    assert first["event_id"] == f"11-refund-{first['refund']['refund_id']}"
    assert first["timestamp"] == "2026-11-25T10:20:00+01:00"
    assert first["refund"]["amount"] == 20.0 and first["refund"]["reason"] == "Taglia sbagliata"
    assert first["refund"]["items"] == [
        {"product_id": 11, "product_name": "T-Shirt 100% cotone / bio", "sku": "TS-BIO/M",
         "category": "Magliette & Top", "quantity": 1, "amount": 20.0}
    ]  # fmt: skip
    twelve = [e["refund"] for e in refunds.values() if e["order_id"] == 12]
    assert [r["amount"] for r in twelve] == [40.0, 40.0]
    assert twelve[0]["items"][0]["quantity"] == 2 and twelve[1]["items"] == []
    cancelled = next(e for e in events if e["event_id"] == "13-cancelled")
    assert cancelled["timestamp"] == "2026-12-01T10:20:00+01:00"
    assert all(e["customer"]["email"] == "" for e in events if e["order_id"] == 16)
    # Every event carries the order as it stands, the checkout's visit included.
    for event in events:
        assert event["total"] == 80.0 and len(event["items"]) == 2
        assert (event["duration_session"], event["pages_viewed"]) == (75, 4)
