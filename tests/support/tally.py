"""Counting a fault row: which orders and lines arrived, which were lost, doubled or are stuck.

A record missing downstream is *stuck* while some stage still has unconsumed records in its input
topic once the row has waited (that stage stopped moving), and *lost* when every stage has
consumed everything and the record is still nowhere."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tapstack.native import progress
from tapstack.simulator import SimulatedOrder, format_line, known_truth

CENT = Decimal("0.01")


@dataclass
class Figures:
    sent: int
    found: int
    lost: int
    duplicated: int
    stuck: int
    docs: dict[int, dict]


def expected_lines(orders: list[SimulatedOrder]) -> set[str]:
    return {f"{o.order_id}-{i}" for o in orders for i in range(1, len(o.event["items"]) + 1)}


def tally_events(pipeline, events: list[SimulatedOrder], timeout: float = 300) -> Figures:
    """Wait (up to timeout) for every event in the ledger, then count; docs: event id -> the
    ledger's event document."""
    ids = sorted({e.order_id for e in events})
    pipeline.wait_events(ids, len(events), timeout=timeout)
    docs = pipeline.ledger_events(ids)
    expected = {e.event["event_id"] for e in events}
    lost, stuck = split_missing(pipeline, len(expected - set(docs)))
    # An id is written once: a second copy of an event can only be one under another id.
    duplicated = len(set(docs) - expected)
    return Figures(len(events), len(docs), lost, duplicated, stuck, docs)


def assert_events_clean(case: str, figures: Figures, events: list[SimulatedOrder]) -> None:
    """0 lost, 0 duplicated, 0 stuck, and gross, refunds and net equal to the log's."""
    assert figures.lost == 0, f"{case}: {figures.lost} events lost"
    assert figures.duplicated == 0, f"{case}: {figures.duplicated} duplicates"
    assert figures.stuck == 0, f"{case}: {figures.stuck} events stuck in a stage"
    truth = known_truth(format_line(e.event) for e in events)
    net = Decimal(repr(sum(d["amount"] for d in figures.docs.values()))).quantize(CENT)
    assert net == truth.net.quantize(CENT), f"{case}: net {net}, the log's {truth.net}"


def unconsumed(pipeline) -> int:
    """Records some stage after the tailer has not consumed yet, summed over the stages."""
    return sum(progress.stage_lags(pipeline.stack.run_dir / "checkpoints").values())


def split_missing(pipeline, missing: int) -> tuple[int, int]:
    """(lost, stuck): the missing records a stage still holds unconsumed are stuck, not lost."""
    if missing <= 0:
        return 0, 0
    stuck = min(missing, unconsumed(pipeline))
    return missing - stuck, stuck


def tally(pipeline, orders: list[SimulatedOrder], timeout: float = 300) -> Figures:
    """Wait (up to timeout) for every order and its lines, then count."""
    ids = [o.order_id for o in orders]
    found = pipeline.wait_indexed(ids, timeout=timeout)
    docs = pipeline.orders_by_id(ids)
    lines_expected = expected_lines(orders)
    lines = pipeline.wait_lines(ids, len(lines_expected), timeout=timeout)
    line_ids = [line["_id"] for line in lines]
    missing = len(set(ids) - set(docs)) + len(lines_expected - set(line_ids))
    duplicated = (found - len(docs)) + (len(line_ids) - len(set(line_ids)))
    duplicated += len(set(line_ids) - lines_expected)
    lost, stuck = split_missing(pipeline, missing)
    return Figures(len(orders), found, lost, duplicated, stuck, docs)


def assert_clean(case: str, figures: Figures, orders: list[SimulatedOrder]) -> None:
    """0 lost, 0 duplicated, 0 stuck, and the revenue equal to the log's."""
    assert figures.lost == 0, f"{case}: {figures.lost} orders or lines lost"
    assert figures.duplicated == 0, f"{case}: {figures.duplicated} duplicates"
    assert figures.stuck == 0, f"{case}: {figures.stuck} orders or lines stuck in a stage"
    totals = round(sum(d["total"] for d in figures.docs.values()), 2)
    assert totals == round(sum(o.event["total"] for o in orders), 2)
