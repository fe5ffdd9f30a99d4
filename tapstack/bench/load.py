"""Sustained load on a running native stack: a paced writer, an Elasticsearch watcher, and a
sampler of consumer lag, resident memory and CPU.

The writer appends simulated order events (payments mixed with the refunds, cancellations and
failed payments that follow them, each line under its own order id) to the stack's orders log
at a fixed rate, one write() per line as the plugin does, and keeps the moment each append
returned. The watcher asks Elasticsearch which of the appended, not yet seen order ids have their
event in the ledger (a terms query on order_id, no _source) and keeps the moment the answer
arrived: latency = seen - appended, both on this process's monotonic clock. The sampler takes,
once a second, the lag of every stage and the memory and CPU of every process of the stack.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psutil
from elasticsearch import Elasticsearch
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tapstack import contracts, kafka_clients
from tapstack.bench import latency as calc
from tapstack.native import processes
from tapstack.native.stack import Stack
from tapstack.simulator import Lifecycle, Simulator, format_line, reassigned

SPARK_JOBS = ("process_orders", "behaviour")
POOL_SIZE = 2000  # distinct simulated orders per phase; later orders reuse their contents
TERMS_CHUNK = 10_000  # ids per terms query (Elasticsearch allows 65,536)


# -- the orders ----------------------------------------------------------------------------------


class OrderLines:
    """Log lines for order ids first_id, first_id+1, ...: the Simulator's events, stamped now.

    A pool of simulated events (seeded, ids from first_id, with the lifecycle: about a quarter
    are refunds, cancellations and failed payments) gives the contents; each line gets its own
    order id (its event id following) and the current time as its event time, and is written
    by the simulator's format_line, so the bytes are the plugin's.
    """

    def __init__(self, first_id: int, seed: int, pool_size: int = POOL_SIZE, stamp: bool = True):
        self.first_id = first_id
        simulator = Simulator(seed=seed, order_id_start=first_id, lifecycle=Lifecycle())
        self.pool = [order.event for order in simulator.backfill(pool_size)]
        self.stamp = stamp
        self._tz = ZoneInfo(contracts.enrichment("shop_timezone"))
        self._second = -1
        self._iso = ""

    def _now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._iso = datetime.fromtimestamp(second, self._tz).isoformat(timespec="seconds")
        return self._iso

    def line(self, index: int) -> bytes:
        event = reassigned(self.pool[index % len(self.pool)], self.first_id + index)
        if self.stamp:
            event["timestamp"] = self._now()
        return format_line(event).encode("utf-8")


class Writer(threading.Thread):
    """Appends `total` orders to the log at `rate` per second; appended[i] = when order i was."""

    def __init__(self, log_path: Path, lines: OrderLines, total: int, rate: float):
        super().__init__(name="bench-writer", daemon=True)
        self.log_path = log_path
        self.lines = lines
        self.total = total
        self.rate = rate
        self.appended = np.full(total, np.nan)
        self.count = 0
        self.started = self.finished = None
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by the phase, never lost in a thread
            self.error = exc
        finally:
            self.finished = time.monotonic()

    def _write(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.started = start = time.monotonic()
            while self.count < self.total and not self._stop_event.is_set():
                target = calc.due(time.monotonic() - start, self.rate, self.total)
                while self.count < target:
                    view = memoryview(self.lines.line(self.count))
                    while view:  # one write per line; a short write is finished, not lost
                        view = view[os.write(fd, view) :]
                    self.appended[self.count] = time.monotonic()
                    self.count += 1
                if self.count < self.total:
                    wait = start + calc.due_at(self.count, self.rate) - time.monotonic()
                    if wait > 0:
                        self._stop_event.wait(wait)
        finally:
            os.close(fd)


class Watcher(threading.Thread):
    """Polls Elasticsearch for the appended events not seen yet in the ledger; seen[i] = first
    answer with i (each line has its own order id)."""

    def __init__(self, es: Elasticsearch, writer: Writer, first_id: int, interval: float):
        super().__init__(name="bench-watcher", daemon=True)
        self.es = es.options(request_timeout=30)
        self.writer = writer
        self.first_id = first_id
        self.interval = interval
        self.seen = np.full(writer.total, np.nan)
        self.count = 0
        self.polls = 0
        self.errors = 0
        self._low = 0  # every order below this index has been seen
        self._high = -1  # the highest index seen
        self._stop_event = threading.Event()
        self.index = contracts.index("ledger")

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            began = time.monotonic()
            try:
                self.poll()
            except Exception:  # Elasticsearch busy or restarting: count it and poll again
                self.errors += 1
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def pending(self) -> np.ndarray:
        """Indices of the orders not seen yet below the highest one seen."""
        window = self.seen[self._low : self._high + 1]
        unseen = np.flatnonzero(np.isnan(window))
        if unseen.size:
            self._low += int(unseen[0])
            return unseen - unseen[0] + self._low
        self._low = self._high + 1
        return unseen

    def poll(self) -> None:
        """Two questions whose cost does not grow with the backlog: which orders above the
        highest one seen are searchable now (the front of the flow, read in id order), and
        which of the few unseen ones below it (the partitions do not arrive in step) are."""
        appended = self.writer.count
        if appended > self._high + 1:
            ids = {"gt": self._high + self.first_id, "lt": appended + self.first_id}
            self._mark(self._search({"range": {"order_id": ids}}, TERMS_CHUNK, sort=True))
        pending = self.pending()
        for begin in range(0, pending.size, TERMS_CHUNK):
            chunk = pending[begin : begin + TERMS_CHUNK]
            terms = {"terms": {"order_id": (chunk + self.first_id).tolist()}}
            self._mark(self._search(terms, int(chunk.size)))
        self.polls += 1

    def _search(self, query: dict, size: int, sort: bool = False) -> list[dict]:
        response = self.es.search(
            index=self.index,
            query={"bool": {"filter": [query, {"term": {"entry": "event"}}]}},
            size=size,
            sort=[{"order_id": "asc"}] if sort else None,
            source=False,
            track_total_hits=False,
            filter_path="hits.hits._id",
        )
        return response.body.get("hits", {}).get("hits", [])

    def _mark(self, hits: list[dict]) -> None:
        now = time.monotonic()
        for hit in hits:
            index = int(hit["_id"].split("-", 1)[0]) - self.first_id  # <order_id>-<event>
            if 0 <= index < self.seen.size and np.isnan(self.seen[index]):
                self.seen[index] = now
                self.count += 1
                self._high = max(self._high, index)


# -- probes: Kafka offsets, Spark checkpoints, processes -------------------------------------------


class Probe:
    """Offsets of the stack's topics, the Spark jobs' committed progress and the loader group's.

    Spark keeps its Kafka positions in the query checkpoint, not in a consumer group: a job's
    progress is the offsets/<n> file of the newest batch n that has a commits/<n> file, i.e.
    everything up to those offsets has been written to the job's output topic.
    """

    def __init__(self, run_dir: Path, checkpoints: Path | None = None):
        self.run_dir = run_dir
        self.checkpoints = checkpoints or run_dir / "checkpoints"
        self.consumer = KafkaConsumer(
            **kafka_clients.config(),
            client_id="tap-bench",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=15000,
        )
        self.admin = KafkaAdminClient(
            **kafka_clients.config(), client_id="tap-bench-admin", request_timeout_ms=15000
        )
        self._partitions: dict[str, list[TopicPartition]] = {}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.consumer.close()
        with contextlib.suppress(Exception):
            self.admin.close()

    def partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._partitions:
            found = self.consumer.partitions_for_topic(topic) or set()
            if not found:
                return []
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(found)]
        return self._partitions[topic]

    def end(self, topic: str) -> dict[int, int]:
        parts = self.partitions(topic)
        return {tp.partition: o for tp, o in self.consumer.end_offsets(parts).items()}

    def beginning(self, topic: str) -> dict[int, int]:
        parts = self.partitions(topic)
        return {tp.partition: o for tp, o in self.consumer.beginning_offsets(parts).items()}

    def total(self, topic: str) -> int:
        """Records ever produced to a topic (the sum of its end offsets)."""
        return sum(self.end(topic).values())

    def group_positions(self, group: str, topic: str) -> dict[int, int]:
        committed = self.admin.list_group_offsets({group: None}).get(group, {})
        return {
            tp.partition: meta.offset
            for tp, meta in committed.items()
            if tp.topic == topic and meta.offset >= 0
        }

    def spark_positions(self, query: str, topic: str) -> dict[int, int]:
        folder = self.checkpoints / query
        try:
            batch = calc.latest_batch(os.listdir(folder / "commits"))
            if batch is None:
                return {}
            text = (folder / "offsets" / str(batch)).read_text()
        except FileNotFoundError:
            return {}
        return calc.checkpoint_offsets(text).get(topic, {})

    def stage_lags(self, appended: int, purchase_before: int) -> dict[str, int]:
        """Records waiting in front of each stage (see docs/performance.md)."""
        purchase, analysis, dashboard = (
            contracts.topic(role) for role in ("purchase", "analysis", "dashboard")
        )
        purchase_end = self.end(purchase)
        return {
            "tailer": calc.appended_lag(appended, sum(purchase_end.values()), purchase_before),
            "process_orders": calc.partition_lag(
                purchase_end,
                self.spark_positions("process_orders", purchase),
                self.beginning(purchase),
            ),
            "behaviour": calc.partition_lag(
                self.end(analysis),
                self.spark_positions("behaviour", analysis),
                self.beginning(analysis),
            ),
            "loader": calc.partition_lag(
                self.end(dashboard),
                self.group_positions(contracts.consumer_group("loader"), dashboard),
                self.beginning(dashboard),
            ),
        }


def process_usage(run_dir: Path) -> dict[str, tuple[int, float]]:
    """name -> (resident bytes, CPU seconds so far) of every process the stack registered.

    Like tapstack.native.processes.rss_bytes, a process counts with its whole process group
    (the JVM a launcher started), but all groups are read in one pass over the process table.
    """
    leaders = {}
    for name in processes.registered(run_dir):
        managed = processes.find(run_dir, name)
        if managed is not None:
            with contextlib.suppress(ProcessLookupError):
                leaders[os.getpgid(managed.pid)] = name
    usage = {name: (0, 0.0) for name in leaders.values()}
    for proc in psutil.process_iter(["pid"]):
        try:
            name = leaders.get(os.getpgid(proc.pid))
            if name is None:
                continue
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        before_rss, before_cpu = usage[name]
        usage[name] = (before_rss + rss, before_cpu + cpu.user + cpu.system)
    return usage


@dataclass
class PhaseCounts:
    """What the sampler needs to know about the phase running now."""

    writer: Writer
    watcher: Watcher
    purchase_before: int


class Sampler(threading.Thread):
    """Once a second: memory and CPU of every process, and during a phase the lag per stage.

    Runs for the whole benchmark, so that the peak memory of the stack covers every phase,
    restarts and the replay included. Uses its own Kafka clients (they are not thread-safe).
    """

    def __init__(self, run_dir: Path, interval: float = 1.0):
        super().__init__(name="bench-sampler", daemon=True)
        self.run_dir = run_dir
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.phase: PhaseCounts | None = None
        self.lag_errors = 0
        self._probe: Probe | None = None
        self._stop_event = threading.Event()
        self._cpu_before: dict[str, float] = {}
        self._t_before: float | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                began = time.monotonic()
                self.samples.append(self.sample())
                self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - began)))
        finally:
            if self._probe is not None:
                self._probe.close()

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        usage = process_usage(self.run_dir)
        cpu_rate = {}
        if self._t_before is not None and now > self._t_before:
            for name, (_, cpu) in usage.items():
                before = self._cpu_before.get(name, cpu)
                cpu_rate[name] = max(0.0, cpu - before) / (now - self._t_before)
        self._cpu_before = {name: cpu for name, (_, cpu) in usage.items()}
        self._t_before = now
        sample: dict[str, Any] = {
            "t": now,
            "rss": {name: rss for name, (rss, _) in usage.items()},
            "cpu": cpu_rate,
        }
        sample["rss_total"] = sum(sample["rss"].values())
        phase = self.phase
        if phase is not None:
            appended, seen = phase.writer.count, phase.watcher.count
            sample.update(appended=appended, seen=seen, in_flight=appended - seen)
            try:
                if self._probe is None:
                    self._probe = Probe(self.run_dir)
                sample["lag"] = self._probe.stage_lags(appended, phase.purchase_before)
            except Exception:  # a broker hiccup costs one sample, not the run
                self.lag_errors += 1
        return sample

    def window(self, start: float, end: float) -> list[dict[str, Any]]:
        return [s for s in list(self.samples) if start <= s["t"] <= end]

    def mean_cpu(self, start: float, end: float) -> dict[str, float]:
        """Mean CPU cores of each process over the samples between start and end."""
        samples = [s for s in self.window(start, end) if s["cpu"]]
        names = sorted({n for s in samples for n in s["cpu"]})
        return {n: float(np.mean([s["cpu"].get(n, 0.0) for s in samples])) for n in names}


# -- one phase -----------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every phase shares: the stack, its clients and the run's options."""

    stack: Stack
    es: Elasticsearch
    probe: Probe
    sampler: Sampler
    console: Console
    seed: int = 11
    poll: float = 0.25
    highest_id: int = 0
    phases_run: int = field(default=0)

    def next_first_id(self) -> int:
        first = calc.order_id_block(self.highest_id, self.phases_run)
        self.phases_run += 1
        return first


