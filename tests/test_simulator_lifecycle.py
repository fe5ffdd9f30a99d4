"""The simulator's order lifecycle and the known truth: events in time order, refunds that never
give back more than is left, the configured rates, and figures that add up."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tapstack.contracts import enrichment, order_schema
from tapstack.simulator import (
    REFUND_RATES,
    KnownTruth,
    Lifecycle,
    Money,
    SimulatedOrder,
    Simulator,
    append_orders,
    format_line,
    known_truth,
    known_truth_of_log,
)
from tapstack.simulator.cli import app as simulate_app
from tapstack.simulator.lifecycle import CARD_GATEWAY

SHOP_TZ = ZoneInfo(enrichment("shop_timezone"))
START = datetime(2026, 3, 1, 9, 0, tzinfo=SHOP_TZ)  # the big run crosses the clocks' change
BIG = 20_000
LIFECYCLE = Lifecycle()
SCHEMA = order_schema()
TOP_KEYS = [key for key in SCHEMA["properties"] if key != "refund"]
REFUND_SCHEMA = SCHEMA["properties"]["refund"]


GOODWILL = ("Goodwill gesture", "Late delivery", "Shipping refund", "")


def stamp(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


@pytest.fixture(scope="module")
def validator():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(scope="module")
def big() -> list[SimulatedOrder]:
    """BIG orders placed forward from START, and every later event of theirs (flushed)."""
    simulator = Simulator(seed=21, start=START, lifecycle=LIFECYCLE)
    events = list(simulator.orders(BIG))
    assert simulator.pending > 0  # returns still on their way after the last checkout
    events += list(simulator.flush())
    assert simulator.pending == 0
    return events


@pytest.fixture(scope="module")
def events(big) -> list[dict]:
    return [order.event for order in big]


@pytest.fixture(scope="module")
def by_order(events) -> dict[int, list[dict]]:
    orders: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        orders[event["order_id"]].append(event)
    return orders


@pytest.fixture(scope="module")
def placed() -> dict[int, dict]:
    """The same seed without a lifecycle: the orders as placed, at their checkout times."""
    simulator = Simulator(seed=21, start=START)
    return {order.order_id: order.event for order in simulator.orders(BIG)}


# -- the contract ------------------------------------------------------------------------------


def test_every_event_is_valid_against_the_contract(validator, events):
    medium = Simulator(seed=5, start=START, lifecycle=LIFECYCLE)
    sample = [o.event for o in medium.orders(3000)] + [o.event for o in medium.flush()]
    assert {e["event_type"] for e in sample} == {"paid", "refunded", "cancelled", "failed"}
    # ... and every event of the big run that is not a plain paid one.
    sample += [e for e in events if e["event_type"] != "paid"]
    for event in sample:
        errors = [error.message for error in validator.iter_errors(event)]
        assert not errors, (event["event_id"], errors)


def test_keys_follow_the_schema_and_lines_round_trip(events):
    refund_keys = list(REFUND_SCHEMA["properties"])
    refund_item_keys = list(REFUND_SCHEMA["properties"]["items"]["items"]["properties"])
    for event in events[:3000] + [e for e in events if e["event_type"] == "refunded"][:2000]:
        if event["event_type"] == "refunded":
            assert list(event) == [*TOP_KEYS, "refund"]
            assert list(event["refund"]) == refund_keys
            for item in event["refund"]["items"]:
                assert list(item) == refund_item_keys
        else:
            assert list(event) == TOP_KEYS
        assert event["schema_version"] == 2
        assert json.loads(format_line(event)) == event


def test_event_ids_are_unique_and_say_what_happened(events):
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    refund_ids = [e["refund"]["refund_id"] for e in events if e["event_type"] == "refunded"]
    assert len(refund_ids) == len(set(refund_ids)), "refund ids are unique across the shop"
    status = {"paid": {"processing"}, "cancelled": {"cancelled"}, "failed": {"failed"}}
    status["refunded"] = {"completed", "refunded"}
    for event in events:
        kind, order_id = event["event_type"], event["order_id"]
        if kind == "refunded":
            assert event["event_id"] == f"{order_id}-refund-{event['refund']['refund_id']}"
        else:
            assert event["event_id"] == f"{order_id}-{kind}"
        assert event["order_status"] in status[kind]


# -- time ---------------------------------------------------------------------------------------


def test_events_come_in_time_order_in_the_shop_zone(events):
    stamps = [stamp(e) for e in events]
    assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))
    offsets = {s.utcoffset() for s in stamps}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # before and after March 29
    for moment in stamps[::50]:
        assert moment.utcoffset() == moment.astimezone(SHOP_TZ).utcoffset()


def test_checkout_payment_and_cancellation_times(by_order, placed):
    pay_low, pay_high = LIFECYCLE.bacs_pay_delay
    cancel_low, cancel_high = LIFECYCLE.bacs_cancel_delay
    for order_id, checkout in placed.items():
        first = by_order[order_id][0]
        delay = stamp(first) - stamp(checkout)
        if first["event_type"] == "failed":
            assert delay == timedelta(0) and first["payment_method"] == CARD_GATEWAY
        elif first["payment_method"] == "cod":
            assert first["event_type"] == "paid" and delay == timedelta(0)
        elif first["event_type"] == "paid":
            assert first["payment_method"] == "bacs" and pay_low <= delay <= pay_high
        else:
            assert first["event_type"] == "cancelled" and first["payment_method"] == "bacs"
            assert cancel_low <= delay <= cancel_high


def test_the_lifecycle_keeps_the_seeds_orders(by_order, placed):
    """Same ids, contents and customers as without a lifecycle; only the event fields, the
    dates and a failed order's gateway differ."""
    assert set(by_order) == set(placed)
    moving = {"event_id", "event_type", "order_status", "timestamp", "refund"}
    for order_id, checkout in placed.items():
        for event in by_order[order_id]:
            same = {k: v for k, v in event.items() if k not in moving}
            expected = {k: v for k, v in checkout.items() if k not in moving}
            if event["event_type"] == "failed":
                expected["payment_method"] = CARD_GATEWAY
            assert same == expected


