"""What `tap model drift --record` indexes, create only with fixed ids (recording again
changes nothing): the drift figures, one document per feature and window
(tapstack.model_drift.documents), and the model they were measured with, one document per
version, for the dashboard's model panels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from tapstack import contracts


class RecordError(RuntimeError):
    """Elasticsearch refused documents for another reason than that they exist."""


def model_document(metadata: dict[str, Any], recorded_at: datetime) -> tuple[str, dict]:
    """(id, document) of a model version, from its metadata file's figures."""
    centre = {c["behaviour"]: c for c in metadata["centres"]}
    return metadata["version"], {
        "model_version": metadata["version"],
        "trained_at": metadata["created"],
        "recorded_at": recorded_at.isoformat(),
        "training_rows": metadata["training_rows"],
        "silhouette": metadata["silhouette"],
        "boundary_seconds": metadata["boundary"]["duration_seconds"],
        "boundary_pages": metadata["boundary"]["pages_viewed"],
        "impulsive_seconds": centre["Impulsive"]["duration_seconds"],
        "impulsive_pages": centre["Impulsive"]["pages_viewed"],
        "reasoned_seconds": centre["Reasoned"]["duration_seconds"],
        "reasoned_pages": centre["Reasoned"]["pages_viewed"],
    }


def record(client: Elasticsearch, role: str, docs: list[tuple[str, dict]]) -> int:
    """Create the documents in the index of `role` (drift, models); return how many were new."""
    index = contracts.index(role)
    actions = ({"_op_type": "create", "_index": index, "_id": i, "_source": d} for i, d in docs)
    created, errors = bulk(client, actions, raise_on_error=False, refresh="wait_for")
    refused = [e for e in errors if next(iter(e.values())).get("status") != 409]
    if refused:
        raise RecordError(f"Elasticsearch refused documents for {index}: {refused[:3]}")
    return created
