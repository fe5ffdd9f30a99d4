"""Crashes and outages on the real engines, each with thousands of orders in flight.

Every case writes N orders at a steady rate, injects its fault mid-stream, lets the stack
recover (the supervisor restarts crashed pipeline processes, as compose's restart policy does),
and then counts: exactly N order documents and the right line documents, none lost, none
doubled.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from tapstack import contracts, kafka_clients
from tapstack.native import engines, kafka, processes, progress
from tests.support import tally

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]

N = 1000
RATE = 500.0  # orders per second


def _write(pipeline, orders, rate=RATE, chunk=20):
    """Append orders in small chunks at `rate`, each chunk opening the log anew (so a rotation
    between chunks sends the next ones to the new file, as the plugin's per-order open does)."""
    start = time.monotonic()
    for i in range(0, len(orders), chunk):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pipeline.append(orders[i : i + chunk])


def _stream_with_fault(pipeline, seed, fault, at=0.4, n=N, life=False):
    """Write n orders (life: and the events that followed them) in the background and call
    fault() once `at` of them are written."""
    orders = (pipeline.simulate_life if life else pipeline.simulate)(n, seed=seed)
    writer = threading.Thread(target=_write, args=(pipeline, orders))
    writer.start()
    time.sleep(at * n / RATE)
    fault()
    writer.join()
    return orders


def _count(pipeline, case, orders, report, timeout=300):
    figures = tally.tally(pipeline, orders, timeout=timeout)
    report(case, figures.sent, figures.found, figures.lost, figures.duplicated, 0, figures.stuck)
    tally.assert_clean(case, figures, orders)


@pytest.mark.parametrize(
    "stage", ["tailer", "process_orders", "behaviour", "loader"], ids=lambda s: f"kill-9-{s}"
)
def test_kill_a_pipeline_stage_mid_stream(pipeline, report, stage):
    run_dir = pipeline.stack.run_dir

    def crash():
        assert processes.kill_hard(run_dir, stage), f"{stage} was not running"

    orders = _stream_with_fault(pipeline, seed=100 + len(stage), fault=crash)
    _count(pipeline, f"kill -9 {stage}", orders, report)
    assert processes.find(run_dir, stage), "the supervisor restarted it"


def test_kill_the_loader_with_refunds_and_cancellations_in_flight(pipeline, report):
    """Orders and what followed them (refunds, cancellations, failed payments) written while
    the loader is killed: each event in the ledger once, the net the log's, and each order's
    status its latest event's."""
    run_dir = pipeline.stack.run_dir

    def crash():
        assert processes.kill_hard(run_dir, "loader"), "the loader was not running"

    events = _stream_with_fault(pipeline, seed=131, fault=crash, life=True)
    figures = tally.tally_events(pipeline, events)
    case = "kill -9 loader, order lifecycle"
    report(case, figures.sent, figures.found, figures.lost, figures.duplicated, 0, figures.stuck)
    tally.assert_events_clean(case, figures, events)
    latest = {e.order_id: e.event["event_id"] for e in events}
    assert pipeline.wait_statuses(latest) == latest


def test_kill_the_kafka_broker_mid_stream(pipeline, report):
    run_dir = pipeline.stack.run_dir

    def crash_and_restart():
        processes.kill_hard(run_dir, "kafka")
        time.sleep(5)
        stack = pipeline.stack
        kafka.start(run_dir, engines.kafka_dir(), stack.kafka_password(kafka_clients.admin_user()))
        processes.wait_until(kafka.healthy, timeout=120, what="kafka health")

    orders = _stream_with_fault(pipeline, seed=120, fault=crash_and_restart)
    _count(pipeline, "kill -9 kafka broker", orders, report, timeout=420)


def test_elasticsearch_down_for_a_while(pipeline, report):
    run_dir = pipeline.stack.run_dir
    dashboard = contracts.topic("dashboard")
    group = contracts.consumer_group("loader")
    observed = {}

    def outage():
        processes.stop(run_dir, "elasticsearch")
        before = progress.group_committed(group, dashboard)
        time.sleep(15)
        observed["committed_during"] = progress.group_committed(group, dashboard)
        observed["before"] = before
        observed["ends_during"] = progress.end_offsets(dashboard)
        pipeline.stack.start_elasticsearch()
        processes.wait_until(
            pipeline.stack.elasticsearch_healthy, timeout=180, what="elasticsearch health"
        )

    orders = _stream_with_fault(pipeline, seed=121, fault=outage, at=0.2)
    # While Elasticsearch was down, records kept arriving but no offset was committed.
    assert progress.lag(observed["before"], observed["ends_during"]) > 0
    assert observed["committed_during"] == observed["before"]
    _count(pipeline, "elasticsearch down 15 s", orders, report)


def test_log_rotation_mid_stream(pipeline, report):
    log = pipeline.log_path

    def rotate():
        os.replace(log, log.with_name(log.name + ".1"))

    orders = _stream_with_fault(pipeline, seed=122, fault=rotate)
    _count(pipeline, "log rotated (rename)", orders, report)


def test_log_rotation_while_the_tailer_is_down(pipeline, report):
    run_dir, log = pipeline.stack.run_dir, pipeline.log_path

    def rotate_while_down():
        processes.stop(run_dir, "tailer")
        time.sleep(1)
        os.replace(log, log.with_name(log.name + ".2"))
        time.sleep(1)
        pipeline.stack.start_process("tailer")

    orders = _stream_with_fault(pipeline, seed=123, fault=rotate_while_down)
    _count(pipeline, "rotated while tailer down", orders, report)


def test_log_truncated_after_shipping(pipeline, report):
    first = pipeline.simulate(N // 2, seed=124)
    _write(pipeline, first)
    assert pipeline.wait_indexed([o.order_id for o in first]) == len(first)
    os.truncate(pipeline.log_path, 0)  # copytruncate: the content was archived elsewhere
    time.sleep(1)
    second = pipeline.simulate(N // 2, seed=125)
    _write(pipeline, second)
    _count(pipeline, "log truncated (copytruncate)", first + second, report)


def test_a_line_written_in_two_pieces(pipeline, report):
    orders = pipeline.simulate(50, seed=126)
    pieces = [pipeline.line(o).encode() for o in orders]
    with open(pipeline.log_path, "ab", buffering=0) as log:
        for data in pieces:
            half = len(data) // 2
            log.write(data[:half])
            time.sleep(0.05)
            log.write(data[half:])
    _count(pipeline, "lines written in two pieces", orders, report)
    partial = [
        d for d in pipeline.dead_letters() if d["value"] in {p[: len(p) // 2] for p in pieces}
    ]
    assert partial == [], "no half line was shipped on its own"


def test_replaying_every_topic_changes_no_count(pipeline, report):
    """Spark checkpoints and the loader's group are reset: everything is read again from the
    earliest offsets; the idempotent ids (and the statuses' versions) keep every count and
    every figure as it was. The orders come with their refunds, cancellations and failures."""
    stack, run_dir = pipeline.stack, pipeline.stack.run_dir
    orders = pipeline.simulate_life(N, seed=127)
    _write(pipeline, orders)
    ids = sorted({o.order_id for o in orders})
    assert pipeline.wait_events(ids, len(orders)) == len(orders)
    latest = {o.order_id: o.event["event_id"] for o in orders}
    assert pipeline.wait_statuses(latest) == latest
    es = pipeline.es

    def figures() -> tuple:
        es.indices.refresh(index="_all")
        counts = [es.count(index=contracts.index(r))["count"] for r in ("orders", "lines")]
        counts += [es.count(index=contracts.index(r))["count"] for r in ("ledger", "statuses")]
        net = es.search(
            index=contracts.index("ledger"),
            size=0,
            query={"term": {"entry": "event"}},
            aggs={"net": {"sum": {"field": "amount"}}},
        )["aggregations"]["net"]["value"]
        return (*counts, round(net, 2), pipeline.wait_statuses(latest))

    before = figures()

    for stage in ("process_orders", "behaviour", "loader"):
        processes.stop(run_dir, stage)
    for query in ("process_orders", "behaviour"):
        import shutil

        shutil.rmtree(run_dir / "checkpoints" / query)
    admin = kafka.admin()
    admin.delete_groups([contracts.consumer_group("loader")])
    admin.close()
    for stage in ("process_orders", "behaviour", "loader"):
        stack.start_process(stage)
    stack.wait_pipeline_ready()

    def caught_up():
        lags = progress.stage_lags(run_dir / "checkpoints")
        return all(v == 0 for v in lags.values())

    time.sleep(5)
    processes.wait_until(caught_up, timeout=400, interval=2, what="the replay to catch up")
    after = figures()
    report(
        "replay all topics from earliest",
        before[0],
        after[0],
        max(before[0] - after[0], 0),
        max(after[0] - before[0], 0),
        0,
        tally.unconsumed(pipeline),
    )
    assert after == before
