"""Property-based fuzzing (Hypothesis) of process_orders' parsing and enrichment, in batch.

Lines are valid simulated orders bent by random mutations (wrong types, missing fields, odd
numbers, truncation, control characters, any Unicode). Properties: Spark never fails, every
line yields exactly one row, a line is dead-lettered exactly when an independent oracle (the
JSON Schema of the contract plus the cross-field rules) rejects it, and good rows keep their
totals and lose the e-mail.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_spark.orders import Rules, analysis_columns, enrich, parse_lines
from tapstack.contracts import longest_shipped_line, order_schema
from tapstack.simulator import Simulator
from tests.support import order_oracle

pytestmark = pytest.mark.spark

KEY = "property-test-key"
BASE = [o.event for o in Simulator(seed=5, start=datetime(2026, 5, 4, 9, 0)).orders(40)]
RULES = Rules.from_settings()

# -- the oracle ---------------------------------------------------------------------------------


def oracle_valid(line: str) -> bool:
    return order_oracle.valid(line)


def oracle_customer_id(customer: dict) -> str | None:
    """The keyed hash of the e-mail (trimmed of spaces, as Spark's trim does, lower-cased);
    without one, of the WordPress user as wp-user:<id>; a guest without one has none."""
    email = customer["email"].strip(" ").lower()
    if email:
        message = email
    elif customer["id"] > 0:
        message = f"wp-user:{int(customer['id'])}"  # 7.0 is the integer 7 here too
    else:
        return None
    return hmac.new(KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


# -- the generators -----------------------------------------------------------------------------

PATHS = (
    [(name,) for name in BASE[0]]
    + [("customer", name) for name in BASE[0]["customer"]]
    + [("items", 0, name) for name in BASE[0]["items"][0]]
)
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**9),
    st.floats(-1e9, 1e9, allow_nan=False),
    st.text(max_size=12),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)


@st.composite
def mutated_line(draw) -> str:
    order = copy.deepcopy(draw(st.sampled_from(BASE)))
    for _ in range(draw(st.integers(0, 2))):
        path = draw(st.sampled_from(PATHS))
        parent = order
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(odd_values)
    line = json.dumps(order, ensure_ascii=False, separators=(",", ":"))
    damage = draw(st.sampled_from(["none", "none", "truncate", "control", "unicode", "glued"]))
    if damage == "truncate":
        line = line[: draw(st.integers(0, max(len(line) - 1, 0)))]
    elif damage == "control":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from(["\x00", "\x07", "\x1b[31m", "\r"])) + line[at:]
    elif damage == "glued":
        # Two lines that lost the newline between them, or one with something after it.
        line += draw(st.sampled_from([line, "x", "]", "}", ",1", " {}"]))
    elif damage == "unicode":
        name = draw(st.text(min_size=1, max_size=8).filter(lambda t: t.strip()))
        order["customer"] = (
            {**order.get("customer", {}), "first_name": name}
            if isinstance(order.get("customer"), dict)
            else order.get("customer")
        )
        line = json.dumps(order, ensure_ascii=False, separators=(",", ":"))
    return line


# -- the properties -----------------------------------------------------------------------------


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(mutated_line(), min_size=20, max_size=60))
def test_every_line_gives_one_row_and_bad_means_dead_lettered(spark, lines):
    frame = spark.createDataFrame(
        [(None, line.encode("utf-8"), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = enrich(parse_lines(frame, RULES), RULES, KEY).collect()
    assert len(rows) == len(lines)
    for row in sorted(rows, key=lambda r: r.source_offset):
        line = lines[row.source_offset]
        expected_good = oracle_valid(line)
        assert (row.reason is None) == expected_good, (line, row.reason)
        if expected_good:
            order = json.loads(line)
            assert row.total == order["total"]
            assert row.customer_id == oracle_customer_id(order["customer"])
            assert "email" not in analysis_columns()


def test_a_line_with_anything_after_its_json_is_dead_lettered(spark):
    """Spark's parser stops after the first JSON value; a second order glued to the first
    must not be dropped silently with the first one accepted."""
    good = json.dumps(BASE[0], separators=(",", ":"))
    lines = [good, good + good, good + "junk", good + "]", good + ",1", good + " \t"]
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = sorted(parse_lines(frame, RULES).collect(), key=lambda r: r.source_offset)
    assert [row.reason for row in rows] == [
        None,
        "not JSON",
        "not JSON",
        "not JSON",
        "not JSON",
        None,
    ]


def test_a_line_as_long_as_the_collectors_cut_is_dead_lettered_as_cut_one_byte_less_is_not(
    spark,
):
    """Both collectors ship at most longest_shipped_line() bytes of a line: a record that long
    may be a cut, even when what is left is a valid order (here: one padded with spaces)."""
    good = json.dumps(BASE[0], separators=(",", ":"))
    most = longest_shipped_line()
    lines = [good.ljust(most - 1), good.ljust(most), good.ljust(most) + "x" * 7]
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = sorted(parse_lines(frame, RULES).collect(), key=lambda r: r.source_offset)
    cut = f"line of {most} bytes or more: cut by the collector (whole in the orders log)"
    assert [row.reason for row in rows] == [None, cut, f"{cut}; not JSON"]
    assert [oracle_valid(line) for line in lines] == [True, False, False]


def _bent(change) -> str:
    order = copy.deepcopy(BASE[0])
    order["items"] = order["items"][:2] if len(order["items"]) > 1 else order["items"] * 2
    order["total"] = round(sum(item["total"] for item in order["items"]), 2)
    change(order)
    return json.dumps(order, separators=(",", ":"))


_MAX_ITEMS = order_schema()["properties"]["items"]["maxItems"]


def _lines(order: dict, count: int) -> None:
    """The order with `count` copies of its first line, the total to match."""
    order["items"] = [copy.deepcopy(order["items"][0]) for _ in range(count)]
    order["total"] = round(sum(item["total"] for item in order["items"]), 2)


# Lines whose merged JSON shape looks right or nearly right: the quick shape check must not let
# one through that the detailed checks (and the oracle) reject, nor reject a good one.
NEAR_MISSES = {
    "a null order line": lambda o: o["items"].insert(0, None),
    "one line without sku": lambda o: o["items"][1].pop("sku"),
    "one line with a null sku": lambda o: o["items"][1].update(sku=None),
    "one line with a numeric sku": lambda o: o["items"][1].update(sku=12),
    "every line with a numeric sku": lambda o: [i.update(sku=12) for i in o["items"]],
    "a quantity of 1.0": lambda o: o["items"][0].update(quantity=1.0),
    "a quantity of 1.5": lambda o: o["items"][0].update(quantity=1.5),
    "a quantity as text": lambda o: o["items"][0].update(quantity="1"),
    "an extra field": lambda o: o.update(note="gift"),
    "an extra field in customer": lambda o: o["customer"].update(last_name="Rossi"),
    "an extra field named like a shape": lambda o: o.update({"total: DOUBLE, x": 1}),
    "the total as text": lambda o: o.update(total=str(o["total"])),
    "a null customer": lambda o: o.update(customer=None),
    "no order lines": lambda o: o.update(items=[], total=0),
    "schema_version 1.0": lambda o: o.update(schema_version=1.0),
    "a null e-mail": lambda o: o["customer"].update(email=None),
    "no e-mail (a phone order)": lambda o: o["customer"].update(email=""),
    "an e-mail of spaces": lambda o: o["customer"].update(email="   "),
    "an order line that is a list": lambda o: o["items"].append([1, 2]),
    "an extra field in an order line": lambda o: o["items"][1].update(colour="red"),
    "an empty product name": lambda o: o["items"][0].update(product_name=""),
    "a product name at maxLength": lambda o: o["items"][0].update(product_name="é" * 200),
    "a product name over maxLength": lambda o: o["items"][0].update(product_name="é" * 201),
    "a payment method over maxLength": lambda o: o.update(payment_method="x" * 65),
    "a first name over maxLength": lambda o: o["customer"].update(first_name="👗" * 101),
    "an e-mail over maxLength": lambda o: o["customer"].update(email="a" * 250 + "@x.it"),
    "maxItems order lines": lambda o: _lines(o, _MAX_ITEMS),
    "more than maxItems order lines": lambda o: _lines(o, _MAX_ITEMS + 1),
}


def test_near_misses_of_the_contract_shape_are_judged_like_the_oracle(spark):
    lines = [_bent(change) for change in NEAR_MISSES.values()]
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = sorted(parse_lines(frame, RULES).collect(), key=lambda r: r.source_offset)
    verdicts = {name: row.reason is None for name, row in zip(NEAR_MISSES, rows, strict=True)}
    assert verdicts == {
        name: oracle_valid(line) for name, line in zip(NEAR_MISSES, lines, strict=True)
    }


REASONS = {
    "an extra field": "unknown field 'note'",
    "an extra field in customer": "unknown customer field 'last_name'",
    "an extra field in an order line": "unknown items field 'colour'",
    "an empty product name": "empty items[].product_name",
    "a product name over maxLength": "items[].product_name longer than 200 characters",
    "a payment method over maxLength": "payment_method longer than 64 characters",
    "a first name over maxLength": "customer.first_name longer than 100 characters",
    "an e-mail over maxLength": "customer.email longer than 254 characters",
    "more than maxItems order lines": f"more than {_MAX_ITEMS} items",
}


def test_unknown_fields_lengths_and_line_counts_are_dead_lettered_with_their_reason(spark):
    lines = [_bent(NEAR_MISSES[name]) for name in REASONS]
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = sorted(parse_lines(frame, RULES).collect(), key=lambda r: r.source_offset)
    assert {name: row.reason for name, row in zip(REASONS, rows, strict=True)} == REASONS


def test_an_order_without_an_e_mail_is_kept_under_its_user_or_as_a_guest(spark):
    """Phone, admin and POS orders have no billing e-mail: they are paid orders all the same."""
    customers = [
        {"id": 42, "email": ""},  # a registered customer's phone order
        {"id": 0, "email": "  "},  # a guest at the till
        {"id": 42, "email": " Anna@Example.com "},  # the same customer online
    ]
    lines = []
    for customer in customers:
        order = copy.deepcopy(BASE[0])
        order["customer"].update(customer)
        lines.append(json.dumps(order, separators=(",", ":")))
    frame = spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )
    rows = sorted(
        enrich(parse_lines(frame, RULES), RULES, KEY).collect(), key=lambda r: r.source_offset
    )
    assert [row.reason for row in rows] == [None] * 3
    ids = [row.customer_id for row in rows]
    assert ids == [oracle_customer_id(json.loads(line)["customer"]) for line in lines]
    assert ids[1] is None and None not in (ids[0], ids[2]) and ids[0] != ids[2]
