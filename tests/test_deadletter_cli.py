"""`tap deadletter` on the real pipeline: bad lines written to the log are listed, counted and
shown with the reason and stage that dead-lettered them; fixed and replayed, each order
reaches Elasticsearch once, a replay is never sent twice, and the figures are the log's.

The tests of this module run in order on one batch of bad lines (module fixture `batch`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from tapstack import contracts
from tapstack.cli import app
from tapstack.deadletter import headers as h
from tapstack.simulator import SimulatedOrder, reassigned

pytestmark = [pytest.mark.engines, pytest.mark.spark]

runner = CliRunner()
MASK = "***@***"


def tap(*args: str, expect: int = 0) -> str:
    """Run `tap deadletter ...` in-process; a wide terminal, so table cells stay whole."""
    result = runner.invoke(app, ["deadletter", *args], env={"COLUMNS": "400"})
    assert result.exit_code == expect, (args, result.output, result.exception)
    return result.output


@dataclass
class Batch:
    started: str  # ISO time just before the bad lines were written
    orders: list[SimulatedOrder]  # as the shop meant them: the log's figures after the fix
    lines: dict[str, bytes]  # bad line (as dead-lettered) by case
    impostor_of: int  # the order id a different order reused (a loader dead letter)


def _line(event: dict) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def batch(pipeline) -> Batch:
    orders = pipeline.simulate(6, seed=61)
    good, impostor_of = orders[4:], orders[4].order_id
    pipeline.append(good)
    assert pipeline.wait_indexed([o.order_id for o in good]) == 2

    no_sum = copy.deepcopy(orders[0].event)
    no_sum["items"][0]["total"] += 7.5
    no_items = {k: v for k, v in orders[1].event.items() if k != "items"}
    email = orders[2].event["customer"]["email"]
    cut = {"order_id": orders[2].order_id, "customer": {"email": email}}
    # Over the collectors' line buffer (an order a broken writer padded with a megabyte of
    # spaces): shipped cut, as Fluent Bit cuts it, and the cut is what process_orders
    # dead-letters, although what is left of it parses.
    long = _line(orders[3].event) + b" " * 1_100_000
    impostor = reassigned(orders[5].event, impostor_of)
    lines = {
        "no_sum": _line(no_sum),
        "no_items": _line(no_items),
        "not_json": _line(cut)[:-1],  # the closing brace lost
        "long": long[: contracts.longest_shipped_line()],
    }
    now = datetime.now(UTC)
    started = now.replace(microsecond=now.microsecond // 1000 * 1000).isoformat()
    written = [lines["no_sum"], lines["no_items"], lines["not_json"], long, _line(impostor)]
    pipeline.append_raw(written)

    found = pipeline.wait_dead_letters(lambda d: d["value"] in lines.values(), len(lines))
    assert len(found) == len(lines), [d.get("tap.error.reason") for d in found]
    conflict = pipeline.wait_dead_letters(
        lambda d: (
            d.get("tap.error.stage") == "loader"
            and f"order_id {impostor_of} " in d.get("tap.error.reason", "")
        ),
        expected=1,
    )
    assert len(conflict) == 1
    return Batch(started, orders, lines, impostor_of)


def listed(batch: Batch, *args: str) -> list[dict]:
    return json.loads(tap("list", "--since", batch.started, "--limit", "0", "--json", *args))


def by_case(batch: Batch) -> dict[str, dict]:
    """This batch's dead letters by case, as `list --json` gives them."""
    cases = {
        "no_sum": "items do not add up to the total",
        "no_items": "missing field items",
        "not_json": "not JSON",
        "long": "cut by the collector",
        "impostor": "already loaded with different content",
    }
    found = {}
    for row in listed(batch):
        case = next((case for case, text in cases.items() if text in row["reason"]), None)
        if case:
            found.setdefault(case, row)
    return found


# -- list, count, show -----------------------------------------------------------------------


def test_list_shows_each_bad_record_once_with_its_stage_reason_and_source(batch, pipeline):
    rows = listed(batch)
    assert len(rows) == 5, [r["reason"] for r in rows]
    cases = by_case(batch)
    assert set(cases) == {"no_sum", "no_items", "not_json", "long", "impostor"}
    purchase = contracts.topic("purchase")
    ids = batch.orders
    for case, order in (("no_sum", ids[0]), ("no_items", ids[1])):
        row = cases[case]
        assert row["stage"] == "process_orders"
        assert row["source_topic"] == purchase and row["source_offset"] >= 0
        assert row["key"] == str(order.order_id)
    assert cases["not_json"]["stage"] == "process_orders"
    assert cases["not_json"]["reason"] == "not JSON" and cases["not_json"]["key"] is None
    long = cases["long"]
    assert long["stage"] == "process_orders" and long["key"] == str(ids[3].order_id)
    most = contracts.longest_shipped_line()
    assert long["reason"] == (
        f"line of {most} bytes or more: cut by the collector (whole in the orders log)"
    )
    assert long["source_topic"] == purchase and long["source_offset"] >= 0
    impostor = cases["impostor"]
    assert impostor["stage"] == "loader"
    assert impostor["source_topic"] == contracts.topic("dashboard")
    assert impostor["key"] == str(batch.impostor_of)
    assert not any(row["replayed"] for row in rows)

    table = tap("list", "--since", batch.started)
    for row in rows:
        assert row["id"] in table and row["reason"] in table


