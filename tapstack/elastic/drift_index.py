"""The drift index: what `tap model drift --record` measured, one document per feature and
window (tapstack.model_drift.documents), for the dashboard's drift panel."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from tapstack import contracts


class DriftIndexError(RuntimeError):
    """Elasticsearch refused drift documents for another reason than that they exist."""


def record(client: Elasticsearch, docs: list[tuple[str, dict]]) -> int:
    """Create the drift documents; those of a window already recorded stay as they were
    (create only, fixed ids). Returns how many were created."""
    actions = (
        {"_op_type": "create", "_index": contracts.index("drift"), "_id": i, "_source": d}
        for i, d in docs
    )
    created, errors = bulk(client, actions, raise_on_error=False, refresh="wait_for")
    refused = [e for e in errors if next(iter(e.values())).get("status") != 409]
    if refused:
        raise DriftIndexError(f"Elasticsearch refused drift documents: {refused[:3]}")
    return created
