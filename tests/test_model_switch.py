"""A newly promoted behaviour model takes over mid-stream on the real pipeline: the behaviour
stage restarts with it while orders flow, and no order is lost, doubled or dead-lettered; each
order keeps the version that labelled it, and its label is that version's (issue 18)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.training import longer_visits


@pytest.fixture
def switch(pipeline, spark, tmp_path, monkeypatch):
    """(restart-with-the-new-model, old model, new model); afterwards the behaviour stage is
    restarted with the session's model again, for the tests that follow."""
    from tap_spark import model

    old_dir = pipeline.stack.model_dir
    new_dir = tmp_path / "new-model"
    model.train(longer_visits(tmp_path / "longer.csv", 3.0), new_dir, spark=spark)
    old, new = model.load(old_dir, spark=spark), model.load(new_dir, spark=spark)
    assert old.version != new.version

    def restart_with_new():
        monkeypatch.setenv("TAP_MODEL_DIR", str(new_dir))
        pipeline.stack.restart_process("behaviour")

    yield restart_with_new, old, new
    monkeypatch.setenv("TAP_MODEL_DIR", str(old_dir))
    pipeline.stack.restart_process("behaviour")


def _write(pipeline, orders, rate: float) -> None:
    start = time.monotonic()
    for i in range(0, len(orders), 10):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pipeline.append(orders[i : i + 10])


def test_a_promoted_model_takes_over_mid_stream_losing_and_doubling_nothing(
    pipeline, switch, spark
):
    restart_with_new, old, new = switch
    before = pipeline.simulate(200, seed=601)
    pipeline.append(before)
    assert pipeline.wait_indexed([o.order_id for o in before]) == len(before)

    during = pipeline.simulate(600, seed=602, end=pipeline.now)
    writer = threading.Thread(target=_write, args=(pipeline, during, 100.0))
    writer.start()
    time.sleep(1.0)
    restart_with_new()  # while the writer is still appending
    writer.join()
    after = pipeline.simulate(200, seed=603)
    pipeline.append(after)

    everything = [*before, *during, *after]
    ids = [o.order_id for o in everything]
    assert pipeline.wait_indexed(ids, timeout=300) == len(ids), "orders lost in the switch"
    assert pipeline.count_orders(ids) == len(ids)
    expected_lines = sum(len(o.event["items"]) for o in everything)
    assert len(pipeline.wait_lines(ids, expected_lines, timeout=120)) == expected_lines
    wanted = {str(i).encode() for i in ids}
    conflicts = [d for d in pipeline.dead_letters() if d["key"] in wanted]
    assert conflicts == [], "a replay after the restart was taken for a different order"

    docs = pipeline.orders_by_id(ids)
    assert {docs[o.order_id]["model_version"] for o in before} == {old.version}
    assert {docs[o.order_id]["model_version"] for o in after} == {new.version}
    # Each order's label is the one its own version gives it.
    frame = spark.createDataFrame(
        [(o.order_id, o.event["duration_session"], o.event["pages_viewed"]) for o in everything],
        "order_id BIGINT, duration_session BIGINT, pages_viewed INT",
    )
    by_version = {
        m.version: {r["order_id"]: r["purchase_behaviour"] for r in m.label(frame).collect()}
        for m in (old, new)
    }
    wrong = [
        i for i in ids if docs[i]["purchase_behaviour"] != by_version[docs[i]["model_version"]][i]
    ]
    assert wrong == []
    flips = sum(by_version[old.version][i] != by_version[new.version][i] for i in ids)
    assert flips > 0, "the two versions agree on every order: the test would prove nothing"