def highest_order_id(es: Elasticsearch) -> int:
    """The largest order id already in the ledger, which holds every event's (0 when empty)."""
    response = es.search(
        index=contracts.index("ledger"),
        size=0,
        aggs={"top": {"max": {"field": "order_id"}}},
        track_total_hits=False,
    )
    value = response.body.get("aggregations", {}).get("top", {}).get("value")
    return int(value) if value else 0


HOPS = ("tailer", "process_orders", "behaviour", "loader+refresh")


def read_stamps(
    consumer: KafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]], timeout: float = 120
) -> dict[int, float]:
    """order id -> Kafka timestamp (s) of the first record with that key in the offset ranges."""
    todo = {tp: span for tp, span in ranges.items() if span[1] > span[0]}
    stamps: dict[int, float] = {}
    if not todo:
        return stamps
    consumer.assign(list(todo))
    for tp, (start, _) in todo.items():
        consumer.seek(tp, start)
    deadline = time.monotonic() + timeout
    while todo and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
            stop = todo.get(tp, (0, -1))[1]
            for record in records:
                if record.offset >= stop:
                    break
                with contextlib.suppress(TypeError, ValueError):
                    stamps.setdefault(int(record.key), record.timestamp / 1000.0)
            if tp in todo and consumer.position(tp) >= stop:
                del todo[tp]
                consumer.pause(tp)
    return stamps


