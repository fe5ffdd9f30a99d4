"""The Logstash pipeline, held against tapstack/loader/documents.py, the templates and settings.

logstash/pipeline/tap.conf is parsed with a grammar of the documented Logstash configuration
language (tests/tools/logstash_config.py), then checked setting by setting and, end to end,
by pushing Topic_Dashboard records through its filters (its ruby scripts with a real Ruby) and
outputs, batch by batch, against a model of Elasticsearch: the documents written must be
documents.py's (the order and its lines, the ledger, the order's status, for every event type of
contract v2), written in the native loader's order (parts, head, status), and every record must
get the native loader's verdict (loaded, a replay, a conflict, or dead-lettered with the loader's
reason and headers). tests/test_loader_parity.py does the same against the real Elasticsearch,
beside the real loader. Each setting a test relies on is cited to the plugin's source (its
repository, file and line). Expected values are derived from documents.py (and, for the order
of writes and the status actions, the native loader's own calls), the order schema and the
index templates wherever possible.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lark.exceptions import LarkError

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import compose_model as cm  # noqa: E402

from tapstack import contracts  # noqa: E402
from tapstack.loader import dead_letters, documents, es_loader  # noqa: E402

lc = cm.load_module(cm.ROOT / "tests" / "tools" / "logstash_config.py", "tap_logstash_config")

PIPELINE_DIR = cm.ROOT / "logstash" / "pipeline"
CONF = PIPELINE_DIR / "tap.conf"
SETTINGS = cm.settings()
TEMPLATES = {
    role: json.loads((cm.ROOT / "kibana" / "index-templates" / f"{role}.json").read_text("utf-8"))
    for role in ("orders", "lines", "ledger", "statuses", "quality")
}
# Index role (documents.Order's head and part roles, "statuses", "quality") -> index name.
INDEX = SETTINGS["indices"]
ORDER_SCHEMA = json.loads((cm.ROOT / "contracts" / "order.schema.json").read_text("utf-8"))
# The fields only a version 2 line has (the schema forbids them on a version 1 line).
V2_ONLY = tuple(ORDER_SCHEMA["allOf"][0]["else"]["properties"])
ENV = {
    "TAP_LOGSTASH_PASSWORD": "secret",
    "TAP_KAFKA_USER": "tap_loader",
    "TAP_KAFKA_PASSWORD": "kafka-secret",
}
# A ruby filter's path as Logstash sees it (compose mounts logstash/pipeline there) -> the file.
SCRIPTS = {f"/usr/share/logstash/pipeline/{path.name}": path for path in PIPELINE_DIR.glob("*.rb")}


@pytest.fixture(scope="module")
def config():
    return lc.parse_file(CONF)


def _mapping(role: str) -> dict[str, dict]:
    return TEMPLATES[role]["template"]["mappings"]["properties"]


def _properties(role: str) -> set[str]:
    return set(_mapping(role))


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
    # The record as text (the plain codec's decode, logstash-codec-plain lib/logstash/codecs/
    # plain.rb:49-50), so a dead letter can carry it unchanged; the json filter parses it.
    codec = kafka.get("codec")
    assert codec.name == "plain" and codec.get("charset") == "UTF-8"
    # "basic" sets [@metadata][kafka][topic/partition/offset/key] for the dead-letter headers:
    # logstash-integration-kafka lib/logstash/inputs/kafka.rb:284 (the option), :404-411.
    assert kafka.get("decorate_events") == "basic"
    # Offsets are committed once events are in the persisted queue, not on a timer.
    assert kafka.get("enable_auto_commit") == lc.Bareword("false")
    assert kafka.get("auto_create_topics") == lc.Bareword("false")
    assert kafka.get("consumer_threads") == SETTINGS["topics"]["partitions"]


def test_endpoints_and_credentials_come_from_the_environment(config):
    try:
        services = cm.resolved_model("*")["services"]
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    service = services["logstash"]
    # The container's environment: compose's, plus each secret file as its variable
    # (compose/scripts/secrets-env runs before the image's entrypoint).
    env = {**service["environment"], **{name: "x" for name in cm.secret_files(service)}}
    kafkas = config.plugins("input", "kafka") + config.plugins("output", "kafka")
    for kafka in kafkas:
        assert kafka.get("bootstrap_servers") == "${TAP_KAFKA_BOOTSTRAP:kafka:19092}"
        assert lc.substitute_env(kafka.get("bootstrap_servers"), {}) == cm.KAFKA_INTERNAL_BOOTSTRAP
        assert lc.substitute_env(kafka.get("bootstrap_servers"), env) == (
            cm.KAFKA_INTERNAL_BOOTSTRAP
        )
    for plugin in config.plugins("output", "elasticsearch") + config.plugins("filter", "http"):
        assert plugin.get("password") == "${TAP_LOGSTASH_PASSWORD}"
        assert lc.substitute_env(plugin.get("user"), env) == env["TAP_LOGSTASH_USER"]
    for output in config.plugins("output", "elasticsearch"):
        assert lc.substitute_env(output.get("hosts"), env) == ["http://elasticsearch:9200"]
    for lookup in config.plugins("filter", "http"):
        assert lc.substitute_env(lookup.get("url"), env).startswith("http://elasticsearch:9200/")
    assert env["TAP_LOGSTASH_PASSWORD"], "compose passes the writer's password"
    assert "TAP_LOGSTASH_PASSWORD" not in service["environment"], "as a file, not a variable"


def test_logstash_reads_kafka_as_the_loader_with_scram(config):
    """Input and dead-letter output log in as the loader of contracts/security.toml, whose
    grants are: read Topic_Dashboard in the loader's group, write the dead letters. Options of
    logstash-integration-kafka (lib/logstash/inputs/kafka.rb:221, 243, 265; outputs/kafka.rb:
    152, 174, 196); a ${VAR} inside a string is replaced from the environment (elastic/logstash
    logstash-core/lib/logstash/util/substitution_variables.rb:53-80, gsub over the value)."""
    try:
        service = cm.resolved_model("*")["services"]["logstash"]
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    security = contracts.security()["kafka"]
    loader = security["users"]["loader"]
    assert service["environment"]["TAP_KAFKA_USER"] == loader
    assert cm.secret_files(service) == {
        "TAP_LOGSTASH_PASSWORD": "TAP_LOGSTASH_PASSWORD",
        "TAP_KAFKA_PASSWORD": security["password_variables"]["loader"],
    }
    assert service["entrypoint"][:2] == ["/bin/sh", "/tap/secrets-env"]
    env = {"TAP_KAFKA_USER": loader, "TAP_KAFKA_PASSWORD": "pw"}
    for kafka in config.plugins("input", "kafka") + config.plugins("output", "kafka"):
        assert kafka.get("security_protocol") == "SASL_PLAINTEXT"
        assert kafka.get("sasl_mechanism") == security["mechanism"]
        jaas = lc.substitute_env(kafka.get("sasl_jaas_config"), env)
        assert jaas == (
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f" username='{loader}' password='pw';"
        )
    # The group the loader is granted ("@loader" = [consumer_groups] loader).
    assert security["grants"]["loader"]["groups"] == ["@loader"]
    [kafka] = config.plugins("input", "kafka")
    assert kafka.get("group_id") == SETTINGS["consumer_groups"]["loader"]


def test_the_writer_needs_no_index_management(config):
    """The writer's role (contracts/security.toml tap_writer) has no `manage`, which includes
    deleting the index: Logstash must not manage templates or ILM, which would need it
    (logstash-output-elasticsearch docs, manage_template: "requires manage_index_templates",
    ilm_enabled: ILM setup needs manage_ilm; https://www.elastic.co/guide/en/logstash/8.19/
    plugins-outputs-elasticsearch.html). `tap es setup` installs the templates as tap_setup."""
    role = contracts.security()["elasticsearch"]["roles"]["tap_writer"]
    privileges = {p for grant in role["indices"] for p in grant["privileges"]}
    assert not privileges & {"manage", "all", "delete_index"}
    # Deleting documents only where the native loader takes back the parts of a refused record
    # (a paid order's lines and ledger documents, a refund's ledger lines); Logstash never does.
    deleting = {
        name
        for grant in role["indices"]
        if "delete" in grant["privileges"]
        for name in grant["names"]
    }
    assert deleting == {
        role for order in _orders(RECORDS + LIFECYCLE) for role, _, _ in order.parts
    }
    assert set(role["cluster"]) == {"monitor"}
    for output in config.plugins("output", "elasticsearch"):
        assert output.get("manage_template") == lc.Bareword("false")
        assert output.get("ilm_enabled") == "false"
        assert output.get("data_stream") == "false"
        assert output.get("action") != "delete"


# The index privilege each write needs (https://www.elastic.co/guide/en/elasticsearch/reference/
# 8.19/security-privileges.html: create_doc "index new documents" with op_type create only,
# index "index and update documents", read "read only access to actions (... mget ...)").
_PRIVILEGE = {"create": "create_doc", "index": "index", "_mget": "read"}


def test_the_writer_role_grants_what_the_pipeline_does(config):
    """Every write and lookup of the pipeline is granted to tap_writer on its index (a refused
    one would be a 403: retried without end by the output, a failed lookup for the filter)."""
    role = contracts.security()["elasticsearch"]["roles"]["tap_writer"]
    granted = {
        (INDEX[name], privilege)
        for grant in role["indices"]
        for name in grant["names"]
        for privilege in grant["privileges"]
    }
    needed = {
        (o.get("index"), _PRIVILEGE[o.get("action")])
        for o in config.plugins("output", "elasticsearch")
    }
    for lookup in config.plugins("filter", "http"):
        index, call = re.search(r"/([^/]+)/(_mget)$", lookup.get("url")).groups()
        needed.add((index, _PRIVILEGE[call]))
    assert needed <= granted, needed - granted
    # The new indices: ledger created and read back (heads), statuses indexed with versions.
    assert {(INDEX["ledger"], "create_doc"), (INDEX["ledger"], "read")} <= needed
    assert (INDEX["statuses"], "index") in needed


def _output(config, output_id: str) -> lc.Plugin:
    [output] = [o for o in config.plugins("output") if o.get("id") == output_id]
    return output


# The elasticsearch outputs by what they write, in the order of the config: the native loader's
# parts, heads and statuses (documents.Order), and the data-quality findings.
PARTS = ("tap_es_lines", "tap_es_ledger_parts")
HEADS = ("tap_es_orders", "tap_es_ledger_heads")
STATUSES = "tap_es_statuses"


def test_outputs_are_the_tap_indices_and_the_dead_letter_topic(config):
    outputs = config.plugins("output")
    assert [o.get("id") for o in outputs] == [
        "tap_es_quality",
        "tap_dead_letter",
        *PARTS,
        *HEADS,
        STATUSES,
    ]
    [dead_letter] = config.plugins("output", "kafka")
    assert dead_letter.get("topic_id") == SETTINGS["topics"]["dead_letter"]
    assert dead_letter.get("acks") == "all"
    assert dead_letter.get("retries") is None  # unset: retried until Kafka takes it
    writers = config.plugins("output", "elasticsearch")
    # Each index as settings.toml names it: the parts' and heads' roles of documents.Order.
    orders = _orders(RECORDS + LIFECYCLE)
    assert [_output(config, i).get("index") for i in PARTS] == [INDEX["lines"], INDEX["ledger"]]
    assert {r for o in orders for r, _, _ in o.parts} == {"lines", "ledger"}
    assert [_output(config, i).get("index") for i in HEADS] == [INDEX["orders"], INDEX["ledger"]]
    assert {o.head_role for o in orders} == {"orders", "ledger"}
    assert _output(config, STATUSES).get("index") == INDEX["statuses"]
    assert _output(config, "tap_es_quality").get("index") == INDEX["quality"]
    for output in writers:
        assert output.get("manage_template") == lc.Bareword("false")  # `tap es setup` owns them
        assert output.get("data_stream") == "false"
        assert output.get("ilm_enabled") == "false"
        # Retries: the output retries 429/5xx/connection errors without end by default
        # (plugin_mixins/elasticsearch/common.rb, submit and safe_bulk); never turned down.
        assert output.get("retry_max_interval") is None
        # A document too large for a request of its own is refused for good, as the loader
        # does: the output reports a 413 for each document of the request
        # (lib/logstash/outputs/elasticsearch/http_client.rb:194-205, since 12.0.2) and
        # dlq_custom_codes adds 413 to the dead-letter codes 400/404 (common.rb:11-13,
        # elasticsearch.rb:285-291; 409 and 2xx are refused there, :691-699).
        assert output.get("dlq_custom_codes") == [413]
        # A 409 (a replay, or a status at this version or later) is expected: not logged as a
        # failure (api_configs.rb:128); the output drops it, never retries it (common.rb:
        # 284-297).
        assert output.get("silence_errors_in_log") == ["version_conflict_engine_exception"]


def test_parts_then_heads_then_statuses(config):
    """All or nothing, as far as Logstash can: a record's head becomes visible after its parts
    (an order after its lines and ledger documents, a refund's ledger document after its
    ledger lines), its order's status after the head, as the native loader writes them
    (es_loader.Loader._load). Logstash hands a batch to its outputs one after the other, in the
    order of the config: logstash-core CompiledPipeline.java:496-506 (compileOutputs: one
    dataset per output leaf of the graph, whose vertices are a LinkedHashSet kept in insertion
    order, Graph.java:38) and DatasetCompiler.java:223-246 (terminalOutputDataset computes each
    in turn); the elasticsearch output returns only once the batch is written or dead-lettered
    (common.rb, retrying_submit). test_each_record_is_written_parts_head_status runs it."""
    ids = [o.get("id") for o in config.plugins("output", "elasticsearch")]
    assert [ids.index(i) for i in (*PARTS, *HEADS, STATUSES)] == sorted(
        ids.index(i) for i in (*PARTS, *HEADS, STATUSES)
    )


def _native_actions(orders: list[documents.Order]) -> dict[str, list]:
    """The bulk actions the native loader sends for these records' heads and, written at once,
    their orders' statuses (es_loader.Loader, its Elasticsearch calls caught): "heads" the
    action lines, "statuses" (id, action line, document) of each status."""
    loader = object.__new__(es_loader.Loader)
    loader.names = es_loader.Names.from_settings()
    sent: list[tuple[str, dict, dict]] = []

    def bulk(actions):
        sent.extend((doc_id, meta, doc) for (_, doc_id), (meta, doc) in actions)
        return {}

    loader._bulk = bulk
    heads = [loader._create(order)[0] for order in orders]
    loader._write_statuses([es_loader._Pending(None, order) for order in orders])
    return {"heads": heads, "statuses": sent}


def test_write_actions_are_the_native_loaders(config):
    """The first version wins for heads and parts alike: created, never rewritten (action:
    lib/logstash/outputs/elasticsearch.rb:103-114); the order's status is indexed with the
    event's offset as an external version (version, version_type: elasticsearch.rb:175-182,
    sprintf'd per event into the bulk action's metadata, :476-484 and http_client.rb:106-118),
    as es_loader.Loader._write_statuses sends it."""
    orders = _orders(LIFECYCLE)
    native = _native_actions(orders)
    assert {next(iter(meta)) for meta in native["heads"]} == {es_loader.ACTION} == {"create"}
    for output_id in (*PARTS, *HEADS, "tap_es_quality"):
        output = _output(config, output_id)
        assert output.get("action") == es_loader.ACTION
        assert output.get("version") is None and output.get("version_type") is None
    statuses = _output(config, STATUSES)
    [(action, version_type)] = {
        (op, meta["version_type"]) for _, line, _ in native["statuses"] for op, meta in line.items()
    }
    assert (statuses.get("action"), statuses.get("version_type")) == (action, version_type)
    assert (action, version_type) == ("index", "external")
    # The version: the piece's (tap_record.rb: the event's source_offset, as status_document);
    # the native loader sends the latest of each order's.
    assert statuses.get("version") == "%{[@metadata][tap_piece][version]}"
    latest: dict[str, int] = {}
    for record in LIFECYCLE:  # each order's latest event, by its offset in Topic_Purchase
        doc_id = str(record["order_id"])
        latest[doc_id] = max(latest.get(doc_id, -1), record["source_offset"])
    assert {doc_id: line[action]["version"] for doc_id, line, _ in native["statuses"]} == latest


def test_dead_letters_carry_the_record_and_the_loaders_headers(config):
    """The value is the record as read (the plain codec's format is sprintf'd, logstash-codec-
    plain plain.rb:23,57-58); the headers are the loader's, in its order (message_headers,
    sprintf'd per event: logstash-integration-kafka lib/logstash/outputs/kafka.rb:110,346-347,
    since 11.4.0, CHANGELOG.md:84-85)."""
    [dead_letter] = config.plugins("output", "kafka")
    assert dead_letter.get("codec").name == "plain"
    assert dead_letter.get("codec").get("format") == "%{[@metadata][tap_original]}"
    assert dead_letter.get("message_key") == "%{[@metadata][tap_key]}"
    headers = dead_letter.get("message_headers")
    native = dead_letters.headers("r", es_loader.STAGE, topic="t", partition=0, offset=1)
    assert list(headers) == [key for key, _ in native]
    assert headers[dead_letters.STAGE] == es_loader.STAGE
    assert headers[dead_letters.TOPIC] == "%{[@metadata][kafka][topic]}"
    assert headers[dead_letters.PARTITION] == "%{[@metadata][kafka][partition]}"
    assert headers[dead_letters.OFFSET] == "%{[@metadata][kafka][offset]}"
    # Topic_DeadLetter takes up to 16 MiB (tapstack/native/kafka.py); the producer must too.
    assert dead_letter.get("max_request_size") == es_loader.DEAD_LETTER_MAX_BYTES


def test_the_stored_head_is_looked_up_as_the_loader_does(config):
    """A realtime multi-get of the head's id in the head's index (the loader's _stored_heads:
    the order for a paid event, the event's ledger document for the others):
    logstash-filter-http lib/logstash/filters/http.rb:25-40 (url, verb, query, body,
    body_format, target_body/target_headers), :59-100 (sprintf'd; a non-2xx or no answer tags
    _httprequestfailure); user/password, automatic_retries and retry_non_idempotent from
    logstash-mixin-http_client lib/logstash/plugin_mixins/http_client.rb:72-75,147-150."""
    lookups = {lookup.get("id"): lookup for lookup in config.plugins("filter", "http")}
    heads = {o.head_role for o in _orders(RECORDS + LIFECYCLE)}
    by_index = {
        re.search(r"/([^/]+)/_mget$", lookup.get("url")).group(1): lookup
        for lookup in lookups.values()
    }
    assert set(by_index) == {INDEX[role] for role in heads}
    assert set(lookups) == {"tap_stored_order", "tap_stored_event"}
    for lookup in lookups.values():
        assert lookup.get("verb") == "POST"
        assert lookup.get("body") == {"ids": ["%{[@metadata][tap_head_id]}"]}
        assert lookup.get("body_format") == "json"
        assert lookup.get("query")["realtime"] == "true"
        assert lookup.get("query")["_source_includes"] == "order_fingerprint"
        assert lookup.get("retry_non_idempotent") == lc.Bareword("true")
        assert lookup.get("target_body") == "[@metadata][tap_stored]"
    # Each head is looked up in its own index, by the id tap_record.rb gives it (the lookup
    # test below runs it: a head loaded earlier is found).
    branch = _branch_holding(config.sections["filter"], "http")
    for order in _orders(RECORDS + LIFECYCLE):
        event = lc.Event({}, {"tap_head": order.head_role, "tap_head_id": order.document_id})
        [http] = next(
            [p for p in body if isinstance(p, lc.Plugin) and p.name == "http"]
            for condition, body in branch.clauses
            if condition is None or lc.evaluate(condition, event)
        )
        assert http is by_index[INDEX[order.head_role]]
        assert event.sprintf(http.get("body")["ids"][0]) == order.document_id


def _branch_holding(statements: list, plugin_name: str) -> lc.Branch:
    """The conditional whose clauses hold the plugins named plugin_name (the first found)."""
    for statement in statements:
        if isinstance(statement, lc.Branch):
            for _, body in statement.clauses:
                if any(isinstance(x, lc.Plugin) and x.name == plugin_name for x in body):
                    return statement
                try:
                    return _branch_holding(body, plugin_name)
                except LookupError:
                    pass
    raise LookupError(plugin_name)


def test_the_ruby_scripts_are_files_the_pipeline_folder_holds(config):
    """Ruby only where stock filters cannot (type checks, sorted distinct lists, line numbers,
    a memory of recent orders); as script files (path, logstash-filter-ruby
    lib/logstash/filters/ruby.rb:40-43 and ruby/script.rb), testable with a real Ruby."""
    rubies = config.plugins("filter", "ruby")
    assert [r.get("id") for r in rubies] == ["tap_record", "tap_first_version"]
    for ruby in rubies:
        assert ruby.get("code") is None
        assert SCRIPTS[ruby.get("path")].is_file()


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
    assert logstash_own == [{"@timestamp", "@version", "event", "tags"}]


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
    # The rest of what the order leaves out are the event fields a version 1 line has not.
    assert set(dropped) | set(V2_ONLY) == set(documents._NOT_ON_ORDER)
    record = {**values, **dropped, "order_fingerprint": f"fp-{order_id}"}
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


def _refund(order: dict, refund_id: int, lines: list[tuple[int, int]], extra: float = 0.0) -> dict:
    """A refund of `order`: (index of the order's line, units given back) for each refunded
    line, each at the line's unit price, plus `extra` not tied to a line (shipping)."""
    line_schema = ORDER_SCHEMA["properties"]["refund"]["properties"]["items"]["items"]
    returned = []
    for index, units in lines:
        item = order["items"][index]
        amount = round(item["total"] / item["quantity"] * units, 2)
        line = {name: item[name] for name in line_schema["properties"] if name in item}
        returned.append({**line, "quantity": units, "amount": amount})
        assert set(returned[-1]) == set(line_schema["required"])
    refund = {
        "refund_id": refund_id,
        "amount": round(sum(line["amount"] for line in returned) + extra, 2),
        "reason": "Wrong size",
        "items": returned,
    }
    assert set(refund) == set(ORDER_SCHEMA["properties"]["refund"]["required"])
    return refund


def _event(order: dict, kind: str, status: str, offset: int, refund: dict | None = None) -> dict:
    """`order` (a Topic_Dashboard record) as a contract version 2 event of `kind`, read at
    `offset` of Topic_Purchase (the status document's version), with a fingerprint of its own."""
    what = f"refund-{refund['refund_id']}" if kind == "refunded" else kind
    event = {
        **order,
        "schema_version": 2,
        "event_id": f"{order['order_id']}-{what}",
        "event_type": kind,
        "order_status": status,
        "source_offset": offset,
        "order_fingerprint": f"{order['order_fingerprint']}-{what}",
    }
    if refund is not None:
        event["refund"] = refund
    assert re.fullmatch(ORDER_SCHEMA["properties"]["event_id"]["pattern"], event["event_id"])
    assert kind in ORDER_SCHEMA["properties"]["event_type"]["enum"]
    assert set(ORDER_SCHEMA["allOf"][0]["then"]["required"]) <= set(event)
    return event


_PAID_2001 = _dashboard_record(
    2001,
    [
        _sample_item(101, "Basic Cotton Tee White", "T-shirts", 2, 19.9),
        _sample_item(117, "Crêpe Wrap Dress", "Dresses", 1, 89.0),
    ],
)
_PAID_2002 = _dashboard_record(
    2002, [_sample_item(128, "Leather Biker Jacket", "Jackets", 1, 549.0)]
)
# An order's life in version 2 events, in the order of Topic_Purchase: paid, then a partial
# refund of one line and a refund of an amount only (shipping); paid, then refunded in full; an
# unpaid bank transfer cancelled (a guest without an e-mail: no customer id); a failed payment
# (a guest whose customer id is null).
LIFECYCLE = [
    _event(_PAID_2001, "paid", "processing", 20),
    _event(_PAID_2001, "refunded", "processing", 21, _refund(_PAID_2001, 71, [(0, 1)])),
    _event(_PAID_2001, "refunded", "processing", 22, _refund(_PAID_2001, 72, [], extra=4.9)),
    _event(_PAID_2002, "paid", "completed", 23),
    _event(_PAID_2002, "refunded", "refunded", 24, _refund(_PAID_2002, 73, [(0, 1)])),
    _event(
        _dashboard_record(
            2003, [_sample_item(110, "Zebra Socks", "Accessories", 3, 4.5)], customer_id=None
        ),
        "cancelled",
        "cancelled",
        25,
    ),
    {
        **_event(
            _dashboard_record(2004, [_sample_item(111, "Apron", "Home", 1, 9.0)]),
            "failed",
            "failed",
            26,
        ),
        "customer_id": None,
    },
]


def _orders(records: list[dict]) -> list[documents.Order]:
    """What documents.py makes of each record (documents.order_of, as the loader reads it)."""
    return [documents.order_of(json.dumps(record).encode()) for record in records]


def test_the_lifecycle_covers_every_event_type_and_document():
    orders = _orders(LIFECYCLE)
    assert {r["event_type"] for r in LIFECYCLE} == set(documents.EVENT_TYPES)
    assert {o.head_role for o in orders} == {"orders", "ledger"}
    assert all(o.status for o in orders) and not any(o.status for o in _orders(RECORDS))
    refund_lines = [doc for o in orders for role, _, doc in o.parts if role == "ledger"]
    assert any(doc.get("line_amount", 0) < 0 for doc in refund_lines)


def test_line_branch_keeps_exactly_the_fields_of_line_documents(config):
    [prune] = [p for p in config.plugins("filter", "prune") if p.get("id") == "tap_line_keep"]
    kept = {re.fullmatch(r"\^(.+)\$", p).group(1) for p in prune.get("whitelist_names")}
    line_fields = set().union(*(doc.keys() for _, doc in documents.line_documents(RECORDS[0])))
    assert kept == line_fields - {"source_system"}
    assert set(documents._ORDER_FIELDS_ON_LINE) <= kept
    assert line_fields <= _properties("lines")


def test_line_fields_are_renamed_from_the_item(config):
    [line_fields] = [
        m for m in config.plugins("filter", "mutate") if m.get("id") == "tap_line_fields"
    ]
    renames = line_fields.get("rename")
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


def test_source_system_is_the_loaders(config, ruby_constants):
    replaces = [
        p.get("replace")
        for p in config.plugins("filter", "mutate")
        if p.get("replace") and p.get("id") not in ("tap_conflict_fields", "tap_piece_doc")
    ]
    assert replaces == [{"source_system": documents.SOURCE_SYSTEM}] * 2
    # The ledger and status documents get theirs from tap_record.rb.
    assert ruby_constants["SOURCE_SYSTEM"] == documents.SOURCE_SYSTEM


def test_document_ids_are_the_loaders(config):
    orders = _output(config, "tap_es_orders")
    lines = _output(config, "tap_es_lines")
    for record in RECORDS:
        doc = documents.order_document(record)
        assert lc.Event(doc).sprintf(orders.get("document_id")) == documents.order_document_id(
            record
        )
        for doc_id, line in documents.line_documents(record):
            assert lc.Event(line).sprintf(lines.get("document_id")) == doc_id
    # The status's id from its document, as the native loader names it.
    statuses = _output(config, STATUSES)
    for doc_id, line, doc in _native_actions(_orders(LIFECYCLE))["statuses"]:
        assert line["index"]["_id"] == doc_id
        assert lc.Event(doc).sprintf(statuses.get("document_id")) == doc_id
    # A ledger document's id is the one tap_record.rb gives its piece (ledger_document_id; the
    # documents written end to end are keyed by it).
    for output_id in ("tap_es_ledger_parts", "tap_es_ledger_heads"):
        assert _output(config, output_id).get("document_id") == "%{[@metadata][tap_piece][id]}"


def test_the_ruby_tables_are_the_templates_and_the_loaders_rules(ruby_constants):
    """tap_record.rb holds the templates' types as a table (the Logstash container has no copy
    of kibana/); it must be the templates' and the rest of documents.py's constants."""
    orders = {k: v["type"] for k, v in _mapping("orders").items()}
    lines = {k: v["type"] for k, v in _mapping("lines").items()}
    ledger = {k: v["type"] for k, v in _mapping("ledger").items()}
    assert ruby_constants["ORDER_TYPES"] == orders
    assert ruby_constants["ITEM_TYPES"] == [
        [field, lines[line_field]] for field, line_field in documents._LINE_FIELDS.items()
    ]
    assert ruby_constants["LEDGER_TYPES"] == ledger
    assert ruby_constants["NOT_ON_ORDER"] == list(documents._NOT_ON_ORDER)
    assert ruby_constants["DERIVED"] == list(documents._DERIVED)
    assert ruby_constants["REQUIRED"] == list(documents.REQUIRED)
    assert ruby_constants["MAX_REASONS"] == documents.MAX_REASONS
    assert ruby_constants["KEYWORD_MAX_BYTES"] == documents.KEYWORD_MAX_BYTES
    assert ruby_constants["EVENT_ID_MAX_BYTES"] == documents.EVENT_ID_MAX_BYTES
    assert ruby_constants["RANGES"] == documents._RANGES
    assert ruby_constants["DATE"] == documents._DATE.pattern.replace("\\Z", "\\z")
    # The event rules and the ledger's and status's fields.
    assert ruby_constants["PAID"] == documents.PAID
    assert ruby_constants["EVENT_TYPES"] == list(documents.EVENT_TYPES)
    assert ruby_constants["EVENT_FIELDS_ON_LEDGER"] == [
        list(pair) for pair in documents._EVENT_FIELDS_ON_LEDGER.items()
    ]
    assert ruby_constants["REFUND_FIELDS"] == [list(p) for p in documents._REFUND_FIELDS.items()]
    assert ruby_constants["REFUND_LINE_FIELDS"] == [
        list(pair) for pair in documents._REFUND_LINE_FIELDS.items()
    ]
    assert ruby_constants["REFUND_TYPES"] == [list(t) for t in documents._refund_types()]
    assert ruby_constants["REFUND_LINE_TYPES"] == [list(t) for t in documents._refund_line_types()]
    # A paid line on the ledger: the item's fields the ledger maps, its total as line_amount.
    paid_line = [
        [field, "line_amount" if name == "line_total" else name]
        for field, name in documents._LINE_FIELDS.items()
    ]
    assert ruby_constants["PAID_LINE_FIELDS"] == [p for p in paid_line if p[1] in ledger]
    _, first_line = documents.ledger_documents(documents.with_event(RECORDS[0]))[1]
    assert set(first_line) >= {name for _, name in ruby_constants["PAID_LINE_FIELDS"]}
    # The status document: the statuses template's fields, source_system set by the loader.
    statuses = list(_mapping("statuses"))
    assert ruby_constants["STATUS_FIELDS"] == [f for f in statuses if f != "source_system"]


def test_the_first_version_memory_has_one_worker():
    """tap_first_version.rb remembers the orders it passed on: one worker runs the filters,
    so every record meets that memory (and in order)."""
    pipelines = yaml.safe_load(
        (cm.ROOT / "logstash" / "config" / "pipelines.yml").read_text("utf-8")
    )
    assert [p["pipeline.workers"] for p in pipelines] == [1]


# ── end to end: Topic_Dashboard records through the pipeline ─────────────────────────────


@pytest.fixture(scope="module")
def ruby_constants(tmp_path_factory):
    if not lc.ruby_available():
        pytest.skip("ruby is not installed (apt-get install ruby): the ruby filter cannot run")
    script = SCRIPTS["/usr/share/logstash/pipeline/tap_record.rb"]
    names = ["ORDER_TYPES", "ITEM_TYPES", "NOT_ON_ORDER", "DERIVED", "REQUIRED"]
    names += ["MAX_REASONS", "KEYWORD_MAX_BYTES", "RANGES", "LEDGER_TYPES", "SOURCE_SYSTEM"]
    names += ["PAID", "EVENT_TYPES", "EVENT_FIELDS_ON_LEDGER", "PAID_LINE_FIELDS"]
    names += ["REFUND_FIELDS", "REFUND_LINE_FIELDS", "REFUND_TYPES", "REFUND_LINE_TYPES"]
    names += ["STATUS_FIELDS", "EVENT_ID_MAX_BYTES"]
    code = (
        "require 'json'; o = Object.new; o.instance_eval(File.read(ARGV[0]));"
        " k = o.singleton_class; puts JSON.generate({"
        + ", ".join(f"'{n}' => k.const_get(:{n})" for n in names)
        + ", 'DATE' => k.const_get(:DATE).source})"
    )
    out = subprocess.run(
        ["ruby", "-e", code, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


def kafka_event(value: bytes, partition: int = 0, offset: int = 0, key: str | None = None):
    """What the kafka input makes of a record: the plain codec's message, the basic
    decoration, Logstash's own fields."""
    return lc.Event(
        {
            "message": value.decode("utf-8", "replace"),
            "@timestamp": "2026-03-01T09:15:03.000Z",
            "@version": "1",
        },
        {
            "kafka": {
                "topic": SETTINGS["topics"]["dashboard"],
                "consumer_group": SETTINGS["consumer_groups"]["loader"],
                "partition": partition,
                "offset": offset,
                "key": key,
                "timestamp": 1772356503000,
            }
        },
    )


class VersionedElasticsearch(lc.ModelElasticsearch):
    """lc's model of Elasticsearch, with a bulk action's version and version_type, and a log of
    the writes in the order they land. External versions as Elasticsearch applies them
    (elastic/elasticsearch server/src/main/java/org/elasticsearch/index/VersionType.java,
    EXTERNAL: a write is a conflict, 409, when a document is there whose version is the given
    one or higher; the version must be a non-negative long, read from text too)."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: dict[tuple[str, str], int] = {}
        self.log: list[tuple[str, str, str, int]] = []  # (action, index, id, status)

    def bulk(self, actions) -> list[int]:
        statuses = []
        for action, index, doc_id, doc, *versioning in actions:
            version, version_type = versioning or (None, None)
            if version_type is None:
                [status] = super().bulk([(action, index, doc_id, doc)])
            else:
                status = self._versioned(action, index, doc_id, doc, version, version_type)
            self.log.append((action, index, doc_id, status))
            statuses.append(status)
        return statuses

    def _versioned(self, action, index, doc_id, doc, version, version_type) -> int:
        assert (action, version_type) == ("index", "external"), "only what TAP sends is modelled"
        if not re.fullmatch(r"[0-9]+", str(version)) or int(version) >= 2**63:
            return 400  # action_request_validation_exception: illegal version value
        key = (index, doc_id)
        if key in self.docs and self.versions.get(key, 1) >= int(version):
            return 409  # version_conflict_engine_exception
        self.docs[key] = copy.deepcopy(doc)
        self.versions[key] = int(version)
        return 201


def deliver(pipeline: lc.Pipeline, events: list[lc.Event], elasticsearch) -> lc.Delivered:
    """lc.deliver (each output in the order of the config, with all its events of the batch;
    the output's answer rules), with each elasticsearch output's version and version_type
    sprintf'd per event into its bulk actions as the plugin does (elasticsearch.rb:476-484)."""
    outputs = pipeline.config.plugins("output")
    calls = pipeline.output(events)
    done = lc.Delivered()
    for plugin in outputs:
        mine = [call for call in calls if call.plugin is plugin]
        if not mine:
            continue
        if plugin.name == "kafka":
            done.dead_letters += [lc._kafka_record(call) for call in mine]
        elif plugin.name == "elasticsearch":
            _elasticsearch(mine, elasticsearch, done)
        else:
            raise NotImplementedError(f"output plugin '{plugin.name}' is not delivered here")
    return done


def _elasticsearch(calls: list[lc.OutputCall], elasticsearch, done: lc.Delivered) -> None:
    actions = []
    for call in calls:
        settings, event = call.settings, call.event
        action = [
            event.sprintf(settings.get("action", "index")),
            event.sprintf(settings["index"]),
            event.sprintf(settings["document_id"]),
            event.data,
        ]
        if settings.get("version") or settings.get("version_type"):
            action += [event.sprintf(settings["version"]), settings["version_type"]]
        actions.append(tuple(action))
    # 2xx written, 409 dropped, 400/404 and dlq_custom_codes to the dead letter queue, anything
    # else retried (common.rb:284-297; here an error: the model never answers so).
    dlq_codes = {400, 404, *(calls[0].settings.get("dlq_custom_codes") or [])}
    for (_, index, doc_id, *_), status in zip(actions, elasticsearch.bulk(actions), strict=True):
        if 200 <= status < 300 or status == 409:
            continue
        if status in dlq_codes:
            done.dlq.append((index, doc_id, status))
        else:
            raise RuntimeError(f"the output would retry {index}/{doc_id} ({status}) forever")


class Logstash:
    """The pipeline run over batches of records against an Elasticsearch (a model, or a
    real one behind the same two calls)."""

    def __init__(self, config, tmp_path, elasticsearch=None, env=None, batch_size=None):
        self.elasticsearch = elasticsearch or VersionedElasticsearch()
        self.pipeline = lc.Pipeline(
            config,
            env={**ENV, **(env or {})},
            ruby=lambda code, events: lc.run_ruby_code(code, events, tmp_path),
            scripts=SCRIPTS,
            workdir=tmp_path,
            http=self.elasticsearch.http,
        )
        pipelines = yaml.safe_load((cm.ROOT / "logstash/config/pipelines.yml").read_text())
        self.batch_size = batch_size or pipelines[0]["pipeline.batch.size"]
        self.dead_letters: list[lc.DeadLetter] = []
        self.dlq: list[tuple[str, str, int]] = []
        self.offset = 0

    def send(self, values: list[bytes]) -> None:
        """The records, in batches of pipeline.batch.size, at the next offsets."""
        events = []
        for value in values:
            key = _key_of(value)
            events.append(kafka_event(value, 0, self.offset, key))
            self.offset += 1
        for start in range(0, len(events), self.batch_size):
            batch = self.pipeline.filter(events[start : start + self.batch_size])
            done = deliver(self.pipeline, batch, self.elasticsearch)
            self.dead_letters += done.dead_letters
            self.dlq += done.dlq

    def send_records(self, records: list[dict]) -> None:
        self.send([json.dumps(r).encode() for r in records])

    def reasons(self) -> dict[str, str]:
        return {d.value: dict(d.headers)[dead_letters.REASON] for d in self.dead_letters}

    def close(self) -> None:
        self.pipeline.close()


def _key_of(value: bytes) -> str | None:
    try:
        order_id = json.loads(value).get("order_id")
    except (ValueError, AttributeError):
        return None
    return str(order_id) if isinstance(order_id, int) and not isinstance(order_id, bool) else None


@pytest.fixture()
def logstash(config, tmp_path):
    if not lc.ruby_available():
        pytest.skip("ruby is not installed (apt-get install ruby): the ruby filter cannot run")
    made: list[Logstash] = []

    def make(**options) -> Logstash:
        made.append(Logstash(config, tmp_path, **options))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _expected(records: list[dict]) -> dict[tuple[str, str], dict]:
    """(index, id) -> document of what the native loader writes for records whose heads are
    all distinct (no replay, no conflict): each head and its parts (documents.order_of), and
    each order's latest status (es_loader.Loader._write_statuses)."""
    orders = _orders(records)
    expected = {}
    for order in orders:
        expected[(INDEX[order.head_role], order.document_id)] = order.document
        for role, doc_id, doc in order.parts:
            expected[(INDEX[role], doc_id)] = doc
    latest = _native_statuses(orders)
    for doc_id, (doc, _) in latest.items():
        expected[(INDEX["statuses"], doc_id)] = doc
    return expected


def _expected_versions(records: list[dict]) -> dict[tuple[str, str], int]:
    """(index, id) -> external version of each status document the native loader leaves."""
    latest = _native_statuses(_orders(records))
    return {(INDEX["statuses"], doc_id): version for doc_id, (_, version) in latest.items()}


def _native_statuses(orders: list[documents.Order]) -> dict[str, tuple[dict, int]]:
    """status id -> (document, version) of what the native loader writes for these records'
    orders (their statuses written at once: each order's latest event)."""
    statuses = _native_actions(orders)["statuses"]
    return {doc_id: (doc, line["index"]["version"]) for doc_id, line, doc in statuses}


def test_pipeline_indexes_what_documents_py_produces(logstash):
    run = logstash()
    run.send_records(RECORDS + LIFECYCLE)
    indexed = run.elasticsearch.docs
    expected = _expected(RECORDS + LIFECYCLE)
    orders = _orders(RECORDS + LIFECYCLE)
    statuses = {o.order_id for o in orders if o.status}
    assert len(expected) == sum(1 + len(o.parts) for o in orders) + len(statuses), (
        "every head and every part has its own document id, every order one status"
    )
    assert indexed.keys() == expected.keys()
    for key, doc in expected.items():
        assert indexed[key] == doc, key
        # and the key order of lists matters: products/categories are sorted
        if key[0] == INDEX["orders"]:
            assert indexed[key]["products"] == doc["products"]
    assert run.elasticsearch.versions == _expected_versions(RECORDS + LIFECYCLE)
    assert run.dead_letters == [] and run.dlq == []


def test_an_event_that_is_not_paid_writes_no_order(logstash):
    """A refund, a cancellation or a failure moves money on the ledger only: the order stays
    as its paid event wrote it (or absent, for an order never paid)."""
    run = logstash()
    run.send_records(LIFECYCLE)
    orders_index = {k[1] for k in run.elasticsearch.docs if k[0] == INDEX["orders"]}
    assert orders_index == {str(r["order_id"]) for r in LIFECYCLE if r["event_type"] == "paid"}
    # Net revenue is the ledger's sum: what was paid less what was refunded.
    ledger = [d for (i, _), d in run.elasticsearch.docs.items() if i == INDEX["ledger"]]
    paid = sum(r["total"] for r in LIFECYCLE if r["event_type"] == "paid")
    refunded = sum(r["refund"]["amount"] for r in LIFECYCLE if r["event_type"] == "refunded")
    net = sum(d["amount"] for d in ledger if d["entry"] == "event")
    assert net == pytest.approx(paid - refunded)


def test_each_record_is_written_parts_head_status(logstash):
    """Within a batch each record's parts land before its head, its order's status after it
    (the native loader's order: es_loader.Loader._load)."""
    run = logstash()
    run.send_records(RECORDS + LIFECYCLE)
    landed = {(index, doc_id): n for n, (_, index, doc_id, _) in enumerate(run.elasticsearch.log)}
    for order in _orders(RECORDS + LIFECYCLE):
        head = landed[(INDEX[order.head_role], order.document_id)]
        assert all(landed[(INDEX[role], doc_id)] < head for role, doc_id, _ in order.parts)
        if order.status:
            assert landed[(INDEX["statuses"], str(order.order_id))] > head


def test_pipeline_documents_fit_the_strict_templates(logstash):
    run = logstash()
    run.send_records(RECORDS + LIFECYCLE)
    roles = {v: k for k, v in SETTINGS["indices"].items() if k in TEMPLATES}
    assert {roles[index] for index, _ in run.elasticsearch.docs} == {
        "orders",
        "lines",
        "ledger",
        "statuses",
    }
    for (index, _), doc in run.elasticsearch.docs.items():
        role = roles[index]
        assert set(doc) <= _properties(role), set(doc) - _properties(role)
        assert not any(key.startswith("@") for key in doc)


@pytest.mark.parametrize("records", [RECORDS[:1], LIFECYCLE], ids=["version 1", "lifecycle"])
def test_pipeline_is_idempotent_on_redelivery(logstash, records):
    once, twice = logstash(), logstash()
    once.send_records(records)
    twice.send_records(records + records)  # in one batch
    twice.send_records(records)  # and in a later one
    assert once.elasticsearch.docs == twice.elasticsearch.docs
    assert once.elasticsearch.versions == twice.elasticsearch.versions
    assert twice.dead_letters == [], "a replay is no conflict"
    assert twice.dlq == []


def test_the_latest_event_sets_the_status_whatever_order_they_land_in(logstash):
    """External versions: an order's status is its latest event's (by its offset in
    Topic_Purchase) whether the events come in order, reversed in one batch, or one batch
    each in reverse; an earlier event read again changes nothing."""
    expected = {k: v for k, v in _expected(LIFECYCLE).items() if k[0] == INDEX["statuses"]}
    versions = _expected_versions(LIFECYCLE)
    ordered, reversed_batch, reversed_batches = logstash(), logstash(), logstash()
    ordered.send_records(LIFECYCLE)
    reversed_batch.send_records(LIFECYCLE[::-1])
    for record in LIFECYCLE[::-1]:
        reversed_batches.send_records([record])
    reversed_batches.send_records(LIFECYCLE[:1])
    for run in (ordered, reversed_batch, reversed_batches):
        statuses = {k: v for k, v in run.elasticsearch.docs.items() if k[0] == INDEX["statuses"]}
        assert statuses == expected
        assert run.elasticsearch.versions == versions
        assert run.elasticsearch.docs == ordered.elasticsearch.docs
        assert run.dead_letters == [] and run.dlq == []


def test_a_replay_writes_the_status_its_first_delivery_left_out(logstash):
    """The head is in (an earlier run wrote it, then stopped before the status): a replay
    writes the order's status, as the native loader does for a head it finds."""
    model = VersionedElasticsearch()
    logstash(elasticsearch=model).send_records(LIFECYCLE)
    complete = copy.deepcopy(model.docs)
    for key in [k for k in model.docs if k[0] == INDEX["statuses"]]:
        del model.docs[key]
        del model.versions[key]
    restarted = logstash(elasticsearch=model)
    restarted.send_records(LIFECYCLE)
    assert model.docs == complete
    assert model.versions == _expected_versions(LIFECYCLE)
    assert restarted.dead_letters == [] and restarted.dlq == []


def test_the_first_version_of_an_order_wins_for_its_lines_too(logstash):
    """A different order under an id already loaded, in the same batch or a later one, writes
    nothing (its extra line neither) and is dead-lettered with the loader's reason."""
    first = RECORDS[1]
    again = {
        **first,
        "total": 1.0,
        "order_fingerprint": "fp-other",
        "items": first["items"] + [_sample_item(9, "Extra", "Hats", 1, 1.0)],
    }
    later = {**again, "order_fingerprint": "fp-later"}
    run = logstash()
    run.send_records([first, again])
    run.send_records([later])
    assert _written(run.elasticsearch.docs) == _expected([first])
    reason = documents.conflict_reason(first["order_id"])
    assert [(json.loads(d.value)["order_fingerprint"], r) for d, r in _letters(run)] == [
        ("fp-other", reason),
        ("fp-later", reason),
    ]
    # Each conflict counted once in the data-quality index, with the native loader's document.
    assert _conflicts(run.elasticsearch.docs) == {
        doc_id: doc
        for doc_id, doc in (
            _conflict_document(again, first, offset=1),
            _conflict_document(later, first, offset=2),
        )
    }


def _written(docs: dict) -> dict:
    """The order, line, ledger and status documents (not the data-quality findings)."""
    return {key: doc for key, doc in docs.items() if key[0] != SETTINGS["indices"]["quality"]}


def _conflicts(docs: dict) -> dict:
    """The data-quality documents by id, detected_at left out (the time it was found)."""
    quality = SETTINGS["indices"]["quality"]
    found = {key[1]: dict(doc) for key, doc in docs.items() if key[0] == quality}
    for doc in found.values():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc.pop("detected_at"))
    return found


def _conflict_document(record: dict, kept: dict, offset: int) -> tuple[str, dict]:
    """What the native loader writes for this conflict (Elasticsearch coerces the text of
    partition and offset into the template's integer and long)."""
    order = documents.order_of(json.dumps(record).encode())
    source = (SETTINGS["topics"]["dashboard"], 0, offset)
    doc_id, doc = documents.conflict_document(
        order, kept["order_fingerprint"], es_loader.STAGE, source, "-"
    )
    doc.pop("detected_at")
    return doc_id, {**doc, "source_partition": "0", "source_offset": str(offset)}


def test_the_first_version_of_an_event_wins_for_its_ledger_lines_too(logstash):
    """A different refund under an event id already loaded, in the same batch or a later one,
    writes nothing (its extra line neither, nor its order's status, though its offset is
    later) and is dead-lettered and counted as the loader does: the head of an event that is
    not paid is its ledger document."""
    first = LIFECYCLE[1]
    order = _PAID_2001
    again = {
        **first,
        "order_fingerprint": "fp-other",
        "order_status": "refunded",
        "source_offset": first["source_offset"] + 100,
        "refund": _refund(order, first["refund"]["refund_id"], [(0, 1), (1, 1)]),
    }
    later = {**again, "order_fingerprint": "fp-later", "source_offset": again["source_offset"] + 1}
    run = logstash()
    run.send_records([first, again])
    run.send_records([later])
    assert _written(run.elasticsearch.docs) == _expected([first])
    assert run.elasticsearch.versions == _expected_versions([first])
    reason = documents.conflict_reason(first["order_id"])
    assert [(json.loads(d.value)["order_fingerprint"], r) for d, r in _letters(run)] == [
        ("fp-other", reason),
        ("fp-later", reason),
    ]
    assert _conflicts(run.elasticsearch.docs) == {
        doc_id: doc
        for doc_id, doc in (
            _conflict_document(again, first, offset=1),
            _conflict_document(later, first, offset=2),
        )
    }


def test_an_order_loaded_before_this_logstash_is_found_by_the_lookup(logstash):
    """The memory of recent heads is this process's; an order loaded earlier (by the native
    loader, or before a restart) is found in Elasticsearch."""
    model = VersionedElasticsearch()
    logstash(elasticsearch=model).send_records([RECORDS[0]])
    restarted = logstash(elasticsearch=model)
    restarted.send_records([RECORDS[0], {**RECORDS[0], "order_fingerprint": "fp-new"}])
    assert _written(model.docs) == _expected([RECORDS[0]])
    assert [r for _, r in _letters(restarted)] == [
        documents.conflict_reason(RECORDS[0]["order_id"])
    ]


@pytest.mark.parametrize("kind", ["refunded", "cancelled"])
def test_an_event_loaded_before_this_logstash_is_found_by_the_lookup(logstash, kind):
    """The same for the head of an event that is not paid: found in the ledger index."""
    [record] = [r for r in LIFECYCLE if r["event_type"] == kind][:1]
    model = VersionedElasticsearch()
    logstash(elasticsearch=model).send_records([record])
    restarted = logstash(elasticsearch=model)
    restarted.send_records([record, {**record, "order_fingerprint": "fp-new"}])
    assert _written(model.docs) == _expected([record])
    assert [r for _, r in _letters(restarted)] == [documents.conflict_reason(record["order_id"])]


def test_an_event_id_of_another_event_is_refused_and_writes_nothing(logstash):
    """Ledger ids derive from the event id: one that does not name its own event ("3001" for
    a cancellation of another order, another order's "-paid") would take another event's
    place. Both loaders refuse it with the same reason, and the good record beside it loads."""
    paid = _dashboard_record(3001, [_sample_item(110, "Zebra Socks", "Accessories", 1, 4.5)])
    impostors = [
        {**LIFECYCLE[5], "event_id": "3001"},
        {**_dashboard_record(3002, []), "event_type": "paid", "event_id": "3001-paid"},
    ]
    reason = "event_id does not name this event (<order_id>-<event>)"
    for impostor in impostors:
        with pytest.raises(documents.BadRecord) as caught:
            documents.order_of(json.dumps(impostor).encode())
        assert reason in str(caught.value).split("; ")
    run = logstash()
    run.send_records([paid, *impostors])
    assert run.elasticsearch.docs == _expected([paid])
    assert [dict(d.headers)[dead_letters.REASON] for d in run.dead_letters] == [reason] * 2


def test_pieces_and_lines_leave_the_records_copies_behind(logstash):
    """A split copies its event once per piece or line (split.rb:89, event.clone): the clones
    go without the record's copies in @metadata, so a 5,000-line order does not copy itself
    5,000 times (tests/faults/test_big_order.py)."""
    run = logstash()
    events = [kafka_event(json.dumps(record).encode()) for record in LIFECYCLE[:2]]
    copies = {"tap_record", "tap_original", "tap_stored", "tap_stored_headers", "tap_pieces"}
    kinds = []
    for event in run.pipeline.filter(events):
        kind = event.metadata.get("tap_doc")
        kinds.append(kind)
        if kind is not None:
            assert not copies & set(event.metadata), (kind, copies & set(event.metadata))
    assert {"line", "ledger", "ledger_head", "status", None} == set(kinds)


def test_record_without_items_gives_only_the_order_and_its_ledger_event(logstash):
    record = _dashboard_record(1004, [])
    run = logstash()
    run.send_records([record])
    order = documents.order_of(json.dumps(record).encode())
    assert [role for role, _, _ in order.parts] == ["ledger"]  # the paid event's, no line
    assert run.elasticsearch.docs == _expected([record])
    assert run.elasticsearch.docs[(INDEX["orders"], "1004")] == documents.order_document(record)


def _letters(run: Logstash) -> list[tuple[lc.DeadLetter, str]]:
    return [(d, dict(d.headers)[dead_letters.REASON]) for d in run.dead_letters]


def poison_corpus() -> list[bytes]:
    """Records the loader refuses, one per rule (and a few that pass)."""
    good = RECORDS[0]
    item = good["items"][0]

    def bent(**changes):
        return json.dumps({**good, **changes}).encode()

    def without(*names):
        return json.dumps({k: v for k, v in good.items() if k not in names}).encode()

    return [
        b"hello world",
        b"",
        b"   ",
        b'{"order_id": 5, "items": [',
        b"[1, 2]",
        b'"an order"',
        b"null",
        b"42",
        without("order_id"),
        without("order_fingerprint"),
        bent(order_id="1001"),
        bent(order_id=True),
        bent(order_id=1001.0),
        bent(order_id=2**63),
        bent(order_id=10**30),
        bent(pages_viewed=2**31),
        bent(total="99.90"),
        bent(total=None),
        bent(customer_id=7),
        bent(customer_id={"id": 7}),
        bent(customer_id=["a"]),
        bent(customer_id="ü" * 20_000),
        bent(event_time="24/11/2026 10:00"),
        bent(processed_at="2026-02-30T10:00:00Z"),
        bent(processed_at="2026-03-01T09:15"),
        bent(event_time="2026-03-01T09:15:00+18:00"),  # java.time's last offset: loaded
        bent(event_time="2026-03-01T09:15:00-18:01"),
        bent(event_time="2026-03-01T09:15:00+18:59"),
        bent(processed_at=1700000000000),
        bent(customer={"email": "a@b.c"}),
        bent(extra=1, other=2),
        bent(items=None),
        bent(items=[None]),
        bent(items="tee"),
        bent(items={"0": item}),
        bent(items=[item, 42]),
        bent(items=[{**item, "quantity": "2"}]),
        bent(items=[{**item, "quantity": 2.5}]),
        bent(items=[{**item, "product_name": 5}]),
        bent(items=[{**item, "unit_price": None}]),
        bent(items=[{**item, "extra": 1}]),
        bent(items=[{k: v for k, v in item.items() if k != "sku"}]),
        bent(items=[None] * 25),
        bent(order_id="x", total="y", items=[None]),
        bent(products=[1, 2], source_system=5),
        *_event_corpus(),
    ]


def _event_corpus() -> list[bytes]:
    """Contract v2 records the loader refuses, one per event and refund rule (and those that
    pass): built on a good refund of RECORDS[0]."""
    good = RECORDS[0]
    refunded = _event(good, "refunded", "processing", 13, _refund(good, 7, [(0, 1), (1, 1)]))
    refund, line = refunded["refund"], refunded["refund"]["items"][0]

    def event(*dropped, **changes):
        record = {k: v for k, v in {**refunded, **changes}.items() if k not in dropped}
        return json.dumps(record).encode()

    def refunding(*dropped, **changes):
        return event(refund={k: v for k, v in {**refund, **changes}.items() if k not in dropped})

    def returning(*dropped, **changes):
        lines = [{k: v for k, v in {**line, **changes}.items() if k not in dropped}]
        return refunding(items=lines + refund["items"][1:])

    v1 = json.dumps({**good, "refund": refund}).encode()
    return [
        event(),  # a good refund: loaded
        event("refund", event_type="cancelled", event_id="1001-cancelled"),  # loaded
        event("refund", event_type="failed", event_id="1001-failed", order_status="failed"),
        event("refund", event_type="paid", event_id="1001-paid"),  # loaded, with a status
        event("refund", "event_id", event_type="paid"),  # loaded: "1001-paid"
        event("refund", "event_type"),  # loaded: a paid event under its own id
        event("refund", "event_type", "event_id", "order_status"),  # a version 1 line: loaded
        event("refund", event_type="paid", event_id=None),  # loaded: "1001-paid"
        event("refund", "total", event_type="paid", event_id="1001-paid"),  # no money: refused
        refunding("items"),  # a refund without its lines
        event("refund", "order_status", event_type="paid", event_id="1001-paid"),  # no status
        event(event_type=5),
        event(event_type=None),
        event(event_type="shipped"),
        event(event_type="x" * 50),
        event(event_type="ü" * 20_000),
        event(event_type=["refunded"]),
        event(event_id=7),
        event(event_id=None),
        event("event_id"),
        event("event_id", "refund", event_type="cancelled"),
        event("event_id", "refund", event_type="failed", event_id=None),
        event(event_id="é" * 10_000),  # 20,000 bytes: no _id can be that long
        event(event_id="é" * 128),  # 256 bytes: the longest event id
        event(order_status=["refunded"]),
        event(order_status=True),
        event(order_status="x" * 40_000),
        event("refund"),
        event(refund=None),
        event(event_type="paid"),  # a refund on a paid event
        event(event_type="cancelled"),
        v1,  # a refund on a version 1 line
        event("source_offset"),
        event(source_offset=None),
        event(source_offset=-1),
        event(source_offset="13"),
        event(source_offset=13.0),
        event(source_offset=True),
        event(source_offset=2**63),
        event(source_offset=2**63 - 1),  # the last long: loaded
        event(source_offset=0),  # loaded
        event("order_status", source_offset="13"),  # no status, no version: loaded
        event(refund="all"),
        event(refund=[refund]),
        event(refund={}),
        refunding("refund_id"),
        refunding(refund_id="7"),
        refunding(refund_id=7.0),
        refunding(refund_id=2**63),
        refunding(refund_id=True),
        refunding(amount="1.5"),
        refunding(amount=None),
        refunding(reason=5),
        refunding(reason="r" * 40_000),
        refunding("reason"),
        refunding(extra=1),  # a refund's other fields are not judged: loaded
        refunding(items=[]),  # an amount only: loaded
        refunding(items="tee"),
        refunding(items={"0": line}),
        refunding(items=[None]),
        refunding(items=[line, 42]),
        refunding(items=[None] * 25),
        returning(quantity="1"),
        returning(quantity=1.5),
        returning(quantity=2**31),
        returning(amount="9.95"),
        returning(product_name=5),
        returning(product_id=-1),  # a negative id is a long: loaded
        returning("sku"),
        returning("amount", "quantity"),
        returning(extra=1),  # loaded, as above
        event(event_type="refunded", event_id=None, order_status=1, source_offset="x", refund=[]),
    ]


def native_outcome(value: bytes) -> str | None:
    """The loader's reason for a record, or None when it loads it."""
    try:
        documents.order_of(value)
    except documents.BadRecord as exc:
        return str(exc)
    return None


def test_every_record_gets_the_loaders_verdict_and_reason(logstash):
    """The same corpus through tap_record.rb (a real Ruby) and documents.py: dead-lettered with
    the same reason, or loaded, record by record."""
    corpus = poison_corpus()
    run = logstash()
    for n, value in enumerate(corpus):
        # a fresh order id (and event ids) each, so that good ones are not replays of each other
        if value.startswith(b"{") and b'"order_id": 1001' in value:
            value = value.replace(b'"order_id": 1001', f'"order_id": {5000 + n}'.encode())
            value = value.replace(b'"1001-', f'"{5000 + n}-'.encode())
        before = len(run.dead_letters)
        run.send([value])
        letters = run.dead_letters[before:]
        expected = native_outcome(value)
        if expected is None:
            assert letters == [], value[:80]
        else:
            assert [dict(d.headers)[dead_letters.REASON] for d in letters] == [expected], value[:80]
            assert letters[0].value == value.decode("utf-8")
    assert run.dlq == []


def test_a_dead_letter_has_the_loaders_headers_and_the_record(logstash):
    run = logstash()
    run.offset = 41
    value = json.dumps({**RECORDS[0], "items": [None]}).encode()
    run.send([value])
    [letter] = run.dead_letters
    assert letter.value == value.decode() and letter.key == "1001"
    headers = dict(letter.headers)
    native = dict(
        dead_letters.headers(
            "wrong type for items[0]",
            es_loader.STAGE,
            topic=SETTINGS["topics"]["dashboard"],
            partition=0,
            offset=41,
        )
    )
    assert [k for k, _ in letter.headers] == list(native)
    for key in native:
        if key != dead_letters.TIME:
            assert headers[key] == native[key].decode(), key
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", headers[dead_letters.TIME])


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
