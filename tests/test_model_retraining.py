"""The model learns the shop it serves, end to end on the real engines (issue 18): the shop's
buyers change (other medians and spreads), drift crosses its line, the model is retrained
from Elasticsearch without labels and promoted, the behaviour stage switches to it, and the
new orders are labelled by the new version with >= 97 % accuracy against their truth; no
order lost or doubled on the way."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from tapstack import contracts, model_drift
from tapstack.behaviour_cli import app
from tapstack.report import queries
from tapstack.report.panels import DASHBOARD
from tapstack.simulator import IMPULSIVE, POPULATIONS, REASONED, Simulator

TZ = ZoneInfo(contracts.enrichment("shop_timezone"))
# Days no other test writes: the windows this test reads hold its own orders only.
FIRST_END = datetime(2024, 3, 6, 21, 0, tzinfo=TZ)
LATER_END = datetime(2024, 3, 12, 21, 0, tzinfo=TZ)

# Another shop: impulse buys take 7 minutes and 5 pages, considered ones an hour and 30 pages
# (the shipped model's shop: 1.75 and 21 minutes). The shipped boundary calls most of these
# impulse buys Reasoned.
OTHER_SHOP = {
    IMPULSIVE: dataclasses.replace(POPULATIONS[IMPULSIVE], duration_median=420.0, pages_median=5.0),
    REASONED: dataclasses.replace(POPULATIONS[REASONED], duration_median=3600.0, pages_median=30.0),
}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _window(orders) -> tuple[str, str]:
    times = [datetime.fromisoformat(o.event["timestamp"]) for o in orders]
    return min(times).isoformat(), (max(times) + timedelta(seconds=1)).isoformat()


def _accuracy(docs: dict[int, dict], orders) -> float:
    return sum(docs[o.order_id]["purchase_behaviour"] == o.behaviour for o in orders) / len(orders)


@pytest.fixture
def registry(pipeline, tmp_path, monkeypatch):
    """A registry of this test's own; afterwards the behaviour stage labels with the
    session's model again."""
    session_model = pipeline.stack.model_dir
    monkeypatch.setenv("TAP_MODEL_REGISTRY", str(tmp_path / "registry"))
    yield tmp_path / "registry"
    monkeypatch.setenv("TAP_MODEL_DIR", str(session_model))
    pipeline.stack.restart_process("behaviour")


def _assert_drift_panel(es, metadata: dict, orders, until: str) -> None:
    """Each feature's row of the drift panel, for this window, against the PSI of the orders'
    own features over the model's training bins."""
    references = [model_drift.Reference.of(f, d) for f, d in metadata["drift_reference"].items()]
    window_to = datetime.fromisoformat(until).astimezone(UTC).isoformat()
    here = [{"term": {"window_to": window_to}}, {"term": {"model_version": metadata["version"]}}]
    rows = queries.run_panel(es, DASHBOARD.panel("model-drift"), extra=here).rows
    threshold = contracts.settings()["model"]["retrain_psi_above"]
    assert {r["feature"] for r in rows} == {r.feature for r in references}
    for reference in references:
        counts = [0] * (len(reference.edges) + 1)
        for order in orders:
            counts[model_drift.bin_index(order.event[reference.feature], reference.edges)] += 1
        expected = model_drift.psi(reference.shares, model_drift.shares(counts))
        [row] = [r for r in rows if r["feature"] == reference.feature]
        assert row["psi"] == pytest.approx(expected, rel=1e-9)
        assert row["orders"] == len(orders) and row["threshold"] == threshold
        assert row["verdict"] == ("retrain" if expected > threshold else "stable")
        assert row["model_version"] == metadata["version"]
    assert any(r["verdict"] == "retrain" for r in rows)


def _assert_model_panel(es, metadata: dict) -> None:
    """The model panel's row of the measured version shows its metadata file's figures."""
    only = [{"term": {"model_version": metadata["version"]}}]
    [row] = queries.run_panel(es, DASHBOARD.panel("behaviour-models"), extra=only).rows
    centres = {c["behaviour"]: c for c in metadata["centres"]}
    assert row["version"] == metadata["version"]
    assert datetime.fromisoformat(row["trained_at"]) == datetime.fromisoformat(metadata["created"])
    assert row["training_rows"] == metadata["training_rows"]
    assert row["silhouette"] == metadata["silhouette"]
    assert row["boundary_seconds"] == metadata["boundary"]["duration_seconds"]
    assert row["boundary_pages"] == metadata["boundary"]["pages_viewed"]
    for behaviour, prefix in (("Impulsive", "impulsive"), ("Reasoned", "reasoned")):
        assert row[f"{prefix}_seconds"] == centres[behaviour]["duration_seconds"]
        assert row[f"{prefix}_pages"] == centres[behaviour]["pages_viewed"]
    assert row["impulsive_seconds"] < row["boundary_seconds"] < row["reasoned_seconds"]


