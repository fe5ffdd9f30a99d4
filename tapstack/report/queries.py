"""The native queries behind the CEO panels, built from the panel descriptions (panels.py).

Kibana builds its requests from the saved objects generated from the same descriptions; the
requests here are what Lens asks of Elasticsearch for those panels: a bool filter (the panel's
fixed filters plus the dashboard's control selections), terms / date_histogram buckets, and sum,
avg, document counts or top_hits (Lens "last value") inside. Server core only.

Control selections follow Kibana's courier:ignoreFilterIfFieldNotInIndex (which `tap kibana
import` turns on): a selection on a field the panel's index does not map is skipped for that panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from tapstack import contracts
from tapstack.elastic.templates import mapping_properties
from tapstack.report.panels import DASHBOARD, Dashboard, Metric, Panel

# field -> selected values, as the dashboard's options-list controls produce them.
Selections = Mapping[str, Sequence[str]]


@dataclass
class PanelResult:
    panel: Panel
    hits: int  # documents matching the panel's filters
    rows: list[dict[str, Any]]  # one per bucket (or record); keys: split key + metric keys

    @property
    def value(self) -> Any:
        """The figure of a metric panel."""
        return self.rows[0][self.panel.metrics[0].key] if self.rows else None


def filters(
    panel: Panel, selections: Selections | None = None, extra: Sequence[dict] = ()
) -> list[dict]:
    """The bool filter clauses of a panel: fixed filters, control selections, extra clauses."""
    mapped = mapping_properties(panel.role)
    clauses: list[dict] = [{"term": {name: value}} for name, value in panel.where]
    for name, values in (selections or {}).items():
        if values and name in mapped:
            clauses.append({"terms": {name: list(values)}})
    clauses.extend(extra)
    return clauses


def _metric_agg(metric: Metric) -> dict | None:
    if metric.op == "count":
        return None  # the bucket's (or the search's) document count
    if metric.op == "sum":
        return {"sum": {"field": metric.field}}
    if metric.op == "avg":
        return {"avg": {"field": metric.field}}
    if metric.op == "last_value":
        return {
            "top_hits": {
                "size": 1,
                "sort": [{metric.sort_field: {"order": "desc"}}],
                "_source": {"includes": [metric.field]},
            }
        }
    raise ValueError(f"unknown metric op {metric.op!r}")


def _metric_aggs(panel: Panel) -> dict[str, dict]:
    return {m.key: agg for m in panel.metrics if (agg := _metric_agg(m)) is not None}


def _split_agg(panel: Panel) -> dict:
    split = panel.split
    assert split is not None
    if split.op == "date_histogram":
        agg: dict[str, Any] = {
            "date_histogram": {
                "field": split.field,
                "calendar_interval": split.interval,
                "time_zone": contracts.enrichment("shop_timezone"),
                "format": "yyyy-MM-dd",
                "min_doc_count": 0,
            }
        }
    else:
        by = panel.metric(split.order_by) if split.order_by else None
        primary = {"_count": "desc"} if by is None or by.op == "count" else {by.key: "desc"}
        agg = {
            "terms": {
                "field": split.field,
                "size": split.size,
                "order": [primary, {"_key": "asc"}],
            }
        }
    sub = _metric_aggs(panel)
    if sub:
        agg["aggs"] = sub
    return agg


def search_request(
    panel: Panel, selections: Selections | None = None, extra: Sequence[dict] = ()
) -> dict[str, Any]:
    """Keyword arguments for Elasticsearch.search that compute the panel."""
    clauses = filters(panel, selections, extra)
    request: dict[str, Any] = {
        "index": panel.index,
        "query": {"bool": {"filter": clauses}} if clauses else {"match_all": {}},
        "track_total_hits": True,
    }
    if panel.chart == "records":
        request["size"] = panel.size
        request["sort"] = [{panel.sort_field: {"order": "desc"}}, {"order_id": {"order": "desc"}}]
        request["_source"] = {"includes": [c.field for c in panel.columns]}
        return request
    request["size"] = 0
    if panel.split is not None:
        request["aggs"] = {panel.split.key: _split_agg(panel)}
    else:
        aggs = _metric_aggs(panel)
        if aggs:
            request["aggs"] = aggs
    return request


def _metric_value(metric: Metric, aggs: Mapping[str, Any], doc_count: int) -> Any:
    if metric.op == "count":
        return doc_count
    if metric.op == "last_value":
        hits = aggs[metric.key]["hits"]["hits"]
        return hits[0]["_source"].get(metric.field) if hits else None
    value = aggs[metric.key]["value"]
    if metric.op == "sum" and value is None:
        return 0.0
    return value


def parse_response(panel: Panel, body: Mapping[str, Any]) -> PanelResult:
    hits = int(body["hits"]["total"]["value"])
    if panel.chart == "records":
        rows = [
            {c.field: hit["_source"].get(c.field) for c in panel.columns}
            for hit in body["hits"]["hits"]
        ]
        return PanelResult(panel, hits, rows)
    aggs = body.get("aggregations", {})
    if panel.split is None:
        row = {m.key: _metric_value(m, aggs, hits) for m in panel.metrics}
        return PanelResult(panel, hits, [row])
    rows = []
    for bucket in aggs[panel.split.key]["buckets"]:
        key = bucket.get("key_as_string", bucket["key"])
        row = {panel.split.key: key}
        row.update({m.key: _metric_value(m, bucket, bucket["doc_count"]) for m in panel.metrics})
        rows.append(row)
    return PanelResult(panel, hits, rows)


def run_panel(
    es: Elasticsearch,
    panel: Panel,
    selections: Selections | None = None,
    extra: Sequence[dict] = (),
) -> PanelResult:
    """Run one panel's query and return its rows."""
    return parse_response(panel, es.search(**search_request(panel, selections, extra)).body)