# -- each order's story -------------------------------------------------------------------------


def test_each_order_is_paid_cancelled_or_failed_once(by_order):
    for order_id, story in by_order.items():
        kinds = Counter(e["event_type"] for e in story)
        assert kinds["paid"] + kinds["cancelled"] + kinds["failed"] == 1, order_id
        assert story[0]["event_type"] != "refunded", "a refund before the payment"
        if kinds["refunded"]:
            assert kinds["paid"] == 1, "a refund of an order never paid"
        if kinds["cancelled"]:
            assert story[0]["payment_method"] == "bacs", "only unpaid transfers are cancelled"


def test_refunds_come_after_the_payment_within_the_return_window(by_order):
    for story in by_order.values():
        paid = [e for e in story if e["event_type"] == "paid"]
        for refund in (e for e in story if e["event_type"] == "refunded"):
            after = stamp(refund) - stamp(paid[0])
            assert LIFECYCLE.min_refund_delay <= after <= LIFECYCLE.return_window


def test_a_refund_never_gives_back_more_than_is_left(by_order):
    full = partial = amount_only = split = partial_units = 0
    for story in by_order.values():
        refunds = [e["refund"] for e in story if e["event_type"] == "refunded"]
        if not refunds:
            continue
        order = story[0]
        total = Decimal(repr(order["total"]))
        lines = {item["product_id"]: item for item in order["items"]}
        units_left = {pid: item["quantity"] for pid, item in lines.items()}
        money_left = {pid: Decimal(repr(item["total"])) for pid, item in lines.items()}
        left = total
        split += len(refunds) > 1
        for event, refund in zip(
            (e for e in story if e["event_type"] == "refunded"), refunds, strict=True
        ):
            amount = Decimal(repr(refund["amount"]))
            assert Decimal(0) < amount <= left, "more than is left to refund"
            left -= amount
            line_sum = Decimal(0)
            for item in refund["items"]:
                pid = item["product_id"]
                assert 1 <= item["quantity"] <= units_left[pid], "more units than are left"
                line_amount = Decimal(repr(item["amount"]))
                assert Decimal(0) < line_amount <= money_left[pid]
                assert item["category"] == lines[pid]["category"]
                partial_units += item["quantity"] < lines[pid]["quantity"]
                units_left[pid] -= item["quantity"]
                money_left[pid] -= line_amount
                if units_left[pid] == 0:
                    assert money_left[pid] == 0, "a line given back whole, to the cent"
                line_sum += line_amount
            if refund["items"]:
                assert line_sum == amount
            else:
                amount_only += 1
                assert refund["reason"] in GOODWILL
            assert event["order_status"] == ("refunded" if left == 0 else "completed")
            full += left == 0
            partial += left != 0
    assert min(full, partial, amount_only, split, partial_units) > 0
    assert 0.2 < full / (full + partial) < 0.6


