r"""The PHP plugin and the Python simulator write the same contract, byte for byte.

- The plugin's own PHPUnit suite (wordpress_plugin/tests/run.sh) passes.
- Lines written by the plugin's real code path (WooCommerce doubles -> status hook -> formatter
  -> log writer, driven by wordpress_plugin/tests/emit-lines.php) and lines from the simulator
  are valid against contracts/order.schema.json, keys in the schema's order.
- For the same order data the plugin and ``format_line`` produce identical bytes: a fixed order
  (whole-number floats, "Lorenzo Müller", a slash in a product name, an escaped category name),
  an order whose texts carry ``<``, ``>`` and ``&`` (written as ``\u003C``, ``\u003E``,
  ``\u0026`` by both: JSON_HEX_TAG | JSON_HEX_AMP), and a few hundred simulated orders fed to
  the plugin as WooCommerce would hold them (amounts as decimal strings split into net + 22 %
  VAT, dates in UTC).

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


def _assert_valid_lines(lines: list[str], who: str) -> None:
    validator = _validator()
    schema = order_schema()
    top = schema["required"]
    item_keys = schema["properties"]["items"]["items"]["required"]
    customer_keys = schema["properties"]["customer"]["required"]
    assert lines, f"{who}: no lines"
    for number, line in enumerate(lines, 1):
        assert line.endswith("\n") and line.count("\n") == 1, f"{who} line {number}: not one line"
        event = json.loads(line)
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        assert not errors, f"{who} line {number}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors
        )
        # Key order (json.loads keeps it): the order of the schema's "required" arrays.
        assert list(event) == top, f"{who} line {number}: top-level key order"
        for item in event["items"]:
            assert list(item) == item_keys, f"{who} line {number}: item key order"
        assert list(event["customer"]) == customer_keys, f"{who} line {number}: customer keys"
        for item in event["items"]:
            assert isinstance(item["unit_price"], float) and isinstance(item["total"], float)
        assert isinstance(event["total"], float), f"{who} line {number}: total must be a float"


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
    return {
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


def plugin_lines(specs: list[dict]) -> list[str]:
    """Runs the plugin's code path on the orders and returns the log lines it wrote."""
    payload = {"timezone": enrichment("shop_timezone"), "orders": specs}
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


# The fixed order of the byte-for-byte test, as the simulator would emit it.
FIXED_EVENT = {
    "schema_version": 1,
    "order_id": 1042,
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
    '{"schema_version":1,"order_id":1042,"timestamp":"2026-11-24T10:15:03+01:00",'
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
        # Guest checkout, bank transfer (on-hold: no paid date, the creation date is used).
        {**base, "id": 1, "customer_id": 0, "billing_first_name": "", "payment_method": "bacs",
         "date_paid": None},
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
    lines = plugin_lines(specs)
    _assert_valid_lines(lines, "plugin edge cases")
    events = [json.loads(line) for line in lines]
    assert events[0]["timestamp"] == "2026-11-24T10:15:03+01:00"
    assert events[2]["duration_session"] == 86400 and events[2]["pages_viewed"] == 1
    assert events[3]["duration_session"] == 0 and events[3]["pages_viewed"] == 1
    assert events[4]["customer"]["email"] == "" and events[4]["customer"]["id"] > 0
