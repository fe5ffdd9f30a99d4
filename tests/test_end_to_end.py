"""The whole flow on the real engines: N lines appended to the log -> exactly N order documents
in Elasticsearch, with the right totals, labels and enrichment fields."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tapstack import contracts

pytestmark = [pytest.mark.engines, pytest.mark.spark]

N = 200


# Orders without a billing e-mail (phone, admin and POS orders): a registered customer's, a
# guest's, and one of spaces only. They are paid orders and must reach the dashboard.
NO_EMAIL = {0: (42, ""), 1: (0, ""), 2: (43, "   ")}


@pytest.fixture(scope="module")
def delivered(pipeline):
    orders = pipeline.simulate(N, seed=11)
    for index, (user, email) in NO_EMAIL.items():
        orders[index].event["customer"].update(id=user, email=email)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    count = pipeline.wait_indexed(ids, timeout=180)
    expected_lines = sum(len(o.event["items"]) for o in orders)
    return orders, count, pipeline.orders_by_id(ids), pipeline.wait_lines(ids, expected_lines)


def test_exactly_n_orders_reach_elasticsearch(delivered):
    orders, count, docs, _ = delivered
    assert count == N
    assert sorted(docs) == sorted(o.order_id for o in orders)


def test_totals_survive_every_leg(delivered):
    orders, _, docs, lines = delivered
    for order in orders:
        assert docs[order.order_id]["total"] == order.event["total"]
    assert round(sum(d["total"] for d in docs.values()), 2) == round(
        sum(o.event["total"] for o in orders), 2
    )
    assert len(lines) == sum(len(o.event["items"]) for o in orders)
    assert round(sum(line["line_total"] for line in lines), 2) == round(
        sum(item["total"] for o in orders for item in o.event["items"]), 2
    )


def test_enrichment_follows_the_rules(delivered):
    orders, _, docs, _ = delivered
    high_spender = contracts.enrichment("high_spender_above")
    high_demand = contracts.enrichment("high_demand_above")
    for order in orders:
        doc = docs[order.order_id]
        total = order.event["total"]
        assert doc["spender_type"] == (
            "High Spender" if total > high_spender else "Standard Spender"
        )
        assert doc["stock_alert"] == ("High Demand" if total > high_demand else "Normal Demand")
        assert doc["items_count"] == len(order.event["items"])
        assert doc["units"] == sum(i["quantity"] for i in order.event["items"])
        assert doc["duration_session"] == order.event["duration_session"]
        assert doc["pages_viewed"] == order.event["pages_viewed"]
        assert doc["source_system"] == "spark_mllib"


def test_customer_is_a_keyed_hash_and_no_email_is_stored(delivered, engines):
    orders, _, docs, lines = delivered
    key = engines.customer_key().encode()
    for order in orders:
        customer = order.event["customer"]
        email = customer["email"].strip().lower()
        message = email or (f"wp-user:{customer['id']}" if customer["id"] else None)
        expected = message and hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
        assert docs[order.order_id].get("customer_id") == expected
    assert "customer_id" not in docs[orders[1].order_id]  # the guest without an e-mail
    stored = repr(docs) + repr(lines)
    assert not any(
        o.event["customer"]["email"].strip() in stored
        for o in orders
        if o.event["customer"]["email"].strip()
    )
    assert "@" not in stored


def test_labels_agree_with_the_ground_truth(delivered):
    orders, _, docs, _ = delivered
    labels = {docs[o.order_id]["purchase_behaviour"] for o in orders}
    assert labels == {"Impulsive", "Reasoned"}
    agree = sum(docs[o.order_id]["purchase_behaviour"] == o.behaviour for o in orders)
    assert agree / N >= 0.9
    assert all(docs[o.order_id]["model_version"] for o in orders)
