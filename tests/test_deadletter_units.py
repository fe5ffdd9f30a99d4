"""The pure parts of `tap deadletter`: headers, ids, masking, previews, filters, counting,
ledger keys and replay plans. No engine: a dead letter here is a value built in the test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tapstack.deadletter import headers as h
from tapstack.deadletter import records as r
from tapstack.deadletter import replay as rp

PURCHASE = "Topic_Purchase"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def letter(
    offset=0,
    partition=0,
    stage="process_orders",
    reason="not JSON",
    value=b"{broken",
    key=None,
    source=("Topic_Purchase", 1, 10),
    file=None,
    at=T0,
):
    topic, part, off = source if source else (None, None, None)
    headers = h.dead_letter_headers(
        stage, reason, topic=topic, partition=part, offset=off, file=file, now=at
    )
    return r.DeadLetter(
        topic="Topic_DeadLetter",
        partition=partition,
        offset=offset,
        timestamp_ms=int(at.timestamp() * 1000),
        key=key,
        value=value,
        headers=h.decode(headers),
    )


# -- headers ---------------------------------------------------------------------------------


def test_python_stage_headers_carry_the_names_spark_writes_and_leave_absent_sources_out():
    pairs = h.dead_letter_headers(
        "loader", "elasticsearch: mapper_parsing_exception", topic="Topic_Dashboard", partition=1,
        offset=42, now=datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC),
    )  # fmt: skip
    assert pairs == [
        ("tap.error.reason", b"elasticsearch: mapper_parsing_exception"),
        ("tap.error.stage", b"loader"),
        ("tap.error.time", b"2026-03-01T12:00:00.123Z"),
        ("tap.source.topic", b"Topic_Dashboard"),
        ("tap.source.partition", b"1"),
        ("tap.source.offset", b"42"),
    ]
    collector = dict(h.dead_letter_headers("collector", "too long", file="/x/orders.log", offset=0))
    assert collector[h.SOURCE_FILE] == b"/x/orders.log"
    assert collector[h.SOURCE_OFFSET] == b"0", "offset 0 is a position, not an absent one"
    assert h.SOURCE_TOPIC not in collector


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        h.dead_letter_headers("tailer", "x")


def test_header_time_is_utc_whatever_the_zone_it_was_given_in():
    rome = datetime(2026, 7, 1, 2, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Rome"))
    assert h.format_time(rome) == "2026-07-01T02:30:00.000Z"


def test_headers_that_are_not_utf8_are_escaped_not_lost():
    assert h.decode([("tap.error.reason", b"bad \xff byte"), ("x", None)]) == {
        "tap.error.reason": "bad \\xff byte",
        "x": "",
    }


# -- the dead letter as a value ----------------------------------------------------------------


def test_the_time_is_the_kafka_timestamp_not_the_spark_batch_time_in_the_header():
    sent = int(T0.timestamp() * 1000) + 41_000
    spark_style = r.DeadLetter(
        "Topic_DeadLetter", 0, 2, sent, None, b"", {h.TIME: "2026-03-01T13:00:00.000+01:00"}
    )
    assert spark_style.time == T0 + timedelta(seconds=41)


def test_source_reads_as_topic_position_or_file_position():
    assert letter(source=("Topic_Purchase", 1, 10)).source == "Topic_Purchase 1/10"
    collected = r.DeadLetter(
        "Topic_DeadLetter",
        0,
        0,
        0,
        None,
        b"",
        {h.SOURCE_FILE: "/a/orders.log", h.SOURCE_OFFSET: "7"},
    )
    assert collected.source == "orders.log @7"


# -- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected", [("0/42", (0, 42)), ("1:7", (1, 7)), (" 3 / 0 ", (3, 0))]
)
def test_an_id_is_partition_and_offset(text, expected):
    assert r.parse_id(text) == expected


@pytest.mark.parametrize("text", ["42", "a/1", "1/-2", "1/2/3", ""])
def test_anything_else_is_not_an_id(text):
    with pytest.raises(ValueError, match="not a dead-letter id"):
        r.parse_id(text)


def test_by_ids_keeps_the_order_asked_and_names_a_missing_one():
    a, b = letter(offset=1), letter(offset=2, partition=1)
    assert r.by_ids([a, b], ["1/2", "0/1"]) == [b, a]
    with pytest.raises(KeyError, match="no dead letter 0/9"):
        r.by_ids([a, b], ["0/9"])


# -- masking and previews --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"email":"anna.rossi+shop@example.it"}',
        "contact: Anna <anna@example.it>",
        "odd: x@localhost",
        "Preview of field's value: 'b.c@d.e'",
    ],
)
def test_anything_shaped_like_an_email_is_masked(text):
    masked = r.mask_emails(text)
    assert "@" not in masked.replace(r.MASK, "")
    assert r.MASK in masked


@pytest.mark.timeout(20)
def test_a_megabyte_record_is_masked_and_previewed_in_one_pass():
    """An unbounded regex searched a 1.1 MB line without "@" for over 15 minutes."""
    value = b'{"note":"' + b"x" * 1_100_000 + b'","email":"' + b"y" * 100 + b'@example.com"}'
    assert r.preview(value) == '{"note":"' + "x" * 50 + "…"
    masked = r.mask_emails(value.decode())
    # An address's local part is at most 64 characters: of 100, the last 64 go with the mask.
    assert masked.endswith('"email":"' + "y" * 36 + r.MASK + '"}')


def test_text_without_an_address_is_left_alone():
    assert r.mask_emails("total 12.50 @ noon") == "total 12.50 @ noon"


def test_a_preview_masks_before_it_cuts_so_no_half_address_shows():
    value = json.dumps({"order_id": 1, "customer": {"email": "very.long.name@example.com"}})
    cut = r.preview(value.encode(), width=40)
    assert len(cut) == 40 and cut.endswith("…")
    assert "very" not in cut and "example" not in cut
    assert r.preview(b"line one\nline\ttwo  ") == "line one\\nline\\ttwo", "one line, escaped"


def test_printable_escapes_bytes_that_are_not_text_and_keeps_unicode():
    assert r.printable(b"caf\xc3\xa9 \xff\x00") == "café \\xff\\x00"
    assert r.printable(None) == ""


def test_pretty_value_indents_json_and_escapes_the_rest():
    assert r.pretty_value(b'{"a":[1,"\xc3\xa9"]}') == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'
    assert r.pretty_value(b"not json {\xff") == "not json {\\xff"
    assert "@" not in r.pretty_value(b'{"email":"a@b.it"}', mask=True).replace(r.MASK, "")


# -- filters ---------------------------------------------------------------------------------


def test_filters_by_stage_reason_part_and_time():
    old = letter(offset=1, stage="loader", reason="order_id 5 was already loaded", at=T0)
    new = letter(offset=2, reason="missing field items; no items", at=T0 + timedelta(hours=1))
    letters = [new, old]
    assert r.select(letters) == [old, new], "oldest first"
    assert r.select(letters, stage="LOADER") == [old]
    assert r.select(letters, reason="Missing FIELD") == [new]
    assert r.select(letters, since=T0 + timedelta(minutes=1)) == [new]
    assert r.select(letters, since=T0) == [old, new], "at the moment itself counts"
    assert r.select(letters, limit=1) == [new], "the limit keeps the newest"


def test_since_reads_iso_dates_and_times_and_a_bare_one_as_local_time():
    assert r.parse_since("2026-03-01T12:00:00+00:00") == T0
    local = r.parse_since("2026-03-01T12:00")
    assert local.tzinfo is not None
    assert local == datetime(2026, 3, 1, 12, 0).astimezone()
    assert r.parse_since("2026-03-01").hour == 0
    with pytest.raises(ValueError, match="not an ISO 8601"):
        r.parse_since("yesterday")


# -- counting --------------------------------------------------------------------------------


def test_reason_kinds_split_the_spark_list_and_set_varying_parts_aside():
    assert r.reason_kinds("missing field items; items do not add up to the total") == [
        "missing field items",
        "items do not add up to the total",
    ]
    assert r.reason_kinds("order_id 1000042 was already loaded with different content") == [
        "order_id N was already loaded with different content"
    ]
    assert r.reason_kinds(
        "line of 998999 bytes or more: cut by the collector (whole in the orders log); not JSON"
    ) == ["line of N bytes or more: cut by the collector (whole in the orders log)", "not JSON"]
    assert r.reason_kinds("timestamp is not ISO 8601 with an offset") == [
        "timestamp is not ISO 8601 with an offset"
    ], "a standard's number is part of the name"
    assert r.reason_kinds("item quantity below 1") == ["item quantity below 1"]
    assert r.reason_kinds(
        "elasticsearch: document_parsing_exception: failed to parse field [total] of type "
        "[double] in document with id '77'. Preview of field's value: 'a@b.it'"
    ) == [
        "elasticsearch: document_parsing_exception: failed to parse field [total] of type "
        "[double] in document with id '…'. Preview of field's value: '…'"
    ]
    assert r.reason_kinds("") == ["(no reason given)"]


def test_count_groups_like_problems_per_stage_and_counts_the_replayed():
    a = letter(offset=1, reason="not JSON", source=("Topic_Purchase", 0, 1), value=b"a")
    b = letter(offset=2, reason="not JSON", source=("Topic_Purchase", 0, 2), value=b"b")
    c = letter(offset=3, reason="missing field items; not JSON", source=("Topic_Purchase", 0, 3))
    d = letter(offset=4, stage="loader", reason="order_id 11 was already loaded", key=b"11")
    rows = r.count([a, b, c, d], replayed={r.ledger_key(a)})
    assert rows == [
        {"stage": "process_orders", "reason": "not JSON", "count": 3, "replayed": 1},
        {"stage": "loader", "reason": "order_id N was already loaded", "count": 1, "replayed": 0},
        {"stage": "process_orders", "reason": "missing field items", "count": 1, "replayed": 0},
    ]


# -- replay: ledger keys, targets, keys, values ------------------------------------------------


def test_one_failure_is_the_stage_and_the_bytes_wherever_they_were_dead_lettered_from():
    """A Spark stage restarted from its checkpoint dead-letters the same record again; a record
    replayed as it was fails again from a new offset: the same failure each time."""
    first = letter(offset=5, source=("Topic_Purchase", 1, 10))
    again = letter(offset=9, partition=1, source=("Topic_Purchase", 1, 10), at=T0 + timedelta(1))
    replayed = letter(offset=12, source=("Topic_Purchase", 0, 99))
    assert r.ledger_key(first) == r.ledger_key(again) == r.ledger_key(replayed)
    assert r.ledger_key(letter(value=b"{other")) != r.ledger_key(first)
    assert r.ledger_key(letter(stage="loader")) != r.ledger_key(first), "another stage's failure"


def test_a_rotated_log_reusing_an_offset_holds_a_different_failure():
    one = letter(stage="collector", source=None, file="/l/orders.log", value=b"x" * 10)
    other = letter(stage="collector", source=None, file="/l/orders.log", value=b"y" * 10)
    assert r.ledger_key(one) != r.ledger_key(other)


def test_replays_go_back_to_their_source_topic_and_the_collectors_to_purchase():
    assert r.replay_topic(letter(source=("Topic_Dashboard", 0, 3), stage="loader"), PURCHASE) == (
        "Topic_Dashboard"
    )
    collected = letter(stage="collector", source=None, file="/l/orders.log")
    assert r.replay_topic(collected, PURCHASE) == PURCHASE
    with pytest.raises(ValueError, match="names no source topic"):
        r.replay_topic(letter(stage="loader", source=None), PURCHASE)


def test_the_replay_key_is_the_order_id_of_the_value_sent_else_the_original_key():
    assert r.replay_key(None, b'{"order_id": 77, "total": 1}') == b"77"
    assert r.replay_key(b"5", b'{"order_id": 77}') == b"77", "a fix of the id moves the key"
    assert r.replay_key(b"5", b"not json") == b"5"
    assert r.replay_key(None, b'{"order_id": "77"}') is None, "only an integer id is a key"
    assert r.replay_key(None, b'{"order_id": true}') is None
    assert r.replay_key(None, b"[1]") is None


def test_a_corrected_value_is_sent_as_one_compact_line():
    pretty = b'{\n  "order_id": 7,\n  "city": "K\xc3\xb6ln/Rhein"\n}\n'
    assert r.corrected_value(pretty) == '{"order_id":7,"city":"Köln/Rhein"}'.encode()
    assert r.corrected_value(b"plain text\r\n") == b"plain text"
    with pytest.raises(ValueError, match="repeats the key order_id"):
        r.corrected_value(b'{"order_id": 1, "total": 2, "order_id": 77}')


# -- replay plans and their run ---------------------------------------------------------------


def test_a_plan_skips_what_the_ledger_has_and_a_second_copy_of_one_failure():
    done = letter(offset=1, value=b"done")
    fresh = letter(offset=2, value=b'{"order_id": 9}')
    copy = letter(offset=3, partition=1, source=("Topic_Purchase", 1, 7), value=b'{"order_id": 9}')
    entry = {"replayed_at": "t", "to": {"topic": "T", "partition": 0, "offset": 4}}
    plans = rp.plan([copy, fresh, done], {r.ledger_key(done): entry}, PURCHASE)
    assert [p.letter.id for p in plans] == ["0/1", "0/2", "1/3"], "oldest first, then by id"
    by_id = {p.letter.id: p for p in plans}
    assert by_id["0/1"].skip == "already replayed: as it was, t to T 0/4"
    assert by_id["0/2"].skip is None
    assert (by_id["0/2"].topic, by_id["0/2"].key) == (PURCHASE, b"9")
    assert by_id["1/3"].skip == "the same failure as 0/2, replayed once"


def test_a_failure_goes_back_once_as_it_was_and_once_corrected():
    failed = letter(value=b"{broken")
    as_it_was = {"corrected": False, "replayed_at": "t", "to": {}}
    corrected = {**as_it_was, "corrected": True}
    key = r.ledger_key(failed)
    (p,) = rp.plan([failed], {key: as_it_was}, PURCHASE, value=b'{"order_id":1}')
    assert p.skip is None, "its unchanged replay failed again: a fix may still go"
    (p,) = rp.plan([failed], {key: corrected}, PURCHASE, value=b'{"order_id":1}')
    assert p.skip.startswith("already replayed: corrected"), "a fix goes once"
    (p,) = rp.plan([failed], {key: corrected}, PURCHASE)
    assert p.skip.startswith("already replayed: corrected")


def test_a_corrected_value_replaces_one_record_only():
    a, b = letter(offset=1), letter(offset=2, source=("Topic_Purchase", 0, 2))
    (p,) = rp.plan([a], {}, PURCHASE, value=b'{"order_id":3}')
    assert (p.value, p.key, p.corrected) == (b'{"order_id":3}', b"3", True)
    with pytest.raises(ValueError, match="replaces one record; 2 are selected"):
        rp.plan([a, b], {}, PURCHASE, value=b"{}")


class FakeSender:
    """Stands in for Kafka in the unit tests of the run's order of effects."""

    def __init__(self, fail_send=(), fail_record=False):
        self.sent, self.recorded = [], []
        self.fail_send, self.fail_record = set(fail_send), fail_record

    def send(self, topic, key, value, headers):
        if value in self.fail_send:
            raise rp.SendError("MessageSizeTooLargeError")
        self.sent.append((topic, key, value, dict(headers)))
        return 0, len(self.sent) - 1

    def record(self, key, entry):
        if self.fail_record:
            raise rp.SendError("timed out")
        self.recorded.append((key, json.loads(entry)))