def test_the_model_is_retrained_from_the_shop_and_labels_its_new_buyers(
    pipeline, registry, spark, tmp_path, monkeypatch, es
):
    from tap_spark import model

    session_model = model.load(pipeline.stack.model_dir, spark=spark)
    first = Simulator(
        seed=701, order_id_start=pipeline.order_id_block(), populations=OTHER_SHOP
    ).backfill(1500, end=FIRST_END)
    pipeline.append(first)
    assert pipeline.wait_indexed([o.order_id for o in first], timeout=300) == len(first)
    since, until = _window(first)

    # The old model misjudges this shop, and drift says so.
    old_docs = pipeline.orders_by_id([o.order_id for o in first])
    assert _accuracy(old_docs, first) < 0.9
    measure = [
        "drift",
        "--model",
        str(pipeline.stack.model_dir),
        "--since",
        since,
        "--until",
        until,
    ]
    drift = _cli(*measure, "--record")
    duration_row = next(line for line in drift.splitlines() if "duration_session" in line)
    assert re.search(r"│\s*1500\s*│.*│\s*retrain\s*│", duration_row), drift
    # Indexed, and the dashboard's drift panel shows the PSI computed here from the log.
    _assert_drift_panel(es, session_model.metadata, first, until)
    _assert_model_panel(es, session_model.metadata)
    assert "recorded 0 drift documents" in _cli(*measure, "--record"), "a window counts once"

    # Retrained from Elasticsearch (no labels), promoted, and the stage switched to it.
    out = tmp_path / "retrained"
    window = ["--since", since, "--until", until]
    _cli("train", "--from", "elasticsearch", *window, "--out", str(out), "--promote")
    meta = json.loads((out / "tap_model.json").read_text())
    assert meta["training_rows"] == len(first)
    assert meta["training_source"]["orders"] == len(first)
    monkeypatch.delenv("TAP_MODEL_DIR")
    assert pipeline.stack.model_dir == registry / meta["version"]
    pipeline.stack.restart_process("behaviour")

    later = Simulator(
        seed=702, order_id_start=pipeline.order_id_block(), populations=OTHER_SHOP
    ).backfill(1000, end=LATER_END)
    pipeline.append(later)
    ids = [o.order_id for o in [*first, *later]]
    assert pipeline.wait_indexed(ids, timeout=300) == len(ids)
    assert pipeline.count_orders(ids) == len(ids), "an order lost or doubled"
    docs = pipeline.orders_by_id([o.order_id for o in later])
    assert {d["model_version"] for d in docs.values()} == {meta["version"]}
    assert {d["model_version"] for d in old_docs.values()} == {session_model.version}
    assert _accuracy(docs, later) >= 0.97


def test_the_native_stack_measures_drift_on_its_schedule(pipeline, es):
    """The stack's model_drift process, started with the pipeline, records a measurement of
    the model in use at once, then every [model] drift_every."""
    from pathlib import Path

    from tapstack.native import processes

    stack = pipeline.stack

    def running_argv() -> list[str]:
        """The running process's command line; [] until it is running its own program (a
        restart by the test before, a child between fork and exec, has another one)."""
        managed = processes.find(stack.run_dir, "model_drift")
        if managed is None:
            return []
        try:
            words = Path(f"/proc/{managed.pid}/cmdline").read_bytes().decode().split("\0")
        except FileNotFoundError:
            return []
        return words if "--every" in words else []

    argv = processes.wait_until(running_argv, timeout=60, what="model_drift running")
    model = contracts.settings()["model"]
    assert argv[argv.index("--every") + 1] == model["drift_every"]
    assert argv[argv.index("--since") + 1] == model["drift_window"]
    log = stack.run_dir / "logs" / "model_drift.log"
    processes.wait_until(
        lambda: log.exists() and "recorded" in log.read_text(errors="replace"),
        timeout=120,
        interval=1,
        what="the first scheduled drift measurement",
    )
    version = json.loads((stack.model_dir / "tap_model.json").read_text())["version"]
    es.indices.refresh(index=contracts.index("models"))
    assert es.exists(index=contracts.index("models"), id=version)
