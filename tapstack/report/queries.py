"""The aggregations behind the CEO panels, run against the two TAP indices.

The Kibana saved objects show the same figures; tests hold both against figures computed
independently from the orders log. Only server-core aggregations (sum, avg, terms, ...).
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from tapstack import contracts


def kpis(es: Elasticsearch) -> dict[str, Any]:
    """Total revenue, order count, average order value and the behaviour split."""
    body = es.search(
        index=contracts.index("orders"),
        size=0,
        track_total_hits=True,
        aggs={
            "revenue": {"sum": {"field": "total"}},
            "orders": {"value_count": {"field": "order_id"}},
            "aov": {"avg": {"field": "total"}},
            "behaviour": {
                "terms": {"field": "purchase_behaviour", "size": 10},
                "aggs": {"revenue": {"sum": {"field": "total"}}},
            },
        },
    ).body
    aggs = body["aggregations"]
    return {
        "revenue": aggs["revenue"]["value"],
        "orders": int(aggs["orders"]["value"]),
        "average_order_value": aggs["aov"]["value"] or 0.0,
        "behaviour": {
            bucket["key"]: {"orders": bucket["doc_count"], "revenue": bucket["revenue"]["value"]}
            for bucket in aggs["behaviour"]["buckets"]
        },
    }


def top_products(es: Elasticsearch, size: int = 5, by: str = "units") -> list[dict[str, Any]]:
    """Best sellers from the line documents, by units sold or by revenue."""
    order_field = {"units": "units", "revenue": "revenue"}[by]
    body = es.search(
        index=contracts.index("lines"),
        size=0,
        aggs={
            "products": {
                "terms": {"field": "product_name", "size": size, "order": {order_field: "desc"}},
                "aggs": {
                    "units": {"sum": {"field": "quantity"}},
                    "revenue": {"sum": {"field": "line_total"}},
                },
            }
        },
    ).body
    return [
        {
            "product": bucket["key"],
            "units": int(bucket["units"]["value"]),
            "revenue": bucket["revenue"]["value"],
        }
        for bucket in body["aggregations"]["products"]["buckets"]
    ]


def order_count(es: Elasticsearch) -> int:
    return es.count(index=contracts.index("orders"))["count"]
