"""A corpus of hostile lines through the real pipeline: every bad line is dead-lettered with a
reason, every good one (including names carrying script or template injection) is indexed
verbatim, and the counts add up."""

from __future__ import annotations

import copy
import json

import pytest

from tapstack import contracts
from tapstack.simulator import reassigned
from tests.support import tally

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]


def _dump(event) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _bad_corpus(template: dict) -> dict[str, str]:
    """line -> what makes it bad (for the failure message)."""

    def bent(**changes):
        event = copy.deepcopy(template)
        event.update(changes)
        return _dump(event)

    def without(*path):
        event = copy.deepcopy(template)
        node = event
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
        return _dump(event)

    good = _dump(template)
    item = copy.deepcopy(template["items"][0])
    return {
        "hello world": "not JSON",
        good[: len(good) // 2]: "truncated",
        good.replace("{", "{{", 1): "broken JSON",
        "null": "JSON null",
        "42": "a number",
        '"an order"': "a string",
        "[" * 50_000 + "]" * 50_000: "deep nesting",
        '{"a":' * 5000 + "1" + "}" * 5000: "deep objects",
        bent(order_id="1001"): "order_id as text",
        bent(order_id=True): "order_id as boolean",
        bent(total="99.90"): "total as text",
        bent(items={}): "items as object",
        bent(items=[]): "no items",
        bent(customer="Lorenzo"): "customer as text",
        bent(customer={**template["customer"], "email": False}): "email as boolean",
        bent(duration_session=-5): "negative duration",
        bent(duration_session=10**12): "absurd duration",
        bent(pages_viewed=0): "no pages",
        bent(total=-20.0): "negative total",
        bent(total=1e308): "absurd total",
        bent(order_id=0): "order id 0",
        bent(order_id=10**30): "order id beyond a long",
        bent(currency="euro"): "currency",
        bent(timestamp="24/11/2026 10:00"): "timestamp format",
        bent(schema_version=99): "schema version",
        bent(items=[{**item, "quantity": 0}]): "quantity 0",
        bent(items=[{**item, "quantity": 2.5}]): "fractional quantity",
        bent(items=[{**item, "unit_price": -1.0}]): "negative price",
        without("customer", "email"): "missing e-mail",
        without("order_id"): "missing order id",
        without("items", 0, "product_name"): "item without name",
        good[:-1] + ',"order_id":5}': "duplicate key",
        "\x00\x01\x02\x1b[2J": "control characters",
        "\ufeff" + "\u202e" + "🛒" * 10: "Unicode noise",
        "x" * 2_000_000: "a 2 MB line",
    }


def _good_names() -> list[str]:
    return [
        "<script>alert('x')</script>",
        "{{7*7}} ${7*7} <%= 7*7 %>",
        "'; DROP TABLE orders; --",
        "Robert\u202e'); rm -rf /",
        "Żółć Ğü 漢字 👗 \u0301e",
        "line\\nbreak\ttab",
    ]


def test_hostile_corpus(pipeline, report):
    orders = pipeline.simulate(400, seed=130)
    first = orders[0]
    # Good lines with hostile but valid names must be stored verbatim.
    hostile = orders[1 : 1 + len(_good_names())]
    for order, name in zip(hostile, _good_names(), strict=True):
        order.event["customer"]["first_name"] = name
        order.event["items"][0]["product_name"] = name
    pipeline.append([first])
    assert pipeline.wait_indexed([first.order_id]) == 1

    # Bad lines never use real ids.
    template = reassigned(copy.deepcopy(orders[-1].event), pipeline.order_id_block())
    corpus = _bad_corpus(template)
    # A different order under an id already loaded: valid on its own, refused by the loader.
    impostor = _dump(reassigned(orders[-1].event, first.order_id))
    pipeline.append_raw([*corpus, "", impostor])
    pipeline.append(orders[1:])

    ids = [o.order_id for o in orders]
    found = pipeline.wait_indexed(ids, timeout=240)
    # What each line reaches Kafka as: whole, or cut where both collectors cut a long line.
    most = contracts.longest_shipped_line()
    sent = {line.encode("utf-8")[:most]: what for line, what in corpus.items() if line.strip()}
    letters = pipeline.wait_dead_letters(lambda d: d["value"] in sent, expected=len(sent))
    got = {d["value"] for d in letters}
    missing = [sent[v] for v in set(sent) - got]
    assert not missing, f"not dead-lettered: {missing}"
    assert all(d.get("tap.error.reason") for d in letters)
    [cut] = [d for d in letters if len(d["value"]) == most]  # the 2 MB line
    assert cut["tap.error.reason"].startswith(f"line of {most} bytes or more: cut by the collector")
    reused = pipeline.wait_dead_letters(
        lambda d: f"order_id {first.order_id} was already loaded" in d.get("tap.error.reason", ""),
        expected=1,
    )
    assert len(reused) == 1, "the impostor is dead-lettered by the loader"

    docs = pipeline.orders_by_id(ids)
    for order in hostile:
        doc = docs[order.order_id]
        assert doc["customer_first_name"] == order.event["customer"]["first_name"]
        assert order.event["items"][0]["product_name"] in doc["products"]
    assert docs[first.order_id]["total"] == first.event["total"], "the first version is kept"
    lost, stuck = tally.split_missing(pipeline, len(orders) - found)
    report(
        "hostile corpus (bad lines + hostile names)",
        len(orders) + len(sent),
        found,
        lost,
        0,
        len(got),
        stuck,
    )
    assert found == len(orders)
    assert stuck == 0
