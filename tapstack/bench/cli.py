"""`tap bench`: throughput and order-to-dashboard latency of the native stack.

    tap bench                 the full run (300 s per rate; about 40 minutes)
    tap bench --quick         30 s per rate, 60 s with the original trigger (about 12 minutes)
    tap bench show FILE       print a saved report again

Figures and a PASS/MISS per target are printed and saved to reports/bench-<stamp>.json; the
benchmark never fails on a MISS (exit 0), only when the stack cannot run (exit 1).
"""

from __future__ import annotations

import os
import platform
import shlex
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import typer

from tapstack import contracts
from tapstack.bench import report as reporting
from tapstack.console import console, friendly_errors, say
from tapstack.native import processes
from tapstack.native.stack import PIPELINE, Stack

if TYPE_CHECKING:
    from tapstack.bench.load import Bench, Sampler

app = typer.Typer(no_args_is_help=False)

DEFAULT_RATES = "50,200,1000,2000"


@dataclass
class Options:
    name: str = "bench"
    rates: list[float] = field(default_factory=lambda: parse_rates(DEFAULT_RATES))
    duration: float = 300.0
    original_duration: float = 120.0
    original_trigger: str = "20 seconds"
    compare_triggers: list[str] = field(default_factory=list)
    spark_conf: list[str] = field(default_factory=list)
    # Half a million, so that the fresh JVM's warm-up (JIT) is a small part of the replay.
    backlog: int = 500_000
    replay_max_offsets: int | None = None
    drain: float = 120.0
    keep_going: bool = False
    replay_timeout: float = 300.0
    poll: float = 0.25
    seed: int = 11
    fresh: bool = True
    keep_running: bool = False
    out: Path = contracts.ROOT / "reports"


def parse_rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"not a list of numbers: {text}") from exc
    if any(rate <= 0 for rate in rates):
        raise typer.BadParameter("rates must be positive orders per second")
    return rates


def submit_args(confs: list[str]) -> str | None:
    """PYSPARK_SUBMIT_ARGS carrying extra Spark settings to both jobs (None: none given).

    PySpark starts its JVM with these arguments; settings the jobs' session builder sets
    itself take precedence, so this reaches only settings the jobs leave alone.
    """
    if not confs:
        return None
    for conf in confs:
        if "=" not in conf:
            raise typer.BadParameter(f"--spark-conf wants KEY=VALUE, got {conf!r}")
    return " ".join(f"--conf {shlex.quote(conf)}" for conf in confs) + " pyspark-shell"


def _start(stack: Stack, options: Options) -> None:
    from tapstack.bench.load import SPARK_JOBS, restart_spark_jobs
    from tapstack.demo import ensure_model

    if options.fresh:
        say(f"Preparing a fresh native stack in {stack.run_dir} ...")
        stack.stop(say=lambda _: None, purge=True)
    stack.start_engines(say=say)
    ensure_model(stack)
    missing = [p for p in PIPELINE if processes.find(stack.run_dir, p) is None]
    if len(missing) == len(PIPELINE):
        stack.start_pipeline(say=say)
    else:
        for process in missing:
            stack.start_process(process)
        if options.spark_conf and not set(SPARK_JOBS) & set(missing):
            restart_spark_jobs(stack, os.environ.get("TAP_TRIGGER"), say)
    say("Waiting for the tailer, both Spark jobs and the loader to serve...")
    stack.wait_pipeline_ready()


def _resume_pipeline(stack: Stack) -> None:
    for process in PIPELINE:
        if processes.find(stack.run_dir, process) is None:
            stack.start_process(process)


def _whole_run_rss(sampler: Sampler) -> dict[str, Any]:
    samples = list(sampler.samples)
    names = sorted({n for s in samples for n in s["rss"]})
    return {
        "peak_total_bytes": max((s["rss_total"] for s in samples), default=0),
        "peak_bytes": {n: max(s["rss"].get(n, 0) for s in samples) for n in names},
        "samples": len(samples),
    }


def _cpu_in(sampler: Sampler, window: list[float] | None) -> dict[str, float]:
    """Mean CPU cores per process over a window of the sampler's timeline."""
    if not window:
        return {}
    cores = sampler.mean_cpu(window[0], window[1] + 1.0)
    return {n: round(c, 2) for n, c in cores.items() if c >= 0.01}


