"""Two leaks of issue 16, tried as an attacker would, on process_orders' real transform.

1. Nothing downstream confirms a guessed e-mail: every string of a Topic_Analysis record is
   held against every unkeyed hash of what the attacker can rebuild from a correct guess.
   (The behaviour job only adds its prediction; Elasticsearch gets a subset of the record.)
2. The HMAC key stays out of plans and logs, and only process_orders is given it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from tap_spark.hashing import _pads, fingerprint_key
from tap_spark.orders import Rules, enrich, parse_lines
from tap_spark.process_orders import to_records
from tap_spark.schemas import CARRIED_ORDER_FIELDS
from tapstack.simulator import Simulator, format_line

pytestmark = pytest.mark.spark

# Shaped like the key the native stack generates (secrets.token_hex(32)).
KEY = hashlib.sha256(b"tap privacy-leak test key").hexdigest()
RULES = Rules.from_settings()


def _order() -> dict:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    event = next(iter(Simulator(seed=11, start=start).orders(1))).event
    # Mixed case, so that hashes of the raw and of the normalised address differ.
    event["customer"]["email"] = "Giulia.Rossi@Example.IT"
    return event


def _frame(spark, lines: list[str]):
    return spark.createDataFrame(
        [(None, line.encode(), "Topic_Purchase", 0, i) for i, line in enumerate(lines)],
        "key binary, value binary, topic string, partition int, offset long",
    )


def _analysis_records(spark, lines: list[str], key: str = KEY) -> list[tuple[str, dict]]:
    """(Kafka key, parsed value) of each Topic_Analysis record the transform writes."""
    out = to_records(enrich(parse_lines(_frame(spark, lines), RULES), RULES, key))
    rows = sorted(out.collect(), key=lambda r: json.loads(r.value)["source_offset"])
    assert all(row.topic == "Topic_Analysis" for row in rows)
    return [(row.key.decode(), json.loads(row.value)) for row in rows]


def _canonical(order):
    """What the fingerprint is computed over (the order as Spark serialises it)."""
    return F.to_json(F.struct(*[order[n] for n in CARRIED_ORDER_FIELDS], order["customer"]))


def _scalars(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [str(value)]


# -- 1. the guessed e-mail ----------------------------------------------------------------------


def _attacker_messages(spark, event: dict) -> list[bytes]:
    """What an attacker who guessed the e-mail right (and knows the rest of the order, which
    the record gives away) can hash: the address in its usual forms, the log line in the
    plugin's bytes, other JSON spellings, and the order as this code serialises it."""
    email = event["customer"]["email"]
    forms = {email, email.lower(), email.strip().lower(), email.upper()}
    line = format_line(event)
    texts = [
        *forms,
        line,
        line.rstrip("\n"),
        json.dumps(event),
        json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        json.dumps(event["customer"], separators=(",", ":"), ensure_ascii=False),
        json.dumps(event["customer"]),
    ]
    order = F.col("order")
    spark_forms = (
        parse_lines(_frame(spark, [line.rstrip("\n")]), RULES)
        .select(_canonical(order), F.to_json(order), F.to_json(order["customer"]))
        .first()
    )
    return [t.encode() for t in [*texts, *spark_forms]]


def _unkeyed_hashes(spark, messages: list[bytes]) -> tuple[set[str], set[str]]:
    """(digests in hex and base64, integer hashes as text) of every message."""
    digests = set()
    for message in messages:
        for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256"):
            digest = hashlib.new(name, message).digest()
            digests |= {digest.hex(), base64.b64encode(digest).decode()}
            digests.add(base64.urlsafe_b64encode(digest).decode().rstrip("="))
        for name in ("blake2b", "blake2s"):
            digests.add(hashlib.new(name, message).hexdigest())
    # Spark's own non-cryptographic hashes, which an attacker with Spark would try too.
    frame = spark.createDataFrame([(m.decode(),) for m in messages], "m string")
    ints = frame.select(F.xxhash64("m"), F.hash("m"), F.crc32(F.encode("m", "UTF-8"))).collect()
    return digests, {str(v) for row in ints for v in row}


def _confirmations(values: list[str], digests: set[str], ints: set[str]) -> list[str]:
    found = []
    for value in values:
        lowered = value.lower()
        found += [value for d in digests if d.lower() in lowered or d in value]
        if value in ints:
            found.append(value)
    return found