def test_refund_rates_per_category_are_the_configured_ones(by_order):
    sold, returned = Counter(), Counter()
    for story in by_order.values():
        if story[0]["event_type"] != "paid":
            continue
        back = {
            item["product_id"]
            for e in story
            if e["event_type"] == "refunded"
            for item in e["refund"]["items"]
        }
        for item in story[0]["items"]:
            sold[item["category"]] += 1
            returned[item["category"]] += item["product_id"] in back
    assert set(sold) == set(REFUND_RATES)
    for category, rate in REFUND_RATES.items():
        assert sold[category] > 1500, category
        observed = returned[category] / sold[category]
        assert abs(observed - rate) < 0.025, (category, observed, rate)
    # Fit-driven categories come back far more than accessories.
    assert REFUND_RATES["Dresses"] > 4 * REFUND_RATES["Accessories"]


def test_shares_of_failed_cancelled_and_refunded_orders(by_order):
    firsts = [story[0] for story in by_order.values()]
    kinds = Counter(e["event_type"] for e in firsts)
    assert abs(kinds["failed"] / len(firsts) - LIFECYCLE.failed_share) < 0.006
    transfers = sum(e["payment_method"] == "bacs" for e in firsts)
    assert abs(kinds["cancelled"] / transfers - LIFECYCLE.bacs_cancel_share) < 0.02
    paid = [s for s in by_order.values() if s[0]["event_type"] == "paid"]
    refunded = sum(any(e["event_type"] == "refunded" for e in s) for s in paid)
    assert 0.2 < refunded / len(paid) < 0.4, "a fifth to two fifths of orders come back"


# -- the known truth ----------------------------------------------------------------------------


def _sum(moneys) -> Money:
    return sum(moneys, Money())


def test_the_truth_adds_up(events):
    truth = known_truth(format_line(e) for e in events)
    assert truth.net == truth.gross - truth.refunds
    assert truth.net == truth.total.net
    kinds = Counter(e["event_type"] for e in events)
    assert (truth.paid, truth.refunded, truth.cancelled, truth.failed) == (
        kinds["paid"],
        kinds["refunded"],
        kinds["cancelled"],
        kinds["failed"],
    )
    assert truth.events == len(events) and truth.duplicates == truth.skipped == 0
    assert _sum(truth.by_day.values()) == truth.total
    assert _sum(truth.by_product.values()) + truth.unattributed == truth.total
    assert _sum(truth.by_category.values()) + truth.unattributed == truth.total
    # The simulator's totals are their lines; only amount-only refunds have no product.
    assert truth.unattributed.gross == 0
    amount_only = sum(
        Decimal(repr(e["refund"]["amount"]))
        for e in events
        if e["event_type"] == "refunded" and not e["refund"]["items"]
    )
    assert truth.unattributed.refunds == amount_only > 0
    # Computed again the plain way, in cents.
    cents = Counter()
    for e in events:
        if e["event_type"] == "paid":
            cents["gross"] += round(e["total"] * 100)
        elif e["event_type"] == "refunded":
            cents["refunds"] += round(e["refund"]["amount"] * 100)
    assert truth.gross * 100 == cents["gross"] and truth.refunds * 100 == cents["refunds"]
    assert 0.15 < truth.refunds / truth.gross < 0.4
    assert sum(truth.orders_by_status.values()) == truth.paid + truth.cancelled + truth.failed
    assert truth.orders_by_status["refunded"] == sum(
        1 for e in events if e["event_type"] == "refunded" and e["order_status"] == "refunded"
    )