def test_the_run_sends_then_records_and_a_failure_leaves_no_ledger_entry():
    ok = letter(offset=1, source=("Topic_Purchase", 0, 1), value=b'{"order_id": 4}')
    big = letter(offset=2, source=("Topic_Purchase", 0, 2), value=b"huge")
    sender = FakeSender(fail_send={b"huge"})
    outcomes = rp.execute(rp.plan([ok, big], {}, PURCHASE), sender, now=lambda: T0)
    assert [o.error for o in outcomes] == [None, "not sent: MessageSizeTooLargeError"]
    ((topic, key, value, headers),) = sender.sent
    assert (topic, key, value) == (PURCHASE, b"4", b'{"order_id": 4}')
    assert headers == {
        h.REPLAY_OF: b"Topic_DeadLetter/0/1",
        h.REPLAY_TIME: b"2026-03-01T12:00:00.000Z",
    }
    ((ledger_key, entry),) = sender.recorded
    assert ledger_key == r.ledger_key(ok)
    assert entry["to"] == {"topic": PURCHASE, "partition": 0, "offset": 0}
    assert entry["dead_letter"] == "Topic_DeadLetter/0/1" and entry["corrected"] is False
    again = rp.plan(
        [ok, big], rp.read_ledger([(ledger_key.encode(), rp.encode_entry(entry))]), PURCHASE
    )
    assert [p.skip is None for p in again] == [False, True], "only the failed one is left"


def test_a_ledger_write_that_fails_is_reported_as_sent_but_not_recorded():
    sender = FakeSender(fail_record=True)
    (outcome,) = rp.execute(rp.plan([letter()], {}, PURCHASE), sender, now=lambda: T0)
    assert outcome.sent and outcome.error == "sent, not in the ledger: timed out"


def test_the_ledger_keeps_the_last_entry_of_a_key_and_forgets_a_tombstone():
    entries = rp.read_ledger(
        [(b"a", b'{"n": 1}'), (b"b", b'{"n": 2}'), (b"a", b'{"n": 3}'), (b"b", None), (None, b"{}")]
    )
    assert entries == {"a": {"n": 3}}
