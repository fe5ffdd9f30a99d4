"""The same records through the native loader and through the Logstash pipeline, both against
the real Elasticsearch: the same documents and the same dead letters, record by record.

The native side is the real Loader on real Kafka (tests/test_loader_delivery.py's scratch flow).
The Logstash side is logstash/pipeline/tap.conf run by tests/tools/logstash_config.py (its ruby
scripts by a real Ruby), with its http lookup and its bulk writes sent to the same Elasticsearch,
into indices of its own made from the same templates (Logstash itself has no build here)."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest

from tapstack.elastic import templates
from tapstack.loader import dead_letters
from tests.test_loader_delivery import make_flow  # noqa: F401  (fixture)
from tests.test_logstash_contract import (
    CONF,
    LIFECYCLE,
    RECORDS,
    SETTINGS,
    Logstash,
    _dashboard_record,
    _sample_item,
    lc,
    poison_corpus,
)


class RealElasticsearch:
    """The pipeline's two calls to Elasticsearch (the lookup, the bulk writes), made to a real
    one, with the pipeline's index names mapped to scratch ones."""

    def __init__(self, es, rename: dict[str, str]):
        self.es = es
        self.rename = rename

    def bulk(self, actions):
        operations = []
        for action, index, doc_id, doc, *versioning in actions:
            meta = {"_index": self.rename[index], "_id": doc_id}
            if versioning and versioning[1] is not None:  # the statuses' external versions
                meta |= {"version": int(versioning[0]), "version_type": versioning[1]}
            operations += [{action: meta}, doc]
        answer = self.es.bulk(operations=operations, filter_path="items.*.status")
        return [next(iter(item.values()))["status"] for item in answer["items"]]

    def http(self, verb, url, query, body, user, password):
        # The test's own client and credentials: the pipeline's user is compose's.
        index = re.fullmatch(r"https?://[^/]+/([^/]+)/_mget", url).group(1)
        answer = self.es.perform_request(
            verb,
            f"/{self.rename[index]}/_mget",
            params=query,
            body=body,
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        return answer.meta.status, {"content-type": "application/json"}, answer.body


@pytest.fixture
def logstash_on(es, tmp_path):
    """logstash_on() -> a Logstash run writing to scratch indices of the real Elasticsearch."""
    if not lc.ruby_available():
        pytest.skip("ruby is not installed (apt-get install ruby): the ruby filter cannot run")
    config = lc.parse_file(CONF)
    made = []

    def make() -> tuple[Logstash, dict[str, str]]:
        stamp = uuid.uuid4().hex[:10]
        roles = ("orders", "lines", "ledger", "statuses", "quality")
        rename = {SETTINGS["indices"][role]: f"paritytest{stamp}-{role}" for role in roles}
        for role in roles:
            body = templates.load_template(role)["template"]
            name = rename[SETTINGS["indices"][role]]
            es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])
        run = Logstash(config, tmp_path, elasticsearch=RealElasticsearch(es, rename))
        made.append((run, rename))
        return run, rename

    yield make
    for run, rename in made:
        run.close()
        es.options(ignore_status=404).indices.delete(index=",".join(rename.values()))


def _without_customer(record: dict) -> dict:
    return {name: value for name, value in record.items() if name != "customer_id"}


def _docs(es, index: str) -> dict[str, dict]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=10_000, query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_the_native_loader_and_logstash_give_the_same_outcome(make_flow, logstash_on, es):  # noqa: F811
    first = _dashboard_record(7001, [_sample_item(101, "Tee", "T-shirts", 2, 19.9)])
    reused = {
        **first,
        "total": 5.0,
        "order_fingerprint": "fp-reused",
        "items": first["items"] + [_sample_item(102, "Cap", "Hats", 1, 5.0)],
    }
    batch_one = [first, first, reused, *RECORDS, *LIFECYCLE]
    batch_two = [
        {**reused, "order_fingerprint": "fp-again"},
        first,
        _dashboard_record(7002, [_sample_item(103, "Scarf", "Accessories", 1, 9.0)]),
        # A guest's order without an e-mail has no customer id: absent (Spark's JSON leaves
        # nulls out) or null.
        _without_customer(_dashboard_record(7003, [_sample_item(104, "Belt", "Belts", 1, 15.0)])),
        {
            **_dashboard_record(7004, [_sample_item(105, "Sock", "Socks", 3, 4.0)]),
            "customer_id": None,
        },
    ]
    corpus = poison_corpus()
    values = (
        [json.dumps(r).encode() for r in batch_one]
        + [
            v.replace(b'"order_id": 1001', f'"order_id": {8000 + n}'.encode())
            for n, v in enumerate(corpus)
        ]
        + [json.dumps(r).encode() for r in batch_two]
    )
    keys = []
    for value in values:
        try:
            order_id = json.loads(value).get("order_id")
        except (ValueError, AttributeError):
            order_id = None
        keys.append(str(order_id).encode() if isinstance(order_id, int) else None)

    flow = make_flow()
    flow.names = dataclasses.replace(flow.names, quality=f"{flow.names.orders}-quality")
    body = templates.load_template("quality")["template"]
    es.indices.create(index=flow.names.quality, **body)
    flow.produce(values, keys)
    running = flow.start()
    flow.wait(flow.caught_up, "the native loader to commit everything", running)

    run, rename = logstash_on()
    run.send(values)

    for role in ("orders", "lines", "ledger", "statuses"):
        assert _docs(es, rename[SETTINGS["indices"][role]]) == _docs(es, flow.names.of(role)), role
    assert _docs(es, flow.names.ledger) and _docs(es, flow.names.statuses)
    assert len(_docs(es, flow.names.orders)) >= len(RECORDS) + 2
    guests = [d for d in _docs(es, flow.names.orders).values() if d["order_id"] in (7003, 7004)]
    assert len(guests) == 2 and all(d.get("customer_id") is None for d in guests)

    native = sorted((d["value"], d[dead_letters.REASON].decode()) for d in flow.dead_letters())
    logstash = sorted(
        (d.value.encode(), dict(d.headers)[dead_letters.REASON]) for d in run.dead_letters
    )
    assert logstash == native
    assert any("already loaded with different content" in reason for _, reason in native)
    assert run.dlq == []

    # Each conflict counted once on both paths, with the same document (where and when it was
    # read aside: the two read different topics at different times).
    def findings(index: str) -> dict[str, dict]:
        where = {"detected_at", "source_topic", "source_partition", "source_offset"}
        docs = _docs(es, index)
        return {i: {k: v for k, v in d.items() if k not in where} for i, d in docs.items()}

    quality = findings(flow.names.quality)
    es.options(ignore_status=404).indices.delete(index=flow.names.quality)
    assert findings(rename[SETTINGS["indices"]["quality"]]) == quality
    assert len(quality) == 2, "fp-reused and fp-again, each once"
