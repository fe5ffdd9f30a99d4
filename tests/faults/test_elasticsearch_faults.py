"""Elasticsearch refusing, throttling or slow, seen by the real loader.

The 429, 413, slow and mapping rows put tests/support/es_proxy.py (a network fault injector, every
other request passed through to the real node) between the loader and Elasticsearch; the
flood-stage row uses the real node alone."""

from __future__ import annotations

import json

import pytest

from tapstack import contracts
from tapstack.deadletter import headers
from tapstack.elastic.client import connect
from tapstack.native import processes
from tapstack.simulator import reassigned
from tests.support import kafka_io, routes, tally
from tests.support.es_proxy import FaultProxy

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]

N = 300
THROTTLED = 8  # _bulk requests answered 429: more than streaming_bulk's own 3 retries
MAX_BODY = 64 * 2**10  # a proxy's body cap: a batch's bulk exceeds it, each document alone not


def _dashboard_record(pipeline, order) -> dict:
    """The Topic_Dashboard record behaviour wrote for an order already loaded."""
    key = str(order.order_id).encode()
    for record in pipeline.read_topic(contracts.topic("dashboard")):
        if record.key == key:
            return json.loads(record.value)
    raise AssertionError(f"no Topic_Dashboard record for order {order.order_id}")


def _letters_of(pipeline, values: set[bytes], ids: list[int]) -> list[dict]:
    """Dead letters of this row: the crafted records, or any record of its orders."""
    keys = {str(i).encode() for i in ids}
    return [d for d in pipeline.dead_letters() if d["value"] in values or d["key"] in keys]


def _through_proxy(pipeline, report, case, seed, rule, crafted=None):
    """N orders through a loader behind the proxy with `rule` applied to it. crafted(template)
    gives Topic_Dashboard records (order id -> record), made from a real one (the template),
    produced between the orders. Returns (the row's dead letters, the proxy's counters, the
    crafted records' bytes by id)."""
    stack = pipeline.stack
    orders = pipeline.simulate(N, seed=seed)
    pipeline.append(orders[:10])
    assert pipeline.wait_indexed([o.order_id for o in orders[:10]]) == 10
    template = _dashboard_record(pipeline, orders[0])
    values = {i: json.dumps(r).encode() for i, r in (crafted(template) if crafted else {}).items()}

    def run() -> tally.Figures:
        if values:
            kafka_io.produce(
                contracts.topic("dashboard"), [(str(i).encode(), v) for i, v in values.items()]
            )
        pipeline.append(orders[10:])
        figures = tally.tally(pipeline, orders, timeout=240)
        pipeline.wait_dead_letters(lambda d: d["value"] in set(values.values()), len(values))
        return figures

    proxy = FaultProxy(contracts.elasticsearch_url())
    if rule is None:  # the real node alone
        figures, crashed = run(), False
    else:
        with proxy:
            rule(proxy)
            with routes.loader_through(stack, proxy.url) as loader:
                figures = run()
                crashed = not routes.still_running(stack, loader)
    letters = _letters_of(pipeline, set(values.values()), [o.order_id for o in orders])
    report(
        case,
        N + len(values),
        figures.found,
        figures.lost,
        figures.duplicated,
        len(letters),
        figures.stuck,
    )
    tally.assert_clean(case, figures, orders)
    assert not crashed, "the loader behind the proxy never crashed (nor was restarted around it)"
    return letters, proxy.counters, values


def test_elasticsearch_answers_429(pipeline, report):
    def throttle(proxy):
        proxy.throttle_bulk = THROTTLED

    letters, counters, _ = _through_proxy(
        pipeline, report, f"elasticsearch 429 x {THROTTLED} bulk requests", 150, throttle
    )
    assert counters.throttled == THROTTLED, "every throttled request was retried past"
    assert letters == [], "a throttled document is late, never dead-lettered"