def latency_breakdown(
    writer: Writer, watcher: Watcher, first_id: int, window: tuple[float, float], wall: float
) -> dict[str, Any]:
    """Per-hop latency of the orders appended in window (monotonic seconds): the log append,
    the Kafka record timestamps in Topic_Purchase, Topic_Analysis and Topic_Dashboard (set by
    each producer when it sends), and the moment the order was found searchable.

    wall converts this process's monotonic clock to the wall clock of the Kafka timestamps.
    """
    count = writer.count
    appended_mono = writer.appended[:count]
    chosen = np.flatnonzero((appended_mono >= window[0]) & (appended_mono < window[1]))
    appended = {first_id + int(i): float(appended_mono[i]) + wall for i in chosen}
    seen = {
        first_id + int(i): float(watcher.seen[i]) + wall
        for i in chosen
        if not np.isnan(watcher.seen[i])
    }
    if not seen:
        return {"orders": 0}
    start_ms = int((window[0] + wall - 1) * 1000)
    stop_ms = int((max(seen.values()) + 1) * 1000)
    consumer = KafkaConsumer(
        **kafka_clients.config(),
        client_id="tap-bench-breakdown",
        group_id=None,
        enable_auto_commit=False,
    )
    points: list[tuple[str, dict[int, float]]] = [("appended", appended)]
    try:
        for role in ("purchase", "analysis", "dashboard"):
            topic = contracts.topic(role)
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            ends = consumer.end_offsets(parts)
            starts = consumer.offsets_for_times({tp: start_ms for tp in parts})
            stops = consumer.offsets_for_times({tp: stop_ms for tp in parts})
            ranges = {
                tp: (
                    starts[tp].offset if starts[tp] else ends[tp],
                    stops[tp].offset if stops[tp] else ends[tp],
                )
                for tp in parts
            }
            stamps = read_stamps(consumer, ranges)
            points.append((topic, {i: t for i, t in stamps.items() if i in appended}))
    finally:
        consumer.close()
    points.append(("searchable", seen))
    result = calc.stage_breakdown(points, HOPS)
    result["window_s"] = round(window[1] - window[0], 1)
    return result


