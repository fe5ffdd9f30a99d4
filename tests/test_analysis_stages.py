"""The two Spark stages on the real broker: dead letters with reasons, enrichment without
e-mail, labels at the model's boundary, and restarts from the checkpoint."""

from __future__ import annotations

import copy
import json
import time

import pytest

from tapstack import contracts
from tapstack.native import processes
from tapstack.simulator import reassigned

pytestmark = [pytest.mark.engines, pytest.mark.spark]


def _variant(order, **changes):
    event = copy.deepcopy(order.event)
    event.update(changes)
    return event


def test_bad_lines_land_in_the_dead_letter_topic_with_reasons(pipeline):
    base = pipeline.simulate(12, seed=21)
    ids = [o.order_id for o in base]
    too_much = _variant(base[3])
    too_much["items"][0]["total"] += 7.5
    zero_qty = _variant(base[4])
    zero_qty["items"][0]["quantity"] = 0
    no_customer = _variant(base[5])
    del no_customer["customer"]
    cases = {
        "not json {": "not JSON",
        json.dumps(_variant(base[0], order_id="seven")): "wrong type for order_id",
        json.dumps(_variant(base[1], total=-10.0)): "negative total",
        json.dumps({k: v for k, v in base[2].event.items() if k != "items"}): "missing field items",
        json.dumps(too_much): "items do not add up to the total",
        json.dumps(zero_qty): "item quantity below 1",
        json.dumps(no_customer): "missing field customer",
        json.dumps(_variant(base[6], timestamp="yesterday")): "timestamp is not ISO 8601",
        "[1, 2, 3]": "not a JSON object",
    }
    good = base[7:]
    pipeline.append_raw(cases)
    pipeline.append(good)
    sent = {line.encode() for line in cases}

    found = pipeline.wait_dead_letters(lambda d: d["value"] in sent, expected=len(cases))
    by_value = {d["value"].decode(): d for d in found}
    assert set(by_value) == set(cases), "every bad line is dead-lettered, bytes unchanged"
    for line, reason in cases.items():
        letter = by_value[line]
        assert reason in letter["tap.error.reason"], (line, letter["tap.error.reason"])
        assert letter["tap.error.stage"] == "process_orders"
        assert letter["tap.source.topic"] == contracts.topic("purchase")
        assert int(letter["tap.source.offset"]) >= 0

    good_ids = [o.order_id for o in good]
    assert pipeline.wait_indexed(good_ids) == len(good)
    assert pipeline.count_orders(ids[:7]) == 0, "no bad line reaches Elasticsearch"


def test_no_email_downstream_of_the_sql_stage(pipeline):
    orders = pipeline.simulate(30, seed=22)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids) == len(ids)
    emails = {o.event["customer"]["email"].lower() for o in orders}
    for topic in (contracts.topic("analysis"), contracts.topic("dashboard")):
        for record in pipeline.read_topic(topic):
            text = record.value.decode("utf-8", "replace").lower()
            assert "email" not in text
            assert not any(email in text for email in emails)


def test_labels_flip_at_the_models_boundary(pipeline, model_dir):
    meta = json.loads((model_dir / "tap_model.json").read_text())
    boundary = meta["boundary"]["duration_seconds"]
    pages = meta["boundary"]["pages_viewed"]
    below, above = int(boundary * 0.9), int(boundary * 1.1) + 1
    orders = pipeline.simulate(2, seed=23)
    orders[0].event.update(duration_session=below, pages_viewed=pages)
    orders[1].event.update(duration_session=above, pages_viewed=pages)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids) == 2
    docs = pipeline.orders_by_id(ids)
    assert docs[ids[0]]["purchase_behaviour"] == "Impulsive"
    assert docs[ids[1]]["purchase_behaviour"] == "Reasoned"
    assert docs[ids[0]]["model_version"] == meta["version"]
    assert docs[ids[0]]["behaviour_distance"] >= 0


def _records_in(topic: str, ids: set[int]) -> dict[int, list[dict]]:
    """The records of `topic` for these order ids, by id."""
    from tests.support.pipeline import Pipeline

    found: dict[int, list[dict]] = {}
    for record in Pipeline.read_topic(topic):
        if record.key is not None and int(record.key) in ids:
            found.setdefault(int(record.key), []).append(json.loads(record.value))
    return found


@pytest.mark.parametrize("job", ["process_orders", "behaviour"])
def test_restart_from_checkpoint_skips_nothing_and_repeats_harmlessly(pipeline, job):
    """A stopped and restarted job resumes from its checkpoint. In real-time mode the
    checkpoint is written once per interval, so records since the last one are processed
    again: at-least-once in the topic, each repeat identical, one document per order."""
    output = {"process_orders": "analysis", "behaviour": "dashboard"}[job]
    first = pipeline.simulate(40, seed=24)
    pipeline.append(first)
    first_ids = {o.order_id for o in first}
    assert pipeline.wait_indexed(list(first_ids)) == len(first_ids)

    processes.stop(pipeline.stack.run_dir, job)
    second = pipeline.simulate(40, seed=25)
    pipeline.append(second)
    time.sleep(2)
    pipeline.stack.start_process(job)
    pipeline.stack.wait_pipeline_ready(processes_=(job,))
    second_ids = {o.order_id for o in second}
    assert pipeline.wait_indexed(list(second_ids), timeout=180) == len(second_ids)

    records = _records_in(contracts.topic(output), first_ids | second_ids)
    assert set(records) == first_ids | second_ids, "no order skipped"
    for order_id, copies in records.items():
        fingerprints = {r["order_fingerprint"] for r in copies}
        assert len(fingerprints) == 1, f"order {order_id} repeated with other content"
    assert pipeline.count_orders(first_ids | second_ids) == 80, "one document per order"


def test_a_reused_order_id_is_dead_lettered_and_a_replay_is_harmless(pipeline):
    original, other = pipeline.simulate(2, seed=26)
    impostor = reassigned(copy.deepcopy(other.event), original.order_id)
    pipeline.append([original])
    assert pipeline.wait_indexed([original.order_id]) == 1
    pipeline.append([original])  # an exact replay of the same line
    pipeline.append_raw([json.dumps(impostor, separators=(",", ":"))])
    pipeline.append([other])
    assert pipeline.wait_indexed([other.order_id]) == 1

    letters = pipeline.wait_dead_letters(
        lambda d: (
            d.get("tap.error.stage") == "loader"
            and f"order_id {original.order_id} " in d.get("tap.error.reason", "")
        ),
        expected=1,
    )
    assert len(letters) == 1, "only the impostor is dead-lettered, not the replay"
    assert "different content" in letters[0]["tap.error.reason"]
    doc = pipeline.orders_by_id([original.order_id])[original.order_id]
    assert doc["total"] == original.event["total"], "the first version is kept"
    lines = pipeline.wait_lines([original.order_id], len(original.event["items"]))
    assert sorted(line["product_name"] for line in lines) == sorted(
        item["product_name"] for item in original.event["items"]
    )
