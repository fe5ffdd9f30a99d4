"""`tap model`: train the behaviour model and measure it against the seed's model.

    tap model train                     # training_data/training_data.csv -> .run/model
    tap model train --from elasticsearch --since 30d   # the shop's own orders, unlabelled
    tap model evaluate                  # held-out simulated orders: ours vs the seed's K-Means
    tap model evaluate --data FILE.csv  # any orders with ground truth, e.g. a shop's own
    tap model drift --since 1d          # recent orders' features against the training data's
    tap model list | promote V | rollback   # the registry of trained versions
    tap model compare A B               # the share of orders whose label would flip

The model itself lives in spark/tap_spark/model.py; this is only its command line.
"""

from __future__ import annotations

import importlib
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from elasticsearch import ApiError, TransportError
from rich.console import Console
from rich.table import Table

from tapstack import contracts, model_drift, model_registry
from tapstack.contracts import ROOT
from tapstack.elastic import history, model_records
from tapstack.elastic.client import connect

DEFAULT_DATA = ROOT / "training_data" / "training_data.csv"
DEFAULT_MODEL_DIR = ROOT / ".run" / "model"

app = typer.Typer(
    help="Train and evaluate the behaviour model (Spark MLlib K-Means).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


def _model_module():
    """tap_spark.model, imported late (PySpark is heavy) and found in the tree if not installed."""
    try:
        return importlib.import_module("tap_spark.model")
    except ModuleNotFoundError as error:
        if error.name not in ("tap_spark", "tap_spark.model"):
            raise
        sys.path.insert(0, str(ROOT / "spark"))
        return importlib.import_module("tap_spark.model")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


class Source(StrEnum):
    csv = "csv"
    elasticsearch = "elasticsearch"


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Training CSV (--from csv).")] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="Model directory (replaced).")] = DEFAULT_MODEL_DIR,
    source: Annotated[
        Source,
        typer.Option(
            "--from", help="csv: DATA; elasticsearch: the shop's own orders, no labels needed."
        ),
    ] = Source.csv,
    since: Annotated[
        str | None,
        typer.Option(help="--from elasticsearch: window start, like 30d or an ISO date-time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="--from elasticsearch: window end (ISO), default now.")
    ] = None,
    promote: Annotated[
        bool, typer.Option(help="Also promote it: the behaviour stage's model from its next start.")
    ] = False,
) -> None:
    """Train the model, save it to OUT (PipelineModel + tap_model.json) and register it."""
    model = _model_module()
    started = time.monotonic()
    origin = None
    try:
        if source is Source.elasticsearch:
            data, origin = _export_history(out, since, until)
        meta = model.train(data, out, source=origin)
    except (model.ModelError, history.HistoryError) as error:
        console.print(f"[red]cannot train:[/red] {error}")
        raise typer.Exit(1) from error
    table = Table(title=f"behaviour model {meta['version']}", show_header=False)
    table.add_row("saved to", str(out))
    table.add_row("trained on", _origin(meta["training_source"]))
    table.add_row("training rows", str(meta["training_rows"]))
    for centre in meta["centres"]:
        table.add_row(
            f"centre {centre['cluster']} ({centre['behaviour']})",
            f"{centre['duration_seconds']:.0f} s, {centre['pages_viewed']:.1f} pages",
        )
    boundary = meta["boundary"]
    table.add_row(
        "boundary", f"{boundary['duration_seconds']:.1f} s at {boundary['pages_viewed']} pages"
    )
    table.add_row("silhouette", f"{meta['silhouette']:.4f}")
    table.add_row("training accuracy", _pct(meta["accuracy"]))
    table.add_row("time", f"{time.monotonic() - started:.1f} s")
    version = model_registry.register(out)
    table.add_row("registered", f"{version} in {model_registry.root()}")
    if promote:
        model_registry.promote(version)
        table.add_row("promoted", "yes: the behaviour stage labels with it from its next start")
    console.print(table)


def _export_history(out: Path, since: str | None, until: str | None) -> tuple[Path, dict]:
    """The shop's orders of the window as a features CSV beside the model directory."""
    settings = contracts.settings()["model"]
    span = history.window(since or settings["training_window"], until, datetime.now(UTC))
    csv_path = out.parent / f"{out.name}-history.csv"
    index = contracts.index("orders")
    client = connect(role="viewer")
    try:
        count = history.export_features(
            client, span, csv_path, minimum=settings["min_training_orders"], index=index
        )
    finally:
        client.close()
    origin = {"elasticsearch": index, "since": span.since.isoformat()}
    origin |= {"until": span.until.isoformat(), "orders": count}
    return csv_path, origin


def _origin(source: dict) -> str:
    if "elasticsearch" in source:
        return f"{source['elasticsearch']}, {source['since']} .. {source['until']}"
    return str(source.get("csv"))


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Option("--model", help="Model directory.")] = (
        DEFAULT_MODEL_DIR
    ),
    n: Annotated[int, typer.Option("--rows", "-n", min=10, help="Held-out orders.")] = 5000,
    seed: Annotated[int | None, typer.Option(help="Simulator seed of the held-out set.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Orders to judge instead of simulated ones: a CSV with duration_session, "
            "pages_viewed and the ground truth in behaviour (Impulsive or Reasoned).",
        ),
    ] = None,
    seed_training: Annotated[
        Path | None, typer.Option(help="Training CSV for the seed's model (default: ours).")
    ] = None,
) -> None:
    """Label held-out orders with our model and with the seed's; compare accuracy."""
    model = _model_module()
    try:
        result = model.evaluate(
            model_dir,
            n=n,
            seed=model.EVALUATION_SEED if seed is None else seed,
            data_path=data,
            csv_path=seed_training,
        )
    except model.ModelError as error:
        console.print(f"[red]cannot evaluate:[/red] {error}")
        raise typer.Exit(1) from error
    ours, theirs = result["model"], result["seed_model"]
    table = Table(
        title=f"{result['rows']} held-out orders",
        caption=f"ours = {result['model_version']}; seed's = K-Means(k=2) on raw duration",
    )
    table.add_column("")
    table.add_column("ours", justify="right")
    table.add_column("seed's", justify="right")
    table.add_row("accuracy", _pct(ours["accuracy"]), _pct(theirs["accuracy"]))
    for truth in ("Impulsive", "Reasoned"):
        for predicted in ("Impulsive", "Reasoned"):
            table.add_row(
                f"{truth} -> {predicted}",
                str(ours["confusion"][truth][predicted]),
                str(theirs["confusion"][truth][predicted]),
            )
    table.add_row("silhouette (training)", f"{result['silhouette']:.4f}", "-")
    boundary = result["boundary"]
    seed_cut = sum(theirs["centres_seconds"]) / 2
    table.add_row(
        "duration boundary",
        f"{boundary['duration_seconds']:.1f} s at {boundary['pages_viewed']} pages",
        f"{seed_cut:.0f} s",
    )
    console.print(f"orders judged: {result['source']}", soft_wrap=True)
    console.print(table)


