"""One policy for a reused order id, counted: on the real Kafka and Elasticsearch, the first
version stays, the other is dead-lettered, and the data-quality index holds one document per
conflict (what the dashboard counts), created once however often the record is read."""

from __future__ import annotations

import dataclasses

import orjson

from tapstack import contracts
from tapstack.elastic import templates
from tapstack.loader import documents
from tapstack.report import queries
from tapstack.report.panels import DASHBOARD
from tests.test_loader_delivery import (  # noqa: F401  (make_flow is a fixture)
    assert_loaded,
    make_flow,
    order,
)


def _with_quality_index(flow, es) -> str:
    """The flow's loader also records conflicts, in a scratch index made from the template."""
    index = f"{flow.names.orders}-quality"
    body = templates.load_template("quality")["template"]
    es.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
    flow.names = dataclasses.replace(flow.names, quality=index)
    return index


def test_a_conflicting_reuse_of_an_order_id_keeps_the_first_dead_letters_and_counts_one(
    make_flow,  # noqa: F811
    es,
):
    flow = make_flow()
    index = _with_quality_index(flow, es)
    try:
        first = order(lines=2)
        impostor = order(lines=3, order_id=first["order_id"])
        flow.produce_records([first])
        running = flow.start()
        flow.wait(flow.caught_up, "the first version committed", running)
        flow.produce_records([impostor, first])  # a conflict, then a replay
        flow.wait(flow.caught_up, "the conflict committed", running)
        running.stop()
        # Read again from the start by a new member: the conflict is not counted twice.
        flow.names = dataclasses.replace(flow.names, group=flow.names.group + "-again")
        again = flow.start()
        flow.wait(flow.caught_up, "the records read again", again)
        again.stop()

        assert_loaded(flow, [first])
        letters = flow.dead_letters()
        assert [d["value"] for d in letters] == [orjson.dumps(impostor)] * 2
        assert {d["tap.error.reason"] for d in letters} == {
            documents.conflict_reason(first["order_id"]).encode()
        }
        found = flow.docs(index)
        assert list(found) == [f"{first['order_id']}-{impostor['order_fingerprint']}"]
        [doc] = found.values()
        assert doc["check"] == documents.CONFLICT_CHECK
        assert doc["order_id"] == first["order_id"]
        assert doc["order_fingerprint"] == impostor["order_fingerprint"]
        assert doc["kept_fingerprint"] == first["order_fingerprint"]
        assert (doc["stage"], doc["source_topic"]) == ("loader", flow.names.topic)
        assert doc["source_offset"] >= 1
        assert set(doc) == set(templates.mapping_properties("quality"))
        # The dashboard's panel, asked of this index, counts the one conflict.
        assert _conflicts_shown(es, index) == 1
    finally:
        es.options(ignore_status=404).indices.delete(index=index)


def _conflicts_shown(es, index: str) -> int:
    panel = DASHBOARD.panel("order-id-conflicts")
    es.indices.refresh(index=index)
    request = queries.search_request(panel) | {"index": index}
    return queries.parse_response(panel, es.search(**request).body).value


def test_the_writer_may_create_quality_documents_and_nothing_more():
    """contracts/security.toml: the writer creates conflict documents; setup manages the
    index like the others."""
    roles = contracts.security()["elasticsearch"]["roles"]
    writer = [g for g in roles["tap_writer"]["indices"] if "quality" in g["names"]]
    assert [g["privileges"] for g in writer] == [["create_doc"]]
    setup = [g for g in roles["tap_setup"]["indices"] if "quality" in g["names"]]
    assert setup and "create_index" in setup[0]["privileges"]
    assert "quality" in templates.TEMPLATES
