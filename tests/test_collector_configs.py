"""Fluent Bit's YAML configuration (fluent-bit.yaml + parsers.yaml), checked without Fluent Bit.

The files must be YAML (classic config is deprecated), use only documented sections and keys,
and say what the design says: tail the orders log with offsets in a db on a volume, from the
head, tag e-commerce.purchase, parsed (JSON) only for the order id, into Kafka
Topic_Purchase keyed by the order id, the line shipped unchanged (raw), no idempotent producer,
unlimited retries, a raised message timeout, flush 1 s. Names come from contracts/settings.toml
and the compose model, not from this file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import compose_model as cm  # noqa: E402

from tapstack import contracts  # noqa: E402
from tests.support import limits  # noqa: E402

FLUENT_DIR = cm.ROOT / "fluent-bit"
CONFIG = yaml.safe_load((FLUENT_DIR / "fluent-bit.yaml").read_text(encoding="utf-8"))
PARSERS = yaml.safe_load((FLUENT_DIR / "parsers.yaml").read_text(encoding="utf-8"))
SETTINGS = cm.settings()

# Keys documented for Fluent Bit's YAML configuration (administration/configuring-fluent-bit/
# yaml: top-level sections and the service section) and for the plugins used here
# (pipeline/inputs/tail, pipeline/filters/type-converter, pipeline/outputs/kafka), plus the
# properties every input/filter/output accepts.
TOP_LEVEL = {
    "env",
    "includes",
    "service",
    "pipeline",
    "parsers",
    "multiline_parsers",
    "plugins",
    "upstream_servers",
    "customs",
}
SERVICE_KEYS = {
    "flush", "grace", "daemon", "dns.mode", "dns.resolver", "dns.prefer_ipv4",
    "dns.prefer_ipv6", "log_file", "log_level", "parsers_file", "plugins_file",
    "streams_file", "http_server", "http_listen", "http_port", "health_check",
    "hc_errors_count", "hc_retry_failure_count", "hc_period", "hot_reload",
    "coro_stack_size", "scheduler.cap", "scheduler.base", "json.convert_nan_to_null",
    "storage.path", "storage.sync", "storage.checksum", "storage.max_chunks_up",
    "storage.backlog.mem_limit", "storage.metrics", "storage.delete_irrecoverable_chunks",
    "storage.type", "storage.inherit",
}  # fmt: skip
COMMON_INPUT = {
    "name",
    "tag",
    "alias",
    "log_level",
    "mem_buf_limit",
    "storage.type",
    "threaded",
    "processors",
}
TAIL_KEYS = COMMON_INPUT | {
    "path", "exclude_path", "buffer_chunk_size", "buffer_max_size", "skip_long_lines",
    "skip_empty_lines", "refresh_interval", "read_from_head", "rotate_wait", "ignore_older",
    "parser", "key", "db", "db.sync", "db.locking", "db.journal_mode", "db.compare_filename",
    "inotify_watcher", "path_key", "offset_key", "multiline.parser", "docker_mode",
    "unicode.encoding", "file_cache_advise", "static_batch_size", "exit_on_eof",
    "truncate_long_lines",  # plugins/in_tail/tail.c:724-727 at v4.2.2
}  # fmt: skip
COMMON_FILTER = {"name", "match", "match_regex", "alias", "log_level"}
TYPE_CONVERTER_KEYS = COMMON_FILTER | {"int_key", "uint_key", "float_key", "str_key"}
# plugins/filter_parser/filter_parser.c:460-481 (v4.2.2): Key_Name, Parser, Preserve_Key,
# Reserve_Data (Unescape_key is deprecated).
PARSER_FILTER_KEYS = COMMON_FILTER | {"key_name", "parser", "preserve_key", "reserve_data"}
COMMON_OUTPUT = {
    "name", "match", "match_regex", "alias", "log_level", "retry_limit", "workers",
    "storage.total_limit_size", "processors",
}  # fmt: skip
KAFKA_KEYS = COMMON_OUTPUT | {
    "format", "message_key", "message_key_field", "timestamp_key", "timestamp_format",
    "brokers", "topics", "topic_key", "dynamic_topic", "queue_full_retries", "raw_log_key",
}  # fmt: skip
PARSER_KEYS = {
    "name", "format", "regex", "time_key", "time_format", "time_keep", "time_strict",
    "time_offset", "time_system_timezone", "types", "decode_field", "decode_field_as",
    "skip_empty_values",
}  # fmt: skip


def _on(value) -> bool:
    """YAML 1.1 (PyYAML) reads on/off as booleans; Fluent Bit reads the words."""
    return value is True or str(value).lower() in {"on", "true", "yes"}


def _one(items: list[dict], name: str) -> dict:
    matching = [item for item in items if item.get("name") == name]
    assert len(matching) == 1, f"expected one {name}, found {len(matching)}"
    return matching[0]


@pytest.fixture(scope="module")
def services() -> dict:
    try:
        return cm.resolved_model("*")["services"]
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))


def test_only_documented_sections_and_service_keys():
    assert set(CONFIG) <= TOP_LEVEL
    assert set(CONFIG["service"]) <= SERVICE_KEYS, set(CONFIG["service"]) - SERVICE_KEYS
    assert set(CONFIG["pipeline"]) <= {"inputs", "filters", "outputs"}


def test_service_flushes_every_second_and_exposes_health():
    service = CONFIG["service"]
    assert float(service["flush"]) == 1
    assert _on(service["http_server"]) and _on(service["health_check"])


def test_health_check_of_compose_hits_the_configured_endpoint(services):
    service = CONFIG["service"]
    fluent = services["fluent-bit"]
    kind, binary, *args = fluent["healthcheck"]["test"]
    # Fluent Bit registers GET /api/v1/health on its HTTP server and answers 200 "ok" or 500
    # "error" (fluent/fluent-bit v4.2.2 src/http_server/api/v1/health.c:301-328); the server
    # listens on http_listen:http_port once http_server is on (include/fluent-bit/
    # flb_config.h:383-389 name these service keys).
    assert args[-1] == f"http://{service['http_listen']}:{service['http_port']}/api/v1/health"
    # curl, not wget: the -debug image is Debian trixie-slim and installs curl but neither
    # wget nor busybox (dockerfiles/Dockerfile:216, :257-268 at v4.2.2). -f turns the 500
    # into a failing exit status.
    assert (kind, binary) == ("CMD", "curl")
    assert binary in cm.IMAGE_BINARIES[fluent["image"]], "the table of what the image ships"
    assert "--fail" in args or any(re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*", a) for a in args)
    # The plain image is distroless, with no curl and no shell (dockerfiles/Dockerfile:185).
    assert fluent["image"].endswith("-debug"), "only the -debug image ships curl"


def test_tail_input_reads_the_orders_log_through_the_json_parser(services):
    tail = _one(CONFIG["pipeline"]["inputs"], "tail")
    assert set(tail) <= TAIL_KEYS, set(tail) - TAIL_KEYS
    assert tail["tag"] == "e-commerce.purchase"
    assert tail["path"] == f"/var/log/tap/{SETTINGS['shop']['log_name']}"
    assert tail["path"] == services["wp-setup"]["environment"]["TAP_ORDER_LOG_PATH"]
    assert _on(tail["read_from_head"])
    # No parser on the input: the line stays whole under `log` (in_tail's `key` defaults to
    # "log", plugins/in_tail/tail.c:587 at v4.2.2) and the parser filter adds the parsed keys.
    assert "parser" not in tail and "key" not in tail
    [parse] = [f for f in CONFIG["pipeline"]["filters"] if f["name"] == "parser"]
    assert set(parse) <= PARSER_FILTER_KEYS, set(parse) - PARSER_FILTER_KEYS
    assert parse["match"] == tail["tag"] and parse["key_name"] == "log"
    # preserve_key keeps `log`, reserve_data the rest (filter_parser.c:473-481).
    assert _on(parse["preserve_key"]) and _on(parse["reserve_data"])
    parser = _one(PARSERS["parsers"], parse["parser"])
    assert parser["format"] == "json"
    # Without time_keep a time_key would remove `timestamp` from the record.
    assert "time_key" not in parser or _on(parser.get("time_keep"))


def test_parsers_file_is_yaml_and_mounted_where_the_service_looks(services):
    assert set(PARSERS) == {"parsers"}
    for parser in PARSERS["parsers"]:
        assert set(parser) <= PARSER_KEYS
    mounts = {v["target"]: v for v in services["fluent-bit"]["volumes"]}
    parsers_file = CONFIG["service"]["parsers_file"]
    assert parsers_file.endswith(".yaml")
    assert Path(mounts[parsers_file]["source"]) == FLUENT_DIR / "parsers.yaml"
    command = services["fluent-bit"]["command"]
    config_path = command[command.index("-c") + 1]
    assert Path(mounts[config_path]["source"]) == FLUENT_DIR / "fluent-bit.yaml"
    assert mounts[config_path]["read_only"] and mounts[parsers_file]["read_only"]


def test_offsets_and_buffers_live_on_a_volume(services):
    tail = _one(CONFIG["pipeline"]["inputs"], "tail")
    volumes = [v for v in services["fluent-bit"]["volumes"] if v["type"] == "volume"]
    state = [v for v in volumes if tail["db"].startswith(v["target"] + "/")]
    assert state and state[0]["source"] == "fluent-bit-state" and not state[0].get("read_only")
    assert CONFIG["service"]["storage.path"].startswith(state[0]["target"] + "/")
    assert tail["storage.type"] == "filesystem"
    log = [v for v in volumes if tail["path"].startswith(v["target"] + "/")]
    assert log and log[0]["source"] == "orders-log" and log[0]["read_only"]


def test_kafka_output_writes_topic_purchase_keyed_by_order_id(services):
    [tail] = CONFIG["pipeline"]["inputs"]
    kafka = _one(CONFIG["pipeline"]["outputs"], "kafka")
    assert set(kafka) <= KAFKA_KEYS | {k for k in kafka if k.startswith("rdkafka.")}
    assert kafka["match"] == tail["tag"]
    assert kafka["topics"] == SETTINGS["topics"]["purchase"]
    assert kafka["brokers"] == cm.KAFKA_INTERNAL_BOOTSTRAP
    assert services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].startswith(
        f"INTERNAL://{kafka['brokers']}"
    )
    # The line goes out as written, so Spark judges the same bytes on both paths (a repeated key
    # is dead-lettered on both): format raw sends only raw_log_key's value (plugins/out_kafka/
    # kafka_config.c:130-131, kafka.c:221-225 and :364-371 at v4.2.2).
    assert kafka["format"] == "raw" and kafka["raw_log_key"] == "log"
    filters = [f["name"] for f in CONFIG["pipeline"]["filters"]]
    assert filters.index("parser") < filters.index("type_converter")
    # out_kafka only takes a string field as the message key, and order_id is an integer:
    # the key field must be the string copy the type_converter filter makes of order_id.
    [converter] = [f for f in CONFIG["pipeline"]["filters"] if f["name"] == "type_converter"]
    assert set(converter) <= TYPE_CONVERTER_KEYS
    assert converter["match"] == tail["tag"]
    source, target, kind = converter["int_key"].split()
    assert (source, target, kind) == ("order_id", kafka["message_key_field"], "string")
    # message_key_field is looked up in every format, raw included (kafka.c:212-218).


LONGEST_KEY = len(str(2**63 - 1))  # an order id as text


def test_a_long_line_is_cut_as_the_native_tailer_cuts_it_and_the_cut_reaches_kafka():
    """With truncate_long_lines, a line that fills buffer_max_size without its newline is
    shipped as its first buffer_max_size - 1 bytes and the rest skipped to the newline
    (plugins/in_tail/tail_file.c:571-603 and :626-631 at v4.2.2): the native tailer's cut at
    contracts.longest_shipped_line(). skip_long_lines stays on for when no cut is made
    (:1639-1655); without it the whole file would stop being read (:1640-1643)."""
    [tail] = CONFIG["pipeline"]["inputs"]
    assert _on(tail["truncate_long_lines"]) and _on(tail["skip_long_lines"])
    buffer = limits.fluent_size(tail["buffer_max_size"])
    assert buffer == SETTINGS["collector"]["line_buffer_bytes"]
    assert buffer - 1 == contracts.longest_shipped_line()
    assert limits.fluent_size(tail["buffer_chunk_size"]) <= buffer
    # The cut goes out whole: out_kafka does not retry a message librdkafka refused for its
    # size (plugins/out_kafka/kafka.c:421-465), so it must never be too large.
    assert "rdkafka.message.max.bytes" not in CONFIG["pipeline"]["outputs"][0]
    cut_message = buffer - 1 + LONGEST_KEY + limits.RDKAFKA_V2_MAX_OVERHEAD
    assert cut_message <= limits.RDKAFKA_MESSAGE_MAX_BYTES


def test_kafka_output_is_at_least_once_without_idempotence():
    kafka = _one(CONFIG["pipeline"]["outputs"], "kafka")
    assert kafka["rdkafka.enable.idempotence"] in (False, "false")
    assert int(kafka["rdkafka.message.timeout.ms"]) >= 600_000  # default is 300 000
    assert (
        str(kafka["retry_limit"]).lower() in {"no_limits", "false", "off"}
        or kafka["retry_limit"] is False
    )
    assert str(kafka["rdkafka.request.required.acks"]) in {"-1", "all"}


def test_no_classic_config_left_behind():
    assert not list(FLUENT_DIR.glob("*.conf")), "classic Fluent Bit config is deprecated: YAML only"


# The SASL values Fluent Bit takes from its environment (src/flb_env.c:231-279 at v4.2.2).
SASL_PLACEHOLDERS = {
    "rdkafka.sasl.username": "${TAP_KAFKA_USER}",
    "rdkafka.sasl.password": "${TAP_KAFKA_PASSWORD}",
}


def test_yaml_values_have_no_placeholders_but_the_kafka_login():
    text = (FLUENT_DIR / "fluent-bit.yaml").read_text(encoding="utf-8")
    found = sorted(re.findall(r"\$\{[^}]+\}", text))
    assert found == sorted(SASL_PLACEHOLDERS.values()), "every other value is literal"


def test_fluent_bit_logs_in_as_the_collector_with_its_secret_only(services):
    """SASL/SCRAM with the collector's user of contracts/security.toml; the password comes from
    the collector's secret file, exported by secrets-env (Fluent Bit reads no password file)."""
    kafka = _one(CONFIG["pipeline"]["outputs"], "kafka")
    security = contracts.security()["kafka"]
    assert kafka["rdkafka.security.protocol"] == "SASL_PLAINTEXT"
    # librdkafka's property is sasl.mechanisms (CONFIGURATION.md, alias sasl.mechanism).
    assert kafka["rdkafka.sasl.mechanisms"] == security["mechanism"]
    for key, value in SASL_PLACEHOLDERS.items():
        assert kafka[key] == value
    service = services["fluent-bit"]
    assert service["environment"]["TAP_KAFKA_USER"] == security["users"]["collector"]
    assert "TAP_KAFKA_PASSWORD" not in service["environment"]
    secrets = {s["target"]: s["source"] for s in service["secrets"]}
    collector = security["password_variables"]["collector"]
    assert secrets == {"TAP_KAFKA_PASSWORD": collector}, "its own password, nothing else"
    assert service["command"][:2] == ["/bin/sh", "/tap/secrets-env"]
