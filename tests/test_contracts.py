"""Reading the settings contract: the trigger that selects Spark's execution mode."""

from __future__ import annotations

import pytest

from tapstack import contracts


@pytest.mark.parametrize(
    ("trigger", "interval"),
    [("real-time 1 minute", "1 minute"), ("0 seconds", None), ("20 seconds", None)],
)
def test_the_trigger_selects_real_time_mode_or_micro_batches(monkeypatch, trigger, interval):
    monkeypatch.setenv("TAP_TRIGGER", trigger)
    assert contracts.real_time_interval() == interval


def _keywords(node: dict | bool) -> set[str]:
    """Every JSON Schema keyword used in a schema node and the nodes below it (the names under
    "properties" are field names, not keywords; true and false are schemas with none)."""
    if isinstance(node, bool):
        return set()
    found = set(node)
    below = [*node.get("properties", {}).values(), *node.get("allOf", []), *node.get("anyOf", [])]
    below += [node[key] for key in ("items", "if", "then", "else") if key in node]
    for child in below:
        found |= _keywords(child)
    return found


def test_every_keyword_of_the_order_contract_is_enforced_or_listed_as_not():
    used = _keywords(contracts.order_schema())
    known = (
        contracts.ORDER_KEYWORDS_ENFORCED
        | set(contracts.ORDER_KEYWORDS_NOT_ENFORCED)
        | contracts.ORDER_ANNOTATIONS
    )
    assert used - known == set(), "decide: enforce it in spark/tap_spark/orders.py, or list why not"
    assert not contracts.ORDER_KEYWORDS_ENFORCED & set(contracts.ORDER_KEYWORDS_NOT_ENFORCED)
    assert all(why.strip() for why in contracts.ORDER_KEYWORDS_NOT_ENFORCED.values())