@app.command()
def drift(
    model_dir: Annotated[Path, typer.Option("--model", help="Model directory.")] = (
        DEFAULT_MODEL_DIR
    ),
    since: Annotated[str, typer.Option(help="Recent orders: like 1d, or an ISO date-time.")] = "1d",
    until: Annotated[str | None, typer.Option(help="Window end (ISO), default now.")] = None,
    index: Annotated[
        str | None, typer.Option(help="Orders index (default: the contract's, as the viewer).")
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record", help="Also index the figures (the dashboard's drift panel), as tap_model."
        ),
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(help="Measure again at this interval (like 1h), the window ending now."),
    ] = None,
) -> None:
    """How far the window's orders have moved from the training data: PSI per feature."""
    if every and until:
        raise typer.BadParameter("--every measures windows ending now: leave out --until")
    try:
        pause = history.duration(every) if every else None
    except history.HistoryError as error:
        raise typer.BadParameter(str(error)) from error
    while True:
        try:
            _measure_drift(model_dir, since, until, index, record)
        except typer.Exit:
            if pause is None:
                raise
        if pause is None:
            return
        time.sleep(pause.total_seconds())


def _measure_drift(
    model_dir: Path, since: str, until: str | None, index: str | None, record: bool
) -> None:
    threshold = contracts.settings()["model"]["retrain_psi_above"]
    now = datetime.now(UTC)
    try:
        metadata = model_registry.metadata(model_dir)
        references = [
            model_drift.Reference.of(f, d) for f, d in metadata["drift_reference"].items()
        ]
        span = history.window(since, until, now)
    except (KeyError, ValueError, model_registry.RegistryError, history.HistoryError) as error:
        console.print(f"[red]cannot measure drift:[/red] {error!r} (train the model again?)")
        raise typer.Exit(1) from error
    client = connect(role="model" if record else "viewer")
    try:
        edges = {r.feature: list(r.edges) for r in references}
        counts = history.bin_counts(client, span, edges, index=index)
        measures = model_drift.measure(references, counts, threshold)
        if record:
            docs = model_drift.documents(
                measures,
                model_version=metadata["version"],
                since=span.since,
                until=span.until,
                threshold=threshold,
                measured_at=now,
            )
            created = model_records.record(client, "drift", docs)
            console.print(f"recorded {created} drift documents in {contracts.index('drift')}")
            try:
                model = model_records.model_document(metadata, now)
            except KeyError as error:
                console.print(f"[red]cannot record the model:[/red] its metadata lacks {error}")
                raise typer.Exit(1) from error
            model_records.record(client, "models", [model])
    except (ApiError, TransportError, model_records.RecordError) as error:
        # Elasticsearch away or refusing: reported; a scheduled run tries again next time.
        console.print(f"[red]cannot measure drift:[/red] Elasticsearch: {error}")
        raise typer.Exit(1) from error
    finally:
        client.close()
    table = Table(title=f"drift of {span.describe()} from {metadata['version']}")
    for header in ("feature", "orders", "PSI", "verdict"):
        table.add_column(header)
    for m in measures:
        shown = "-" if m.psi is None else f"{m.psi:.3f}"
        verdict = "no orders in the window" if m.psi is None else m.verdict
        table.add_row(m.feature, str(m.orders), shown, verdict)
    table.caption = f"retrain when a PSI is above {threshold} (\\[model] retrain_psi_above)"
    console.print(table)


