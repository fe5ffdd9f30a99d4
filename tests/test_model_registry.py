"""The registry of trained behaviour models: register, list, promote, roll back, and which
model the native behaviour stage starts with (tapstack.model_registry); the share of labels
two versions disagree on (tap_spark.model.compare) on real Spark."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapstack import model_registry as registry
from tapstack.contracts import ROOT
from tapstack.native.stack import Stack
from tests.support.training import TRAINING_CSV, longer_visits

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _trained(folder: Path, version: str, created: str) -> Path:
    """A model folder as `tap model train` leaves it, reduced to what the registry reads."""
    folder.mkdir(parents=True)
    (folder / "tap_model.json").write_text(json.dumps({"version": version, "created": created}))
    (folder / "pipeline").mkdir()
    return folder


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("TAP_MODEL_REGISTRY", str(tmp_path / "registry"))
    (tmp_path / "registry").mkdir()
    return [
        _trained(tmp_path / f"out{i}", f"behaviour-2026110{i}-abc{i}", f"2026-11-0{i}T08:00:00")
        for i in (1, 2, 3)
    ]


def test_registered_versions_are_listed_oldest_first_and_kept_once(models):
    for folder in reversed(models):
        registry.register(folder)
    registry.register(models[0])  # again: the same version, kept once
    assert [m["version"] for m in registry.versions()] == [
        "behaviour-20261101-abc1",
        "behaviour-20261102-abc2",
        "behaviour-20261103-abc3",
    ]
    assert (registry.root() / "behaviour-20261101-abc1" / "pipeline").is_dir()


def test_promotions_keep_their_history_and_roll_back_in_order(models):
    v1, v2, v3 = (registry.register(f) for f in models)
    assert registry.promoted() is None and registry.promoted_dir() is None
    registry.promote(v1, now=T0)
    registry.promote(v2, now=T0)
    pointer = registry.promote(v3, now=T0)
    assert pointer == {"version": v3, "promoted_at": T0.isoformat(), "history": [v1, v2]}
    assert registry.rollback(now=T0)["version"] == v2
    assert registry.rollback(now=T0) == {
        "version": v1,
        "promoted_at": T0.isoformat(),
        "history": [],
    }
    with pytest.raises(registry.RegistryError, match="nothing to roll back"):
        registry.rollback()
    assert registry.promoted_dir() == registry.root() / v1


def test_an_unknown_version_is_refused_with_the_known_ones(models):
    registry.register(models[0])
    with pytest.raises(registry.RegistryError, match="behaviour-20261101-abc1"):
        registry.promote("behaviour-19990101-nope")


def test_the_behaviour_stage_starts_with_the_promoted_version(models, monkeypatch):
    monkeypatch.delenv("TAP_MODEL_DIR", raising=False)
    stack = Stack("registry-test")
    assert stack.model_dir == ROOT / ".run" / "model"  # nothing promoted: the last trained
    version = registry.register(models[1])
    registry.promote(version)
    assert stack.model_dir == registry.root() / version
    monkeypatch.setenv("TAP_MODEL_DIR", str(models[0]))  # an explicit folder still wins
    assert stack.model_dir == models[0]


@pytest.mark.spark
def test_compare_counts_the_orders_two_versions_label_differently(spark, tmp_path, monkeypatch):
    from tap_spark import model
    from tapstack.behaviour_cli import app

    monkeypatch.setenv("TAP_MODEL_REGISTRY", str(tmp_path / "registry"))
    first = tmp_path / "first"
    second = tmp_path / "second"
    model.train(TRAINING_CSV, first, spark=spark)
    model.train(longer_visits(tmp_path / "longer.csv", 3.0), second, spark=spark)

    assert model.compare(first, first, n=2000, spark=spark)["flipped"] == 0
    result = model.compare(first, second, n=2000, spark=spark)
    frame = model.held_out_frame(spark, 2000, model.EVALUATION_SEED)
    labels = [
        {
            r["order_id"]: r["purchase_behaviour"]
            for r in model.load(d, spark=spark).label(frame).collect()
        }
        for d in (first, second)
    ]
    by_hand = sum(labels[0][k] != labels[1][k] for k in labels[0])
    assert result["rows"] == 2000 and result["flipped"] == by_hand > 0

    # The CLI: train --promote registers and promotes; compare names registered versions.
    out = CliRunner().invoke(
        app, ["train", "--out", str(tmp_path / "cli"), "--promote"], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    promoted = registry.promoted()["version"]
    assert promoted == json.loads((tmp_path / "cli" / "tap_model.json").read_text())["version"]
    out = CliRunner().invoke(
        app, ["compare", promoted, str(second), "-n", "2000"], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, out.output
    assert f"{by_hand} of 2000 orders" in out.output
