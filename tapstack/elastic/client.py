"""One way to build the Elasticsearch client, from the contracts' endpoint and credentials."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from tapstack import contracts


def connect(url: str | None = None, request_timeout: float = 30.0) -> Elasticsearch:
    return Elasticsearch(
        url or contracts.elasticsearch_url(),
        basic_auth=contracts.elasticsearch_auth(),
        request_timeout=request_timeout,
    )