def test_elasticsearch_answers_413(pipeline, report):
    """Bulk requests over the proxy's cap are refused 413: the loader resends each document of
    them alone; an order whose document alone is over the cap is dead-lettered with the 413,
    and none of its lines stays."""
    big_id = pipeline.order_id_block()

    def cap(proxy):
        proxy.max_body = MAX_BODY

    def big_order(template):
        # Three distinct product names of 30,000 characters: each line document (one name)
        # fits under the cap, the order document (all three in `products`) does not.
        item = template["items"][0]
        items = [{**item, "product_name": c * 30_000} for c in "abc"]
        return {big_id: {**reassigned(template, big_id), "items": items}}

    letters, counters, values = _through_proxy(
        pipeline, report, f"elasticsearch 413 over {MAX_BODY // 1024} KiB", 151, cap, big_order
    )
    assert counters.too_large > 0, "the cap was hit"
    assert max(counters.bulk_bodies) <= MAX_BODY
    [letter] = [d for d in letters if d["value"] == values[big_id]]
    assert letter[headers.STAGE] == headers.LOADER
    assert "413" in letter[headers.REASON]
    assert pipeline.count_orders([big_id]) == 0
    # Its lines were created before the order was refused: whether they are removed again is
    # test_a_refused_order_leaves_no_lines_behind's question.


def test_elasticsearch_slow(pipeline, report):
    def slow(proxy):
        proxy.latency = 2.0

    letters, counters, _ = _through_proxy(
        pipeline, report, "elasticsearch slow (+2 s a request)", 152, slow
    )
    assert counters.forwarded > 0
    assert letters == [], "a slow answer is waited for, never dead-lettered"


# The last offset java.time allows, which the loader's date check accepts (tapstack/loader/
# documents.py _is_date), and one beyond it, which the real node refuses: Elasticsearch's
# strict_date_optional_time fails on "+18:30". The loader never sends such a value, as its
# rules are Elasticsearch's; the proxy puts it into the bulk body, as a stricter template or
# another node version would refuse a document the loader judged good.
LAST_OFFSET = b'"2026-11-24T10:00:00+18:00"'
BEYOND_LAST_OFFSET = b'"2026-11-24T10:00:00+18:30"'


def _refused_on_its_way(bad_id: int, field: str):
    """_through_proxy's rule and crafted record: the record has `field` at the last offset,
    which the proxy makes one beyond on its way to the node."""

    def rule(proxy):
        proxy.rewrite = (LAST_OFFSET, BEYOND_LAST_OFFSET)

    def crafted(template):
        return {bad_id: {**reassigned(template, bad_id), field: json.loads(LAST_OFFSET)}}

    return rule, crafted


def test_elasticsearch_mapping_rejection(pipeline, report):
    bad_id = pipeline.order_id_block()
    rule, crafted = _refused_on_its_way(bad_id, "event_time")
    letters, counters, values = _through_proxy(
        pipeline, report, "elasticsearch mapping rejection", 153, rule, crafted
    )
    assert counters.forwarded > 0
    [letter] = [d for d in letters if d["value"] == values[bad_id]]
    assert letter[headers.STAGE] == headers.LOADER
    reason = letter[headers.REASON]
    assert reason.startswith("elasticsearch: document_parsing_exception"), reason
    assert "event_time" in reason, reason
    assert pipeline.lines_of([bad_id]) == [] and pipeline.count_orders([bad_id]) == 0


