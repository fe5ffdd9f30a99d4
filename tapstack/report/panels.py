"""The CEO dashboard, described once.

Each ``Panel`` says what a CEO sees (title, chart), where it comes from (index role) and how it is
computed (metrics, an optional split, fixed filters). Two things are built from this one list:

* the Kibana saved objects (tapstack/kibana/saved_objects.py -> kibana/saved_objects/*.ndjson);
* the native queries behind `tap summary` and `tap report html` (tapstack/report/queries.py).

So the dashboard and the report cannot drift apart, and tests/test_dashboard_contract.py proves the
figures of every panel against figures computed independently from the orders log.

Only what the Elasticsearch server core runs: terms, date_histogram, sum, avg, document counts and
top_hits (Lens "last value"). Fields must exist in kibana/index-templates (tests hold them there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tapstack import contracts
from tapstack.loader.documents import CONFLICT_CHECK

MetricOp = Literal["count", "sum", "avg", "last_value"]
Chart = Literal["metric", "line", "bar", "bar_horizontal", "donut", "table", "records"]
Format = Literal["money", "integer", "text", "date", "datetime", "number"]


@dataclass(frozen=True)
class Metric:
    """A value column: a document count, a sum, an average or the latest value of a field."""

    key: str
    label: str
    op: MetricOp
    field: str | None = None
    sort_field: str | None = None  # last_value: latest by this date field
    format: Format = "number"


@dataclass(frozen=True)
class Split:
    """A bucket column: top terms of a field, or a calendar histogram of a date field."""

    key: str
    label: str
    op: Literal["terms", "date_histogram"]
    field: str
    size: int = 10
    order_by: str | None = None  # a metric key; None orders terms by document count
    interval: str = "1d"
    format: Format = "text"


@dataclass(frozen=True)
class Column:
    """A column of a records panel (a Kibana saved search)."""

    field: str
    label: str
    format: Format = "text"


@dataclass(frozen=True)
class Grid:
    """Place on Kibana's 48-column dashboard grid (the HTML report uses the same grid)."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Panel:
    key: str  # stable: saved-object ids, panel index and HTML ids derive from it
    title: str
    description: str
    role: Literal["orders", "lines", "ledger", "statuses", "quality", "drift", "models"]
    chart: Chart
    grid: Grid
    metrics: tuple[Metric, ...] = ()
    split: Split | None = None
    where: tuple[tuple[str, str], ...] = ()  # fixed (field, value) filters, all must hold
    columns: tuple[Column, ...] = ()  # records panels
    sort_field: str = "event_time"  # records panels: newest first
    size: int = 10  # records panels: how many rows

    @property
    def index(self) -> str:
        return contracts.index(self.role)

    @property
    def time_field(self) -> str:
        return TIME_FIELDS[self.role]

    def metric(self, key: str) -> Metric:
        return next(m for m in self.metrics if m.key == key)

    def fields(self) -> list[str]:
        """Every field this panel names (for the template checks)."""
        names = [name for name, _ in self.where]
        names += [m.field for m in self.metrics if m.field] + [
            m.sort_field for m in self.metrics if m.sort_field
        ]
        if self.split:
            names.append(self.split.field)
        if self.chart == "records":
            names += [c.field for c in self.columns] + [self.sort_field]
        return names


@dataclass(frozen=True)
class Control:
    """An options-list control of the dashboard (and a filter option of the HTML report)."""

    key: str
    title: str
    role: Literal["orders", "lines"]
    field: str


@dataclass(frozen=True)
class Dashboard:
    key: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    controls: tuple[Control, ...] = field(default_factory=tuple)
    time_from: str = "now-30d"
    time_to: str = "now"
    refresh_seconds: int = 10

    def panel(self, key: str) -> Panel:
        return next(p for p in self.panels if p.key == key)


# The date field each index role is filtered on by the dashboard's time range.
TIME_FIELDS = {
    "orders": "event_time",
    "lines": "event_time",
    "ledger": "event_time",
    "statuses": "event_time",
    "quality": "detected_at",
    "drift": "measured_at",
    "models": "recorded_at",
}

SHOP = contracts.settings()["shop"]["name"]
CURRENCY = contracts.settings()["shop"]["currency"]
HIGH_DEMAND = ("stock_alert", "High Demand")
# A different order under an id already loaded, as the loader (and Logstash: a test holds
# them together) records it in the data-quality index.
ORDER_ID_CONFLICT = ("check", CONFLICT_CHECK)


