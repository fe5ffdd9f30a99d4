"""Every CEO panel shows the right figure: simulated orders go through the real pipeline, then each
panel's query (built from tapstack/report/panels.py, the description the Kibana saved objects are
generated from) is run on Elasticsearch, restricted to this test's orders, and compared with the
figure computed here, independently, from the orders' log events.

And every field the saved objects name exists in the live index mapping with a fitting type.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tapstack import contracts, model_registry
from tapstack.cli import app
from tapstack.kibana import saved_objects
from tapstack.report import queries
from tapstack.report.panels import DASHBOARD
from tapstack.report.summary import print_summary
from tapstack.simulator import Lifecycle, Simulator, format_line, known_truth

pytestmark = [pytest.mark.engines, pytest.mark.spark]

N = 240
CENT = Decimal("0.01")
TZ = ZoneInfo(contracts.enrichment("shop_timezone"))


def _orders(pipeline) -> list:
    """N orders over four shop days: a night across the spring DST change, an empty day, a burst.

    Built like pipeline.simulate (fresh id block), with fixed clocks so days are deterministic.
    """
    first = pipeline.order_id_block()
    night = Simulator(seed=29, start=datetime(2026, 3, 28, 23, 0), order_id_start=first)
    later = Simulator(seed=30, start=datetime(2026, 3, 31, 12, 0), order_id_start=first + N - 20)
    return [*night.orders(N - 20), *later.orders(20)]


@pytest.fixture(scope="module")
def shop(pipeline, engines):
    orders = _orders(pipeline)
    pipeline.append(orders)
    ids = [o.order_id for o in orders]
    assert pipeline.wait_indexed(ids, timeout=180) == N
    expected_lines = sum(len(o.event["items"]) for o in orders)
    assert len(pipeline.wait_lines(ids, expected_lines)) == expected_lines
    assert pipeline.wait_events(ids, N) == N, "and each paid event in the ledger"
    docs = pipeline.orders_by_id(ids)
    key = engines.customer_key().encode()

    def customer(order) -> str:
        email = order.event["customer"]["email"].strip().lower().encode()
        return hmac.new(key, email, hashlib.sha256).hexdigest()

    return {
        "orders": orders,
        "ids": ids,
        "labels": {oid: docs[oid]["purchase_behaviour"] for oid in ids},
        "customer": customer,
    }


def panel(es, shop, key: str, selections=None) -> queries.PanelResult:
    """The panel's own query, restricted to this test's orders (other tests share the indices)."""
    restrict = [{"terms": {"order_id": shop["ids"]}}]
    return queries.run_panel(es, DASHBOARD.panel(key), selections, restrict)


def money(value: float) -> float:
    return round(value + 0.0, 2)


def local_day(order) -> date:
    return datetime.fromisoformat(order.event["timestamp"]).astimezone(TZ).date()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- headline figures --------------------------------------------------------------------------


def test_total_revenue_orders_and_average_order_value(es, shop):
    totals = [o.event["total"] for o in shop["orders"]]
    assert money(panel(es, shop, "total-revenue").value) == money(sum(totals))
    assert panel(es, shop, "orders").value == N
    assert panel(es, shop, "average-order-value").value == pytest.approx(sum(totals) / N, abs=1e-6)


def test_high_demand_orders(es, shop):
    above = contracts.enrichment("high_demand_above")
    flagged = sorted(
        (o for o in shop["orders"] if o.event["total"] > above),
        key=lambda o: o.event["timestamp"],
        reverse=True,
    )
    assert panel(es, shop, "high-demand-orders").value == len(flagged)
    alerts = panel(es, shop, "high-demand-alerts")
    assert alerts.hits == len(flagged)
    newest = DASHBOARD.panel("high-demand-alerts").size
    assert [r["order_id"] for r in alerts.rows] == [o.order_id for o in flagged[:newest]]
    assert all(r["total"] > above for r in alerts.rows)


def test_revenue_per_day_in_the_shop_time_zone(es, shop):
    expected: dict[date, float] = defaultdict(float)
    for order in shop["orders"]:
        expected[local_day(order)] += order.event["total"]
    first, last = min(expected), max(expected)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert len(days) == 4 and len(expected) == 3  # 28 (+01:00), 29 (DST: +02:00), 30 empty, 31
    rows = panel(es, shop, "revenue-per-day").rows
    assert [r["day"] for r in rows] == [d.isoformat() for d in days]
    assert [money(r["revenue"]) for r in rows] == [money(expected.get(d, 0.0)) for d in days]


# -- behaviour and segments --------------------------------------------------------------------


def test_behaviour_share_and_revenue_use_the_indexed_labels(es, shop):
    labels = shop["labels"]
    counts = Counter(labels.values())
    revenue: dict[str, float] = defaultdict(float)
    for order in shop["orders"]:
        revenue[labels[order.order_id]] += order.event["total"]
    share = panel(es, shop, "behaviour-share").rows
    assert {r["behaviour"]: r["orders"] for r in share} == dict(counts)
    assert set(counts) == {"Impulsive", "Reasoned"}
    by_revenue = panel(es, shop, "revenue-by-behaviour").rows
    assert {r["behaviour"]: money(r["revenue"]) for r in by_revenue} == {
        k: money(v) for k, v in revenue.items()
    }
    assert [r["revenue"] for r in by_revenue] == sorted(
        (r["revenue"] for r in by_revenue), reverse=True
    )


def test_spender_type_split(es, shop):
    above = contracts.enrichment("high_spender_above")
    expected = Counter(
        "High Spender" if o.event["total"] > above else "Standard Spender" for o in shop["orders"]
    )
    rows = panel(es, shop, "spender-type").rows
    assert {r["spender"]: r["orders"] for r in rows} == dict(expected)


# -- what sells --------------------------------------------------------------------------------


def _line_sums(shop, key: str, value: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for order in shop["orders"]:
        for item in order.event["items"]:
            sums[item[key]] += item[value]
    return sums


def _ranked(sums: dict[str, float], size: int) -> list[tuple[str, float]]:
    return sorted(((k, money(v)) for k, v in sums.items()), key=lambda kv: (-kv[1], kv[0]))[:size]


def test_top_products_by_units(es, shop):
    units = _line_sums(shop, "product_name", "quantity")
    rows = panel(es, shop, "top-products-units").rows
    assert [(r["product"], r["units"]) for r in rows] == _ranked(units, 10)


def test_top_products_by_revenue(es, shop):
    revenue = _line_sums(shop, "product_name", "total")
    rows = panel(es, shop, "top-products-revenue").rows
    assert [(r["product"], money(r["revenue"])) for r in rows] == _ranked(revenue, 10)


def test_revenue_by_category(es, shop):
    revenue = _line_sums(shop, "category", "total")
    rows = panel(es, shop, "revenue-by-category").rows
    assert [(r["category"], money(r["revenue"])) for r in rows] == _ranked(revenue, 10)


# -- who buys ----------------------------------------------------------------------------------


def test_top_customers_by_lifetime_value(es, shop):
    value: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    latest: dict[str, tuple[str, str]] = {}
    for order in shop["orders"]:
        cid = shop["customer"](order)
        value[cid] += order.event["total"]
        count[cid] += 1
        stamp = instant(order.event["timestamp"]).isoformat()
        if cid not in latest or stamp > latest[cid][0]:
            latest[cid] = (stamp, order.event["customer"]["first_name"])
    expected = _ranked(value, 10)
    rows = panel(es, shop, "top-customers").rows
    assert [(r["customer"], money(r["ltv"])) for r in rows] == expected
    for row in rows:
        assert row["orders"] == count[row["customer"]]
        assert row["name"] == latest[row["customer"]][1]
    assert all("@" not in r["customer"] and len(r["customer"]) == 64 for r in rows)


def test_recent_orders(es, shop):
    newest = sorted(shop["orders"], key=lambda o: instant(o.event["timestamp"]), reverse=True)
    above = contracts.enrichment("high_spender_above")
    size = DASHBOARD.panel("recent-orders").size
    rows = panel(es, shop, "recent-orders").rows
    assert len(rows) == size
    for row, order in zip(rows, newest[:size], strict=True):
        assert row["order_id"] == order.order_id
        assert instant(row["event_time"]) == instant(order.event["timestamp"])
        assert row["customer_first_name"] == order.event["customer"]["first_name"]
        assert row["total"] == order.event["total"]
        assert row["purchase_behaviour"] == shop["labels"][order.order_id]
        assert row["spender_type"] == (
            "High Spender" if order.event["total"] > above else "Standard Spender"
        )


def test_data_freshness_is_the_newest_order_and_its_enrichment(es, shop):
    newest = max(shop["orders"], key=lambda o: instant(o.event["timestamp"]))
    [row] = panel(es, shop, "data-freshness").rows
    assert instant(row["newest_paid"]) == instant(newest.event["timestamp"])
    enriched = instant(row["newest_enriched"])
    # Spark's own clock when it enriched that order: after the order, and no later than now.
    assert instant(newest.event["timestamp"]) <= enriched <= datetime.now(enriched.tzinfo)


def test_model_versions_show_the_model_that_labelled_the_orders(es, shop, pipeline):
    """The stack's model (its metadata file) labelled every order of this test."""
    version = model_registry.metadata(pipeline.stack.model_dir)["version"]
    rows = panel(es, shop, "model-versions").rows
    assert [(r["version"], r["orders"]) for r in rows] == [(version, N)]
    labelled = instant(rows[0]["last_labelled"])
    assert labelled <= datetime.now(labelled.tzinfo)