# Every disk watermark at 1 % used: the node is past flood stage, so Elasticsearch puts
# index.blocks.read_only_allow_delete on its indices at its next disk check (every
# cluster.info.update.interval, 10 s at the least) and takes the block off by itself once the
# node's usage is under the high watermark again (ES 8.x docs, "Error: disk usage exceeded
# flood-stage watermark", https://www.elastic.co/guide/en/elasticsearch/reference/8.19/
# disk-usage-exceeded.html; source: docs/reference/troubleshooting/common-issues/
# disk-usage-exceeded.asciidoc). The row removes it itself only if that does not happen.
WATERMARKS = [f"cluster.routing.allocation.disk.watermark.{w}" for w in ("low", "high", "flood")]
WATERMARKS[-1] += "_stage"
# The native node starts with the disk decider off (tapstack/native/elasticsearch.py:92,
# threshold_enabled: false in its elasticsearch.yml): the row turns it on (a dynamic cluster
# setting) for the fault, and resetting it gives the node its own value back.
FLOOD = {
    **dict.fromkeys(WATERMARKS, "1%"),
    "cluster.routing.allocation.disk.threshold_enabled": True,
    "cluster.info.update.interval": "10s",
}
BLOCK = "index.blocks.read_only_allow_delete"


def _blocked(es, index: str) -> bool:
    settings = es.indices.get_settings(index=index, name=BLOCK, flat_settings=True)
    return any(s["settings"].get(BLOCK) == "true" for s in settings.values())


def _loader_log_since(pipeline, offset: int) -> str:
    log = pipeline.stack.run_dir / "logs" / "loader.log"
    with open(log, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def test_elasticsearch_past_its_flood_stage_watermark(pipeline, report):
    es = connect(role="admin")
    orders_index = contracts.index("orders")
    loader_log = pipeline.stack.run_dir / "logs" / "loader.log"
    orders = pipeline.simulate(N, seed=154)
    released_by = "elasticsearch"
    try:
        es.cluster.put_settings(persistent=FLOOD)
        processes.wait_until(
            lambda: _blocked(es, orders_index), timeout=90, what="the flood-stage block"
        )
        logged = loader_log.stat().st_size
        pipeline.append(orders)
        processes.wait_until(
            lambda: "flood-stage watermark" in _loader_log_since(pipeline, logged),
            timeout=90,
            what="the loader to meet the block",
        )
        # The watermarks back to the node's own, the disk monitor still on, so that it is
        # Elasticsearch that releases the block at its next check (a disabled monitor checks
        # nothing, and would not release it).
        es.cluster.put_settings(persistent=dict.fromkeys(WATERMARKS))
        try:
            processes.wait_until(
                lambda: not _blocked(es, orders_index), timeout=60, what="the automatic release"
            )
        except TimeoutError:
            released_by = "the test"
            es.indices.put_settings(index="_all", settings={BLOCK: None})
    finally:
        es.cluster.put_settings(persistent=dict.fromkeys(FLOOD))
        if _blocked(es, orders_index):  # the row failed before the release: leave no block
            es.indices.put_settings(index="_all", settings={BLOCK: None})
    figures = tally.tally(pipeline, orders, timeout=240)
    letters = _letters_of(pipeline, set(), [o.order_id for o in orders])
    case = f"elasticsearch past flood stage (block lifted by {released_by})"
    report(case, N, figures.found, figures.lost, figures.duplicated, len(letters), figures.stuck)
    tally.assert_clean(case, figures, orders)
    assert letters == [], "a blocked write is late, never dead-lettered"


def test_a_refused_order_leaves_no_lines_behind(pipeline, report):
    """An order refused by the real node on a field of the order document only
    (processed_at, made beyond the last offset on its way; its lines are fine and created
    first): dead-lettered, and none of its lines stays."""
    bad_id = pipeline.order_id_block()
    rule, crafted = _refused_on_its_way(bad_id, "processed_at")
    letters, _, values = _through_proxy(
        pipeline, report, "order refused after its lines (undo)", 155, rule, crafted
    )
    [letter] = [d for d in letters if d["value"] == values[bad_id]]
    assert letter[headers.REASON].startswith("elasticsearch: document_parsing_exception")
    assert pipeline.count_orders([bad_id]) == 0
    assert pipeline.lines_of([bad_id]) == [], "no line of the refused order stays"
