"""The behaviour model: training, metadata, the Impulsive/Reasoned boundary, loading, quality.

Trains once on the committed training CSV (module fixture) and reuses one SparkSession.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from tapstack import contracts
from tapstack.contracts import ROOT

pytestmark = pytest.mark.spark

TRAINING_CSV = ROOT / "training_data" / "training_data.csv"


@pytest.fixture(scope="module")
def mod(spark):  # noqa: F811
    from tap_spark import model

    return model


@pytest.fixture(scope="module")
def trained(mod, spark, tmp_path_factory):  # noqa: F811
    model_dir = tmp_path_factory.mktemp("behaviour") / "model"
    metadata = mod.train(TRAINING_CSV, model_dir, spark=spark)
    return model_dir, metadata


@pytest.fixture(scope="module")
def loaded(mod, spark, trained):  # noqa: F811
    return mod.load(trained[0], spark=spark)


def _frame(spark, rows):  # noqa: F811
    return spark.createDataFrame(
        rows, "order_id BIGINT, duration_session BIGINT, pages_viewed INT, note STRING"
    )


def test_metadata_describes_the_model(trained, mod):
    model_dir, meta = trained
    assert json.loads((model_dir / "tap_model.json").read_text(encoding="utf-8")) == meta
    assert (model_dir / "pipeline" / "metadata").is_dir()
    assert re.fullmatch(r"behaviour-\d{8}-[0-9a-f]{8}", meta["version"])
    assert meta["training_rows"] == 4000
    assert meta["features"] == ["duration_session", "pages_viewed"]
    assert meta["spark_version"].split(".")[:2] == ["4", "1"]
    assert len(meta["centres"]) == 2
    for centre in meta["centres"]:
        assert {"cluster", "behaviour", "duration_seconds", "pages_viewed"} <= set(centre)
    assert 0.5 < meta["silhouette"] <= 1.0
    assert meta["accuracy"] >= 0.97
    assert meta["boundary"]["duration_seconds"] > 0


def test_impulsive_is_the_shorter_centre(trained):
    _, meta = trained
    centres = {c["cluster"]: c for c in meta["centres"]}
    impulsive = centres[meta["impulsive_cluster"]]
    reasoned = centres[1 - meta["impulsive_cluster"]]
    assert impulsive["behaviour"] == "Impulsive" and reasoned["behaviour"] == "Reasoned"
    assert impulsive["duration_seconds"] < reasoned["duration_seconds"]
    assert 30 < impulsive["duration_seconds"] < 300
    assert 600 < reasoned["duration_seconds"] < 2400
    boundary = meta["boundary"]["duration_seconds"]
    assert impulsive["duration_seconds"] < boundary < reasoned["duration_seconds"]


def test_labels_flip_at_the_boundary(loaded, spark):  # noqa: F811
    boundary = loaded.metadata["boundary"]
    seconds, pages = boundary["duration_seconds"], boundary["pages_viewed"]
    below, above = math.floor(seconds - 0.5), math.ceil(seconds + 0.5)
    rows = [(1, below, pages, "below"), (2, above, pages, "above")]
    out = {r["note"]: r["purchase_behaviour"] for r in loaded.label(_frame(spark, rows)).collect()}
    assert out == {"below": "Impulsive", "above": "Reasoned"}


def test_label_adds_five_columns_and_keeps_the_rest(loaded, spark):  # noqa: F811
    rows = [
        (1, 45, 2, "quick"),
        (2, 1800, 25, "considered"),
        (3, 86400, 3, "abandoned tab"),
        (4, 0, 1, "no cookie"),
        (5, None, None, "nulls"),
    ]
    frame = _frame(spark, rows)
    out = loaded.label(frame)
    assert out.columns == [
        *frame.columns,
        "purchase_behaviour",
        "behaviour_distance",
        "behaviour_margin",
        "label_confidence",
        "model_version",
    ]
    types = dict(out.dtypes)
    assert types["behaviour_distance"] == "double" and types["model_version"] == "string"
    assert types["duration_session"] == "bigint" and types["pages_viewed"] == "int"
    got = {r["order_id"]: r for r in out.collect()}
    assert [got[i]["note"] for i in range(1, 6)] == [r[3] for r in rows]
    assert got[1]["purchase_behaviour"] == "Impulsive"
    assert got[2]["purchase_behaviour"] == "Reasoned"
    assert got[4]["purchase_behaviour"] == "Impulsive"
    assert got[5]["duration_session"] is None
    assert {r["model_version"] for r in got.values()} == {loaded.metadata["version"]}
    # The distance is to the chosen centre, which is the nearer one.
    meta = loaded.metadata
    mean, std = meta["scaler"]["mean"], meta["scaler"]["std"]
    centres = {c["cluster"]: c["scaled"] for c in meta["centres"]}
    for row in got.values():
        d = min(max(row["duration_session"] or 0, 0), 14400)
        p = min(max(row["pages_viewed"] or 1, 1), 200)
        point = [(math.log1p(d) - mean[0]) / std[0], (math.log1p(p) - mean[1]) / std[1]]
        distances = {k: math.dist(point, c) for k, c in centres.items()}
        chosen = meta["impulsive_cluster"]
        if row["purchase_behaviour"] == "Reasoned":
            chosen = 1 - chosen
        assert row["behaviour_distance"] == pytest.approx(distances[chosen], rel=1e-9, abs=1e-9)
        assert distances[chosen] <= distances[1 - chosen] + 1e-9
        # The margin: how much nearer the chosen centre is, over the centres' distance.
        gap = math.dist(*centres.values())
        margin = (distances[1 - chosen] - distances[chosen]) / gap
        assert row["behaviour_margin"] == pytest.approx(margin, rel=1e-9, abs=1e-9)
        assert 0 <= row["behaviour_margin"] <= 1 + 1e-9
        below = contracts.settings()["model"]["low_confidence_margin_below"]
        assert row["label_confidence"] == ("low" if margin < below else "high")


def test_a_visit_at_the_boundary_is_labelled_with_low_confidence(loaded, spark):  # noqa: F811
    boundary = loaded.metadata["boundary"]
    seconds, pages = boundary["duration_seconds"], boundary["pages_viewed"]
    impulsive = next(c for c in loaded.metadata["centres"] if c["behaviour"] == "Impulsive")
    rows = [
        (1, round(seconds), pages, "at the boundary"),
        (2, round(impulsive["duration_seconds"]), round(impulsive["pages_viewed"]), "typical"),
    ]
    out = {r["note"]: r for r in loaded.label(_frame(spark, rows)).collect()}
    assert out["at the boundary"]["label_confidence"] == "low"
    assert out["at the boundary"]["behaviour_margin"] < 0.05
    assert out["typical"]["label_confidence"] == "high"
    assert out["typical"]["behaviour_margin"] > 0.5


def test_label_works_on_a_stream(loaded, spark, tmp_path: Path):  # noqa: F811
    source = tmp_path / "in"
    source.mkdir()
    (source / "part.json").write_text(
        '{"order_id":1,"duration_session":50,"pages_viewed":2,"note":"a"}\n'
        '{"order_id":2,"duration_session":2400,"pages_viewed":30,"note":"b"}\n',
        encoding="utf-8",
    )
    stream = spark.readStream.schema(
        "order_id BIGINT, duration_session BIGINT, pages_viewed INT, note STRING"
    ).json(str(source))
    labelled = loaded.label(stream)
    assert labelled.isStreaming
    query = (
        labelled.writeStream.format("memory")
        .queryName("tap_behaviour_stream_test")
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    rows = spark.sql("SELECT * FROM tap_behaviour_stream_test ORDER BY order_id").collect()
    assert [r["purchase_behaviour"] for r in rows] == ["Impulsive", "Reasoned"]
    assert [r["note"] for r in rows] == ["a", "b"]


def test_evaluation_beats_the_seed_model(trained, mod, spark):  # noqa: F811
    result = mod.evaluate(trained[0], n=5000, spark=spark)
    ours, theirs = result["model"]["accuracy"], result["seed_model"]["accuracy"]
    assert result["seed"] != 2026  # held out: not the training data's seed
    assert ours >= 0.97
    assert ours > theirs + 0.2
    assert sum(sum(v.values()) for v in result["model"]["confusion"].values()) == 5000


def test_seed_model_calls_the_smaller_centre_impulsive(mod, spark):  # noqa: F811
    seed_model = mod.train_seed_model(TRAINING_CSV, spark=spark)
    centres = seed_model.centres_seconds
    assert centres[seed_model.impulsive_cluster] == min(centres)


def _write_csv(path: Path, rows) -> Path:
    lines = ["duration_session,pages_viewed,behaviour"]
    lines += [f"{d},{p},{b}" for d, p, b in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "rows",
    [
        [(120, 3, "Impulsive")] * 30,  # one distinct point: a single centre
        [(120, 3, "Impulsive")],  # one row
        [],  # no rows
    ],
    ids=["identical", "one-row", "empty"],
)
def test_degenerate_training_data_fails_clearly(mod, spark, tmp_path, rows):  # noqa: F811
    csv_path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(mod.ModelError):
        mod.train(csv_path, tmp_path / "model", spark=spark)
    assert not (tmp_path / "model").exists()


def test_training_data_without_pages_fails_clearly(mod, spark, tmp_path):  # noqa: F811
    csv_path = tmp_path / "seed.csv"
    csv_path.write_text("duration_session\n10\n2000\n", encoding="utf-8")
    with pytest.raises(mod.ModelError, match="pages_viewed"):
        mod.train(csv_path, tmp_path / "model", spark=spark)


def test_load_refuses_missing_or_foreign_models(mod, spark, trained, tmp_path):  # noqa: F811
    with pytest.raises(mod.ModelError, match="no behaviour model"):
        mod.load(tmp_path / "nowhere", spark=spark)
    (tmp_path / "empty").mkdir()
    with pytest.raises(mod.ModelError, match="tap_model.json"):
        mod.load(tmp_path / "empty", spark=spark)

    def copy_with(name: str, **changes) -> Path:
        target = tmp_path / name
        shutil.copytree(trained[0], target)
        meta_path = target / "tap_model.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta.update(changes)
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        return target

    with pytest.raises(mod.ModelError, match="Spark 3.5.1"):
        mod.load(copy_with("old-spark", spark_version="3.5.1"), spark=spark)
    with pytest.raises(mod.ModelError, match="feature version"):
        mod.load(copy_with("old-features", feature_version=0), spark=spark)
    with pytest.raises(mod.ModelError, match="do not belong together"):
        flipped = 1 - trained[1]["impulsive_cluster"]
        mod.load(copy_with("mismatch", impulsive_cluster=flipped), spark=spark)


def _held_out_rows(n: int, seed: int) -> list[tuple[int, int, str]]:
    """Simulated orders with their ground truth, as a shop exporting its own would write them."""
    from datetime import datetime

    from tapstack.simulator import Simulator

    orders = Simulator(seed=seed, start=datetime(2026, 3, 1)).orders(n)
    return [(o.event["duration_session"], o.event["pages_viewed"], o.behaviour) for o in orders]


def test_evaluate_judges_the_orders_of_any_labelled_csv(trained, mod, spark, tmp_path):  # noqa: F811
    rows = _held_out_rows(600, seed=31337)
    truth = {b: sum(1 for *_, r in rows if r == b) for b in ("Impulsive", "Reasoned")}
    csv_path = _write_csv(tmp_path / "shop.csv", [*rows, (90, 4, "unknown")])
    result = mod.evaluate(trained[0], data_path=csv_path, spark=spark)
    ours = result["model"]
    assert result["rows"] == len(rows) and result["source"] == str(csv_path)
    assert {b: sum(ours["confusion"][b].values()) for b in truth} == truth
    assert ours["accuracy"] >= 0.95

    # The truth column is what is judged against: flipped labels, complementary accuracy.
    flip = {"Impulsive": "Reasoned", "Reasoned": "Impulsive"}
    flipped_csv = _write_csv(tmp_path / "flipped.csv", [(d, p, flip[b]) for d, p, b in rows])
    flipped = mod.evaluate(trained[0], data_path=flipped_csv, spark=spark)
    assert flipped["model"]["accuracy"] == pytest.approx(1 - ours["accuracy"])
    assert flipped["seed_model"]["accuracy"] == pytest.approx(1 - result["seed_model"]["accuracy"])


def test_evaluate_refuses_a_csv_without_ground_truth(trained, mod, spark, tmp_path):  # noqa: F811
    csv_path = tmp_path / "unlabelled.csv"
    csv_path.write_text("duration_session,pages_viewed\n30,2\n900,12\n", encoding="utf-8")
    with pytest.raises(mod.ModelError, match="behaviour"):
        mod.evaluate(trained[0], data_path=csv_path, spark=spark)


def test_tap_model_evaluate_data_prints_both_accuracies(trained, mod, spark, tmp_path):  # noqa: F811
    from typer.testing import CliRunner

    from tapstack.behaviour_cli import app

    csv_path = _write_csv(tmp_path / "shop.csv", _held_out_rows(300, seed=4711))
    expected = mod.evaluate(trained[0], data_path=csv_path, spark=spark)
    result = CliRunner().invoke(
        app,
        ["evaluate", "--model", str(trained[0]), "--data", str(csv_path)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert f"orders judged: {csv_path}" in result.output
    assert f"{expected['rows']} held-out orders" in result.output
    accuracy = re.search(r"accuracy\s*│\s*([\d.]+) %\s*│\s*([\d.]+) %", result.output)
    assert accuracy, result.output
    assert float(accuracy[1]) == pytest.approx(100 * expected["model"]["accuracy"], abs=0.005)
    assert float(accuracy[2]) == pytest.approx(100 * expected["seed_model"]["accuracy"], abs=0.005)