def test_list_selects_by_stage_reason_and_limit(batch):
    assert [r["stage"] for r in listed(batch, "--stage", "loader")] == ["loader"]
    assert listed(batch, "--stage", "collector") == [], "the collectors dead-letter nothing"
    assert [r["reason"] for r in listed(batch, "--reason", "NOT json")] == ["not JSON"]
    everything = listed(batch)
    newest = json.loads(tap("list", "--since", batch.started, "--limit", "2", "--json"))
    assert newest == everything[-2:]
    assert listed(batch, "--stage", "behaviour") == []


def test_list_masks_email_addresses_in_its_previews(batch):
    email = batch.orders[2].event["customer"]["email"]
    row = by_case(batch)["not_json"]
    assert MASK in row["preview"] and email not in row["preview"]
    assert row["preview"].startswith(f'{{"order_id":{batch.orders[2].order_id},')
    assert email not in tap("list", "--since", batch.started)
    assert email not in json.dumps(listed(batch))


def test_count_counts_by_stage_and_reason(batch):
    summary = json.loads(tap("count", "--since", batch.started, "--json"))
    assert summary["total"] == 5 and summary["replayed"] == 0
    assert summary["by_stage"] == {"process_orders": 4, "loader": 1}
    rows = {(r["stage"], r["reason"]): r["count"] for r in summary["rows"]}
    assert rows == {
        ("process_orders", "items do not add up to the total"): 1,
        ("process_orders", "missing field items"): 1,
        ("process_orders", "not JSON"): 1,
        (
            "process_orders",
            "line of N bytes or more: cut by the collector (whole in the orders log)",
        ): 1,
        ("loader", "order_id N was already loaded with different content"): 1,
    }
    table = tap("count", "--since", batch.started)
    for stage, reason in rows:
        assert stage in table and reason in table


def test_show_prints_one_record_whole(batch):
    row = by_case(batch)["no_sum"]
    order = batch.orders[0]
    out = tap("show", row["id"])
    for name in (h.REASON, h.STAGE, h.TIME, h.SOURCE_TOPIC, h.SOURCE_PARTITION, h.SOURCE_OFFSET):
        assert name in out
    assert "items do not add up to the total" in out and contracts.topic("purchase") in out
    assert f'"order_id": {order.order_id},' in out, "JSON, indented"
    assert order.event["customer"]["email"] in out, "whole: a fix needs the record as it is"
    key_row = next(line for line in out.splitlines() if " key " in line)
    assert str(order.order_id) in key_row

    not_json = tap("show", by_case(batch)["not_json"]["id"])
    assert batch.lines["not_json"].decode() in not_json, "not JSON: the bytes as they are"
    raw = runner.invoke(app, ["deadletter", "show", row["id"], "--raw"])
    assert raw.exit_code == 0 and raw.stdout_bytes == batch.lines["no_sum"], "bytes as they are"
    masked = tap("show", row["id"], "--mask")
    assert order.event["customer"]["email"] not in masked and MASK in masked
    assert "no dead letter 9/999999" in tap("show", "9/999999", expect=1)


# -- replay ----------------------------------------------------------------------------------


def _replays_of(pipeline, address: str) -> list:
    """Records in Topic_Purchase that replay the dead letter at `address`."""
    return [
        r
        for r in pipeline.read_topic(contracts.topic("purchase"))
        if dict(r.headers).get(h.REPLAY_OF) == address.encode()
    ]


def _address(row: dict) -> str:
    return f"{contracts.topic('dead_letter')}/{row['id']}"


def _value_file(tmp_path, order: SimulatedOrder):
    path = tmp_path / f"fixed-{order.order_id}.json"
    path.write_text(order.line, encoding="utf-8")  # as an editor leaves it: a final newline
    return str(path)