def test_the_truth_of_a_hand_made_log(tmp_path: Path):
    base = {
        "schema_version": 2,
        "event_id": "7-paid",
        "event_type": "paid",
        "order_id": 7,
        "order_status": "processing",
        "timestamp": "2026-03-01T00:30:00+01:00",  # 28 February in UTC: the shop's day counts
        "currency": "EUR",
        "total": 104.9,  # 4.90 of shipping beyond the lines
        "payment_method": "cod",
        "items": [
            {"product_id": 1, "product_name": "A", "sku": "", "category": "Jeans",
             "quantity": 2, "unit_price": 30.0, "total": 60.0},
            {"product_id": 2, "product_name": "B", "sku": "", "category": "Shoes",
             "quantity": 1, "unit_price": 40.0, "total": 40.0},
        ],
        "customer": {"id": 0, "first_name": "", "email": ""},
        "duration_session": 10,
        "pages_viewed": 2,
    }  # fmt: skip
    v1 = {k: v for k, v in base.items() if k not in ("event_id", "event_type", "order_status")}
    v1 = {**v1, "schema_version": 1, "order_id": 8, "total": 40.0, "items": base["items"][1:]}
    refund = {
        **base,
        "event_id": "7-refund-70",
        "event_type": "refunded",
        "order_status": "completed",
        "timestamp": "2026-03-05T10:00:00+01:00",
        "refund": {"refund_id": 70, "amount": 35.0, "reason": "Wrong size", "items": [
            {"product_id": 1, "product_name": "A", "sku": "", "category": "Jeans",
             "quantity": 1, "amount": 30.0}]},
    }  # fmt: skip
    goodwill = {
        **refund,
        "event_id": "8-refund-80",
        "order_id": 8,
        "refund": {"refund_id": 80, "amount": 0.1, "reason": "", "items": []},
    }
    cancelled = {**base, "event_id": "9-cancelled", "event_type": "cancelled", "order_id": 9}
    cancelled["order_status"] = "cancelled"
    failed = {**cancelled, "event_id": "10-failed", "event_type": "failed", "order_id": 10}
    failed["order_status"] = "failed"
    lines = [format_line(e) for e in (base, v1, refund, goodwill, cancelled, failed)]
    lines += [lines[2], "not json\n", "\n", "[1]\n"]  # a rewrite, junk, blank, no object
    truth = known_truth(lines)
    assert (truth.gross, truth.refunds, truth.net) == (
        Decimal("144.90"),
        Decimal("35.10"),
        Decimal("109.80"),
    )
    assert (truth.paid, truth.refunded, truth.cancelled, truth.failed) == (2, 2, 1, 1)
    assert (truth.duplicates, truth.skipped, truth.refunded_orders) == (1, 2, 2)
    assert truth.by_day == {
        "2026-03-01": Money(Decimal("144.9"), Decimal(0)),
        "2026-03-05": Money(Decimal(0), Decimal("35.1")),
    }
    assert truth.by_product == {
        1: Money(Decimal("60"), Decimal("30")),
        2: Money(Decimal("80"), Decimal(0)),
    }
    assert truth.by_category["Jeans"].net == Decimal("30")
    assert truth.unattributed == Money(Decimal("4.9"), Decimal("5.1"))
    assert truth.orders_by_status == {"completed": 2, "cancelled": 1, "failed": 1}
    # The same from dicts, bytes and the file, and JSON-ready with exact cents.
    log = tmp_path / "orders.log"
    log.write_text("".join(lines), encoding="utf-8")
    assert known_truth_of_log(log) == truth
    assert known_truth([line.encode() for line in lines]) == truth
    assert known_truth([base, v1, refund, goodwill, cancelled, failed, refund]).net == truth.net
    figures = truth.as_dict()
    assert figures["total"] == {"gross": "144.90", "refunds": "35.10", "net": "109.80"}
    assert figures["by_day"]["2026-03-05"]["net"] == "-35.10"
    assert figures["counts"]["refunded"] == 2
    assert KnownTruth().net == 0


# -- seeds, chunks and the recent past ----------------------------------------------------------


def test_same_seed_same_lines_in_any_chunking():
    def run(seed, chunks):
        simulator = Simulator(seed=seed, start=START, lifecycle=LIFECYCLE)
        lines = [format_line(o.event) for n in chunks for o in simulator.orders(n)]
        return lines + [format_line(o.event) for o in simulator.flush()]

    whole = run(9, [600])
    assert whole == run(9, [1, 99, 500]) == run(9, [600])
    assert any('"event_type":"refunded"' in line for line in whole)
    assert whole != run(10, [600])


