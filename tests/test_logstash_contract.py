"""The Logstash pipeline, held against tapstack/loader/documents.py, the templates and settings.

logstash/pipeline/tap.conf is parsed with a grammar of the documented Logstash configuration
language (tests/tools/logstash_config.py), then checked setting by setting and, end to end,
by pushing Topic_Dashboard records through its filters (its ruby scripts with a real Ruby) and
outputs, batch by batch, against a model of Elasticsearch: the documents written must be
documents.py's, and every record must get the native loader's verdict (loaded, a replay, a
conflict, or dead-lettered with the loader's reason and headers). tests/test_loader_parity.py
does the same against the real Elasticsearch, beside the real loader. Each setting a test relies
on is cited to the plugin's source (its repository, file and line). Expected values are derived
from documents.py, the order schema and the index templates wherever possible.
"""

from __future__ import annotations

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
    for role in ("orders", "lines", "quality")
}
ORDER_SCHEMA = json.loads((cm.ROOT / "contracts" / "order.schema.json").read_text("utf-8"))
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
    [lookup] = config.plugins("filter", "http")
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
    # Deleting documents only on lines: the native loader takes back a refused order's lines.
    deleting = [grant["names"] for grant in role["indices"] if "delete" in grant["privileges"]]
    assert deleting == [["lines"]]
    assert set(role["cluster"]) == {"monitor"}
    for output in config.plugins("output", "elasticsearch"):
        assert output.get("manage_template") == lc.Bareword("false")
        assert output.get("ilm_enabled") == "false"
        assert output.get("data_stream") == "false"
        assert output.get("action") == "create"


def test_outputs_are_the_two_indices_and_the_dead_letter_topic(config):
    outputs = config.plugins("output")
    assert [o.name for o in outputs] == ["elasticsearch", "kafka", "elasticsearch", "elasticsearch"]
    [dead_letter] = config.plugins("output", "kafka")
    assert dead_letter.get("topic_id") == SETTINGS["topics"]["dead_letter"]
    assert dead_letter.get("acks") == "all"
    assert dead_letter.get("retries") is None  # unset: retried until Kafka takes it
    writers = config.plugins("output", "elasticsearch")
    assert sorted(o.get("index") for o in writers) == sorted(
        SETTINGS["indices"].get(r) for r in ("orders", "lines", "quality")
    )
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
        # A 409 (a replay) is expected: not logged as a failure (api_configs.rb:128).
        assert output.get("silence_errors_in_log") == ["version_conflict_engine_exception"]


def test_lines_are_written_before_their_order(config):
    """All or nothing, as far as Logstash can: an order becomes visible after its lines.
    Logstash hands a batch to its outputs one after the other, in the order of the config:
    logstash-core CompiledPipeline.java:496-506 (compileOutputs: one dataset per output leaf of
    the graph, whose vertices are a LinkedHashSet kept in insertion order, Graph.java:38) and
    DatasetCompiler.java:223-246 (terminalOutputDataset computes each in turn); the
    elasticsearch output returns only once the batch is written or dead-lettered
    (common.rb, retrying_submit)."""
    order = [o.get("index") for o in config.plugins("output", "elasticsearch")]
    order = [i for i in order if i in (SETTINGS["indices"]["lines"], SETTINGS["indices"]["orders"])]
    assert order == [SETTINGS["indices"]["lines"], SETTINGS["indices"]["orders"]]


def test_write_actions_are_the_native_loaders(config):
    """The first version wins, for orders and lines alike: both are created, never rewritten
    (action: lib/logstash/outputs/elasticsearch.rb:103-114)."""
    actions = {o.get("index"): o.get("action") for o in config.plugins("output", "elasticsearch")}
    assert actions == {
        SETTINGS["indices"]["orders"]: es_loader.ACTION,
        SETTINGS["indices"]["lines"]: es_loader.ACTION,
        SETTINGS["indices"]["quality"]: es_loader.ACTION,
    }
    assert es_loader.ACTION == "create"


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


def test_the_stored_order_is_looked_up_as_the_loader_does(config):
    """A realtime multi-get of the order id in the orders index (the loader's
    _stored_fingerprints): logstash-filter-http lib/logstash/filters/http.rb:25-40 (url, verb,
    query, body, body_format, target_body/target_headers), :59-100 (sprintf'd; a non-2xx or no
    answer tags _httprequestfailure); user/password, automatic_retries and
    retry_non_idempotent from logstash-mixin-http_client lib/logstash/plugin_mixins/
    http_client.rb:72-75,147-150."""
    [lookup] = config.plugins("filter", "http")
    assert lookup.get("verb") == "POST"
    assert lookup.get("url").endswith(f"/{SETTINGS['indices']['orders']}/_mget")
    assert lookup.get("body") == {"ids": ["%{order_id}"]} and lookup.get("body_format") == "json"
    assert lookup.get("query")["realtime"] == "true"
    assert lookup.get("query")["_source_includes"] == "order_fingerprint"
    assert lookup.get("retry_non_idempotent") == lc.Bareword("true")


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
    assert set(dropped) == set(documents._NOT_ON_ORDER)
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


