"""A poison record produced straight into each topic, between good orders: the stage reading it
dead-letters it with its reason, and the flow goes on (every good order arrives once)."""

from __future__ import annotations

import pytest

from tapstack import contracts
from tapstack.deadletter import headers
from tests.support import kafka_io, tally

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]

N = 200


def _poison(role: str, order_id: int) -> bytes:
    """A record the stage reading `role` cannot use, unique to this row."""
    return {
        # Not JSON at all: process_orders' parser.
        "purchase": b"\x00poison for Topic_Purchase " + str(order_id).encode(),
        # JSON, but no order_id, duration or pages: behaviour cannot label it.
        "analysis": b'{"poison": "Topic_Analysis", "n": ' + str(order_id).encode() + b"}",
        # An order whose only item is null: the loader cannot make a line of it.
        "dashboard": (
            b'{"order_id": ' + str(order_id).encode() + b', "order_fingerprint": "poison", '
            b'"items": [null]}'
        ),
    }[role]


READER = {
    "purchase": headers.PROCESS_ORDERS,
    "analysis": headers.BEHAVIOUR,
    "dashboard": headers.LOADER,
}


@pytest.mark.parametrize("role", list(READER), ids=lambda r: f"poison-{r}")
def test_a_poison_record_on_every_topic(pipeline, report, role):
    topic = contracts.topic(role)
    orders = pipeline.simulate(N, seed=140 + len(role))
    poison_id = pipeline.order_id_block()
    poison = _poison(role, poison_id)
    pipeline.append(orders[: N // 2])
    assert pipeline.wait_indexed([o.order_id for o in orders[: N // 2]]) == N // 2
    kafka_io.produce(topic, [(str(poison_id).encode(), poison)])
    pipeline.append(orders[N // 2 :])

    figures = tally.tally(pipeline, orders)
    letters = pipeline.wait_dead_letters(lambda d: d["value"] == poison, expected=1)
    case = f"poison record on {topic}"
    report(
        case,
        N + 1,
        figures.found,
        figures.lost,
        figures.duplicated + max(len(letters) - 1, 0),
        len(letters),
        figures.stuck,
    )
    tally.assert_clean(case, figures, orders)
    assert len(letters) == 1, "the poison record is dead-lettered once"
    letter = letters[0]
    assert letter[headers.STAGE] == READER[role], "by the stage that reads the topic"
    assert letter[headers.SOURCE_TOPIC] == topic
    assert letter[headers.REASON], "with its reason"
