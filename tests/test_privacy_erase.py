"""`tap privacy erase`: after it, no document of that customer is left in Elasticsearch, the
erasure is recorded without identifying anyone, and every figure still adds up."""

from __future__ import annotations

from collections import Counter

import pytest
from typer.testing import CliRunner

from tapstack import contracts
from tapstack.cli import app
from tapstack.privacy.erase import customer_id, user_customer_id

pytestmark = [pytest.mark.engines, pytest.mark.spark]

ORDERS, LINES = contracts.index("orders"), contracts.index("lines")


def _with_id(es, index: str, *values: str) -> int:
    es.indices.refresh(index=index)
    return es.count(index=index, query={"terms": {"customer_id": list(values)}})["count"]


def _sum_of_totals(es, ids: list[int]) -> float:
    es.indices.refresh(index=ORDERS)
    body = es.search(
        index=ORDERS,
        size=0,
        query={"terms": {"order_id": ids}},
        aggs={"t": {"sum": {"field": "total"}}},
    )
    return round(body["aggregations"]["t"]["value"], 2)


def test_erasure_leaves_no_document_of_the_customer_and_keeps_the_figures(pipeline, es):
    orders = pipeline.simulate(150, seed=41)
    registered = Counter(o.event["customer"]["email"] for o in orders if o.event["customer"]["id"])
    email, _ = registered.most_common(1)[0]
    theirs = [o for o in orders if o.event["customer"]["email"] == email]
    assert len(theirs) >= 2
    user = theirs[0].event["customer"]["id"]
    assert {o.event["customer"]["id"] for o in theirs} == {user}
    theirs[-1].event["customer"]["email"] = ""  # one of their orders was taken by phone
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids, timeout=180) == len(ids)
    expected_lines = sum(len(o.event["items"]) for o in orders)
    assert len(pipeline.wait_lines(ids, expected_lines)) == expected_lines
    key = pipeline.stack.customer_key()
    hashed = customer_id(email.upper() + " ", key)  # the stage trims and lower-cases first
    by_user = user_customer_id(user, key)
    assert _with_id(es, ORDERS, by_user) == 1
    before = {
        "orders": _with_id(es, ORDERS, hashed, by_user),
        "lines": _with_id(es, LINES, hashed, by_user),
    }
    assert before["orders"] >= len(theirs)
    revenue = _sum_of_totals(es, ids)

    result = CliRunner().invoke(
        app,
        ["privacy", "erase", "--email", email, "--user-id", str(user)],
        env={"TAP_CUSTOMER_KEY": key},
    )
    assert result.exit_code == 0, result.output

    assert _with_id(es, ORDERS, hashed, by_user) == 0 and _with_id(es, LINES, hashed, by_user) == 0
    first_name = theirs[0].event["customer"]["first_name"]
    docs = pipeline.orders_by_id([o.order_id for o in theirs])
    assert all(doc.get("customer_first_name") is None for doc in docs.values()), first_name
    assert {doc["customer_id"] for doc in docs.values()} == {
        docs[theirs[0].order_id]["customer_id"]
    }, "one placeholder for the customer, so their orders still group together"
    assert _sum_of_totals(es, ids) == revenue, "revenue still adds up"
    assert pipeline.count_orders(ids) == len(ids)
    others = [o for o in orders if o not in theirs and o.event["customer"]["id"]]
    untouched = pipeline.orders_by_id([o.order_id for o in others])
    assert all(d.get("customer_first_name") for d in untouched.values())
    es.indices.refresh(index=contracts.index("privacy"))
    records = es.search(index=contracts.index("privacy"), size=100)["hits"]["hits"]
    record = next(r["_source"] for r in records if r["_source"]["orders"] == before["orders"])
    assert record["lines"] == before["lines"]
    assert hashed not in str(records) and email not in str(records)
    assert by_user not in str(records)


def test_erasure_names_a_customer():
    result = CliRunner().invoke(app, ["privacy", "erase"], env={"TAP_CUSTOMER_KEY": "k"})
    assert result.exit_code == 2
    assert "--email, --user-id or both" in result.output


def test_erasure_without_a_key_says_what_to_do(tmp_path):
    result = CliRunner().invoke(
        app,
        ["privacy", "erase", "--email", "a@b.c", "--stack", "no-such-stack"],
        env={"TAP_CUSTOMER_KEY": ""},
    )
    assert result.exit_code == 1
    assert "No customer key" in result.output
