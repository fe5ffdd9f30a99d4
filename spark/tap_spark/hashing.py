"""HMAC-SHA256 as Spark SQL expressions, so customer ids need no Python UDF (real-time mode
runs none), and with the key kept out of every plan.

HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) with H = SHA-256 and a 64-byte block. The two
padded keys are computed here once; Spark only concatenates and hashes.

The padded keys are not literals: a literal is printed in every plan, and a failed streaming
query writes its plan into the job's log. They sit in a one-row local table that scalar
subqueries read; a plan shows `scalar-subquery#n` and `LocalRelation [...]`, never the bytes.
Spark runs the subqueries once per batch and then inlines their values, so a row costs what
it cost with literals.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StructField, StructType

_BLOCK = 64
_FINGERPRINT_CONTEXT = b"tap order_fingerprint v1"


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def fingerprint_key(customer_key: str) -> bytes:
    """The order fingerprint's key, derived from the customer key: still one secret to keep,
    and the two HMACs under different keys (an e-mail spelling an order's JSON would
    otherwise hash to that order's fingerprint)."""
    return hmac.new(customer_key.encode("utf-8"), _FINGERPRINT_CONTEXT, hashlib.sha256).digest()


@dataclass(frozen=True)
class KeyedHash:
    """HMAC-SHA256 under one key, whose padded forms are columns that are no literals."""

    inner_pad: Column
    outer_pad: Column

    def hex(self, message: Column) -> Column:
        """Lower-case hex HMAC-SHA256 of a string column (UTF-8)."""
        inner = F.unhex(F.sha2(F.concat(self.inner_pad, F.encode(message, "UTF-8")), 256))
        return F.sha2(F.concat(self.outer_pad, inner), 256)


def _local_table(spark: SparkSession, values: dict[str, bytes]) -> DataFrame:
    """One row of binary columns as a LocalRelation, built in the JVM. PySpark's
    createDataFrame would give an RDD scan, which costs a Spark job each batch."""
    jvm = spark.sparkContext._jvm
    schema = StructType([StructField(name, BinaryType(), False) for name in values])
    cells = spark.sparkContext._gateway.new_array(jvm.java.lang.Object, len(values))
    for i, value in enumerate(values.values()):
        cells[i] = bytearray(value)
    rows = jvm.java.util.ArrayList()
    rows.add(jvm.org.apache.spark.sql.RowFactory.create(cells))
    jschema = spark._jsparkSession.parseDataType(schema.json())
    return DataFrame(spark._jsparkSession.createDataFrame(rows, jschema), spark)


def keyed_hash(spark: SparkSession, key: bytes) -> KeyedHash:
    """HMAC-SHA256 under key, its padded forms read from a local table of their own."""
    if not key:
        raise ValueError("the HMAC key is empty")
    inner_pad, outer_pad = _pads(key)
    table = _local_table(spark, {"inner_pad": inner_pad, "outer_pad": outer_pad})
    return KeyedHash(table.select("inner_pad").scalar(), table.select("outer_pad").scalar())
