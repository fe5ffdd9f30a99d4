"""Size limits of the products on the compose path, each with its source, for the tests that
hold TAP's own limits (contracts/settings.toml [collector]) under them."""

from __future__ import annotations

# librdkafka's message.max.bytes default (lib/librdkafka-2.10.1/CONFIGURATION.md in
# fluent/fluent-bit v4.2.2). It refuses a message whose value, key and
# RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD exceed it (src/rdkafka_msg.c:240-247); the overhead is
# five varints and a byte: 5 + 1 + 10 + 5 + 5 + 5 + 5 (src/rdkafka_proto.h:526-534,
# RD_UVARINT_ENC_SIZEOF at src/rdvarint.h:152).
RDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
RDKAFKA_V2_MAX_OVERHEAD = 36


def fluent_size(text: object) -> int:
    """A Fluent Bit size in bytes. Its units are decimal: 1K = 1000, 1M = 1000000
    (src/flb_utils.c:535-537, flb_utils_size_to_bytes at v4.2.2; tests/internal/utils.c,
    test_unit_sizes)."""
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    value = str(text).upper().removesuffix("B")
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)