def test_source_system_is_the_loaders(config):
    replaces = [
        p.get("replace")
        for p in config.plugins("filter", "mutate")
        if p.get("replace") and p.get("id") != "tap_conflict_fields"
    ]
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


def test_the_ruby_tables_are_the_templates_and_the_loaders_rules(ruby_constants):
    """tap_record.rb holds the templates' types as a table (the Logstash container has no copy
    of kibana/); it must be the templates' and the rest of documents.py's constants."""
    orders = {k: v["type"] for k, v in _mapping("orders").items()}
    lines = {k: v["type"] for k, v in _mapping("lines").items()}
    assert ruby_constants["ORDER_TYPES"] == orders
    assert ruby_constants["ITEM_TYPES"] == [
        [field, lines[line_field]] for field, line_field in documents._LINE_FIELDS.items()
    ]
    assert ruby_constants["NOT_ON_ORDER"] == list(documents._NOT_ON_ORDER)
    assert ruby_constants["DERIVED"] == list(documents._DERIVED)
    assert ruby_constants["REQUIRED"] == list(documents.REQUIRED)
    assert ruby_constants["MAX_REASONS"] == documents.MAX_REASONS
    assert ruby_constants["KEYWORD_MAX_BYTES"] == documents.KEYWORD_MAX_BYTES
    assert ruby_constants["RANGES"] == documents._RANGES
    assert ruby_constants["DATE"] == documents._DATE.pattern.replace("\\Z", "\\z")


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
    names += ["MAX_REASONS", "KEYWORD_MAX_BYTES", "RANGES"]
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


class Logstash:
    """The pipeline run over batches of records against an Elasticsearch (a model, or a
    real one behind the same two calls)."""

    def __init__(self, config, tmp_path, elasticsearch=None, env=None, batch_size=None):
        self.elasticsearch = elasticsearch or lc.ModelElasticsearch()
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
            done = lc.deliver(self.pipeline, batch, self.elasticsearch)
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
    expected = {}
    for record in records:
        expected[(SETTINGS["indices"]["orders"], documents.order_document_id(record))] = (
            documents.order_document(record)
        )
        for doc_id, line in documents.line_documents(record):
            expected[(SETTINGS["indices"]["lines"], doc_id)] = line
    return expected


def test_pipeline_indexes_what_documents_py_produces(logstash):
    run = logstash()
    run.send_records(RECORDS)
    indexed = run.elasticsearch.docs
    sent = sum(1 + len(r["items"]) for r in RECORDS)
    assert len(indexed) == sent, "every order and every line has its own document id"
    expected = _expected(RECORDS)
    assert indexed.keys() == expected.keys()
    for key, doc in expected.items():
        assert indexed[key] == doc, key
        # and the key order of lists matters: products/categories are sorted
        if key[0] == SETTINGS["indices"]["orders"]:
            assert indexed[key]["products"] == doc["products"]
    assert run.dead_letters == [] and run.dlq == []


def test_pipeline_documents_fit_the_strict_templates(logstash):
    run = logstash()
    run.send_records(RECORDS)
    for (index, _), doc in run.elasticsearch.docs.items():
        role = {v: k for k, v in SETTINGS["indices"].items() if k in TEMPLATES}[index]
        assert set(doc) <= _properties(role), set(doc) - _properties(role)
        assert not any(key.startswith("@") for key in doc)


def test_pipeline_is_idempotent_on_redelivery(logstash):
    once, twice = logstash(), logstash()
    once.send_records(RECORDS[:1])
    twice.send_records(RECORDS[:1] + RECORDS[:1])  # in one batch
    twice.send_records(RECORDS[:1])  # and in a later one
    assert once.elasticsearch.docs == twice.elasticsearch.docs
    assert twice.dead_letters == [], "a replay is no conflict"


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
    """The order and line documents (not the data-quality findings)."""
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


def test_an_order_loaded_before_this_logstash_is_found_by_the_lookup(logstash):
    """The memory of recent orders is this process's; an order loaded earlier (by the native
    loader, or before a restart) is found in Elasticsearch."""
    model = lc.ModelElasticsearch()
    logstash(elasticsearch=model).send_records([RECORDS[0]])
    restarted = logstash(elasticsearch=model)
    restarted.send_records([RECORDS[0], {**RECORDS[0], "order_fingerprint": "fp-new"}])
    assert _written(model.docs) == _expected([RECORDS[0]])
    assert [r for _, r in _letters(restarted)] == [
        documents.conflict_reason(RECORDS[0]["order_id"])
    ]


def test_record_without_items_gives_only_the_order(logstash):
    record = _dashboard_record(1004, [])
    run = logstash()
    run.send_records([record])
    assert list(run.elasticsearch.docs) == [(SETTINGS["indices"]["orders"], "1004")]
    assert run.elasticsearch.docs[(SETTINGS["indices"]["orders"], "1004")] == (
        documents.order_document(record)
    )


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
        # a fresh order id each, so that good ones are not replays of each other
        if value.startswith(b"{") and b'"order_id": 1001' in value:
            value = value.replace(b'"order_id": 1001', f'"order_id": {5000 + n}'.encode())
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
