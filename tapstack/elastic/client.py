"""One way to build the Elasticsearch client, from the contracts' endpoint and credentials."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from tapstack import contracts


class OrjsonNdjsonSerializer(NdjsonSerializer, OrjsonSerializer):
    """Bulk bodies (NDJSON) encoded with orjson: the loader's hottest path is this encoding."""


SERIALIZERS = {
    OrjsonSerializer.mimetype: OrjsonSerializer(),
    OrjsonNdjsonSerializer.mimetype: OrjsonNdjsonSerializer(),
}


def connect(url: str | None = None, request_timeout: float = 30.0) -> Elasticsearch:
    return Elasticsearch(
        url or contracts.elasticsearch_url(),
        basic_auth=contracts.elasticsearch_auth(),
        request_timeout=request_timeout,
        serializers=SERIALIZERS,
    )