def _latest(sort_field: str, *columns: tuple[str, str, Format]) -> tuple[Metric, ...]:
    """A table row of the newest document by sort_field: each (field, label, format) as the
    field's last value, keyed by the field's name."""
    return tuple(
        Metric(name, label, "last_value", name, sort_field=sort_field, format=fmt)
        for name, label, fmt in columns
    )


# Money comes from the ledger, each movement on the day it happened (a refund on its own
# date, as WooCommerce Analytics counts it): net unless a panel says otherwise.
_REVENUE = Metric("revenue", f"Net revenue ({CURRENCY})", "sum", "amount", format="money")
_LINE_REVENUE = Metric("revenue", f"Net revenue ({CURRENCY})", "sum", "line_amount", format="money")
EVENTS = ("entry", "event")  # a ledger document of a whole event (its money movement)
LINES = ("entry", "line")  # a ledger document of a product line an event moves
PAID = ("event_type", "paid")
REFUNDED = ("event_type", "refunded")
CANCELLED = ("event_type", "cancelled")
_ORDERS = Metric("orders", "Orders", "count", format="integer")
_ORDER_COLUMNS = (
    Column("order_id", "Order"),
    Column("event_time", "Paid at", "datetime"),
    Column("customer_first_name", "Customer"),
    Column("total", f"Total ({CURRENCY})", "money"),
    Column("purchase_behaviour", "Behaviour"),
    Column("spender_type", "Spender type"),
)

