"""Topic_Dashboard -> Elasticsearch, with the Logstash pipeline's semantics.

Same consumer group (settings consumer_groups.loader, the original's logstash_v1), earliest
offsets, the same two indices and document ids, and the same outcome for every record as
logstash/pipeline/tap.conf (tests/test_logstash_contract.py holds the two together):

- A record that is not an order the templates accept (documents.order_of) is dead-lettered with
  the reason, per record; nothing of it is written, and the records after it go on.
- First version wins: an order id already loaded with the same order_fingerprint is a replay
  (nothing is written), with another fingerprint a conflict (dead-lettered with the reason and
  counted). Lines are created, never overwritten.
- All or nothing: an order's lines are created first and its order document last, once every
  line is in, so a visible order has all its lines. If Elasticsearch refuses a document for good
  (400/404, or 413 for a document too large for a request of its own), the lines created for that
  order are deleted again and the record is dead-lettered with Elasticsearch's reason.
- Anything else Elasticsearch answers (429, 5xx, a write block, no connection) is retried with
  backoff and logged for as long as it lasts, without committing: at least once means a
  throttled document is late, never skipped nor dead-lettered. The consumer stays in its group
  meanwhile (its partitions paused).
- Dead letters are acknowledged by Kafka before the batch's offsets are committed.
- Records that expired past retention before the loader read them are not skipped in silence:
  the consumer still resets to the earliest offset, but a jump from the offset it was due to
  read to a later one, with the broker's log start offset past it, is reported as a gap
  (tapstack.deadletter.gaps: a dead letter, an ERROR line, a `tap deadletter count` row),
  acknowledged before the commit that moves past it. A partition the group has never
  committed is committed at its first offset as soon as it is assigned, so that records which
  expire while the loader is down before its first batch are a gap too, not a silent reset.

Requests go through elasticsearch.helpers.streaming_bulk with a byte cap per request; it also
retries 429/5xx a few times itself before this loader's own, logged retries take over.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk
from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka import errors as kafka_errors

from tapstack import contracts, kafka_clients
from tapstack.deadletter import gaps as retention
from tapstack.deadletter.headers import format_time
from tapstack.elastic.client import connect
from tapstack.loader import dead_letters, documents
from tapstack.loader.membership import GroupWatch

log = logging.getLogger("tap.loader")

STAGE = "loader"
ACTION = "create"  # for orders and lines alike: the first version of a document wins
# Well under Elasticsearch's http.max_content_length (100mb); Logstash's output aims at 20 MiB.
MAX_CHUNK_BYTES = 10 * 2**20
CHUNK_DOCUMENTS = 20_000  # a batch's lines usually go in one request; the byte cap decides
# streaming_bulk's own retries of a throttled or unavailable document (0.5 s, 1 s, 2 s) ...
HELPER_RETRIES = 3
HELPER_RETRY_STATUS = (429, 500, 502, 503, 504)
# ... then ours, logged, with no end: 1 s doubling up to a minute.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0
DEAD_LETTER_MAX_BYTES = 16 * 2**20  # Topic_DeadLetter's max.message.bytes (native/kafka.py)
COMMIT_TRIES = 50  # each polls for 100 ms
REBALANCING = (
    kafka_errors.RebalanceInProgressError,
    kafka_errors.CommitFailedError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
)
KEEPALIVE_S = 1.0  # how often a waiting loader polls its paused consumer
# The bulk answer is read for each item's id, status and error only.
BULK_ANSWER = "items.*._index,items.*._id,items.*.status,items.*.error"


@dataclass(frozen=True)
class Names:
    """Where the loader reads and writes (the settings' names; the bench and tests use others)."""

    topic: str
    group: str
    orders: str
    lines: str
    ledger: str
    statuses: str
    dead_letter: str
    quality: str | None = None  # data-quality findings (conflicts); None: not recorded

    def of(self, role: str) -> str:
        """The index of a document role: orders, lines, ledger or statuses."""
        return getattr(self, role)

    @classmethod
    def from_settings(cls) -> Names:
        return cls(
            topic=contracts.topic("dashboard"),
            group=contracts.consumer_group("loader"),
            orders=contracts.index("orders"),
            lines=contracts.index("lines"),
            dead_letter=contracts.topic("dead_letter"),
            quality=contracts.index("quality"),
            ledger=contracts.index("ledger"),
            statuses=contracts.index("statuses"),
        )


# ── what one bulk item's answer means (pure) ──────────────────────────────────────────────

OK, EXISTS, GONE, TOO_LARGE, REFUSED, RETRY = (
    "ok",
    "exists",
    "gone",
    "too large",
    "refused",
    "retry",
)


def outcome(op: str, status: int, error: Any, whole_request: bool, alone: bool) -> str:
    """What an item's answer means for the document.

    whole_request: the status is the request's (streaming_bulk reports a failed request as a
    failure of each of its items), not the item's own. alone: it was the only document in it.
    The rules are the Logstash elasticsearch output's (plugin_mixins/elasticsearch/common.rb,
    submit): 2xx done, 409 kept, 400/404 refused for good, 413 refused for good when the
    document is alone (dlq_custom_codes => [413]), anything else retried.
    """
    if 200 <= status < 300:
        return OK
    if status == 409 and op in (ACTION, "index"):
        return EXISTS  # created already; or, versioned, a status at this version or later
    if status == 404 and op == "delete" and not whole_request:
        return GONE
    if status == 413:
        return REFUSED if alone else TOO_LARGE
    if whole_request:
        return RETRY  # not the document's fault (auth, overload, a proxy): never dead-letter
    if status in (400, 404):
        return REFUSED
    if op == "delete" and _error_type(error) == "security_exception":
        return REFUSED  # the writer may not delete: retrying will not change that
    return RETRY


def _error_type(error: Any) -> str | None:
    return error.get("type") if isinstance(error, dict) else None


def describe(error: Any, status: int) -> str:
    """Elasticsearch's reason for an item, as it goes into a dead letter."""
    if isinstance(error, dict):
        text = f"elasticsearch: {error.get('type')}: {error.get('reason')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            text += f" ({cause.get('type')}: {cause.get('reason')})"
        return text
    return f"elasticsearch: status {status}: {error}"


@dataclass
class Result:
    outcome: str
    status: int
    reason: str | None = None


@dataclass
class _Pending:
    """One good record on its way in, and what its writing has done so far."""

    message: Any
    order: documents.Order
    reason: str | None = None
    conflict: bool = False
    kept: str | None = None  # on a conflict: the fingerprint of the version that stays
    created: list[tuple[str, str]] = field(default_factory=list)  # parts this attempt created
    existing: list[tuple[str, str]] = field(default_factory=list)  # parts already there (409)
    written: bool = False  # the head is in: loaded now, or found from an earlier time

    @property
    def head(self) -> tuple[str, str]:
        return self.order.head_role, self.order.document_id


class Stopped(Exception):
    """The loader was asked to stop while it waited on Elasticsearch: nothing is committed."""


class Loader:
    def __init__(
        self,
        es: Elasticsearch | None = None,
        batch_size: int = 2000,
        names: Names | None = None,
        consumer_options: dict[str, Any] | None = None,
    ):
        self.es = es or connect()
        self.names = names or Names.from_settings()
        self.batch_size = batch_size
        self._stopping = threading.Event()  # set: a wait on Elasticsearch ends in Stopped
        # partition -> the offset the loader is due to read next, as far as it has read
        self._next: dict[TopicPartition, int] = {}
        self._assigned: set[TopicPartition] = set()  # newly assigned, not yet checked for a commit
        # Its own client id, so that the broker's list of the group's members names this one.
        client_id = f"tap-loader-{os.getpid()}"
        self.consumer = KafkaConsumer(
            **kafka_clients.config(),
            group_id=self.names.group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
            **(consumer_options or {}),
        )
        self._subscribe()
        self.membership = GroupWatch(
            lambda: KafkaAdminClient(**kafka_clients.config(), client_id="tap-loader-watch"),
            self.names.group,
            client_id,
        )
        self.producer = KafkaProducer(
            **kafka_clients.config(),
            client_id="tap-loader-dlq",
            acks="all",
            linger_ms=5,
            max_request_size=DEAD_LETTER_MAX_BYTES,
        )
        self.loaded = 0  # orders written
        self.replayed = 0  # records of orders already loaded with the same content
        self.conflicts = 0  # different orders under an id already loaded
        self.dead_lettered = 0
        self.retries = 0  # rounds of waiting on Elasticsearch
        self.expired = 0  # records lost past retention before they were read (reported)

    def _subscribe(self, timeout: float = 120.0) -> None:
        """Subscribe once the client knows the topic's partitions. kafka-python joins the group
        with the metadata it has: a member that joins before its first answer about the topic
        is assigned nothing, and reads nothing until the next refresh (metadata.max.age.ms,
        5 minutes)."""
        deadline = time.monotonic() + timeout
        while not self.consumer.partitions_for_topic(self.names.topic):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {self.names.topic} not found")
            time.sleep(0.5)
        self.consumer.subscribe([self.names.topic], listener=_Forget(self._next, self._assigned))

    # ── one batch ────────────────────────────────────────────────────────────────────────

    def _write(self, records: list, gaps: list[retention.Gap] = ()) -> None:
        """Write one batch; on return its dead letters (and its gaps') are acknowledged too."""
        letters: list[tuple[Any, str]] = []
        pending: list[_Pending] = []
        for message in records:
            try:
                pending.append(_Pending(message, documents.order_of(message.value)))
            except documents.BadRecord as exc:
                letters.append((message, str(exc)))
            except Exception as exc:  # a shape the rules did not foresee must not stop the flow
                log.exception(
                    "record at %s/%s:%s", message.topic, message.partition, message.offset
                )
                letters.append((message, f"cannot be read: {type(exc).__name__}: {exc}"))
        for group in _rounds(pending):
            self._load(group)
            letters += [(p.message, p.reason) for p in group if p.reason]
        self._dead_letter(letters, gaps)

    def _load(self, group: list[_Pending]) -> None:
        """Write records with distinct heads: their parts, then the heads, then undo the
        failed; then the statuses of those that are in."""
        names = self.names
        stored = self._stored_heads([p.head for p in group])
        fresh = []
        for p in group:
            if p.head not in stored:
                fresh.append(p)
            elif stored[p.head] == p.order.fingerprint:
                self.replayed += 1
                p.written = True
            else:
                self._conflict(p, stored[p.head])

        parts = self._bulk(
            ((names.of(role), doc_id), ({ACTION: {"_index": names.of(role), "_id": doc_id}}, doc))
            for p in fresh
            for role, doc_id, doc in p.order.parts
        )
        for p in fresh:
            for role, doc_id, _ in p.order.parts:
                result = parts[(names.of(role), doc_id)]
                if result.outcome == OK:
                    p.created.append((role, doc_id))
                elif result.outcome == EXISTS:
                    p.existing.append((role, doc_id))
                elif p.reason is None:
                    p.reason = result.reason

        whole = [p for p in fresh if p.reason is None]
        heads = self._bulk(
            ((names.of(p.order.head_role), p.order.document_id), self._create(p.order))
            for p in whole
        )
        raced = []
        for p in whole:
            result = heads[(names.of(p.order.head_role), p.order.document_id)]
            if result.outcome == OK:
                self.loaded += 1
                p.written = True
            elif result.outcome == EXISTS:
                raced.append(p)  # created since we looked: by a loader of another generation
            else:
                p.reason = result.reason
        if raced:
            stored = self._stored_heads([p.head for p in raced])
            for p in raced:
                if stored.get(p.head) == p.order.fingerprint:
                    self.replayed += 1
                    p.written = True
                else:
                    self._conflict(p, stored.get(p.head))
        self._undo([p for p in fresh if p.reason])
        self._record_conflicts([p for p in group if p.conflict])
        self._write_statuses([p for p in group if p.written])

    def _create(self, order: documents.Order) -> tuple[dict, dict]:
        index = self.names.of(order.head_role)
        return {ACTION: {"_index": index, "_id": order.document_id}}, order.document

    def _write_statuses(self, written: list[_Pending]) -> None:
        """Each written event's order status, versioned by its offset in Topic_Purchase: the
        latest event of an order wins in whatever order the writes land, and a status already
        there at that version or a later one answers 409, kept (a replay)."""
        index = self.names.statuses
        latest: dict[str, tuple[dict, int]] = {}  # one per order and request: the latest
        for p in written:
            if p.order.status is not None:
                doc_id, (doc, version) = str(p.order.order_id), p.order.status
                if doc_id not in latest or latest[doc_id][1] < version:
                    latest[doc_id] = (doc, version)
        actions = {}
        for doc_id, (doc, version) in latest.items():
            meta = {"_index": index, "_id": doc_id, "version": version}
            actions[(index, doc_id)] = ({"index": meta | {"version_type": "external"}}, doc)
        for (_, doc_id), result in self._bulk(actions.items()).items():
            if result.outcome not in (OK, EXISTS):
                log.error("the status %s was not written: %s", doc_id, result.reason)

    def _conflict(self, p: _Pending, kept: str | None) -> None:
        p.reason, p.conflict, p.kept = documents.conflict_reason(p.order.order_id), True, kept
        self.conflicts += 1
        log.warning("%s: dead-lettered, the first version stays", p.reason)

    def _record_conflicts(self, conflicts: list[_Pending]) -> None:
        """One data-quality document per conflict, created once (a re-read record finds its
        document there), before the batch is committed; the dashboard counts them."""
        index = self.names.quality
        if not conflicts or index is None:
            return
        now = format_time(datetime.now(UTC))
        actions = {}
        for p in conflicts:
            source = (p.message.topic, p.message.partition, p.message.offset)
            doc_id, doc = documents.conflict_document(p.order, p.kept, STAGE, source, now)
            actions[(index, doc_id)] = ({ACTION: {"_index": index, "_id": doc_id}}, doc)
        for (_, doc_id), result in self._bulk(actions.items()).items():
            if result.outcome not in (OK, EXISTS):
                log.error("the conflict %s was not recorded: %s", doc_id, result.reason)

    def _undo(self, failed: list[_Pending]) -> None:
        """Delete the parts of records that were not written, so no half order stays. Parts
        that were there before are removed too (their head is not: they are a half order left
        by an earlier attempt), except when another version of the record owns them."""
        victims = {
            part: p for p in failed for part in p.created + ([] if p.conflict else p.existing)
        }
        if not victims:
            return
        names = self.names
        results = self._bulk(
            (
                (names.of(role), doc_id),
                ({"delete": {"_index": names.of(role), "_id": doc_id}}, None),
            )
            for role, doc_id in victims
        )
        for (role, doc_id), p in victims.items():
            result = results[(names.of(role), doc_id)]
            if result.outcome not in (OK, GONE):
                log.error("%s %s of a refused record stays: %s", role, doc_id, result.reason)
                note = f"; its {role} documents could not be removed"
                if p.reason and note not in p.reason:
                    p.reason += f"{note} ({result.reason})"

    def _stored_heads(self, heads: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """(role, id) -> fingerprint of the heads already loaded, per index."""
        stored = {}
        for role in sorted({role for role, _ in heads}):
            ids = [doc_id for r, doc_id in heads if r == role]
            found = self._stored_fingerprints(ids, self.names.of(role))
            stored |= {(role, doc_id): fingerprint for doc_id, fingerprint in found.items()}
        return stored

    def _stored_fingerprints(self, ids: list[str], index: str) -> dict[str, str | None]:
        """id -> fingerprint of the heads already loaded in index (a realtime get: unrefreshed
        writes count)."""
        if not ids:
            return {}
        attempt = 0
        while True:
            try:
                docs = self.es.mget(
                    index=index,
                    ids=ids,
                    source_includes=["order_fingerprint"],
                    filter_path="docs._id,docs.found,docs._source",
                )["docs"]
                break
            except (ApiError, TransportError) as exc:
                attempt += 1
                self._wait(attempt, f"{len(ids)} stored orders could not be read: {exc}")
        return {d["_id"]: d.get("_source", {}).get("order_fingerprint") for d in docs if d["found"]}

    # ── bulk requests ────────────────────────────────────────────────────────────────────

    def _bulk(
        self, actions: Iterable[tuple[tuple[str, str], tuple[dict, dict | None]]]
    ) -> dict[tuple[str, str], Result]:
        """Send ((index, id), action) pairs until each has a final outcome; (index, id) ->
        Result."""
        waiting = dict(actions)
        results: dict[tuple[str, str], Result] = {}
        alone: set[tuple[str, str]] = set()  # too large for a shared request: sent by itself
        attempt = 0
        while waiting:
            retry: dict[tuple[str, str], str] = {}
            batches = (
                ({k: a for k, a in waiting.items() if k not in alone}, CHUNK_DOCUMENTS),
                ({k: a for k, a in waiting.items() if k in alone}, 1),
            )
            for batch, chunk in batches:
                for key, result in self._send(batch, chunk, alone=chunk == 1):
                    if result.outcome == RETRY:
                        retry[key] = result.reason or f"status {result.status}"
                    elif result.outcome == TOO_LARGE:
                        alone.add(key)
                    else:
                        results[key] = result
                        del waiting[key]
            if retry:
                attempt += 1
                self._wait(attempt, _summary(retry))
        return results

    def _send(
        self, actions: dict[tuple[str, str], tuple[dict, dict | None]], chunk_size: int, alone: bool
    ) -> Iterator[tuple[tuple[str, str], Result]]:
        """One pass of streaming_bulk; every action comes back once, answered or to retry."""
        if not actions:
            return
        unanswered = set(actions)
        try:
            for _, item in streaming_bulk(
                self.es,
                actions.values(),
                chunk_size=chunk_size,
                max_chunk_bytes=MAX_CHUNK_BYTES,
                expand_action_callback=_as_is,
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=HELPER_RETRIES,
                initial_backoff=0.5,
                max_backoff=4,
                retry_on_status=HELPER_RETRY_STATUS,
                filter_path=BULK_ANSWER,
            ):
                [(op, info)] = item.items()
                key = (info["_index"], info["_id"])
                status = info.get("status", 500)
                error = info.get("error")
                verdict = outcome(op, status, error, "exception" in info, alone)
                reason = None if verdict in (OK, EXISTS, GONE) else describe(error, status)
                unanswered.discard(key)
                yield key, Result(verdict, status, reason)
        except TransportError as exc:  # no answer at all (connection refused, timeout)
            for key in unanswered:
                yield key, Result(RETRY, 0, f"{type(exc).__name__}: {exc}")

    def _wait(self, attempt: int, why: str) -> None:
        """Back off before the next try, saying why; Stopped if asked to stop meanwhile."""
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempt - 1))
        self.retries += 1
        log.warning(
            "Elasticsearch did not take the batch (try %d): %s; retrying in %.0f s, nothing "
            "committed meanwhile",
            attempt,
            why,
            delay,
        )
        if self._stopping.wait(delay):
            raise Stopped()

    # ── dead letters ─────────────────────────────────────────────────────────────────────

    def _dead_letter(self, letters: list[tuple[Any, str]], gaps: list[retention.Gap] = ()) -> None:
        """Send the batch's dead letters and wait until Kafka acknowledged every one (raises
        if one was not: the batch is then not committed)."""
        if not letters and not gaps:
            return
        futures = retention.report(self.producer, self.names.dead_letter, STAGE, gaps)
        for message, reason in letters:
            headers = dead_letters.headers(
                reason,
                STAGE,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            futures.append(
                self.producer.send(
                    self.names.dead_letter, key=message.key, value=message.value, headers=headers
                )
            )
        self.producer.flush()
        for future in futures:
            future.get(timeout=60)
        self.dead_lettered += len(letters) + len(gaps)
        self.expired += sum(gap.records for gap in gaps)

    # ── the loop ─────────────────────────────────────────────────────────────────────────

    def _poll(self, timeout_ms: int) -> tuple[list, list[retention.Gap]]:
        """The next records, and the gaps before them (records expired before they were read)."""
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        firsts = {part: min(r.offset for r in records) for part, records in batch.items()}
        gaps = self._gaps(firsts)
        self._anchor(firsts)
        for part, records in batch.items():
            self._next[part] = max(r.offset for r in records) + 1
        return [record for part in batch.values() for record in part], gaps

    def _gaps(self, firsts: dict[TopicPartition, int]) -> list[retention.Gap]:
        """Gaps between where each partition was due to be read and its first record now.

        Due: one past the last record read since the assignment, else the group's committed
        offset (the consumer's reset to earliest does not change it; a group with none has
        nothing to miss). A jump there is a gap only if the broker's log start offset passed
        the due offset (not a transaction marker's offset, say); the gap ends before the first
        record read, or before the log start if records between are no data."""
        due: dict[tuple[str, int], int] = {}
        first_of: dict[tuple[str, int], int] = {}
        for part, first in firsts.items():
            expected = self._next.get(part)
            if expected is None:
                committed = self.consumer.committed(part)
                expected = committed if committed is not None else first
            if first > expected:
                due[(part.topic, part.partition)] = expected
                first_of[(part.topic, part.partition)] = first
        if not due:
            return []
        starts = retention.log_start_offsets(self.consumer, due)
        found = retention.expired(due, {p: min(s, first_of[p]) for p, s in starts.items()})
        return found

    def _anchor(self, firsts: dict[TopicPartition, int]) -> None:
        """Commit each newly assigned partition the group has never committed at the offset it
        starts from (its first record read now, else its position: the log start). Without it
        a loader down before its first commit would come back to a reset to earliest, and the
        records that expired meanwhile would leave no trace."""
        while self._assigned:
            part = self._assigned.pop()
            if self.consumer.committed(part) is not None:
                continue
            start = firsts[part] if part in firsts else self.consumer.position(part)
            if start is not None:
                self._commit({part: OffsetAndMetadata(start, "", -1)})

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Poll, write and commit batch after batch, as a two-stage pipeline: the next batch is
        fetched while the bulk requests of the one before are in flight. Batches are written
        one at a time, in order, and each one's offsets are committed only after it was
        written, so a crash or an outage re-reads and never skips."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tap-loader-bulk") as writer:
            in_flight = None
            try:
                while not should_stop():
                    records, gaps = self._poll(200)
                    self.membership.check()
                    if in_flight is not None:
                        self._commit_when_written(*in_flight, should_stop)
                        in_flight = None
                    if records:
                        written = writer.submit(self._write, records, gaps)
                        in_flight = (written, _next_offsets(records))
                if in_flight is not None:
                    self._commit_when_written(*in_flight, should_stop)
            except Stopped:
                log.info("stopped while waiting on Elasticsearch; the batch will be re-read")
            finally:
                self._stopping.set()

    def _commit_when_written(self, written: Future, offsets: dict, should_stop) -> None:
        """Commit a batch's offsets once it is written (a batch that could not be written stops
        the loader uncommitted). While it waits, the consumer keeps its group membership."""
        while True:
            try:
                written.result(timeout=KEEPALIVE_S)
                break
            except FutureTimeout:
                if should_stop():
                    self._stopping.set()
                self._keep_membership()
        self._commit(offsets)

    def _commit(self, offsets: dict) -> None:
        """Commit a written batch's offsets. A rebalance under way refuses the commit: poll
        (paused) until it completes and try again; a consumer no longer in its generation gives
        up, and the records are read again, which their ids make harmless."""
        for _ in range(COMMIT_TRIES):
            try:
                self.consumer.commit(offsets)
                return
            except REBALANCING as exc:
                log.warning("commit refused (%s); polling through the rebalance", exc)
                self._keep_membership()
        log.warning("a written batch stays uncommitted after a rebalance; it will be re-read")

    def _keep_membership(self) -> None:
        """Poll with every partition paused: the consumer counts as alive (max.poll.interval)
        and fetches nothing. Records that still come (partitions assigned anew by a rebalance
        are not paused) are put back by seeking to the first of each."""
        assigned = self.consumer.assignment()
        self.consumer.pause(*assigned)
        try:
            # Not 0: a poll that may not wait returns before it reaches the group's heartbeat.
            batch = self.consumer.poll(timeout_ms=100)
            for part, records in batch.items():
                self.consumer.seek(part, min(r.offset for r in records))
        finally:
            self.consumer.resume(*assigned)

    def close(self) -> None:
        self._stopping.set()
        self.consumer.close(autocommit=False)
        self.producer.close()
        self.membership.close()


