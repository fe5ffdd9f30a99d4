"""Security on the native stack, proven against the real Elasticsearch: the users and roles of
contracts/security.toml (the same as compose's), each allowed what its stage needs and refused
the rest; and each pipeline process holds only its own stage's secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch

from tapstack import contracts
from tapstack.elastic import security
from tapstack.elastic.client import connect
from tapstack.native import processes

pytestmark = pytest.mark.engines

ORDERS, LINES = contracts.index("orders"), contracts.index("lines")
PROBE_ID = "security-probe"


@pytest.fixture(scope="module")
def as_role(engines):
    clients = {role: connect(role=role) for role in ("setup", "writer", "viewer", "model")}
    yield clients
    for client in clients.values():
        client.close()


def test_every_contract_user_is_known_with_its_roles(as_role):
    for role, client in as_role.items():
        me = client.security.authenticate()
        assert me["username"] == contracts.es_user(role)
        assert sorted(me["roles"]) == sorted(security.users()[me["username"]])


def test_no_password_no_access(engines):
    bare = Elasticsearch(contracts.elasticsearch_url())
    with pytest.raises(AuthenticationException):
        bare.search(index=ORDERS, size=0)
    wrong = Elasticsearch(contracts.elasticsearch_url(), basic_auth=("ceo", "not-the-password"))
    with pytest.raises(AuthenticationException):
        wrong.search(index=ORDERS, size=0)


def test_the_viewer_reads_and_changes_nothing(as_role, es):
    viewer = as_role["viewer"]
    assert viewer.count(index=ORDERS)["count"] >= 0
    with pytest.raises(AuthorizationException):
        viewer.index(index=ORDERS, id=PROBE_ID, document={"order_id": 1})
    with pytest.raises(AuthorizationException):
        viewer.indices.delete(index=LINES)
    assert es.indices.exists(index=LINES)


def test_the_writer_creates_documents_and_nothing_else(as_role, es):
    writer = as_role["writer"]
    writer.create(index=ORDERS, id=PROBE_ID, document={"order_id": 0}, refresh=True)
    try:
        assert writer.get(index=ORDERS, id=PROBE_ID)["found"]  # read back: replay or reuse?
        with pytest.raises(AuthorizationException):
            writer.delete(index=ORDERS, id=PROBE_ID)
        with pytest.raises(AuthorizationException):
            writer.indices.delete(index=ORDERS)
        with pytest.raises(AuthorizationException):
            writer.index(index="not-a-tap-index", document={"x": 1})
        with pytest.raises(AuthorizationException):
            writer.indices.put_index_template(name="tap-probe", index_patterns=["probe-*"])
    finally:
        es.delete(index=ORDERS, id=PROBE_ID, refresh=True)
    assert es.indices.exists(index=ORDERS)


def test_setup_manages_templates_but_writes_no_documents(as_role, es):
    setup = as_role["setup"]
    setup.indices.put_index_template(name="tap-probe", index_patterns=["tap-probe-*"])
    setup.indices.delete_index_template(name="tap-probe")
    with pytest.raises(AuthorizationException):
        setup.index(index=ORDERS, id=PROBE_ID, document={"order_id": 0})
    with pytest.raises(AuthorizationException):
        setup.search(index="not-a-tap-index")


def test_the_drift_recorder_reads_orders_and_creates_drift_and_model_documents_only(as_role, es):
    model = as_role["model"]
    drift = contracts.index("drift")
    assert model.count(index=ORDERS)["count"] >= 0
    model.create(index=drift, id=PROBE_ID, document={"feature": "probe"}, refresh=True)
    try:
        with pytest.raises(AuthorizationException):
            model.index(index=drift, id=PROBE_ID, document={"feature": "changed"})
        with pytest.raises(AuthorizationException):
            model.delete(index=drift, id=PROBE_ID)
        with pytest.raises(AuthorizationException):
            model.create(index=ORDERS, id=PROBE_ID, document={"order_id": 0})
        with pytest.raises(AuthorizationException):
            model.search(index=LINES)
        model.create(index=contracts.index("models"), id=PROBE_ID, document={}, refresh=True)
        es.delete(index=contracts.index("models"), id=PROBE_ID, refresh=True)
    finally:
        es.delete(index=drift, id=PROBE_ID, refresh=True)


def _environ(run_dir: Path, name: str) -> dict[str, str]:
    managed = processes.find(run_dir, name)
    assert managed is not None, f"{name} is not running"
    raw = Path(f"/proc/{managed.pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_each_pipeline_process_holds_only_its_own_secrets(pipeline):
    run_dir = pipeline.stack.run_dir
    held = {
        name: {k for k in _environ(run_dir, name) if k in SECRET_VARIABLES}
        for name in ("tailer", "process_orders", "behaviour", "loader", "model_drift")
    }
    kafka = {"TAP_KAFKA_USER", "TAP_KAFKA_PASSWORD"}  # each its own user (test_kafka_security)
    assert held == {
        "tailer": kafka,
        "process_orders": {"TAP_CUSTOMER_KEY", *kafka},
        "behaviour": kafka,
        "loader": {"TAP_ES_USER", "TAP_ES_PASSWORD", *kafka},
        "model_drift": {"TAP_ES_USER", "TAP_ES_PASSWORD"},
    }
    assert _environ(run_dir, "loader")["TAP_ES_USER"] == contracts.es_user("writer")
    assert _environ(run_dir, "model_drift")["TAP_ES_USER"] == contracts.es_user("model")
    assert (
        _environ(run_dir, "tailer")["TAP_KAFKA_USER"]
        == contracts.security()["kafka"]["users"]["collector"]
    )


SECRET_VARIABLES = {
    "TAP_CUSTOMER_KEY",
    "TAP_ES_USER",
    "TAP_ES_PASSWORD",
    "TAP_SECRETS_DIR",
    "TAP_KAFKA_USER",
    "TAP_KAFKA_PASSWORD",
}