PANELS: tuple[Panel, ...] = (
    # Row 1: the headline figures.
    Panel(
        key="total-revenue",
        title="Net revenue",
        description="Paid order totals less refunds.",
        role="ledger",
        chart="metric",
        grid=Grid(0, 0, 8, 5),
        metrics=(_REVENUE,),
        where=(EVENTS,),
    ),
    Panel(
        key="gross-revenue",
        title="Gross revenue",
        description="Paid order totals, refunds not taken off.",
        role="ledger",
        chart="metric",
        grid=Grid(8, 0, 8, 5),
        metrics=(Metric("gross", f"Gross revenue ({CURRENCY})", "sum", "amount", format="money"),),
        where=(EVENTS, PAID),
    ),
    Panel(
        key="refunds",
        title="Refunds",
        description="Money given back, on the day of each refund (a negative sum).",
        role="ledger",
        chart="metric",
        grid=Grid(16, 0, 8, 5),
        metrics=(Metric("refunds", f"Refunds ({CURRENCY})", "sum", "amount", format="money"),),
        where=(EVENTS, REFUNDED),
    ),
    Panel(
        key="orders",
        title="Orders",
        description="Paid orders.",
        role="orders",
        chart="metric",
        grid=Grid(24, 0, 8, 5),
        metrics=(_ORDERS,),
    ),
    Panel(
        key="average-order-value",
        title="Average order value",
        description="Average paid order total.",
        role="orders",
        chart="metric",
        grid=Grid(32, 0, 8, 5),
        metrics=(
            Metric("aov", f"Average order value ({CURRENCY})", "avg", "total", format="money"),
        ),
    ),
    Panel(
        key="high-demand-orders",
        title="High Demand orders",
        description="Orders flagged stock_alert = High Demand.",
        role="orders",
        chart="metric",
        grid=Grid(40, 0, 8, 5),
        metrics=(Metric("orders", "High Demand orders", "count", format="integer"),),
        where=(HIGH_DEMAND,),
    ),
    # Row 2: the trend and the behaviour story.
    Panel(
        key="revenue-per-day",
        title="Net revenue per day",
        description=(
            "Paid totals less refunds per calendar day in the shop's time zone, each on the "
            "day it happened."
        ),
        role="ledger",
        chart="line",
        grid=Grid(0, 5, 30, 12),
        metrics=(_REVENUE,),
        where=(EVENTS,),
        split=Split("day", "Day", "date_histogram", "event_time", format="date"),
    ),
    Panel(
        key="behaviour-share",
        title="Impulsive vs Reasoned buyers",
        description="Share of orders per purchase behaviour (the MLlib label).",
        role="orders",
        chart="donut",
        grid=Grid(30, 5, 18, 12),
        metrics=(_ORDERS,),
        split=Split("behaviour", "Behaviour", "terms", "purchase_behaviour", size=5),
    ),
    # Row 3: money by segment.
    Panel(
        key="revenue-by-behaviour",
        title="Net revenue by behaviour",
        description="Paid totals less refunds per purchase behaviour of the buyer's visit.",
        role="ledger",
        chart="bar",
        grid=Grid(0, 17, 16, 11),
        metrics=(_REVENUE,),
        where=(EVENTS,),
        split=Split(
            "behaviour", "Behaviour", "terms", "purchase_behaviour", size=5, order_by="revenue"
        ),
    ),
    Panel(
        key="spender-type",
        title="Spender type",
        description="Orders per spender type (High Spender above the threshold in settings).",
        role="orders",
        chart="donut",
        grid=Grid(16, 17, 16, 11),
        metrics=(_ORDERS,),
        split=Split("spender", "Spender type", "terms", "spender_type", size=5),
    ),
    Panel(
        key="revenue-by-category",
        title="Net revenue by category",
        description="Line totals less refunded lines per product category.",
        role="ledger",
        chart="bar_horizontal",
        grid=Grid(32, 17, 16, 11),
        metrics=(_LINE_REVENUE,),
        where=(LINES,),
        split=Split("category", "Category", "terms", "category", size=10, order_by="revenue"),
    ),
    # Row 4: what sells.
    Panel(
        key="top-products-units",
        title="Top products by units",
        description="Best sellers by units sold less units refunded.",
        role="ledger",
        chart="bar_horizontal",
        grid=Grid(0, 28, 24, 13),
        metrics=(Metric("units", "Net units sold", "sum", "quantity", format="integer"),),
        where=(LINES,),
        split=Split("product", "Product", "terms", "product_name", size=10, order_by="units"),
    ),
    Panel(
        key="top-products-revenue",
        title="Top products by revenue",
        description="Best sellers by line revenue less refunded lines.",
        role="ledger",
        chart="bar_horizontal",
        grid=Grid(24, 28, 24, 13),
        metrics=(_LINE_REVENUE,),
        where=(LINES,),
        split=Split("product", "Product", "terms", "product_name", size=10, order_by="revenue"),
    ),
    # Row 5: who buys, and what needs attention.
    Panel(
        key="top-customers",
        title="Top customers by lifetime value",
        description="Customers (pseudonymous id: keyed hash of the e-mail) by total spent.",
        role="orders",
        chart="table",
        grid=Grid(0, 41, 24, 13),
        metrics=(
            Metric(
                "name",
                "First name",
                "last_value",
                "customer_first_name",
                "event_time",
                format="text",
            ),
            Metric("ltv", f"Lifetime value ({CURRENCY})", "sum", "total", format="money"),
            Metric("orders", "Orders", "count", format="integer"),
        ),
        split=Split("customer", "Customer id", "terms", "customer_id", size=10, order_by="ltv"),
    ),
    Panel(
        key="high-demand-alerts",
        title="High Demand alerts",
        description="Latest orders flagged High Demand.",
        role="orders",
        chart="records",
        grid=Grid(24, 41, 24, 13),
        where=(HIGH_DEMAND,),
        columns=_ORDER_COLUMNS[:5],
        size=10,
    ),
    # Row 6: the order book.
    Panel(
        key="recent-orders",
        title="Recent orders",
        description="The latest paid orders with their behaviour label.",
        role="orders",
        chart="records",
        grid=Grid(0, 54, 48, 16),
        columns=_ORDER_COLUMNS,
        size=15,
    ),
    # Row 7: data you can trust.
    Panel(
        key="data-freshness",
        title="Data freshness",
        description=(
            "When the newest order loaded was paid, and when Spark enriched it: far behind "
            "the clock in opening hours means a stage is stalled."
        ),
        role="orders",
        chart="table",
        grid=Grid(12, 70, 18, 5),
        metrics=(
            Metric(
                "newest_paid",
                "Newest order paid at",
                "last_value",
                "event_time",
                sort_field="event_time",
                format="datetime",
            ),
            Metric(
                "newest_enriched",
                "Enriched at",
                "last_value",
                "processed_at",
                sort_field="event_time",
                format="datetime",
            ),
        ),
    ),
    Panel(
        key="model-versions",
        title="Behaviour model in use",
        description=(
            "Orders labelled by each model version and when it last labelled one: the version "
            "labelled most recently is the one in use."
        ),
        role="orders",
        chart="table",
        grid=Grid(30, 70, 18, 5),
        metrics=(
            _ORDERS,
            Metric(
                "last_labelled",
                "Last labelled at",
                "last_value",
                "processed_at",
                sort_field="processed_at",
                format="datetime",
            ),
        ),
        split=Split("version", "Model version", "terms", "model_version", size=5),
    ),
    Panel(
        key="order-id-conflicts",
        title="Order-id conflicts",
        description="Other orders under an id already loaded (dead-lettered). Should be 0.",
        role="quality",
        chart="metric",
        grid=Grid(0, 70, 12, 5),
        metrics=(Metric("conflicts", "Order-id conflicts", "count", format="integer"),),
        where=(ORDER_ID_CONFLICT,),
    ),
    # Row 8: the behaviour model.
    Panel(
        key="model-drift",
        title="Model drift",
        description=(
            "How far recent orders' visit features have moved from the model's training "
            "data, as last measured (tap model drift --record): retrain above the threshold."
        ),
        role="drift",
        chart="table",
        grid=Grid(0, 75, 48, 6),
        metrics=_latest(
            "measured_at",
            ("psi", "PSI", "number"),
            ("threshold", "Threshold", "number"),
            ("verdict", "Verdict", "text"),
            ("orders", "Orders", "integer"),
            ("model_version", "Model version", "text"),
            ("measured_at", "Measured at", "datetime"),
        ),
        split=Split("feature", "Feature", "terms", "feature", size=5),
    ),
    Panel(
        key="behaviour-models",
        title="Behaviour models",
        description=(
            "Each model version measured with: when and on how many orders it was trained, "
            "its centres and boundary in seconds and pages, and its silhouette."
        ),
        role="models",
        chart="table",
        grid=Grid(0, 81, 48, 6),
        metrics=_latest(
            "recorded_at",
            ("trained_at", "Trained at", "datetime"),
            ("training_rows", "Orders", "integer"),
            ("impulsive_seconds", "Impulsive centre (s)", "number"),
            ("impulsive_pages", "Impulsive pages", "number"),
            ("reasoned_seconds", "Reasoned centre (s)", "number"),
            ("reasoned_pages", "Reasoned pages", "number"),
            ("boundary_seconds", "Boundary (s)", "number"),
            ("boundary_pages", "Boundary pages", "integer"),
            ("silhouette", "Silhouette", "number"),
        ),
        split=Split("version", "Model version", "terms", "model_version", size=5),
    ),
    Panel(
        key="label-confidence",
        title="Label confidence",
        description=(
            "Orders whose visit lies near the boundary between the two clusters (a margin "
            "below [model] low_confidence_margin_below) carry a low-confidence label: a "
            "growing share says the visitors no longer fit the model."
        ),
        role="orders",
        chart="donut",
        grid=Grid(0, 87, 18, 10),
        metrics=(_ORDERS,),
        split=Split("confidence", "Confidence", "terms", "label_confidence", size=2),
    ),
    # Row 9: what comes back.
    Panel(
        key="orders-by-status",
        title="Orders by status",
        description="Each order's current WooCommerce status, set by its latest event.",
        role="statuses",
        chart="donut",
        grid=Grid(18, 87, 15, 10),
        metrics=(_ORDERS,),
        split=Split("status", "Status", "terms", "order_status", size=10),
    ),
    Panel(
        key="top-refunded-products",
        title="Top refunded products",
        description="Products refunded most often, with the units and the money given back.",
        role="ledger",
        chart="bar_horizontal",
        grid=Grid(0, 97, 33, 12),
        metrics=(
            Metric("refunds", "Refunds", "count", format="integer"),
            Metric("refunded_units", "Units refunded", "sum", "quantity", format="integer"),
            Metric("refunded", f"Refunded ({CURRENCY})", "sum", "line_amount", format="money"),
        ),
        split=Split("product", "Product", "terms", "product_name", size=10, order_by="refunds"),
        where=(LINES, REFUNDED),
    ),
    Panel(
        key="cancellations",
        title="Cancellations",
        description="Orders cancelled, paid or not (a bank transfer never paid included).",
        role="ledger",
        chart="metric",
        grid=Grid(33, 87, 15, 5),
        metrics=(Metric("cancellations", "Cancellations", "count", format="integer"),),
        where=(EVENTS, CANCELLED),
    ),
)

CONTROLS: tuple[Control, ...] = (
    Control("behaviour", "Behaviour", "orders", "purchase_behaviour"),
    Control("category", "Category", "orders", "categories"),
)

DASHBOARD = Dashboard(
    key="ceo",
    title=f"[{SHOP}] CEO view",
    description=(
        f"{SHOP} at a glance: revenue, orders, best sellers, top customers and the behaviour "
        "story (Impulsive vs Reasoned buyers, labelled by the MLlib model)."
    ),
    panels=PANELS,
    controls=CONTROLS,
)
