"""Erase one customer from Elasticsearch, keeping every figure.

The plugin's eraser (wordpress_plugin, `wp_privacy_personal_data_erasers`) stops new lines for
the customer and says that sent lines are retained downstream; this is the downstream half. The
customer's documents are found by the pseudonymous customer ids (the keyed hashes the Spark SQL
stage computes from the e-mail and, for the orders without one, from the WordPress user id),
and anonymised in place rather than deleted: the customer id
becomes a placeholder unique to this erasure and the first name goes, while totals, products and
times stay, so revenue and every other panel still add up. One document per erasure is indexed
(when, how many documents), with nothing that identifies the customer.

What stays until Kafka's retention ends: the raw line in Topic_Purchase and, for dead letters,
Topic_DeadLetter (docs/privacy.md). Only partial-document updates are used: no scripts, which
the native Elasticsearch does not have.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk, scan

from tapstack import contracts

# What the customer's documents lose (None removes the value; the mappings are strict).
ORDER_CHANGES = {"customer_first_name": None}


def customer_id(email: str, key: str) -> str:
    """The pseudonymous id process_orders gives this e-mail: HMAC-SHA256 of it, trimmed and
    lower-cased, under the customer key."""
    return _keyed(email.strip().lower(), key)


def user_customer_id(user_id: int, key: str) -> str:
    """The pseudonymous id process_orders gives an order of this WordPress user that has no
    e-mail (phone, admin and POS orders)."""
    return _keyed(f"{contracts.USER_CUSTOMER_PREFIX}{user_id}", key)


def _keyed(message: str, key: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Erasure:
    erasure_id: str
    placeholder: str
    orders: int
    lines: int
    ledger: int = 0  # ledger documents (money movements and the lines they move)
    statuses: int = 0


def _anonymise(es: Elasticsearch, role: str, found: list[str], changes: dict) -> int:
    index = contracts.index(role)
    ids = [
        hit["_id"]
        for hit in scan(es, index=index, query={"query": {"terms": {"customer_id": found}}})
    ]
    actions = ({"_op_type": "update", "_index": index, "_id": i, "doc": changes} for i in ids)
    done, _ = bulk(es, actions, refresh="wait_for")
    return done


def erase(
    es: Elasticsearch,
    key: str,
    email: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> Erasure:
    """Anonymise every order, line, ledger and status document of this customer, known by
    e-mail, WordPress user id or both, under one placeholder, and record the erasure."""
    found = [customer_id(email, key)] if email else []
    if user_id:
        found.append(user_customer_id(user_id, key))
    if not found:
        raise ValueError("name the customer: an e-mail address, a WordPress user id or both")
    erasure_id = uuid.uuid4().hex
    placeholder = f"erased-{erasure_id[:12]}"
    orders = _anonymise(es, "orders", found, {**ORDER_CHANGES, "customer_id": placeholder})
    lines = _anonymise(es, "lines", found, {"customer_id": placeholder})
    ledger = _anonymise(es, "ledger", found, {"customer_id": placeholder})
    statuses = _anonymise(es, "statuses", found, {"customer_id": placeholder})
    es.index(
        index=contracts.index("privacy"),
        id=erasure_id,
        document={
            "erasure_id": erasure_id,
            "erased_at": (now or datetime.now(UTC)).isoformat(),
            "orders": orders,
            "lines": lines,
            "ledger": ledger,
            "statuses": statuses,
            "customer_placeholder": placeholder,
        },
        refresh="wait_for",
    )
    return Erasure(erasure_id, placeholder, orders, lines, ledger, statuses)
