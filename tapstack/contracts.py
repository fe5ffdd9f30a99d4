"""The project's contracts in one place: settings (names, ports, versions) and the order schema.

Everything reads names through here; nothing else spells a topic, index, group or port.
Endpoints and ports can be overridden per process from the environment, so tests and a demo
can run side by side and compose can point at service names:

    TAP_KAFKA_BOOTSTRAP   host:port list       (default localhost:<ports.kafka>)
    TAP_ES_URL            Elasticsearch URL     (default http://localhost:<ports.elasticsearch>)
    TAP_PORT_<NAME>       any [ports] entry, e.g. TAP_PORT_KAFKA=19092
"""

from __future__ import annotations

import json
import os
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

# The repository root; containers that copy the tree elsewhere set TAP_HOME.
ROOT = Path(os.environ.get("TAP_HOME") or Path(__file__).resolve().parents[1])
CONTRACTS_DIR = ROOT / "contracts"
SETTINGS_FILE = CONTRACTS_DIR / "settings.toml"
SECURITY_FILE = CONTRACTS_DIR / "security.toml"
ORDER_SCHEMA_FILE = CONTRACTS_DIR / "order.schema.json"


@cache
def settings() -> dict[str, Any]:
    """The parsed settings file."""
    return tomllib.loads(SETTINGS_FILE.read_text(encoding="utf-8"))


@cache
def security() -> dict[str, Any]:
    """The parsed security file: users, roles and grants (contracts/security.toml)."""
    return tomllib.loads(SECURITY_FILE.read_text(encoding="utf-8"))


def es_user(role: str) -> str:
    """Elasticsearch user name by role key: admin, setup, writer or viewer."""
    section = security()["elasticsearch"]
    return section["admin"] if role == "admin" else section["users"][role]


@cache
def order_schema() -> dict[str, Any]:
    """The JSON Schema of one order log line."""
    return json.loads(ORDER_SCHEMA_FILE.read_text(encoding="utf-8"))


# An order without an e-mail (customer.email "") belongs to its WordPress user: its customer id
# is the keyed hash of this prefix and customer.id (no e-mail equals it: it has no @).
USER_CUSTOMER_PREFIX = "wp-user:"


# The order contract's JSON Schema keywords, as process_orders (spark/tap_spark/orders.py)
# treats them; tests/test_contracts.py holds every keyword of order.schema.json to one of these.
# Checked on every line: a line that breaks one is dead-lettered with the reason.
ORDER_KEYWORDS_ENFORCED = frozenset(
    {
        "type",
        "required",
        "properties",
        "items",
        "additionalProperties",
        "const",
        "minimum",
        "maximum",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "enum",
        # Only as "if field F is V then these are required, else those are not allowed".
        "allOf",
        "if",
        "then",
        "else",
    }
)
# Deliberately not checked, and why (the test oracle drops exactly these from the schema).
ORDER_KEYWORDS_NOT_ENFORCED = {
    "format": (
        "an annotation in draft 2020-12; date-time is enforced through the timestamp's pattern "
        "and an ISO 8601 parse, and e-mail syntax is WooCommerce's to check at checkout: the "
        "address is only ever hashed downstream, and an odd one must not cost a paid order"
    ),
    "anyOf": (
        'used once, to say customer.email is an e-mail or "" (an order without one): with '
        "format not enforced, any string of the allowed length passes it"
    ),
}
# Words for people, no constraint on a line.
ORDER_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})


def version(component: str) -> str:
    return settings()["versions"][component]


def port(name: str) -> int:
    return int(os.environ.get(f"TAP_PORT_{name.upper()}", settings()["ports"][name]))


def topic(role: str) -> str:
    """Topic name by role: purchase, analysis, dashboard or dead_letter."""
    return settings()["topics"][role]


def all_topics() -> list[str]:
    roles = ("purchase", "analysis", "dashboard", "dead_letter", "dead_letter_replays")
    return [topic(role) for role in roles]


def consumer_group(role: str) -> str:
    return settings()["consumer_groups"][role]


def index(role: str) -> str:
    """Index name by role: orders or lines."""
    return settings()["indices"][role]


def kafka_bootstrap() -> str:
    return os.environ.get("TAP_KAFKA_BOOTSTRAP") or f"localhost:{port('kafka')}"


def elasticsearch_url() -> str:
    return os.environ.get("TAP_ES_URL") or f"http://localhost:{port('elasticsearch')}"


def elasticsearch_auth() -> tuple[str, str] | None:
    """The process's own basic-auth pair from the environment (compose, and each native
    pipeline process), or None; see tapstack.credentials for the native stack's others."""
    user, password = os.environ.get("TAP_ES_USER"), os.environ.get("TAP_ES_PASSWORD")
    return (user, password) if user and password else None


def enrichment(rule: str) -> Any:
    """An enrichment setting; TAP_<RULE> in the environment overrides the file."""
    value = settings()["enrichment"][rule]
    override = os.environ.get(f"TAP_{rule.upper()}")
    if override is None:
        return value
    return type(value)(override)


def streaming(option: str) -> Any:
    value = settings()["streaming"][option]
    override = os.environ.get(f"TAP_{option.upper()}")
    return value if override is None else type(value)(override)


def longest_shipped_line() -> int:
    """The most bytes of one log line either collector ships: Fluent Bit's tail cuts a line
    that fills its buffer_max_size at buffer_max_size - 1 bytes (truncate_long_lines,
    plugins/in_tail/tail_file.c:571-603 at v4.2.2)."""
    return settings()["collector"]["line_buffer_bytes"] - 1


# A trigger "real-time <interval>" selects Spark's real-time mode; any other is a processing time.
REAL_TIME = "real-time "


def real_time_interval() -> str | None:
    """The checkpoint interval when the Spark jobs run in real-time mode, else None."""
    trigger = streaming("trigger")
    return trigger.removeprefix(REAL_TIME) if trigger.startswith(REAL_TIME) else None
