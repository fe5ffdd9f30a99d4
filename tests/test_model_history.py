"""Training from the shop's own history: the window's visit features read from the orders
index by the read-only viewer, and the model trained on them (issue 18)."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch.helpers import bulk
from typer.testing import CliRunner

from tapstack.elastic import history, templates
from tapstack.elastic.client import connect
from tapstack.simulator import Simulator

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def test_a_relative_window_ends_at_until_or_now():
    assert history.window("30d", None, NOW) == history.Window(NOW - timedelta(days=30), NOW)
    assert history.window("12h", "2026-05-01T00:00:00", NOW).since == datetime(
        2026, 4, 30, 12, tzinfo=UTC
    )
    assert history.window("2026-05-01", None, NOW).since == datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("since", ["soon", "0d", "2026-06-01"])
def test_a_window_that_is_not_one_is_refused(since):
    with pytest.raises(history.HistoryError):
        history.window(since, None, NOW)


@pytest.fixture
def shop_index(es):
    """A scratch orders index from the project's template: the simulated shop's orders of
    the last 10 days, plus 50 older ones outside any 10-day window."""
    name = f"tap-history-{uuid.uuid4().hex[:8]}"
    body = templates.load_template("orders")["template"]
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])
    recent = Simulator(seed=77).backfill(400, end=NOW)
    older = Simulator(seed=78).backfill(50, end=NOW - timedelta(days=40))
    docs = [
        {
            "_index": name,
            "_id": f"{tag}-{o.event['order_id']}",
            "event_time": o.event["timestamp"],
            "duration_session": o.event["duration_session"],
            "pages_viewed": o.event["pages_viewed"],
        }
        for tag, orders in (("recent", recent), ("older", older))
        for o in orders
    ]
    bulk(es, docs, refresh="wait_for")
    yield name, recent
    es.indices.delete(index=name)


def test_the_window_s_orders_are_exported_by_the_viewer(shop_index, tmp_path):
    name, recent = shop_index
    in_window = [
        o
        for o in recent
        if datetime.fromisoformat(o.event["timestamp"]) >= NOW - timedelta(days=10)
    ]
    viewer = connect(role="viewer")
    try:
        out = tmp_path / "history.csv"
        count = history.export_features(
            viewer, history.window("10d", None, NOW), out, minimum=10, index=name
        )
    finally:
        viewer.close()
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert count == len(rows) == len(in_window)
    assert sorted((int(r["duration_session"]), int(r["pages_viewed"])) for r in rows) == sorted(
        (o.event["duration_session"], o.event["pages_viewed"]) for o in in_window
    )


def test_too_few_orders_in_the_window_is_refused_and_writes_nothing(shop_index, tmp_path):
    name, _ = shop_index
    viewer = connect(role="viewer")
    out = tmp_path / "history.csv"
    try:
        with pytest.raises(history.HistoryError, match="needs at least 100000"):
            history.export_features(
                viewer, history.window("10d", None, NOW), out, minimum=100_000, index=name
            )
    finally:
        viewer.close()
    assert not out.exists()


@pytest.mark.spark
def test_a_model_trained_on_the_shop_s_history_labels_it(shop_index, tmp_path, spark):
    from tap_spark import model

    name, recent = shop_index
    viewer = connect(role="viewer")
    try:
        span = history.window("60d", None, NOW)
        out = tmp_path / "history.csv"
        count = history.export_features(viewer, span, out, minimum=100, index=name)
    finally:
        viewer.close()
    origin = {"elasticsearch": name, "since": span.since.isoformat(), "orders": count}
    meta = model.train(out, tmp_path / "model", source=origin, spark=spark)
    assert meta["training_rows"] == count == 450 and meta["training_source"] == origin
    truth = spark.createDataFrame(
        [(o.event["duration_session"], o.event["pages_viewed"], o.behaviour) for o in recent],
        "duration_session BIGINT, pages_viewed INT, behaviour STRING",
    )
    scored = model._accuracy(model.load(tmp_path / "model", spark=spark).label(truth))
    assert scored["accuracy"] >= 0.9, "no labels were given, yet the clusters are the behaviours"


def test_tap_model_train_from_elasticsearch_refuses_an_empty_window(es, tmp_path):
    from tapstack.behaviour_cli import app

    result = CliRunner().invoke(
        app,
        ["train", "--from", "elasticsearch", "--since", "1990-01-01", "--until", "1990-01-02"]
        + ["--out", str(tmp_path / "model")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert "cannot train" in result.output and "0 order(s)" in result.output
    assert not (tmp_path / "model").exists()


def _index_orders(es, name: str, orders, stretch: float = 1.0) -> None:
    body = templates.load_template("orders")["template"]
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])
    docs = [
        {
            "_index": name,
            "_id": str(o.event["order_id"]),
            "event_time": o.event["timestamp"],
            "duration_session": round(o.event["duration_session"] * stretch),
            "pages_viewed": o.event["pages_viewed"],
        }
        for o in orders
    ]
    bulk(es, docs, refresh="wait_for")


@pytest.mark.spark
def test_drift_is_small_for_the_same_shop_and_large_after_a_shift(es, spark, tmp_path):
    """Trained on the committed CSV (the simulator's populations); orders of the same
    populations stay below the retraining line, visits four times as long cross it."""
    from tap_spark import model
    from tapstack.behaviour_cli import app
    from tests.support.training import TRAINING_CSV

    meta = model.train(TRAINING_CSV, tmp_path / "m", spark=spark)
    for feature, reference in meta["drift_reference"].items():
        assert sum(reference["shares"]) == pytest.approx(1.0), feature
        assert len(reference["shares"]) == len(reference["edges"]) + 1
    orders = Simulator(seed=91).backfill(2000, end=NOW)
    same, shifted = (f"tap-drift-{tag}-{uuid.uuid4().hex[:6]}" for tag in ("same", "shifted"))
    _index_orders(es, same, orders)
    _index_orders(es, shifted, orders, stretch=4.0)
    try:
        outputs = {}
        for name in (same, shifted):
            result = CliRunner().invoke(
                app,
                ["drift", "--model", str(tmp_path / "m"), "--index", name, "--since", "60d"]
                + ["--until", NOW.isoformat()],
                env={"COLUMNS": "200"},
            )
            assert result.exit_code == 0, result.output
            outputs[name] = result.output
    finally:
        es.indices.delete(index=f"{same},{shifted}")
    rows = {n: _drift_rows(out) for n, out in outputs.items()}
    assert rows[same]["duration_session"] == ("2000", "stable")
    assert rows[same]["pages_viewed"] == ("2000", "stable")
    assert rows[shifted]["duration_session"] == ("2000", "retrain")
    assert rows[shifted]["pages_viewed"] == ("2000", "stable")


def _drift_rows(output: str) -> dict[str, tuple[str, str]]:
    """feature -> (orders, verdict) from the drift table."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0] in ("duration_session", "pages_viewed"):
            rows[cells[0]] = (cells[1], cells[3])
    return rows