def _with_trigger(
    bench: Bench, trigger: str, label: str, duration: float, drain: float, idle: list
) -> dict[str, Any]:
    """Restart both Spark jobs with another trigger, measure idle CPU and 200/s, then restore
    the trigger."""
    from tapstack.bench.load import idle_cpu, restart_spark_jobs, run_phase

    previous = os.environ.get("TAP_TRIGGER")
    say(f"Restarting both Spark jobs with trigger {trigger!r}.")
    restart_spark_jobs(bench.stack, trigger, say)
    try:
        run_phase(bench, "warm-up", 100, 2, drain=180, trigger=trigger)
        idle.append(idle_cpu(bench, trigger))
        phase = run_phase(
            bench, label, reporting.P95_TARGET_RATE, duration, drain=drain, trigger=trigger
        )
        _say_phase(phase)
    finally:
        say("Restoring the TAP trigger.")
        restart_spark_jobs(bench.stack, previous, say)
    return phase


def run_bench(options: Options) -> dict[str, Any]:
    from tapstack import preflight
    from tapstack.bench.load import Bench, Probe, Sampler, highest_order_id, idle_cpu, run_phase
    from tapstack.bench.replay import run_replay
    from tapstack.elastic.client import connect

    preflight.check()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    extra = submit_args(options.spark_conf)
    if extra:
        os.environ["PYSPARK_SUBMIT_ARGS"] = extra
    trigger = contracts.streaming("trigger")
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {**asdict(options), "out": str(options.out)},
        "settings": {
            "trigger": trigger,
            "max_offsets_per_trigger": contracts.streaming("max_offsets_per_trigger"),
            "partitions": contracts.settings()["topics"]["partitions"],
            "refresh_interval": contracts.settings()["indices"]["refresh_interval"],
            "spark_conf": options.spark_conf,
        },
        "phases": [],
        "skipped_rates": [],
        "trigger_comparison": [],
        "idle": [],
    }
    stack = Stack(options.name)
    # The bench's own clients (probe, backlog, Elasticsearch) log in as this stack's admin.
    os.environ["TAP_SECRETS_DIR"] = str(stack.secrets_dir)
    _start(stack, options)
    es = connect(request_timeout=30)
    probe = Probe(stack.run_dir)
    sampler = Sampler(stack.run_dir)
    sampler.start()
    bench = Bench(stack, es, probe, sampler, console, seed=options.seed, poll=options.poll)
    bench.highest_id = highest_order_id(es)
    try:
        say("Warm-up (not measured): 500 orders at 100/s, so that Spark's first batches are done.")
        run_phase(bench, "warm-up", 100, 5, drain=180, trigger=trigger)
        say("Idle CPU: 20 s with no orders.")
        report["idle"].append(idle_cpu(bench, trigger))
        for number, rate in enumerate(options.rates):
            if report["phases"] and not options.keep_going:
                last = report["phases"][-1]
                if last["unseen_after_drain"] > 0:
                    report["skipped_rates"] = options.rates[number:]
                    say(
                        f"[yellow]{last['label']} was not sustained "
                        f"({last['unseen_after_drain']:,} orders still unseen after the drain): "
                        f"higher rates skipped (--keep-going runs them anyway).[/]"
                    )
                    break
            say(f"Sustained load: {rate:g} orders/s for {options.duration:g} s.")
            phase = run_phase(
                bench, f"{rate:g}/s", rate, options.duration, drain=options.drain, trigger=trigger
            )
            report["phases"].append(phase)
            _say_phase(phase)
        for other in options.compare_triggers:
            report["trigger_comparison"].append(
                _with_trigger(
                    bench,
                    other,
                    f"200/s @ {other}",
                    options.duration,
                    options.drain,
                    report["idle"],
                )
            )
        if options.original_duration > 0:
            say(f"Original settings: both Spark jobs with trigger {options.original_trigger!r}.")
            phase = _with_trigger(
                bench,
                options.original_trigger,
                f"original {reporting.P95_TARGET_RATE:g}/s",
                options.original_duration,
                max(options.drain, 120),
                report["idle"],
            )
            tap = reporting.tap_phase_at(report["phases"], reporting.P95_TARGET_RATE)
            report["original"] = {
                "phase": phase,
                "tap_phase": tap["label"] if tap else None,
                "tap_p95": tap["latency_s"]["p95"] if tap else None,
                "p95_ratio": reporting.p95_ratio(phase, tap),
            }
        say("Model: retraining on the bench's orders, and the share of labels that would flip.")
        report["retraining"] = _retraining(stack, es)
        say(reporting.retraining_line(report["retraining"]))
        if options.backlog > 0:
            report["replay"] = run_replay(
                stack,
                options.backlog,
                bench.next_first_id(),
                options.seed,
                console,
                say,
                max_offsets=options.replay_max_offsets,
                timeout=options.replay_timeout,
            )
            replayed = [*report["replay"]["stages"], report["replay"].get("loader")]
            for stage in filter(None, replayed):
                stage["cpu_cores_avg"] = _cpu_in(sampler, stage.pop("processing_window_mono"))
    except (Exception, KeyboardInterrupt) as exc:  # keep the figures measured so far
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sampler.stop()
        sampler.join(timeout=30)
        report["rss"] = _whole_run_rss(sampler)
        report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        probe.close()
        es.close()
        if options.keep_running:
            _resume_pipeline(stack)
            say(f"The stack keeps running: `tap stack stop --name {options.name}`.")
        else:
            say("Stopping the stack...")
            stack.stop(say=lambda _: None)
    report["verdicts"] = reporting.verdicts(report)
    reporting.print_report(report, console)
    path = reporting.write_json(report, options.out, stamp)
    say(f"Figures saved to {path}")
    return report


