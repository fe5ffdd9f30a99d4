"""HMAC-SHA256 as a Spark SQL expression, so customer ids need no Python UDF.

HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) with H = SHA-256 and a 64-byte block. The two
padded keys are constants computed here once; Spark only concatenates and hashes.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256_hex(message: Column, key: str) -> Column:
    """Lower-case hex HMAC-SHA256 of a string column under key (UTF-8)."""
    if not key:
        raise ValueError("the HMAC key is empty")
    inner_pad, outer_pad = _pads(key.encode("utf-8"))
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), F.encode(message, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