def test_a_replayed_fix_reaches_elasticsearch_once_and_is_never_sent_again(
    batch, pipeline, tmp_path
):
    row = by_case(batch)["no_sum"]
    order = batch.orders[0]
    assert pipeline.count_orders([order.order_id]) == 0
    fixed = _value_file(tmp_path, order)

    out = tap("replay", row["id"], "--value-file", fixed)
    assert "Replayed 1 of 1" in out and contracts.topic("purchase") in out
    assert pipeline.wait_indexed([order.order_id]) == 1
    doc = pipeline.orders_by_id([order.order_id])[order.order_id]
    assert doc["total"] == order.event["total"]
    lines = pipeline.wait_lines([order.order_id], len(order.event["items"]))
    assert len(lines) == len(order.event["items"])

    again = tap("replay", row["id"], "--value-file", fixed)
    assert "Replayed 0 of 1" in again and "already replayed: corrected" in again
    assert "already replayed" in tap("replay", row["id"])
    (sent,) = _replays_of(pipeline, _address(row))
    assert sent.key == str(order.order_id).encode()
    assert sent.value == order.line.rstrip("\n").encode()
    assert pipeline.count_orders([order.order_id]) == 1
    assert listed(batch, "--reason", "add up")[0]["replay"].startswith("corrected, ")


def test_a_dry_run_sends_nothing(batch, pipeline):
    row = by_case(batch)["not_json"]
    select = ("--stage", "process_orders", "--reason", "not json", "--since", batch.started)
    out = tap("replay", *select, "--dry-run")
    assert "Would replay 1 of 1" in out and "would send" in out
    assert _replays_of(pipeline, _address(row)) == []
    assert not by_case(batch)["not_json"]["replayed"]


def test_a_record_replayed_as_it_was_fails_again_once_and_can_still_be_fixed_once(
    batch, pipeline, tmp_path
):
    row = by_case(batch)["not_json"]
    select = ("--stage", "process_orders", "--reason", "not json", "--since", batch.started)
    assert "Replayed 1 of 1" in tap("replay", *select)
    (sent,) = _replays_of(pipeline, _address(row))
    assert sent.value == batch.lines["not_json"] and sent.key is None
    # Unchanged, it fails again: a new dead letter of the same bytes, from the replay's offset.
    again = pipeline.wait_dead_letters(lambda d: d["value"] == batch.lines["not_json"], 2)
    assert {int(d[h.SOURCE_OFFSET]) for d in again} >= {sent.offset}
    out = tap("replay", *select)
    assert "Replayed 0 of 2" in out and out.count("already replayed: as it was") == 2

    order = batch.orders[2]
    fixed = _value_file(tmp_path, order)
    assert "Replayed 1 of 1" in tap("replay", row["id"], "--value-file", fixed)
    assert pipeline.wait_indexed([order.order_id]) == 1
    assert "already replayed: corrected" in tap("replay", row["id"], "--value-file", fixed)
    assert len(_replays_of(pipeline, _address(row))) == 2, "once as it was, once fixed"


def test_a_replay_kafka_refuses_is_reported_and_not_recorded(batch, pipeline, tmp_path):
    row = by_case(batch)["long"]
    too_big = tmp_path / "too-big.json"
    too_big.write_bytes(b'{"note": "' + b"x" * 2**21 + b'"}')  # over the topic's message limit
    out = tap("replay", row["id"], "--value-file", str(too_big), expect=1)
    assert "not sent" in out and "MessageSizeTooLarge" in out
    assert not by_case(batch)["long"]["replayed"]


def test_after_every_fix_the_figures_are_the_logs(batch, pipeline, tmp_path):
    cases = by_case(batch)
    for case, order in (("no_items", batch.orders[1]), ("long", batch.orders[3])):
        out = tap("replay", cases[case]["id"], "--value-file", _value_file(tmp_path, order))
        assert "Replayed 1 of 1" in out, out
    ids = [o.order_id for o in batch.orders]
    assert pipeline.wait_indexed(ids) == len(ids)
    docs = pipeline.orders_by_id(ids)
    assert {i: d["total"] for i, d in docs.items()} == {
        o.order_id: o.event["total"] for o in batch.orders
    }
    revenue = round(sum(d["total"] for d in docs.values()), 2)
    assert revenue == round(sum(o.event["total"] for o in batch.orders), 2)
    items = sum(len(o.event["items"]) for o in batch.orders)
    assert len(pipeline.wait_lines(ids, items)) == items
    assert docs[batch.impostor_of]["total"] == batch.orders[4].event["total"], "first one kept"

    summary = json.loads(tap("count", "--since", batch.started, "--json"))
    # 4 fixed; the not-JSON line's own second failure is the same failure, replayed too.
    assert summary["replayed"] == 5 and summary["total"] == 6
