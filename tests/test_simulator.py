"""The shop simulator: schema-valid lines, exact bytes, honest arithmetic, stable randomness."""

from __future__ import annotations

import csv
import hashlib
import json
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tapstack.contracts import ROOT, enrichment, order_schema
from tapstack.simulator import (
    CATALOGUE,
    IMPULSIVE,
    REASONED,
    SimulatedOrder,
    Simulator,
    append_orders,
    customer_pool,
    format_line,
    generate_training_data,
    write_training_csv,
)
from tapstack.simulator.cli import app as simulate_app

START = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Europe/Rome"))


@pytest.fixture(scope="module")
def orders() -> list[SimulatedOrder]:
    return list(Simulator(seed=11, start=START).orders(3000))


@pytest.fixture(scope="module")
def validator():
    schema = order_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_every_event_is_valid_against_the_contract(orders, validator):
    for order in orders:
        errors = list(validator.iter_errors(order.event))
        assert not errors, (order.event["order_id"], [e.message for e in errors])


def test_the_line_round_trips_and_stays_valid(orders, validator):
    for order in orders[:500]:
        parsed = json.loads(format_line(order.event))
        assert parsed == order.event
        validator.validate(parsed)


def test_keys_follow_the_schema_order(orders):
    schema = order_schema()
    top = [key for key in schema["properties"] if key != "refund"]  # refund: refunds only
    item_keys = schema["properties"]["items"]["items"]["required"]
    customer_keys = schema["properties"]["customer"]["required"]
    for order in orders[:200]:
        assert list(order.event) == top
        assert list(order.event["customer"]) == customer_keys
        for item in order.event["items"]:
            assert list(item) == item_keys


def test_default_mode_writes_paid_events_of_contract_v2(orders):
    for order in orders:
        event = order.event
        assert event["schema_version"] == 2
        assert event["event_type"] == order.event_type == "paid"
        assert event["event_id"] == f"{event['order_id']}-paid"
        assert event["order_status"] == "processing"
        assert "refund" not in event
    assert len({o.order_id for o in orders}) == len(orders) == 3000


def _as_before(order: SimulatedOrder) -> str:
    """The line as the simulator wrote it before contract v2 (version 1, no event fields)."""
    event = {
        k: v for k, v in order.event.items() if k not in ("event_id", "event_type", "order_status")
    }
    return format_line({**event, "schema_version": 1})


@pytest.mark.parametrize(
    ("make", "digest"),
    [
        (
            lambda: Simulator(seed=11, start=START).orders(500),
            "45b32c62dee35e0035e72a94acd6fb8930d36baddf0327017a5b3292cc88dddf",
        ),
        (
            lambda: Simulator(seed=12, order_id_start=500).backfill(
                500, end=datetime(2026, 11, 24, 20, 30, tzinfo=ZoneInfo("Europe/Rome"))
            ),
            "6265c1cb60cc4cb73ee48fe5888d044ed7801c24038d4dd1266904da7b62fd6f",
        ),
    ],
    ids=["forward", "backfill"],
)
def test_the_same_seed_gives_the_same_orders_as_before_contract_v2(make, digest):
    """The bytes of the version 1 simulator (digests taken from it): v2 only adds fields."""
    text = "".join(_as_before(order) for order in make())
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == digest


def test_money_adds_up_and_is_always_float(orders):
    for order in orders:
        event = order.event
        assert isinstance(event["total"], float)
        for item in event["items"]:
            assert isinstance(item["unit_price"], float)
            assert isinstance(item["total"], float)
            assert isinstance(item["quantity"], int)
            assert item["total"] == round(item["quantity"] * item["unit_price"], 2)
            assert round(item["unit_price"], 2) == item["unit_price"]
        assert event["total"] == round(sum(item["total"] for item in event["items"]), 2)
    # Whole prices still print as floats, as PHP's json_encode prints them.
    whole = next(o for o in orders if any(i["unit_price"] == 59.0 for i in o.event["items"]))
    assert '"unit_price":59.0' in format_line(whole.event)