def test_label_confidence_counts_the_visits_near_the_boundary(es, shop, pipeline):
    """Each order's margin computed here, from its log event and the model's metadata (clips,
    scaler, centres): the panel counts those below [model] low_confidence_margin_below as low."""
    meta = model_registry.metadata(pipeline.stack.model_dir)
    below = contracts.settings()["model"]["low_confidence_margin_below"]
    mean, std = meta["scaler"]["mean"], meta["scaler"]["std"]
    clips = meta["transforms"]
    a, b = (centre["scaled"] for centre in meta["centres"])
    counts: Counter[str] = Counter()
    for order in shop["orders"]:
        seconds = min(max(order.event["duration_session"], 0), clips["duration_clip_seconds"])
        pages = min(max(order.event["pages_viewed"], 1), clips["pages_clip"])
        point = ((math.log1p(seconds) - mean[0]) / std[0], (math.log1p(pages) - mean[1]) / std[1])
        margin = abs(math.dist(point, a) - math.dist(point, b)) / math.dist(a, b)
        counts["low" if margin < below else "high"] += 1
    rows = panel(es, shop, "label-confidence").rows
    assert {r["confidence"]: r["orders"] for r in rows} == dict(counts)
    assert counts["high"] > counts["low"], "the simulated buyers fit the shipped model"