def test_no_downstream_value_confirms_a_guessed_email(spark):
    event = _order()
    line = format_line(event).rstrip("\n")
    [(kafka_key, record)] = _analysis_records(spark, [line])
    assert record["order_fingerprint"] and record["customer_id"]
    downstream = [kafka_key, *_scalars(record)]
    digests, ints = _unkeyed_hashes(spark, _attacker_messages(spark, event))

    assert _confirmations(downstream, digests, ints) == []

    # The attack is not blind: the fingerprint as it was built before (a plain SHA-256 of the
    # order) is found by it.
    old = (
        parse_lines(_frame(spark, [line]), RULES)
        .select(F.sha2(_canonical(F.col("order")), 256))
        .first()[0]
    )
    assert _confirmations([old], digests, ints) == [old]
    # And the message it rebuilt is the one hashed: with the key, which it lacks, it gets
    # the fingerprint and the customer id.
    canonical = (
        parse_lines(_frame(spark, [line]), RULES).select(_canonical(F.col("order"))).first()[0]
    )
    keyed = hmac.new(fingerprint_key(KEY), canonical.encode(), hashlib.sha256).hexdigest()
    assert record["order_fingerprint"] == keyed
    email = event["customer"]["email"].strip().lower().encode()
    assert record["customer_id"] == hmac.new(KEY.encode(), email, hashlib.sha256).hexdigest()


def test_the_fingerprint_still_tells_a_replay_from_a_changed_order(spark):
    event = _order()
    other_email = copy.deepcopy(event)
    other_email["customer"]["email"] = "giulia.rossi@example.it"
    other_item = copy.deepcopy(event)
    other_item["items"][0]["sku"] += "-B"
    lines = [format_line(e).rstrip("\n") for e in (event, event, other_email, other_item)]
    prints = [record["order_fingerprint"] for _, record in _analysis_records(spark, lines)]
    assert prints[0] == prints[1]
    assert len(set(prints[1:])) == 3
    # A new key gives new fingerprints (and customer ids): nothing is comparable across keys.
    [(_, rekeyed)] = _analysis_records(spark, lines[:1], key=KEY[::-1])
    assert rekeyed["order_fingerprint"] != prints[0]


# -- 2. the key in plans and logs ---------------------------------------------------------------


def _secrets(key: str) -> dict[str, bytes]:
    """The key and everything a plan could print of it: the derived key and the padded keys."""
    keys = {"key": key.encode(), "fingerprint key": fingerprint_key(key)}
    found = dict(keys)
    for name, value in keys.items():
        found[f"{name}, inner pad"], found[f"{name}, outer pad"] = _pads(value)
    return found


def _encodings(secret: bytes) -> set[str]:
    """Hex, base64, as characters, as a byte list; whole and the first 16 bytes (in case a
    long value is cut short when printed)."""
    forms = set()
    for part in (secret, secret[:16]):
        forms |= {
            part.hex(),
            base64.b64encode(part).decode(),
            base64.urlsafe_b64encode(part).decode().rstrip("="),
            part.decode("latin-1"),
            ", ".join(str(b - 256 if b > 127 else b) for b in part),
            ", ".join(str(b) for b in part),
        }
    return forms


def _key_traces(text: str, key: str = KEY) -> list[str]:
    """The names of the secrets of which some encoding appears in text."""
    lowered = text.lower()
    return [
        name
        for name, secret in _secrets(key).items()
        if any(form in text or form.lower() in lowered for form in _encodings(secret))
    ]


def test_no_plan_of_the_transform_shows_the_key(spark, capsys):
    out = to_records(enrich(parse_lines(_frame(spark, [format_line(_order())]), RULES), RULES, KEY))
    out.collect()
    execution = out._jdf.queryExecution()
    texts = [execution.toString(), execution.executedPlan().toString()]
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        out.explain(mode=mode)
    texts.append(capsys.readouterr().out)
    assert _key_traces("\n".join(texts)) == []
    assert "scalar-subquery" in texts[0]

    # The same search finds the key in a plan that holds it as a literal, as it did before.
    inner_pad, _ = _pads(KEY.encode())
    literal = out.select(F.sha2(F.concat(F.lit(inner_pad), F.col("value")), 256))
    assert _key_traces(literal._jdf.queryExecution().toString()) == ["key, inner pad"]