class _Forget(ConsumerRebalanceListener):
    """On a rebalance, forget where each partition was due: another member may have read on
    meanwhile, and the committed offset says where this one is due now."""

    def __init__(self, due: dict[TopicPartition, int], assigned: set[TopicPartition]):
        self.due = due
        self.assigned = assigned  # for the loader's _anchor

    def on_partitions_revoked(self, revoked) -> None:
        self.due.clear()

    def on_partitions_assigned(self, assigned) -> None:
        self.due.clear()
        self.assigned.update(assigned)


def _as_is(action: tuple[dict, dict | None]) -> tuple[dict, dict | None]:
    return action


def _rounds(pending: list[_Pending]) -> Iterator[list[_Pending]]:
    """Groups with distinct heads, in batch order: a second record of a head is judged after
    the first one was written (a replay or a conflict then, never a race)."""
    while pending:
        seen: set[tuple[str, str]] = set()
        group, later = [], []
        for p in pending:
            (later if p.head in seen else group).append(p)
            seen.add(p.head)
        yield group
        pending = later


def _summary(retry: dict[tuple[str, str], str]) -> str:
    reasons: dict[str, int] = {}
    for reason in retry.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    return f"{len(retry)} documents to retry (" + "; ".join(f"{n} x {r}" for r, n in top) + ")"


def _next_offsets(records: list) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit once records are written: one past the last of each partition."""
    last: dict[TopicPartition, int] = {}
    for record in records:
        part = TopicPartition(record.topic, record.partition)
        last[part] = max(last.get(part, -1), record.offset)
    return {part: OffsetAndMetadata(offset + 1, "", -1) for part, offset in last.items()}