# -- the controls ------------------------------------------------------------------------------


def test_behaviour_control_filters_order_and_line_panels(es, shop):
    chosen = {"purchase_behaviour": ["Impulsive"]}
    impulsive = [o for o in shop["orders"] if shop["labels"][o.order_id] == "Impulsive"]
    assert panel(es, shop, "orders", chosen).value == len(impulsive)
    assert money(panel(es, shop, "total-revenue", chosen).value) == money(
        sum(o.event["total"] for o in impulsive)
    )
    units: dict[str, float] = defaultdict(float)
    for order in impulsive:
        for item in order.event["items"]:
            units[item["product_name"]] += item["quantity"]
    rows = panel(es, shop, "top-products-units", chosen).rows
    assert [(r["product"], r["units"]) for r in rows] == _ranked(units, 10)


def test_category_control_filters_orders_and_leaves_line_panels(es, shop):
    category = shop["orders"][0].event["items"][0]["category"]
    chosen = {"categories": [category]}
    having = [o for o in shop["orders"] if any(i["category"] == category for i in o.event["items"])]
    assert panel(es, shop, "orders", chosen).value == len(having)
    # Line documents carry no `categories`: like Kibana with ignoreFilterIfFieldNotInIndex,
    # the line panels are not filtered by that control.
    assert (
        panel(es, shop, "top-products-units", chosen).rows
        == panel(es, shop, "top-products-units").rows
    )