def test_items_come_from_the_catalogue(orders):
    by_id = {p.product_id: p for p in CATALOGUE}
    for order in orders[:500]:
        ids = [item["product_id"] for item in order.event["items"]]
        assert len(ids) == len(set(ids))
        for item in order.event["items"]:
            product = by_id[item["product_id"]]
            assert (item["product_name"], item["sku"], item["category"], item["unit_price"]) == (
                product.name,
                product.sku,
                product.category,
                product.price,
            )


def test_catalogue_shape():
    assert 35 <= len(CATALOGUE) <= 45
    assert len({p.product_id for p in CATALOGUE}) == len(CATALOGUE)
    assert len({p.sku for p in CATALOGUE}) == len(CATALOGUE)
    assert len({p.category for p in CATALOGUE}) >= 6
    assert any(p.price > 150 for p in CATALOGUE)
    assert any(p.price > 500 for p in CATALOGUE)


def test_some_orders_cross_the_enrichment_thresholds(orders):
    totals = [o.event["total"] for o in orders]
    high = enrichment("high_spender_above")
    demand = enrichment("high_demand_above")
    assert 0.1 < sum(t > high for t in totals) / len(totals) < 0.5
    assert 0.005 < sum(t > demand for t in totals) / len(totals) < 0.08


def test_ids_count_up_and_time_moves_forward_in_the_shop_zone():
    simulator = Simulator(seed=3, start=START, order_id_start=1000)
    events = [o.event for o in simulator.orders(400)]
    assert [e["order_id"] for e in events] == list(range(1000, 1400))
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    assert stamps[0] > START
    zone = ZoneInfo(enrichment("shop_timezone"))
    for stamp in stamps:
        assert stamp.utcoffset() == stamp.astimezone(zone).utcoffset()


def test_time_of_day_profile_has_quiet_nights_and_busy_evenings():
    events = [o.event for o in Simulator(seed=5, start=START).orders(4000)]
    hours = Counter(int(e["timestamp"][11:13]) for e in events)
    night = sum(hours[h] for h in (2, 3, 4, 5))
    evening = sum(hours[h] for h in (19, 20, 21, 22))
    assert evening > 8 * night
    span = datetime.fromisoformat(events[-1]["timestamp"]) - START
    assert timedelta(days=2) < span < timedelta(days=30)


def test_naive_start_is_read_in_the_shop_zone():
    event = next(Simulator(seed=1, start=datetime(2026, 7, 1, 12, 0)).orders(1)).event
    assert event["timestamp"].endswith("+02:00")  # Europe/Rome in summer


def test_same_seed_same_orders_in_any_chunking():
    whole = [format_line(o.event) for o in Simulator(seed=9, start=START).orders(300)]
    simulator = Simulator(seed=9, start=START)
    chunked = [format_line(o.event) for n in (1, 99, 200) for o in simulator.orders(n)]
    assert whole == chunked
    other = [format_line(o.event) for o in Simulator(seed=10, start=START).orders(300)]
    assert whole != other


def test_customers_come_back_with_stable_identity(orders):
    seen: dict[int, tuple[str, str]] = {}
    for order in orders:
        customer = order.event["customer"]
        if customer["id"] == 0:
            continue
        identity = (customer["first_name"], customer["email"])
        assert seen.setdefault(customer["id"], identity) == identity
    counts = Counter(o.event["customer"]["id"] for o in orders)
    assert max(c for cid, c in counts.items() if cid) >= 20  # loyal regulars
    assert 0.05 < counts[0] / len(orders) < 0.25  # guest checkouts
    # The pool is the shop's, not the run's: another seed meets the same people.
    pool = {c.id: (c.first_name, c.email) for c in customer_pool()}
    for order in Simulator(seed=77, start=START).orders(300):
        customer = order.event["customer"]
        if customer["id"]:
            assert pool[customer["id"]] == (customer["first_name"], customer["email"])