def test_backfill_with_a_lifecycle_ends_at_its_end(validator):
    end = datetime(2026, 11, 24, 20, 30, tzinfo=SHOP_TZ)
    life = LIFECYCLE.compressed(timedelta(hours=6))
    simulator = Simulator(seed=12, order_id_start=500, lifecycle=life)
    events = [o.event for o in simulator.backfill(1500, end=end)]
    again = Simulator(seed=12, order_id_start=500, lifecycle=life).backfill(1500, end=end)
    assert events == [o.event for o in again]
    stamps = [stamp(e) for e in events]
    assert stamps == sorted(stamps) and max(stamps) <= end
    kinds = Counter(e["event_type"] for e in events)
    assert min(kinds.values()) > 10 and set(kinds) == {"paid", "refunded", "cancelled", "failed"}
    ids = {e["order_id"] for e in events}
    assert ids <= set(range(500, 2000)) and len(ids) > 1400  # some transfers are still on hold
    for event in events:
        validator.validate(event)
    # The default (a month's window) over a day's history: few returns have happened yet.
    slow = Simulator(seed=12, order_id_start=500, lifecycle=LIFECYCLE).backfill(1500, end=end)
    assert Counter(o.event_type for o in slow)["refunded"] < kinds["refunded"] / 4


def test_compressed_scales_every_delay():
    fast = LIFECYCLE.compressed(timedelta(days=3))
    assert fast.return_window == timedelta(days=3)
    assert fast.min_refund_delay == LIFECYCLE.min_refund_delay / 10
    assert fast.bacs_cancel_delay[1] == LIFECYCLE.bacs_cancel_delay[1] / 10
    assert fast.refund_rates == LIFECYCLE.refund_rates
    tiny = LIFECYCLE.compressed(timedelta(0))
    assert tiny.return_window == tiny.min_refund_delay == timedelta(seconds=1)


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="failed_share"):
        Lifecycle(failed_share=1.5)
    with pytest.raises(ValueError, match="whole_order_share"):
        Lifecycle(whole_order_share=0.5)
    with pytest.raises(ValueError, match="min_refund_delay"):
        Lifecycle(min_refund_delay=timedelta(days=40))
    assert dataclasses.replace(LIFECYCLE, failed_share=0.0).failed_share == 0.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), start_id=st.integers(1, 10**12))
def test_any_seed_gives_valid_events(seed, start_id):
    life = LIFECYCLE.compressed(timedelta(hours=2))
    simulator = Simulator(seed=seed, start=START, order_id_start=start_id, lifecycle=life)
    events = [o.event for o in simulator.orders(60)] + [o.event for o in simulator.flush()]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for event in events:
        validator.validate(event)
    assert len({e["event_id"] for e in events}) == len(events)


# -- writing ------------------------------------------------------------------------------------


def test_append_writes_every_event_and_one_truth_row_per_order(tmp_path: Path):
    log, truth = tmp_path / "orders.log", tmp_path / "truth.csv"
    simulator = Simulator(seed=4, start=START, lifecycle=LIFECYCLE.compressed(timedelta(hours=1)))
    events = list(simulator.orders(300)) + list(simulator.flush())
    assert append_orders(log, events, truth_path=truth) == len(events)
    assert log.read_bytes() == b"".join(format_line(o.event).encode() for o in events)
    with truth.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert sorted(int(order_id) for order_id, _ in rows) == list(range(1, 301))


def test_cli_writes_a_lifecycle_and_prints_its_truth(tmp_path: Path, validator):
    log = tmp_path / "orders.log"
    args = ["orders", str(log), "-n", "600", "--seed", "3", "--lifecycle"]
    result = CliRunner().invoke(simulate_app, [*args, "--return-window-days", "0.25"])
    assert result.exit_code == 0, result.output
    lines = log.read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    kinds = Counter(e["event_type"] for e in events)
    assert set(kinds) == {"paid", "refunded", "cancelled", "failed"}
    assert f"{kinds['refunded']} refunded" in result.output
    now = datetime.now(SHOP_TZ)
    for event in events:
        validator.validate(event)
        assert stamp(event) <= now
    result = CliRunner().invoke(simulate_app, ["truth", str(log)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == known_truth_of_log(log).as_dict()
    assert json.loads(result.output)["counts"]["refunded"] == kinds["refunded"]


def test_cli_default_writes_paid_events_only(tmp_path: Path):
    log = tmp_path / "orders.log"
    result = CliRunner().invoke(simulate_app, ["orders", str(log), "-n", "50", "--seed", "3"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(events) == 50 and {e["event_type"] for e in events} == {"paid"}