# -- the live mapping --------------------------------------------------------------------------


def test_every_saved_object_field_is_in_the_live_mapping(es, shop):
    named = saved_objects.named_fields(saved_objects.load())
    live = {}
    for index in {index for index, _, _ in named}:
        mapping = es.indices.get_mapping(index=index).body
        ((_, body),) = mapping.items()
        live[index] = body["mappings"]["properties"]
    for index, field, usage in named:
        assert field in live[index], f"{field} missing from the live {index} mapping"
        kind = live[index][field]["type"]
        assert kind in saved_objects.FIELD_TYPES[usage], f"{usage} on {index}.{field} ({kind})"


def test_summary_figures_come_from_the_same_panels(es, shop, life, pipeline):
    # Records of earlier tests may still be loading: compare once the counts stand still.
    deadline, before = time.monotonic() + 120, -1
    while (now := queries.order_count(es)) != before and time.monotonic() < deadline:
        before = now
        time.sleep(2)
    figures = queries.kpis(es)
    assert figures["orders"] == queries.order_count(es) >= N
    assert set(figures["behaviour"]) <= {"Impulsive", "Reasoned"}
    top = queries.top_products(es, size=5, by="revenue")
    assert len(top) == 5 and all(row["units"] > 0 for row in top)
    # `tap summary` (and the demo) print the same figures.
    model = str(pipeline.stack.model_dir)
    recorded = CliRunner().invoke(app, ["model", "drift", "--model", model, "--record"])
    assert recorded.exit_code == 0, recorded.output
    out = io.StringIO()
    printed = print_summary(es, Console(file=out, width=120))
    assert printed["orders"] == figures["orders"]
    assert printed["revenue"] == pytest.approx(figures["revenue"])
    assert printed["gross"] == pytest.approx(figures["gross"])
    assert printed["refunds"] == pytest.approx(figures["refunds"])
    for title in (
        "Gross revenue",
        "Refunds",
        "Net revenue",
        "Cancellations",
        "Top refunded products",
        "Orders by status",
        "High Demand orders",
        "Behavioural segmentation",
        "Spender type",
        "Top products by units",
        "Top customers by lifetime value",
        "Data freshness",
        "Order-id conflicts",
        "Behaviour model in use",
        "Model drift",
        "Label confidence",
    ):
        assert title in out.getvalue()


# -- net revenue: an order's life after checkout (contract v2) ---------------------------------

LIFE_ORDERS = 160
NO_EMAIL_EVERY = 9  # phone, admin and POS orders: no billing e-mail (every 9th; half guests)


@pytest.fixture(scope="module")
def life(pipeline):
    """LIFE_ORDERS orders and everything that followed them (refunds partial and full,
    amount-only refunds, bank transfers cancelled unpaid, failed payments), some without an
    e-mail, through the real pipeline, and the known truth added up from their log lines."""
    first = pipeline.order_id_block()
    simulator = Simulator(
        seed=41,
        start=datetime(2026, 4, 6, 9, 0),
        order_id_start=first,
        lifecycle=Lifecycle().compressed(timedelta(days=2)),
    )
    events = [*simulator.orders(LIFE_ORDERS), *simulator.flush()]
    for simulated in events:
        if (simulated.order_id - first) % NO_EMAIL_EVERY == 0:
            customer = simulated.event["customer"]
            customer["email"] = ""
            if simulated.order_id % 2:
                customer["id"] = 0
    pipeline.append(events)
    ids = sorted({e.order_id for e in events})
    assert pipeline.wait_events(ids, len(events)) == len(events), "every event in the ledger"
    latest = {e.order_id: e.event["event_id"] for e in events}  # events come in time order
    assert pipeline.wait_statuses(latest) == latest, "each order's status from its latest event"
    truth = known_truth(format_line(e.event) for e in events)
    kinds = Counter(e.event["event_type"] for e in events)
    assert kinds["refunded"] and kinds["cancelled"] and kinds["failed"], "a whole lifecycle"
    assert any(not e.event["refund"]["items"] for e in events if "refund" in e.event)
    return {"events": events, "ids": ids, "truth": truth}