def test_both_populations_with_the_designed_shape(orders):
    by_behaviour = {b: [o.event for o in orders if o.behaviour == b] for b in (IMPULSIVE, REASONED)}
    assert all(len(v) > 0.3 * len(orders) for v in by_behaviour.values())
    impulsive, reasoned = by_behaviour[IMPULSIVE], by_behaviour[REASONED]

    def median(events, key):
        return statistics.median(e[key] for e in events)

    assert 60 <= median(impulsive, "duration_session") <= 180
    assert 600 <= median(reasoned, "duration_session") <= 2400
    assert 1 <= median(impulsive, "pages_viewed") <= 5
    assert 8 <= median(reasoned, "pages_viewed") <= 40
    assert median(impulsive, "total") < median(reasoned, "total")
    # Abandoned tabs: hours-long sessions in both populations, capped by the plugin's bound.
    for events in (impulsive, reasoned):
        assert any(e["duration_session"] > 3600 for e in events)
    assert max(o.event["duration_session"] for o in orders) <= 86400
    assert sum(o.abandoned_tab for o in orders) < 0.05 * len(orders)
    assert {o.event["payment_method"] for o in orders} == {"cod", "bacs"}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), start_id=st.integers(1, 10**9))
def test_any_seed_gives_valid_orders(seed, start_id):
    schema = order_schema()
    for order in Simulator(seed=seed, start=START, order_id_start=start_id).orders(40):
        jsonschema.validate(order.event, schema)


def test_format_line_is_the_plugins_bytes():
    event = {"name": "Crêpe / Wrap", "price": 20.0, "quote": 'Tee "Riviera"', "n": 3, "ok": True}
    line = format_line(event)
    assert (
        line == '{"name":"Crêpe / Wrap","price":20.0,"quote":"Tee \\"Riviera\\"","n":3,"ok":true}\n'
    )
    assert line.encode("utf-8").count(b"\n") == 1
    assert "Crêpe".encode() in line.encode("utf-8")


def test_append_orders_writes_lines_and_truth(tmp_path: Path):
    log, truth = tmp_path / "logs" / "orders.log", tmp_path / "truth.csv"
    simulator = Simulator(seed=4, start=START)
    first = list(simulator.orders(20))
    second = list(simulator.orders(5))
    assert append_orders(log, first, truth_path=truth) == 20
    assert append_orders(log, second, truth_path=truth) == 5
    data = log.read_bytes()
    assert data == b"".join(format_line(o.event).encode("utf-8") for o in first + second)
    with truth.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["order_id", "behaviour"]
    assert rows[1:] == [[str(o.order_id), o.behaviour] for o in first + second]