@app.command("list")
def list_versions() -> None:
    """The registered versions, oldest first; the promoted one is marked."""
    pointer = model_registry.promoted()
    table = Table(title=f"behaviour models in {model_registry.root()}")
    for header in ("version", "created", "trained on", "rows", "silhouette", "promoted"):
        table.add_column(header)
    for meta in model_registry.versions():
        mark = "yes" if pointer and pointer["version"] == meta["version"] else ""
        table.add_row(
            meta["version"],
            meta.get("created", "-"),
            _origin(meta.get("training_source") or {"csv": meta.get("training_data")}),
            str(meta.get("training_rows", "-")),
            f"{meta.get('silhouette', 0):.4f}",
            mark,
        )
    console.print(table)


RestartOption = typer.Option(
    "--restart",
    metavar="STACK",
    help="Restart that native stack's behaviour stage now, so it labels with the version.",
)


@app.command("promote")
def promote_version(
    version: Annotated[str, typer.Argument(help="A registered version.")],
    restart: Annotated[str | None, RestartOption] = None,
) -> None:
    """Make VERSION the model the behaviour stage labels with from its next start."""
    _change_promotion(lambda: model_registry.promote(version), restart)


@app.command()
def rollback(restart: Annotated[str | None, RestartOption] = None) -> None:
    """Promote again the version promoted before the current one."""
    _change_promotion(model_registry.rollback, restart)


def _change_promotion(change, restart: str | None) -> None:
    try:
        pointer = change()
    except model_registry.RegistryError as error:
        console.print(f"[red]cannot promote:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"promoted {pointer['version']} at {pointer['promoted_at']}")
    if restart is None:
        console.print("the behaviour stage labels with it from its next start (or: --restart)")
        return
    from tapstack.native.stack import Stack

    Stack(restart).restart_process("behaviour")
    console.print(f"stack {restart}: the behaviour stage restarted with {pointer['version']}")


@app.command()
def compare(
    first: Annotated[str, typer.Argument(help="A registered version or a model folder.")],
    second: Annotated[str, typer.Argument(help="The version that would replace it.")],
    n: Annotated[int, typer.Option("--rows", "-n", min=10, help="Held-out orders.")] = 5000,
    data: Annotated[
        Path | None, typer.Option(help="Orders CSV (duration_session, pages_viewed) instead.")
    ] = None,
) -> None:
    """The share of orders the two versions label differently."""
    model = _model_module()
    try:
        result = model.compare(_model_path(first), _model_path(second), n=n, data_path=data)
    except model.ModelError as error:
        console.print(f"[red]cannot compare:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(
        f"{result['flipped']} of {result['rows']} orders ({_pct(result['share'])}) change "
        f"label from {result['first']} to {result['second']}"
    )


def _model_path(name: str) -> Path:
    registered = model_registry.root() / name
    return registered if registered.is_dir() else Path(name)
