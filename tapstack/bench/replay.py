"""Backlog replay: how many orders per second each stage gets through, start-up excluded.

The replay runs on a scratch copy of the flow so that it measures exactly the backlog: scratch
topics (Replay<stamp>_Topic_*) on the stack's broker, a scratch consumer group and scratch
indices, named in a scratch TAP_HOME whose settings.toml differs from the project's only in
those names. The stack's own pipeline is stopped meanwhile, so the one process being measured
has the machine to itself (with the engines).

1. A fast producer puts the backlog of valid order lines into the scratch Topic_Purchase.
2. process_orders starts with a fresh checkpoint on the scratch topics; when its outputs (the
   scratch Topic_Analysis and dead-letter topic) hold a record for every input record, the rate
   is the records divided by the time from the first output record's Kafka timestamp to the
   last one's. Spark's start-up (JVM, session, query planning) therefore does not count.
3. The same for behaviour, from the scratch Topic_Analysis to the scratch Topic_Dashboard.
4. The loader (not a Spark stage; for the end-to-end picture) on the scratch Topic_Dashboard
   into scratch indices made from the project's templates, timed by its committed offsets.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from tapstack import contracts, kafka_clients
from tapstack.bench import latency as calc
from tapstack.bench.load import OrderLines, Probe
from tapstack.elastic import templates
from tapstack.elastic.client import connect
from tapstack.native import processes
from tapstack.native.kafka import admin
from tapstack.native.stack import PIPELINE, Stack

ROLES = ("purchase", "analysis", "dashboard", "dead_letter")
INDEX_ROLES = ("orders", "lines", "ledger", "statuses")


@dataclass(frozen=True)
class Scratch:
    """Names of the scratch copy of the flow: topics, the loader's group and the indices."""

    topics: dict[str, str]
    group: str
    indices: dict[str, str]

    @classmethod
    def named(cls, stamp: str) -> Scratch:
        return cls(
            topics={role: f"Replay{stamp}_{contracts.topic(role)}" for role in ROLES},
            group=f"Replay{stamp}_{contracts.consumer_group('loader')}",
            indices={role: f"replay{stamp}-{contracts.index(role)}" for role in INDEX_ROLES},
        )


def scratch_home(folder: Path, scratch: Scratch) -> Path:
    """A TAP_HOME whose contracts are the project's with the scratch names put in."""
    target = folder / "home" / "contracts"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(contracts.ORDER_SCHEMA_FILE, target / contracts.ORDER_SCHEMA_FILE.name)
    shutil.copy2(contracts.SECURITY_FILE, target / contracts.SECURITY_FILE.name)
    text = contracts.SETTINGS_FILE.read_text(encoding="utf-8")
    renames = [(contracts.topic(r), n) for r, n in scratch.topics.items()]
    renames.append((contracts.consumer_group("loader"), scratch.group))
    renames += [(contracts.index(r), n) for r, n in scratch.indices.items()]
    for old, new in renames:
        text = text.replace(f'"{old}"', f'"{new}"', 1)
    parsed = tomllib.loads(text)
    if (
        any(parsed["topics"][r] != n for r, n in scratch.topics.items())
        or parsed["consumer_groups"]["loader"] != scratch.group
        or any(parsed["indices"][r] != n for r, n in scratch.indices.items())
    ):
        raise RuntimeError("could not put the scratch names in a copy of settings.toml")
    (target / contracts.SETTINGS_FILE.name).write_text(text, encoding="utf-8")
    return target.parent


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def produce_backlog(
    topic: str, count: int, first_id: int, seed: int, console: Console
) -> dict[str, Any]:
    """count valid order lines into topic, keyed by order id like the tailer; as fast as
    kafka-python goes (batched, acks=1: the backlog is scratch data)."""
    lines = OrderLines(first_id, seed=seed, stamp=False)
    producer = KafkaProducer(
        **kafka_clients.config(),
        client_id="tap-bench-backlog",
        acks=1,
        linger_ms=20,
        batch_size=512 * 1024,
    )
    started = time.monotonic()
    try:
        with _progress(console) as progress:
            task = progress.add_task("backlog produced", total=count)
            for index in range(count):
                producer.send(
                    topic,
                    key=str(first_id + index).encode(),
                    value=lines.line(index).rstrip(b"\n"),
                )
                if index % 5000 == 4999:
                    progress.update(task, completed=index + 1)
            producer.flush()
            progress.update(task, completed=count)
    finally:
        producer.close()
    seconds = time.monotonic() - started
    return {"records": count, "seconds": round(seconds, 2), "per_s": count / seconds}


