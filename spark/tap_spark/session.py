"""SparkSession builders shared by the jobs, the model training and the tests.

The Kafka connector jars come from TAP_SPARK_JARS (a folder): natively the jars fetched by
`mvn` into .cache/engines, in the compose image the jars baked at build time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession


def _connector_jars() -> str | None:
    folder = os.environ.get("TAP_SPARK_JARS")
    if not folder:
        return None
    jars = sorted(str(p) for p in Path(folder).glob("*.jar"))
    if not jars:
        raise RuntimeError(f"TAP_SPARK_JARS={folder} holds no jars: fetch the engines first.")
    return ",".join(jars)


def local_session(app_name: str, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """A small local session: 2 cores, few shuffle partitions, no UI, UTC session time."""
    # Local mode talks to itself only; this also silences the loopback-hostname warning.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(os.environ.get("TAP_SPARK_MASTER", "local[2]"))
        .config("spark.driver.memory", os.environ.get("TAP_SPARK_DRIVER_MEMORY", "1g"))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Timestamps leave Spark in UTC whatever the machine's zone (shop time is added apart).
        .config("spark.sql.session.timeZone", "UTC")
        # Bad input must give null and a dead letter, never a failed batch: the jobs validate
        # explicitly, so Spark 4's ANSI errors (casts, overflow, parsing) are turned off.
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.driver.extraJavaOptions", "-XX:+UseParallelGC")
    )
    jars = _connector_jars()
    if jars:
        builder = builder.config("spark.jars", jars)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("TAP_SPARK_LOG_LEVEL", "WARN"))
    return session