def _retraining(stack: Stack, es) -> dict[str, Any]:
    """The retraining figure, or why it could not be measured (the bench goes on)."""
    from tap_spark.model import ModelError
    from tapstack.bench import retraining
    from tapstack.elastic.history import HistoryError

    try:
        return retraining.measure(stack.model_dir, es, stack.run_dir)
    except (ModelError, HistoryError) as error:
        return {"error": str(error)}


def _say_phase(phase: dict[str, Any]) -> None:
    lat = phase["latency_s"]
    if lat["p95"] is None:
        say(f"{phase['label']}: nothing became searchable.")
        return
    say(
        f"{phase['label']}: accepted {phase['accepted_per_s'] or 0:,.0f}/s, indexed "
        f"{phase['indexed_per_s_steady'] or 0:,.0f}/s, p50 {lat['p50']:.2f} s, "
        f"p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s, "
        f"{phase['unseen_after_drain']} unseen after the drain."
    )


@app.callback(invoke_without_command=True)
@friendly_errors
def bench(
    ctx: typer.Context,
    name: str = typer.Option("bench", "--name", help="Run folder under .run/ (its own stack)."),
    rates: str = typer.Option(
        DEFAULT_RATES, help="Orders per second, one phase each ('' for none)."
    ),
    duration: float = typer.Option(300.0, help="Seconds of writing per rate."),
    original_duration: float = typer.Option(
        120.0, help="Seconds at 200/s with the original trigger (0: skip)."
    ),
    original_trigger: str = typer.Option("20 seconds", help="The original design's trigger."),
    compare_triggers: str = typer.Option(
        "", help="Other triggers to measure at 200/s, comma-separated (e.g. '500 milliseconds')."
    ),
    spark_conf: list[str] = typer.Option(
        [], help="KEY=VALUE Spark setting for both jobs, for experiments (repeatable)."
    ),
    backlog: int = typer.Option(
        Options.backlog, help="Orders in the Spark replay backlog (0: skip)."
    ),
    replay_max_offsets: int = typer.Option(
        0, help="maxOffsetsPerTrigger for the replay (0: the settings' value)."
    ),
    drain: float = typer.Option(120.0, help="Max seconds to wait for a phase's last orders."),
    keep_going: bool = typer.Option(
        False, help="Run every rate even when a lower one was not sustained."
    ),
    replay_timeout: float = typer.Option(
        300.0, help="Max seconds per replayed Spark stage (the rate is then over what was done)."
    ),
    poll: float = typer.Option(0.25, help="Seconds between Elasticsearch polls."),
    seed: int = typer.Option(11, help="Simulator seed."),
    fresh: bool = typer.Option(True, help="Start from an empty stack (--no-fresh: reuse it)."),
    keep_running: bool = typer.Option(False, help="Leave the stack running afterwards."),
    quick: bool = typer.Option(
        False, help="Short run: 30 s per rate and 60 s with the original trigger."
    ),
    out: Path = typer.Option(contracts.ROOT / "reports", help="Folder for the JSON report."),
) -> None:
    """Benchmark throughput and order-to-dashboard latency on the native stack."""
    if ctx.invoked_subcommand is not None:
        return
    if quick:
        duration, original_duration = min(duration, 30.0), min(original_duration, 60.0)
    started = time.monotonic()
    report = run_bench(
        Options(
            name=name,
            rates=parse_rates(rates),
            duration=duration,
            original_duration=original_duration,
            original_trigger=original_trigger,
            compare_triggers=[t.strip() for t in compare_triggers.split(",") if t.strip()],
            spark_conf=list(spark_conf),
            backlog=backlog,
            replay_max_offsets=replay_max_offsets or None,
            drain=drain,
            keep_going=keep_going,
            replay_timeout=replay_timeout,
            poll=poll,
            seed=seed,
            fresh=fresh,
            keep_running=keep_running,
            out=out,
        )
    )
    say(f"Benchmark done in {(time.monotonic() - started) / 60:.1f} min.")
    if report.get("error"):
        raise typer.Exit(1)


@app.command()
def show(
    path: Path = typer.Argument(..., exists=True, help="A reports/bench-*.json file."),
) -> None:
    """Print a saved benchmark report again."""
    import json

    reporting.print_report(json.loads(path.read_text(encoding="utf-8")), console)