def record_timestamp(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> int | None:
    """The Kafka timestamp (ms) of the record at offset, or None if it cannot be read."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=1000, max_records=1).get(tp, []):
            return record.timestamp
    return None


def output_span(
    probe: Probe, topics: list[str], before: dict[str, dict[int, int]]
) -> tuple[int | None, int | None]:
    """Timestamps (ms) of the first and last record written to topics since `before`."""
    consumer = KafkaConsumer(
        **kafka_clients.config(),
        client_id="tap-bench-span",
        group_id=None,
        enable_auto_commit=False,
    )
    firsts, lasts = [], []
    try:
        for topic in topics:
            for partition, end in probe.end(topic).items():
                start = before[topic].get(partition, 0)
                if end <= start:
                    continue
                tp = TopicPartition(topic, partition)
                firsts.append(record_timestamp(consumer, tp, start))
                lasts.append(record_timestamp(consumer, tp, end - 1))
    finally:
        consumer.close()
    firsts = [t for t in firsts if t is not None]
    lasts = [t for t in lasts if t is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def replay_stage(
    stack: Stack,
    job: str,
    source: str,
    outputs: list[str],
    env: dict[str, str],
    probe: Probe,
    console: Console,
    timeout: float,
) -> dict[str, Any]:
    """Run one Spark job on a backlog until its outputs hold a record per input record."""
    expected = probe.total(source) - sum(probe.beginning(source).values())
    before = {topic: probe.end(topic) for topic in outputs}
    name = f"replay_{job}"
    launched_wall = time.time()
    launched = time.monotonic()
    processes.start(stack.run_dir, name, stack.command(job), env=env, cwd=contracts.ROOT)
    produced, failed = 0, None
    try:
        with _progress(console) as progress:
            task = progress.add_task(f"replay {job}", total=expected)
            while produced < expected:
                time.sleep(0.5)
                produced = sum(
                    end - before[topic].get(p, 0)
                    for topic in outputs
                    for p, end in probe.end(topic).items()
                )
                progress.update(task, completed=min(produced, expected))
                if processes.find(stack.run_dir, name) is None:
                    failed = f"{job} exited; see {stack.run_dir / 'logs' / (name + '.log')}"
                    break
                if time.monotonic() - launched > timeout:
                    failed = f"stopped after {timeout:.0f} s; rate over the records done"
                    break
        wall = time.monotonic() - launched
    finally:
        processes.stop(stack.run_dir, name)
    first_ms, last_ms = output_span(probe, outputs, before)
    to_mono = time.monotonic() - time.time()
    return {
        "processing_window_mono": (
            [first_ms / 1000 + to_mono, last_ms / 1000 + to_mono] if first_ms and last_ms else None
        ),
        "job": job,
        "input_records": expected,
        "output_records": produced,
        "orders_per_s": calc.span_rate(produced, first_ms, last_ms),
        "processing_s": (last_ms - first_ms) / 1000 if first_ms and last_ms else None,
        "startup_s": first_ms / 1000 - launched_wall if first_ms else None,
        "wall_s_with_startup": round(wall, 2),
        "failed": failed,
    }


def replay_loader(
    stack: Stack,
    scratch: Scratch,
    env: dict[str, str],
    probe: Probe,
    console: Console,
    timeout: float,
) -> dict[str, Any]:
    """The loader on the replayed Topic_Dashboard, into scratch indices with the project's
    templates: records per second from its first committed batch to its last."""
    es = connect(request_timeout=60)
    for role, name in scratch.indices.items():
        body = templates.load_template(role)["template"]
        es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])
    source = scratch.topics["dashboard"]
    expected = probe.total(source)
    name = "replay_loader"
    launched = time.monotonic()
    processes.start(stack.run_dir, name, stack.command("loader"), env=env, cwd=contracts.ROOT)
    committed, first, last, failed = 0, None, None, None
    try:
        with _progress(console) as progress:
            task = progress.add_task("replay loader", total=expected)
            while committed < expected:
                time.sleep(0.25)
                committed = sum(probe.group_positions(scratch.group, source).values())
                now = time.monotonic()
                if committed and first is None:
                    first = (now, committed)
                if first is not None and committed > first[1]:
                    last = (now, committed)
                progress.update(task, completed=min(committed, expected))
                if processes.find(stack.run_dir, name) is None:
                    failed = f"loader exited; see {stack.run_dir / 'logs' / (name + '.log')}"
                    break
                if now - launched > timeout:
                    failed = f"stopped after {timeout:.0f} s; rate over the records done"
                    break
    finally:
        processes.stop(stack.run_dir, name)
        with contextlib.suppress(Exception):
            es.indices.delete(index=",".join(scratch.indices.values()))
        es.close()
    rate = None
    if first and last and last[0] > first[0]:
        rate = (last[1] - first[1]) / (last[0] - first[0])
    return {
        "processing_window_mono": [first[0], last[0]] if first and last else None,
        "job": "loader",
        "input_records": expected,
        "output_records": committed,
        "orders_per_s": rate,
        "processing_s": round(last[0] - first[0], 2) if first and last else None,
        "startup_s": round(first[0] - launched, 2) if first else None,
        "wall_s_with_startup": round(time.monotonic() - launched, 2),
        "failed": failed,
        "measured_by": "consumer group commits, polled every 0.25 s",
    }


def run_replay(
    stack: Stack,
    backlog: int,
    first_id: int,
    seed: int,
    console: Console,
    say: Callable[[str], None],
    max_offsets: int | None = None,
    timeout: float = 300,
    with_loader: bool = True,
) -> dict[str, Any]:
    """The whole replay; the stack's pipeline processes are left stopped (held)."""
    loader = None
    for name in PIPELINE:
        processes.stop(stack.run_dir, name)
    stamp = str(int(time.time()))
    scratch = Scratch.named(stamp)
    topics = scratch.topics
    folder = stack.run_dir / "replay" / stamp
    home = scratch_home(folder, scratch)
    settings = contracts.settings()["topics"]
    client = admin()
    try:
        client.create_topics(
            {
                name: {
                    "num_partitions": settings["partitions"],
                    "replication_factor": settings["replication_factor"],
                }
                for name in topics.values()
            }
        )
    finally:
        client.close()
    replay_env = {
        "TAP_HOME": str(home),
        "TAP_CHECKPOINT_DIR": str(folder / "checkpoints"),
        "TAP_READY_DIR": str(folder / "ready"),
    }
    if max_offsets:
        replay_env["TAP_MAX_OFFSETS_PER_TRIGGER"] = str(max_offsets)

    def env(job: str) -> dict[str, str | None]:
        """The stage's own environment (its key, its secrets), but as the admins: the scratch
        topics and indices are outside the pipeline users' grants."""
        kafka_user, kafka_password = stack.kafka_auth("admin")
        es_user, es_password = stack.es_auth("admin")
        admins = {"TAP_KAFKA_USER": kafka_user, "TAP_KAFKA_PASSWORD": kafka_password}
        if job == "loader":
            admins |= {"TAP_ES_USER": es_user, "TAP_ES_PASSWORD": es_password}
        return {**stack.pipeline_env(job), **admins, **replay_env}

    # Real-time mode has no batch cap, so none is reported for it.
    effective_max = None
    if contracts.real_time_interval() is None:
        effective_max = max_offsets or contracts.streaming("max_offsets_per_trigger")
    probe = Probe(stack.run_dir)
    try:
        say(f"Producing a backlog of {backlog:,} orders into {topics['purchase']}...")
        produced = produce_backlog(topics["purchase"], backlog, first_id, seed, console)
        stages = []
        for job, source, output in (
            ("process_orders", "purchase", "analysis"),
            ("behaviour", "analysis", "dashboard"),
        ):
            say(f"Replaying {topics[source]} through {job} (fresh checkpoint)...")
            stages.append(
                replay_stage(
                    stack,
                    job,
                    topics[source],
                    [topics[output], topics["dead_letter"]],
                    env(job),
                    probe,
                    console,
                    timeout,
                )
            )
        if with_loader:
            say(f"Replaying {topics['dashboard']} through the loader (scratch indices)...")
            loader = replay_loader(stack, scratch, env("loader"), probe, console, timeout)
    finally:
        probe.close()
        client = admin()
        with contextlib.suppress(Exception):
            client.delete_topics(list(topics.values()))
        client.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "backlog": backlog,
        "stage_timeout_s": timeout,
        "max_offsets_per_trigger": effective_max,
        "trigger": contracts.streaming("trigger"),
        "produce": produced,
        "stages": stages,
        "loader": loader,
    }