def test_cli_writes_orders(tmp_path: Path):
    log, truth = tmp_path / "orders.log", tmp_path / "truth.csv"
    args = ["orders", str(log), "-n", "12", "--seed", "8", "--truth", str(truth)]
    result = CliRunner().invoke(simulate_app, [*args, "--order-id-start", "50"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [e["order_id"] for e in events] == list(range(50, 62))
    assert len(truth.read_text().splitlines()) == 13


def test_cli_rate_paces_and_stamps_the_wall_clock(tmp_path: Path):
    log = tmp_path / "orders.log"
    before = datetime.now(ZoneInfo(enrichment("shop_timezone"))).replace(microsecond=0)
    result = CliRunner().invoke(simulate_app, ["orders", str(log), "-n", "3", "--rate", "50"])
    assert result.exit_code == 0, result.output
    for line in log.read_text(encoding="utf-8").splitlines():
        stamp = datetime.fromisoformat(json.loads(line)["timestamp"])
        assert before <= stamp <= before + timedelta(seconds=30)


def test_committed_training_data_is_what_the_generator_makes(tmp_path: Path):
    committed = ROOT / "training_data" / "training_data.csv"
    regenerated = tmp_path / "training_data.csv"
    write_training_csv(regenerated, generate_training_data(rows=4000, seed=2026))
    assert regenerated.read_bytes() == committed.read_bytes()
    with committed.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["duration_session", "pages_viewed", "behaviour"]
        behaviours = Counter(row["behaviour"] for row in reader)
    assert set(behaviours) == {IMPULSIVE, REASONED}


# -- the shop's recent past: no order lies in the future ----------------------------------------

SHOP_TZ = ZoneInfo(enrichment("shop_timezone"))


def _paid(order: SimulatedOrder) -> datetime:
    return datetime.fromisoformat(order.event["timestamp"])


@pytest.mark.parametrize(
    "end",
    [
        datetime(2026, 11, 24, 9, 0, tzinfo=SHOP_TZ),
        datetime(2026, 11, 24, 20, 30, tzinfo=SHOP_TZ),
        datetime(2026, 11, 24, 23, 50, tzinfo=SHOP_TZ),
        datetime(2026, 3, 29, 3, 10, tzinfo=SHOP_TZ),  # the night clocks go forward
    ],
)
def test_backfill_ends_at_its_end_and_reads_like_a_recent_past(end: datetime):
    orders = Simulator(seed=12, order_id_start=500).backfill(300, end=end)
    paid = [_paid(o) for o in orders]
    assert len(orders) == 300
    assert max(paid) <= end, "an order after the end of the history"
    assert paid == sorted(paid) and len(set(paid)) == 300, "oldest first, one per second"
    assert [o.order_id for o in orders] == list(range(500, 800)), "ids follow time"
    # A shop's last few hours to a day or two, not weeks; and it reaches up to the end.
    assert timedelta(hours=2) < end - min(paid) < timedelta(days=3)
    assert end - max(paid) < timedelta(hours=3)


def test_backfill_is_seeded_and_its_orders_are_valid(validator):
    end = datetime(2026, 11, 24, 12, 0, tzinfo=SHOP_TZ)
    first = Simulator(seed=3).backfill(200, end=end)
    again = Simulator(seed=3).backfill(200, end=end)
    assert [format_line(o.event) for o in first] == [format_line(o.event) for o in again]
    for order in first:
        validator.validate(order.event)


def test_backfill_defaults_to_ending_now():
    before = datetime.now(SHOP_TZ)
    orders = Simulator(seed=6).backfill(50)
    after = datetime.now(SHOP_TZ)
    assert max(_paid(o) for o in orders) <= after
    assert before - max(_paid(o) for o in orders) < timedelta(days=1)


def test_a_forward_stream_needs_a_start():
    with pytest.raises(ValueError, match="start"):
        next(Simulator(seed=1).orders(1))


def test_cli_writes_a_history_that_ends_now(tmp_path: Path):
    log = tmp_path / "orders.log"
    before = datetime.now(SHOP_TZ)
    result = CliRunner().invoke(simulate_app, ["orders", str(log), "-n", "40"])
    assert result.exit_code == 0, result.output
    lines = log.read_text(encoding="utf-8").splitlines()
    stamps = [datetime.fromisoformat(json.loads(line)["timestamp"]) for line in lines]
    assert len(stamps) == 40 and max(stamps) <= datetime.now(SHOP_TZ)
    assert before - max(stamps) < timedelta(days=1)


def test_cli_refuses_a_history_that_ends_in_the_future(tmp_path: Path):
    tomorrow = (datetime.now(SHOP_TZ) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    result = CliRunner().invoke(
        simulate_app, ["orders", str(tmp_path / "o.log"), "-n", "3", "--end", tomorrow]
    )
    assert result.exit_code != 0
    assert "future" in result.output
    assert not (tmp_path / "o.log").exists()
