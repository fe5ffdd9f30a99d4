"""The shop's own order history as training data for the behaviour model: the visit features
of the orders placed in a window, read from Elasticsearch with the read-only viewer user."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from tapstack import contracts

FEATURES = ("duration_session", "pages_viewed")
_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class HistoryError(RuntimeError):
    """The window cannot be read, or holds too few orders to learn from."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def describe(self) -> str:
        return f"{self.since.isoformat()} .. {self.until.isoformat()}"


def window(since: str, until: str | None, now: datetime) -> Window:
    """since: "30d", "12h", "90m" before until, or an ISO date(-time); until: ISO, default now.
    Naive date-times are UTC."""
    end = _instant(until) if until else now
    span = _relative(since)
    start = end - span if span is not None else _instant(since)
    if start >= end:
        raise HistoryError(f"the window is empty: {start.isoformat()} is not before {end}")
    return Window(start, end)


def duration(text: str) -> timedelta:
    """An interval like 1h, 30m or 7d."""
    span = _relative(text)
    if not span:
        raise HistoryError(f"{text!r} is not an interval like 1h, 30m or 7d")
    return span


def _relative(text: str) -> timedelta | None:
    """Text like 30d, 12h or 90m as a timedelta; None for anything else."""
    match = _RELATIVE.match(text.strip())
    return timedelta(**{_UNITS[match[2]]: int(match[1])}) if match else None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise HistoryError(f"{text!r} is neither an ISO date-time nor like 30d, 12h") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_features(
    client: Elasticsearch, span: Window, out: Path, *, minimum: int, index: str | None = None
) -> int:
    """Write the window's orders' features to a CSV (duration_session, pages_viewed); return
    how many. Refuses, writing nothing, below `minimum` orders."""
    query = {
        "bool": {
            "filter": [
                {
                    "range": {
                        "event_time": {"gte": span.since.isoformat(), "lt": span.until.isoformat()}
                    }
                },
                *({"exists": {"field": name}} for name in FEATURES),
            ]
        }
    }
    name = index or contracts.index("orders")
    found = client.count(index=name, query=query)["count"]
    if found < minimum:
        raise HistoryError(
            f"{found} order(s) in {name} between {span.describe()}; training needs at least "
            f"{minimum} (a longer --since, or [model] min_training_orders in settings.toml)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FEATURES)
        for hit in scan(
            client, index=name, query={"query": query}, _source=list(FEATURES), size=5000
        ):
            writer.writerow([hit["_source"][f] for f in FEATURES])
            written += 1
    return written


def bin_counts(
    client: Elasticsearch, span: Window, edges: dict[str, list[float]], index: str | None = None
) -> dict[str, list[int]]:
    """Per feature, how many of the window's orders fall in each bin of its edges (the bins
    of tapstack.model_drift: lower bound inclusive), counted by Elasticsearch."""

    def ranges(cuts: list[float]) -> list[dict[str, float]]:
        bounds = [None, *cuts, None]
        return [
            {k: v for k, v in (("from", lo), ("to", hi)) if v is not None}
            for lo, hi in zip(bounds, bounds[1:], strict=False)
        ]

    query = {"range": {"event_time": {"gte": span.since.isoformat(), "lt": span.until.isoformat()}}}
    aggs = {f: {"range": {"field": f, "ranges": ranges(cuts)}} for f, cuts in edges.items()}
    answer = client.search(index=index or contracts.index("orders"), size=0, query=query, aggs=aggs)
    return {f: [b["doc_count"] for b in answer["aggregations"][f]["buckets"]] for f in edges}
