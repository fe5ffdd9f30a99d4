"""One way to build the Elasticsearch client, from the contracts' endpoint and credentials."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from tapstack import contracts, credentials


class OrjsonNdjsonSerializer(NdjsonSerializer, OrjsonSerializer):
    """Bulk bodies (NDJSON) encoded with orjson: the loader's hottest path is this encoding."""


SERIALIZERS = {
    OrjsonSerializer.mimetype: OrjsonSerializer(),
    OrjsonNdjsonSerializer.mimetype: OrjsonNdjsonSerializer(),
}


def auth_for(role: str | None = None) -> tuple[str, str] | None:
    """Basic auth: the process's own user from the environment (compose, native pipeline
    processes), else the native stack's stored password of `role` (default: admin)."""
    from_env = contracts.elasticsearch_auth()
    if from_env and (role is None or from_env[0] == contracts.es_user(role)):
        return from_env  # the process's own user (compose, a native pipeline process)
    user = contracts.es_user(role or "admin")
    password = credentials.read("elasticsearch", user)
    if password is None:
        return from_env
    return user, password


def connect(
    url: str | None = None, request_timeout: float = 30.0, role: str | None = None
) -> Elasticsearch:
    """A client as `role` (admin, setup, writer, viewer); by default as the process's own user."""
    return Elasticsearch(
        url or contracts.elasticsearch_url(),
        basic_auth=auth_for(role),
        request_timeout=request_timeout,
        serializers=SERIALIZERS,
    )