def machine_snapshot() -> dict[str, float]:
    """CPU seconds the whole machine and this process have spent so far, and the load."""
    cpu = psutil.cpu_times()
    me = psutil.Process().cpu_times()
    busy = cpu.user + cpu.nice + cpu.system + cpu.irq + cpu.softirq + getattr(cpu, "steal", 0.0)
    return {
        "t": time.monotonic(),
        "busy": busy,
        "bench": me.user + me.system,
        "load1": os.getloadavg()[0],
    }


def machine_figures(
    before: dict[str, float], after: dict[str, float], stack_cores: float
) -> dict[str, float]:
    """How busy the machine was while writing, and how much of it was not the stack's."""
    seconds = max(after["t"] - before["t"], 1e-6)
    busy = (after["busy"] - before["busy"]) / seconds
    bench = (after["bench"] - before["bench"]) / seconds
    return {
        "cpus": psutil.cpu_count() or 0,
        "busy_cores": round(busy, 2),
        "stack_cores": round(stack_cores, 2),
        "bench_tool_cores": round(bench, 2),
        "other_cores": round(max(0.0, busy - stack_cores - bench), 2),
        "load_avg_1m_at_end": round(after["load1"], 2),
    }


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def idle_cpu(bench: Bench, trigger: str, seconds: float = 20.0) -> dict[str, Any]:
    """CPU cores each process uses while no order arrives (after the pipeline settled)."""
    settle(bench, 120)
    time.sleep(1.5)  # the sampler's next CPU rate covers only idle time
    start = time.monotonic()
    time.sleep(seconds)
    cores = bench.sampler.mean_cpu(start, time.monotonic())
    return {
        "trigger": trigger,
        "seconds": seconds,
        "cpu_cores": cores,
        "stack_cores": sum(cores.values()),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def settle(bench: Bench, timeout: float) -> dict[str, Any]:
    """Wait until no stage has records left from before (at most timeout s): a phase must not
    pay for the backlog of the one before it."""
    began = time.monotonic()
    purchase = contracts.topic("purchase")
    while True:
        lags = bench.probe.stage_lags(0, bench.probe.total(purchase))
        backlog = sum(v for k, v in lags.items() if k != "tailer")
        waited = time.monotonic() - began
        if backlog == 0 or waited >= timeout:
            return {"waited_s": round(waited, 1), "records_left": backlog, "lags": lags}
        time.sleep(1.0)


def run_phase(
    bench: Bench,
    label: str,
    rate: float,
    duration: float,
    drain: float,
    trigger: str,
    warmup: float = 10.0,
) -> dict[str, Any]:
    """Write rate x duration orders at `rate`, wait up to `drain` s for the last ones to be
    searchable, and return the phase's figures."""
    before = settle(bench, drain)
    if before["records_left"]:
        bench.console.print(
            f"[yellow]{before['records_left']:,} records of earlier phases are still in the "
            f"pipeline after {before['waited_s']:.0f} s; {label} starts anyway.[/]"
        )
    total = max(1, round(rate * duration))
    first_id = bench.next_first_id()
    lines = OrderLines(first_id, seed=bench.seed + bench.phases_run)
    writer = Writer(bench.stack.log_path, lines, total, rate)
    watcher = Watcher(bench.es, writer, first_id, bench.poll)
    purchase_before = bench.probe.total(contracts.topic("purchase"))
    bench.sampler.phase = PhaseCounts(writer, watcher, purchase_before)
    start = time.monotonic()
    wall = time.time() - start
    machine_before = machine_snapshot()
    machine_after = None
    watcher.start()
    writer.start()
    write_end = drain_end = None
    with _progress(bench.console) as progress:
        task = progress.add_task(f"{label}: indexed", total=total, status="")
        while True:
            time.sleep(0.5)
            progress.update(
                task,
                completed=watcher.count,
                status=f"written {writer.count:,}  in flight {writer.count - watcher.count:,}",
            )
            if write_end is None and not writer.is_alive():
                write_end = writer.finished or time.monotonic()
                machine_after = machine_snapshot()
            if write_end is not None and (
                watcher.count >= writer.count or time.monotonic() > write_end + drain
            ):
                drain_end = time.monotonic()
                break
    watcher.stop()
    watcher.join(timeout=60)
    bench.sampler.phase = None
    if writer.error is not None:
        raise writer.error
    figures = phase_figures(
        label=label,
        rate=rate,
        duration=duration,
        trigger=trigger,
        writer=writer,
        watcher=watcher,
        samples=bench.sampler.window(start, drain_end),
        start=start,
        write_end=write_end,
        drain_end=drain_end,
        warmup=warmup,
        first_id=first_id,
    )
    figures["backlog_at_start"] = before
    figures["machine"] = machine_figures(
        machine_before, machine_after, sum(figures["cpu_cores_avg"].values())
    )
    steady_from, steady_to = calc.steady_window(writer.started or start, write_end, warmup)
    middle, half = (
        (steady_from + steady_to) / 2,
        min(max(10.0, (steady_to - steady_from) / 3), 20.0) / 2,
    )
    window = (max(steady_from, middle - half), min(steady_to, middle + half))
    try:
        figures["latency_breakdown_s"] = latency_breakdown(writer, watcher, first_id, window, wall)
    except Exception as exc:  # a figure less, not a failed benchmark
        figures["latency_breakdown_s"] = {"orders": 0, "error": f"{type(exc).__name__}: {exc}"}
    return figures


def phase_figures(
    *,
    label: str,
    rate: float,
    duration: float,
    trigger: str,
    writer: Writer,
    watcher: Watcher,
    samples: list[dict[str, Any]],
    start: float,
    write_end: float,
    drain_end: float,
    warmup: float,
    first_id: int,
) -> dict[str, Any]:
    appended = writer.appended[: writer.count]
    seen_times = watcher.seen[: writer.count]
    write_span = (
        float(appended[-1] - appended[0]) if writer.count > 1 else 0.0
    )  # first to last append
    accepted = (writer.count - 1) / write_span if write_span > 0 else None
    steady_from, steady_to = calc.steady_window(writer.started or start, write_end, warmup)
    indexed = calc.window_rate(seen_times[~np.isnan(seen_times)], steady_from, steady_to)
    in_writing = [s for s in samples if s["t"] <= write_end and "lag" in s]
    stages = ("tailer", "process_orders", "behaviour", "loader")
    lag_end = dict(in_writing[-1]["lag"]) if in_writing else {}
    if in_writing:
        lag_end["in_flight"] = in_writing[-1]["in_flight"]
    lag_max = {stage: max((s["lag"][stage] for s in in_writing), default=None) for stage in stages}
    lag_max["in_flight"] = max((s["in_flight"] for s in in_writing), default=None)
    times, values = calc.second_half(in_writing, "in_flight", writer.started or start, write_end)
    slope = calc.growth_per_second(times, values)
    rss_names = sorted({name for s in samples for name in s["rss"]})
    writing = [s for s in samples if s["t"] <= write_end]
    cpu = {
        name: float(np.mean([s["cpu"].get(name, 0.0) for s in writing if s["cpu"]]))
        for name in rss_names
        if any(s["cpu"] for s in writing)
    }
    return {
        "label": label,
        "trigger": trigger,
        "rate_offered": rate,
        "duration_s": duration,
        "first_order_id": first_id,
        "orders": writer.total,
        "written": writer.count,
        "seen": watcher.count,
        "unseen_after_drain": writer.count - watcher.count,
        "drain_s": round(drain_end - write_end, 2),
        "accepted_per_s": accepted,
        "indexed_per_s_steady": indexed,
        "steady_window_s": round(steady_to - steady_from, 2),
        "latency_s": calc.summarise(calc.latencies(appended, seen_times)),
        "lag_end": lag_end,
        "lag_max": lag_max,
        "in_flight_growth_per_s": slope,
        "lag_growing": calc.lag_is_growing(slope, rate),
        "rss_peak_bytes": {name: max(s["rss"].get(name, 0) for s in samples) for name in rss_names},
        "rss_peak_total_bytes": max((s["rss_total"] for s in samples), default=0),
        "cpu_cores_avg": cpu,
        "watcher": {
            "polls": watcher.polls,
            "errors": watcher.errors,
            "interval_s": watcher.interval,
        },
        "timeline": [
            {
                "t": round(s["t"] - start, 1),
                "appended": s.get("appended"),
                "seen": s.get("seen"),
                "lag": s.get("lag"),
                "rss_total_mib": round(s["rss_total"] / 2**20),
            }
            for s in samples
        ],
    }


# -- restarting the Spark jobs with another trigger ----------------------------------------------


def restart_spark_jobs(stack: Stack, trigger: str | None, say: Callable[[str], None]) -> None:
    """Stop both Spark jobs and start them again with TAP_TRIGGER=trigger (None: unset).

    Stack.start_process hands os.environ plus the pipeline's variables to the process, so the
    trigger reaches the jobs through this process's environment.
    """
    for name in SPARK_JOBS:
        processes.stop(stack.run_dir, name)
    if trigger is None:
        os.environ.pop("TAP_TRIGGER", None)
    else:
        os.environ["TAP_TRIGGER"] = trigger
    for name in SPARK_JOBS:
        stack.start_process(name)
    effective = trigger or contracts.streaming("trigger")
    say(f"Spark jobs restarted with trigger {effective!r}; waiting for them to serve...")
    stack.wait_pipeline_ready(processes_=SPARK_JOBS)