def cents(value) -> Decimal:
    return Decimal(repr(value or 0.0)).quantize(Decimal("0.01"))


def test_gross_refunds_and_net_equal_the_log(es, life):
    truth = life["truth"]
    assert cents(panel(es, life, "gross-revenue").value) == truth.gross.quantize(CENT)
    assert cents(panel(es, life, "refunds").value) == -truth.refunds.quantize(CENT)
    assert cents(panel(es, life, "total-revenue").value) == truth.net.quantize(CENT)
    assert truth.refunds > 0 and truth.net < truth.gross
    assert panel(es, life, "orders").value == truth.paid, "an order counts once paid"
    assert panel(es, life, "cancellations").value == truth.cancelled


def test_net_revenue_per_day_counts_each_refund_on_its_own_day(es, life):
    by_day = life["truth"].by_day
    rows = panel(es, life, "revenue-per-day").rows
    assert {r["day"] for r in rows} >= set(by_day)
    for row in rows:
        expected = by_day[row["day"]].net if row["day"] in by_day else Decimal(0)
        assert cents(row["revenue"]) == expected.quantize(CENT), row["day"]


def test_net_revenue_by_category_and_product(es, life):
    truth = life["truth"]
    rows = panel(es, life, "revenue-by-category").rows
    assert {r["category"]: cents(r["revenue"]) for r in rows} == {
        category: money.net.quantize(CENT) for category, money in truth.by_category.items()
    }
    names = {
        item["product_id"]: item["product_name"]
        for e in life["events"]
        for item in e.event["items"]
    }
    net = {names[pid]: m.net.quantize(CENT) for pid, m in truth.by_product.items()}
    rows = panel(es, life, "top-products-revenue").rows
    ranked = sorted(net.items(), key=lambda kv: (-kv[1], kv[0]))[: len(rows)]
    assert [(r["product"], cents(r["revenue"])) for r in rows] == ranked


def test_net_units_and_top_refunded_products(es, life):
    units: Counter = Counter()
    refunds: Counter = Counter()
    for e in life["events"]:
        if e.event["event_type"] == "paid":
            units.update({i["product_name"]: i["quantity"] for i in e.event["items"]})
        elif e.event["event_type"] == "refunded":
            for line in e.event["refund"]["items"]:
                units[line["product_name"]] -= line["quantity"]
                refunds[line["product_name"]] += 1
    rows = panel(es, life, "top-products-units").rows
    assert [(r["product"], r["units"]) for r in rows] == sorted(
        units.items(), key=lambda kv: (-kv[1], kv[0])
    )[: len(rows)]
    rows = panel(es, life, "top-refunded-products").rows
    assert {r["product"]: r["refunds"] for r in rows} == dict(
        sorted(refunds.items(), key=lambda kv: (-kv[1], kv[0]))[: len(rows)]
    )


def test_orders_by_status_are_each_orders_latest(es, life):
    rows = panel(es, life, "orders-by-status").rows
    assert {r["status"]: r["orders"] for r in rows} == life["truth"].orders_by_status


def test_orders_without_an_e_mail_are_loaded_under_their_user_or_as_guests(es, life, pipeline):
    first = life["ids"][0]
    paid = [
        e
        for e in life["events"]
        if e.event["event_type"] == "paid" and (e.order_id - first) % NO_EMAIL_EVERY == 0
    ]
    docs = pipeline.orders_by_id([e.order_id for e in paid])
    assert len(docs) == len(paid) > 0
    for e in paid:
        has_user = e.event["customer"]["id"] > 0
        assert ("customer_id" in docs[e.order_id]) == has_user, e.order_id