def run_dashboard(
    es: Elasticsearch,
    dashboard: Dashboard = DASHBOARD,
    selections: Selections | None = None,
    extra: Sequence[dict] = (),
) -> dict[str, PanelResult]:
    """Every panel of the dashboard, by panel key."""
    return {p.key: run_panel(es, p, selections, extra) for p in dashboard.panels}


# -- the figures the terminal summary and the demo use -----------------------------------------


def kpis(es: Elasticsearch, results: Mapping[str, PanelResult] | None = None) -> dict[str, Any]:
    """Net, gross and refunded revenue, order count, average order value and the behaviour
    split."""
    results = results or {
        key: run_panel(es, DASHBOARD.panel(key))
        for key in (
            "total-revenue",
            "gross-revenue",
            "refunds",
            "cancellations",
            "orders",
            "average-order-value",
            "behaviour-share",
            "revenue-by-behaviour",
        )
    }
    revenue_by = {row["behaviour"]: row["revenue"] for row in results["revenue-by-behaviour"].rows}
    return {
        "revenue": results["total-revenue"].value or 0.0,  # net
        "gross": results["gross-revenue"].value or 0.0,
        "refunds": results["refunds"].value or 0.0,  # negative: money given back
        "cancellations": int(results["cancellations"].value or 0),
        "orders": int(results["orders"].value),
        "average_order_value": results["average-order-value"].value or 0.0,
        "behaviour": {
            row["behaviour"]: {"orders": row["orders"], "revenue": revenue_by.get(row["behaviour"])}
            for row in results["behaviour-share"].rows
        },
    }


def top_products(es: Elasticsearch, size: int = 5, by: str = "units") -> list[dict[str, Any]]:
    """Best sellers from the line documents, by units sold or by revenue (both figures)."""
    panel = DASHBOARD.panel({"units": "top-products-units", "revenue": "top-products-revenue"}[by])
    ranked = run_panel(es, panel).rows[:size]
    other = DASHBOARD.panel("top-products-revenue" if by == "units" else "top-products-units")
    names = [row["product"] for row in ranked]
    others = {
        row["product"]: row
        for row in run_panel(es, other, extra=[{"terms": {"product_name": names}}]).rows
    }
    products = []
    for row in ranked:
        both = {**others.get(row["product"], {}), **row}
        products.append(
            {
                "product": row["product"],
                "units": int(both.get("units") or 0),
                "revenue": both.get("revenue") or 0.0,
            }
        )
    return products


def order_count(es: Elasticsearch) -> int:
    return es.count(index=contracts.index("orders"))["count"]


def event_count(es: Elasticsearch) -> int:
    """Events of orders' lives loaded: one ledger document of each (entry "event")."""
    query = {"term": {"entry": "event"}}
    return es.count(index=contracts.index("ledger"), query=query)["count"]
