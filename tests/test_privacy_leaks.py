"""Leaks of issue 16, tried as an attacker would, on process_orders' real transform.

The HMAC key stays out of plans and logs, and only process_orders is given it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from tap_spark.hashing import _pads
from tap_spark.orders import Rules, enrich, parse_lines
from tap_spark.process_orders import to_records
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


# -- the key in plans and logs ---------------------------------------------------------------


def _secrets(key: str) -> dict[str, bytes]:
    """The key and everything a plan could print of it: the padded keys."""
    keys = {"key": key.encode()}
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
