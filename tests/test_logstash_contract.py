"""The Logstash pipeline, held against tapstack/loader/documents.py, the templates and settings.

logstash/pipeline/tap.conf is parsed with a grammar of the documented Logstash configuration
language (tests/tools/logstash_config.py), then checked setting by setting and, end to end,
by pushing Topic_Dashboard records through its filters and outputs and comparing what
Elasticsearch would receive with documents.py's order and line documents. Expected values are
derived from documents.py, the order schema and the index templates wherever possible.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from lark.exceptions import LarkError

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import compose_model as cm  # noqa: E402

from tapstack.loader import documents, es_loader  # noqa: E402

lc = cm.load_module(cm.ROOT / "tests" / "tools" / "logstash_config.py", "tap_logstash_config")

PIPELINE_DIR = cm.ROOT / "logstash" / "pipeline"
CONF = PIPELINE_DIR / "tap.conf"
SETTINGS = cm.settings()
TEMPLATES = {
    role: json.loads((cm.ROOT / "kibana" / "index-templates" / f"{role}.json").read_text("utf-8"))
    for role in ("orders", "lines")
}
ORDER_SCHEMA = json.loads((cm.ROOT / "contracts" / "order.schema.json").read_text("utf-8"))
ENV = {"TAP_LOGSTASH_PASSWORD": "secret"}


@pytest.fixture(scope="module")
def config():
    return lc.parse_file(CONF)


def _properties(role: str) -> set[str]:
    return set(TEMPLATES[role]["template"]["mappings"]["properties"])


# ── the grammar ──────────────────────────────────────────────────────────────────────────

LANGUAGE_SAMPLE = r"""
# every construct of the documented config language
input {
  kafka {
    topics => ["a", 'b']
    consumer_threads => 2
    ratio => -0.5
    codec => json { charset => "UTF-8" }
    add_field => { "[nested][field]" => "%{value}" 'single' => 1 plain => [] }
    enabled => true
  }
}
filter {
  if [type] == "x" and [count] > 3 or ![missing] {
    mutate { add_tag => ["a"] }
  } else if [message] =~ /^err(or)?\// or [message] !~ "ok" {
    drop { }
  } else if "tag" in [tags] xor [a][b] not in ["x", "y"] {
    ruby { code => "event.set('x', 1) # a comment inside a string" }
  } else if !([a] != 1) nand ([b] <= 2.5) {
    noop { }
  } else {
    if [x] >= -1 { noop { } }
  }
}
output { stdout { codec => rubydebug } }
"""


def test_every_pipeline_file_parses():
    files = sorted(PIPELINE_DIR.glob("*.conf"))
    assert files == [CONF], "one pipeline, pipeline/tap.conf"
    for path in files:
        assert lc.parse_file(path).sections


def test_the_grammar_covers_the_documented_language():
    config = lc.parse(LANGUAGE_SAMPLE)
    kafka = config.plugins("input", "kafka")[0]
    assert kafka.get("topics") == ["a", "b"]
    assert kafka.get("ratio") == -0.5
    codec = kafka.get("codec")
    assert codec.name == "json" and codec.get("charset") == "UTF-8"
    assert kafka.get("add_field") == {"[nested][field]": "%{value}", "single": 1, "plain": []}
    assert [p.name for p in config.plugins("filter")] == ["mutate", "drop", "ruby", "noop", "noop"]
    [branch] = config.sections["filter"]
    assert len(branch.clauses) == 5 and branch.clauses[-1][0] is None


@pytest.mark.parametrize(
    "broken",
    [
        'input { kafka { topics => ["a"] }',  # missing brace
        "inputs { kafka { } }",  # not a section
        'filter { mutate { rename "a" } }',  # no =>
        'filter { mutate { x => "unterminated } }',
        "filter { if [a] === 1 { drop { } } }",  # no such operator
        "filter { if [a] == 1 { drop { } } elif [b] { drop { } } }",
        'output { elasticsearch { hosts => ["a",] } }',  # trailing comma
    ],
)
def test_the_grammar_rejects_invalid_configs(broken):
    with pytest.raises(LarkError):
        lc.parse(broken)


@pytest.mark.parametrize(
    ("condition", "data", "expected"),
    [
        ('[a] == "x"', {"a": "x"}, True),
        ("[a] > 0", {"a": 2}, True),
        ("[a] > 0", {}, False),
        ("[a][b]", {"a": {"b": 1}}, True),
        ("![a]", {}, True),
        ('"t" in [tags]', {"tags": ["t"]}, True),
        ('"t" not in [tags]', {"tags": ["t"]}, False),
        ("[m] =~ /^ab+$/", {"m": "abbb"}, True),
        ("[a] == 1 and ([b] == 2 or [c] == 3)", {"a": 1, "c": 3}, True),
        ('[@metadata][k] == "v"', {}, False),
    ],
)
def test_conditions_evaluate_like_logstash(condition, data, expected):
    config = lc.parse(f"filter {{ if {condition} {{ mutate {{ }} }} }}")
    [branch] = config.sections["filter"]
    assert lc.evaluate(branch.clauses[0][0], lc.Event(data)) is expected


# ── settings ─────────────────────────────────────────────────────────────────────────────


def test_kafka_input_reads_the_dashboard_topic_as_the_loader_group(config):
    [kafka] = config.plugins("input")
    assert kafka.name == "kafka"
    assert kafka.get("topics") == [SETTINGS["topics"]["dashboard"]]
    assert kafka.get("group_id") == SETTINGS["consumer_groups"]["loader"]
    assert kafka.get("auto_offset_reset") == "earliest"
    assert kafka.get("codec") == lc.Bareword("json")
    assert kafka.get("decorate_events") in ("none", lc.Bareword("false"))
    # Offsets are committed once events are in the persisted queue, not on a timer.
    assert kafka.get("enable_auto_commit") == lc.Bareword("false")
    assert kafka.get("auto_create_topics") == lc.Bareword("false")
    assert kafka.get("consumer_threads") == SETTINGS["topics"]["partitions"]


def test_endpoints_and_credentials_come_from_the_environment(config):
    try:
        services = cm.resolved_model("*")["services"]
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    env = services["logstash"]["environment"]
    [kafka] = config.plugins("input")
    assert kafka.get("bootstrap_servers") == "${TAP_KAFKA_BOOTSTRAP:kafka:19092}"
    assert lc.substitute_env(kafka.get("bootstrap_servers"), {}) == cm.KAFKA_INTERNAL_BOOTSTRAP
    assert lc.substitute_env(kafka.get("bootstrap_servers"), env) == cm.KAFKA_INTERNAL_BOOTSTRAP
    for output in config.plugins("output"):
        assert output.get("password") == "${TAP_LOGSTASH_PASSWORD}"
        assert lc.substitute_env(output.get("hosts"), env) == ["http://elasticsearch:9200"]
        assert lc.substitute_env(output.get("user"), env) == env["TAP_LOGSTASH_USER"]
    assert env["TAP_LOGSTASH_PASSWORD"], "compose passes the writer's password"


def test_outputs_are_the_two_indices_and_nothing_else(config):
    outputs = config.plugins("output")
    assert {o.name for o in outputs} == {"elasticsearch"}, "no stdout or other output"
    assert sorted(o.get("index") for o in outputs) == sorted(
        SETTINGS["indices"].get(r) for r in ("orders", "lines")
    )
    for output in outputs:
        assert output.get("manage_template") == lc.Bareword("false")  # `tap es setup` owns them
        assert output.get("data_stream") == "false"
        assert output.get("ilm_enabled") == "false"
        # Retries: the output retries 429/5xx/connection errors by default; never turned off.
        assert output.get("retry_max_interval") is None and output.get("dlq_custom_codes") is None


def test_write_actions_are_the_native_loaders(config):
    """The first version wins, for orders and lines alike: both are created, never rewritten."""
    actions = {o.get("index"): o.get("action") for o in config.plugins("output")}
    assert actions == {
        SETTINGS["indices"]["orders"]: es_loader.ACTION,
        SETTINGS["indices"]["lines"]: es_loader.ACTION,
    }
    assert es_loader.ACTION == "create"


def test_no_plugin_prints_events(config):
    for section in ("input", "filter", "output"):
        assert not config.plugins(section, "stdout")


def test_order_branch_removes_what_documents_py_leaves_out(config):
    removals = [
        set(p.get("remove_field"))
        for p in config.plugins("filter", "mutate")
        if p.get("remove_field") and "items" in p.get("remove_field")
    ]
    assert removals == [set(documents._NOT_ON_ORDER)]
    logstash_own = [
        set(p.get("remove_field"))
        for p in config.plugins("filter", "mutate")
        if p.get("remove_field") and "@timestamp" in p.get("remove_field")
    ]
    assert logstash_own == [{"@timestamp", "@version", "event"}]


def _sample_item(product_id: int, name: str, category: str, quantity: int, price: float) -> dict:
    item_schema = ORDER_SCHEMA["properties"]["items"]["items"]
    item = {
        "product_id": product_id,
        "product_name": name,
        "sku": f"GAR-{product_id}",
        "category": category,
        "quantity": quantity,
        "unit_price": price,
        "total": round(quantity * price, 2),
    }
    assert set(item) == set(item_schema["required"]) == set(item_schema["properties"])
    return item


_BY_MAPPING_TYPE = {
    "keyword": "x",
    "long": 7,
    "integer": 3,
    "double": 1.5,
    "date": "2026-03-01T09:15:01Z",
}


def _dashboard_record(order_id: int, items: list[dict], **overrides) -> dict:
    """A Topic_Dashboard record: every orders-template field Spark produces, plus the fields
    documents.py drops (derived from the template and documents.py, not listed by hand)."""
    mappings = TEMPLATES["orders"]["template"]["mappings"]["properties"]
    produced = set(mappings) - {"products", "categories", "source_system"}
    realistic = {
        "order_id": order_id,
        "event_time": "2026-03-01T09:15:00Z",
        "processed_at": "2026-03-01T09:15:02Z",
        "currency": "EUR",
        "total": round(sum(i["total"] for i in items), 2),
        "payment_method": "cod",
        "customer_id": "c0ffee",
        "customer_first_name": "Lorenzo",
        "duration_session": 95,
        "pages_viewed": 4,
        "spender_type": "Standard Spender",
        "stock_alert": "Normal Demand",
        "items_count": len(items),
        "units": sum(i["quantity"] for i in items),
        "purchase_behaviour": "Impulsive",
        "behaviour_distance": 0.42,
        "model_version": "kmeans-v1",
    }
    # Any other field the template maps gets a value of its mapping type.
    values = {
        name: realistic.get(name, _BY_MAPPING_TYPE[mappings[name]["type"]]) for name in produced
    }
    dropped = {
        "items": items,
        "timestamp": "2026-03-01T10:15:00+01:00",
        "schema_version": 1,
        "source_partition": 1,
        "source_offset": 12,
    }
    assert set(dropped) == set(documents._NOT_ON_ORDER)
    record = {**values, **dropped}
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


RECORDS = [
    _dashboard_record(
        1001,
        [
            _sample_item(101, "Basic Cotton Tee White", "T-shirts", 2, 19.9),
            _sample_item(133, 'Silk Scarf "Portofino"', "Accessories", 1, 79.0),
            _sample_item(101, "Basic Cotton Tee White", "T-shirts", 1, 19.9),
            _sample_item(117, "Crêpe Wrap Dress", "Dresses", 1, 89.0),
        ],
    ),
    _dashboard_record(1002, [_sample_item(128, "Leather Biker Jacket", "Jackets", 1, 549.0)]),
    # A record without the behaviour label: the shared line fields are only those present.
    _dashboard_record(
        1003,
        [
            _sample_item(110, "Zebra Socks", "Accessories", 3, 4.5),
            _sample_item(111, "Apron", "Home", 1, 9.0),
        ],
        purchase_behaviour=None,
        spender_type=None,
    ),
]


def test_line_branch_keeps_exactly_the_fields_of_line_documents(config):
    [prune] = config.plugins("filter", "prune")
    kept = {re.fullmatch(r"\^(.+)\$", p).group(1) for p in prune.get("whitelist_names")}
    line_fields = set().union(*(doc.keys() for _, doc in documents.line_documents(RECORDS[0])))
    assert kept == line_fields - {"source_system"}
    assert set(documents._ORDER_FIELDS_ON_LINE) <= kept
    assert line_fields <= _properties("lines")


def test_line_fields_are_renamed_from_the_item(config):
    renames = {}
    for mutate in config.plugins("filter", "mutate"):
        renames.update(mutate.get("rename") or {})
    record = RECORDS[0]
    [(_, first_line)] = documents.line_documents({**record, "items": record["items"][:1]})
    item = record["items"][0]
    for source, target in renames.items():
        key = lc.field_path(source)
        assert key[0] == "items"
        if key[1] == "line_number":
            continue
        assert first_line[target] == item[key[1]], (source, target)
    item_keys = set(ORDER_SCHEMA["properties"]["items"]["items"]["properties"])
    assert {lc.field_path(s)[1] for s in renames} == item_keys | {"line_number"}
    assert renames["[items][total]"] == "line_total"


def test_source_system_is_the_loaders(config):
    replaces = [p.get("replace") for p in config.plugins("filter", "mutate") if p.get("replace")]
    assert replaces == [{"source_system": documents.SOURCE_SYSTEM}] * 2


def test_document_ids_are_the_loaders(config):
    outputs = {o.get("index"): o for o in config.plugins("output")}
    orders = outputs[SETTINGS["indices"]["orders"]]
    lines = outputs[SETTINGS["indices"]["lines"]]
    for record in RECORDS:
        doc = documents.order_document(record)
        assert lc.Event(doc).sprintf(orders.get("document_id")) == documents.order_document_id(
            record
        )
        for doc_id, line in documents.line_documents(record):
            assert lc.Event(line).sprintf(lines.get("document_id")) == doc_id


def test_ruby_is_used_only_where_stock_filters_cannot(config):
    [ruby] = config.plugins("filter", "ruby")
    code = ruby.get("code")
    assert '"' not in code  # a double quote would end the Logstash string
    for needed in ("uniq.sort", "each_with_index", "'line_number'", "'[@metadata][tap_lines]'"):
        assert needed in code


# ── end to end: Topic_Dashboard records through the pipeline ─────────────────────────────


@pytest.fixture()
def run_pipeline(config, tmp_path):
    if not lc.ruby_available():
        pytest.skip("ruby is not installed (apt-get install ruby): the ruby filter cannot run")

    def ruby(code, events):
        return lc.run_ruby_code(code, events, tmp_path)

    pipeline = lc.Pipeline(config, env=ENV, ruby=ruby)

    def run(records: list[dict]) -> dict[tuple[str, str], dict]:
        events = []
        for record in records:
            # What the kafka input + json codec make of a record.
            event = lc.Event(copy.deepcopy(record))
            event.data.update({"@timestamp": "2026-03-01T09:15:03.000Z", "@version": "1"})
            events.append(event)
        indexed: dict[tuple[str, str], dict] = {}
        for call in pipeline.output(pipeline.filter(events)):
            key = (call.settings["index"], call.event.sprintf(call.settings["document_id"]))
            # Elasticsearch: "create" keeps the first document (409), "index" overwrites.
            if call.settings["action"] == "index" or key not in indexed:
                indexed[key] = call.event.data
        return indexed

    return run


def _expected(records: list[dict]) -> dict[tuple[str, str], dict]:
    expected = {}
    for record in records:
        expected[(SETTINGS["indices"]["orders"], documents.order_document_id(record))] = (
            documents.order_document(record)
        )
        for doc_id, line in documents.line_documents(record):
            expected[(SETTINGS["indices"]["lines"], doc_id)] = line
    return expected


def test_pipeline_indexes_what_documents_py_produces(run_pipeline):
    indexed = run_pipeline(RECORDS)
    sent = sum(1 + len(r["items"]) for r in RECORDS)
    assert len(indexed) == sent, "every order and every line has its own document id"
    expected = _expected(RECORDS)
    assert indexed.keys() == expected.keys()
    for key, doc in expected.items():
        assert indexed[key] == doc, key
        # and the key order of lists matters: products/categories are sorted
        if key[0] == SETTINGS["indices"]["orders"]:
            assert indexed[key]["products"] == doc["products"]


def test_pipeline_documents_fit_the_strict_templates(run_pipeline):
    for (index, _), doc in run_pipeline(RECORDS).items():
        role = "orders" if index == SETTINGS["indices"]["orders"] else "lines"
        assert set(doc) <= _properties(role), set(doc) - _properties(role)
        assert not any(key.startswith("@") for key in doc)


def test_pipeline_is_idempotent_on_redelivery(run_pipeline):
    once = run_pipeline(RECORDS[:1])
    twice = run_pipeline(RECORDS[:1] + RECORDS[:1])
    assert once == twice  # same ids, same documents: a re-delivered record changes nothing


def test_first_version_of_an_order_wins(run_pipeline):
    first = RECORDS[1]
    again = {**first, "total": 1.0, "model_version": "kmeans-v2"}
    indexed = run_pipeline([first, again])
    key = (SETTINGS["indices"]["orders"], documents.order_document_id(first))
    assert indexed[key] == documents.order_document(first)


def test_record_without_items_gives_only_the_order(run_pipeline):
    record = _dashboard_record(1004, [])
    indexed = run_pipeline([record])
    assert list(indexed) == [(SETTINGS["indices"]["orders"], "1004")]
    assert indexed[(SETTINGS["indices"]["orders"], "1004")] == documents.order_document(record)


# ── logstash.yml, pipelines.yml and the compose mounts ───────────────────────────────────


def test_logstash_settings_enable_the_dead_letter_queue_and_persisted_queue():
    settings = yaml.safe_load((cm.ROOT / "logstash" / "config" / "logstash.yml").read_text("utf-8"))
    assert settings["dead_letter_queue.enable"] is True
    assert settings["queue.type"] == "persisted"
    assert settings["pipeline.ecs_compatibility"] == "disabled"
    assert settings["api.http.host"] == "127.0.0.1"
    pipelines = yaml.safe_load(
        (cm.ROOT / "logstash" / "config" / "pipelines.yml").read_text("utf-8")
    )
    assert [p["pipeline.id"] for p in pipelines] == ["tap"]
    assert pipelines[0]["path.config"] == "/usr/share/logstash/pipeline/tap.conf"


def test_compose_mounts_the_logstash_files_where_they_are_read():
    try:
        service = cm.resolved_model("*")["services"]["logstash"]
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    mounts = {v["target"]: v for v in service["volumes"]}
    base = "/usr/share/logstash"
    assert Path(mounts[f"{base}/pipeline"]["source"]) == PIPELINE_DIR
    assert (
        Path(mounts[f"{base}/config/logstash.yml"]["source"])
        == cm.ROOT / "logstash/config/logstash.yml"
    )
    assert (
        Path(mounts[f"{base}/config/pipelines.yml"]["source"])
        == cm.ROOT / "logstash/config/pipelines.yml"
    )
    assert all(mounts[t].get("read_only") for t in mounts if t != f"{base}/data")
    assert mounts[f"{base}/data"]["type"] == "volume"  # persisted queue + dead letter queue
    health = " ".join(service["healthcheck"]["test"])
    assert ":9600/_node/pipelines/tap" in health
    # Variables named like a Logstash setting would make the image rewrite logstash.yml.
    for name in service["environment"]:
        assert name.startswith(("TAP_", "LS_JAVA_OPTS")), name