def test_a_query_that_fails_to_analyse_names_no_key(spark):
    enriched = enrich(parse_lines(_frame(spark, [format_line(_order())]), RULES), RULES, KEY)
    with pytest.raises(AnalysisException) as failure:
        enriched.select("customer_id", "no_such_column").collect()
    message = str(failure.value) + failure.value.getMessage()
    assert "no_such_column" in message
    assert _key_traces(message) == []


# The production trigger (real-time mode) on the in-memory source Spark ships for it, so that
# the query runs without Kafka; it fails on its first record, after the HMACs are computed.
_FAILING_JOB = """
import os, sys
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from tap_spark.kafka_io import _real_time
from tap_spark.orders import Rules, enrich, parse_lines
from tap_spark.process_orders import NAME, to_records
from tap_spark.session import local_session

spark = local_session(NAME)
jvm = spark._jvm
source = jvm.org.apache.spark.sql.execution.streaming.LowLatencyMemoryStream.apply(
    1, jvm.org.apache.spark.sql.Encoders.STRING(), spark._jsparkSession
)
records = DataFrame(source.toDF(), spark).select(
    F.lit(None).cast("binary").alias("key"),
    F.col("value").cast("binary").alias("value"),
    F.lit("Topic_Purchase").alias("topic"),
    F.lit(0).alias("partition"),
    F.lit(0).cast("long").alias("offset"),
)
rules = Rules.from_settings()
out = to_records(enrich(parse_lines(records, rules), rules, os.environ["TAP_CUSTOMER_KEY"]))
failing = out.withColumn(
    "check", F.when(F.length("value") > 0, F.raise_error(F.lit("injected failure")))
)
writer = (
    failing.writeStream.format("console")
    .option("checkpointLocation", sys.argv[1])
    .outputMode("update")
)
query = _real_time(spark, writer, "5 seconds").start()
lines = jvm.java.util.ArrayList()
lines.add(sys.stdin.read())
source.addData(jvm.scala.jdk.javaapi.CollectionConverters.asScala(lines))
query.awaitTermination(180)
"""


def test_a_failed_streaming_query_logs_no_key(tmp_path):
    """The job's whole output, as the stack writes it to logs/process_orders.log."""
    script = tmp_path / "failing_job.py"
    script.write_text(_FAILING_JOB)
    log = tmp_path / "process_orders.log"
    with open(log, "wb") as out:
        finished = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "checkpoint")],
            input=format_line(_order()).rstrip("\n").encode(),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TAP_CUSTOMER_KEY": KEY},
            timeout=300,
        )
    text = log.read_text(errors="replace")
    assert finished.returncode != 0, text[-2000:]
    assert "injected failure" in text
    # The failure printed the query's plan, with the hashing in it: a literal key would be here.
    assert "Logical Plan:" in text and "sha2(concat(" in text
    assert _key_traces(text) == []


# -- the key reaches process_orders only ----------------------------------------------------------


def test_only_process_orders_is_given_the_customer_key(tmp_path, monkeypatch):
    """What each pipeline process would really be started with, the stack's own environment
    included (TAP_CUSTOMER_KEY set there is the documented override)."""
    from tapstack.native import processes
    from tapstack.native import stack as native_stack

    monkeypatch.setattr(native_stack, "RUN_ROOT", tmp_path)
    monkeypatch.delenv("TAP_SECRETS_DIR", raising=False)
    monkeypatch.setenv("TAP_CUSTOMER_KEY", KEY)
    started: dict[str, dict] = {}

    class NotStarted(Exception):
        pass

    def record(argv, **kwargs):
        started[current] = kwargs["env"]
        raise NotStarted

    monkeypatch.setattr(processes.subprocess, "Popen", record)
    stack = native_stack.Stack("privacy-test")
    for current in native_stack.PIPELINE:
        with pytest.raises(NotStarted):
            stack.start_process(current)

    given = {name for name, env in started.items() if "TAP_CUSTOMER_KEY" in env}
    assert set(started) == set(native_stack.PIPELINE)
    assert given == {"process_orders"}
    assert started["process_orders"]["TAP_CUSTOMER_KEY"] == KEY
