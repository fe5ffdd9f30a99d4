"""An order with 5,000 items: natively end to end, and held against the compose path's limits.

The line is about 720 KB. The contract (contracts/order.schema.json, items.maxItems) decides
whether such an order is an order: within maxItems it must arrive whole (5,000 line documents),
beyond it it must be dead-lettered with its reason."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tapstack import contracts
from tapstack.deadletter import headers
from tapstack.loader.es_loader import MAX_CHUNK_BYTES
from tapstack.simulator import SimulatedOrder, Simulator, format_line
from tests.support import limits, tally

ITEMS = 5000
N = 100


def _max_items() -> int:
    schema = json.loads((contracts.ROOT / "contracts" / "order.schema.json").read_text())
    return schema["properties"]["items"]["maxItems"]


def big(order: SimulatedOrder, items: int = ITEMS) -> SimulatedOrder:
    """The order with `items` lines (its own lines repeated), the total their sum."""
    event = copy.deepcopy(order.event)
    own = event["items"]
    event["items"] = [copy.deepcopy(own[i % len(own)]) for i in range(items)]
    event["total"] = round(sum(item["total"] for item in event["items"]), 2)
    return SimulatedOrder(event=event, behaviour=order.behaviour)


def _line_bytes() -> int:
    from datetime import UTC, datetime

    [order] = Simulator(seed=170, order_id_start=10**12).backfill(1, end=datetime.now(UTC))
    return len(format_line(big(order).event).encode("utf-8")) + 1  # with its newline


@pytest.mark.engines
@pytest.mark.spark
@pytest.mark.faults
def test_an_order_with_5000_items_natively(pipeline, report):
    orders = pipeline.simulate(N, seed=171)
    heavy = big(orders[N // 2])
    orders[N // 2] = heavy
    within = _max_items() >= ITEMS
    expected = orders if within else [o for o in orders if o is not heavy]
    pipeline.append(orders)

    figures = tally.tally(pipeline, expected, timeout=240)
    key = str(heavy.order_id).encode()
    letters = [d for d in pipeline.dead_letters() if d["key"] == key]
    heavy_lines = len(pipeline.lines_of([heavy.order_id]))
    case = f"order with {ITEMS} items (native; contract maxItems {_max_items()})"
    report(case, N, figures.found, figures.lost, figures.duplicated, len(letters), figures.stuck)
    tally.assert_clean(case, figures, expected)
    if within:
        assert letters == [] and heavy_lines == ITEMS
    else:
        assert pipeline.count_orders([heavy.order_id]) == 0, (
            f"beyond maxItems yet loaded, with {heavy_lines} line documents"
        )
        [letter] = letters
        assert letter[headers.STAGE] == headers.PROCESS_ORDERS
        assert f"more than {_max_items()} items" in letter[headers.REASON], letter[headers.REASON]


# ── the compose path: every size limit on the way, held against that line ──────────────────


def test_the_5000_item_line_is_shipped_whole_on_both_paths():
    """Both collectors ship a line whole up to contracts.longest_shipped_line() bytes and cut a
    longer one (tests/test_collector_configs.py holds Fluent Bit's buffer_max_size to it)."""
    line = _line_bytes() - 1  # without its newline
    assert line <= contracts.longest_shipped_line(), line


# Defaults the compose path leaves in place (none of them is set in compose/ or logstash/,
# the assertions below check that), each with its source:
# Kafka broker message.max.bytes, 1048588: https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes
BROKER_MESSAGE_MAX_BYTES = 1_048_588
# Spark's Kafka sink is a KafkaProducer: max.request.size 1048576 by default,
# https://kafka.apache.org/documentation/#producerconfigs_max.request.size
PRODUCER_MAX_REQUEST_SIZE = 1_048_576
# Logstash kafka input max_partition_fetch_bytes, 1048576: https://www.elastic.co/guide/en/
# logstash/current/plugins-inputs-kafka.html#plugins-inputs-kafka-max_partition_fetch_bytes
LOGSTASH_MAX_PARTITION_FETCH_BYTES = 1_048_576
# Elasticsearch http.max_content_length, 100mb: https://www.elastic.co/guide/en/elasticsearch/
# reference/8.19/modules-network.html#http-settings (a bulk request, not a line, meets it).
ES_MAX_CONTENT_LENGTH = 100 * 2**20


def _text(*parts: str) -> str:
    return (contracts.ROOT.joinpath(*parts)).read_text()


def test_the_compose_path_keeps_the_default_message_limits():
    outputs = yaml.safe_load(_text("fluent-bit", "fluent-bit.yaml"))["pipeline"]["outputs"]
    assert all("rdkafka.message.max.bytes" not in o for o in outputs)
    compose = _text("compose", "docker-compose.yml")
    assert "MESSAGE_MAX_BYTES" not in compose and "max.message.bytes" not in compose
    assert "max_partition_fetch_bytes" not in _text("logstash", "pipeline", "tap.conf")
    assert "http.max_content_length" not in compose


def test_the_5000_item_records_fit_every_kafka_and_elasticsearch_limit():
    """The line goes to Topic_Purchase as it is (Fluent Bit format raw); Topic_Analysis and
    Topic_Dashboard carry the items again with a few more fields: the same size give or take
    a few hundred bytes, kept here as 2 % headroom."""
    record = int(_line_bytes() * 1.02)
    assert record < limits.RDKAFKA_MESSAGE_MAX_BYTES
    assert record < BROKER_MESSAGE_MAX_BYTES
    assert record < PRODUCER_MAX_REQUEST_SIZE
    assert record < LOGSTASH_MAX_PARTITION_FETCH_BYTES
    # The 5,000 line documents go to Elasticsearch in bulk requests under a byte cap: the
    # native loader's MAX_CHUNK_BYTES, Logstash's target_bulk_bytes (20 MiB by default,
    # plugins-outputs-elasticsearch.html#plugins-outputs-elasticsearch-target_bulk_bytes).
    assert MAX_CHUNK_BYTES < ES_MAX_CONTENT_LENGTH
    assert "target_bulk_bytes" not in _text("logstash", "pipeline", "tap.conf")
