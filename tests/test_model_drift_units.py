"""The population stability index and its bins (tapstack.model_drift), the documents a
measurement records, and the drift command's answer when Elasticsearch is unreachable."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from tapstack import model_drift as drift
from tapstack.behaviour_cli import app
from tapstack.elastic.model_records import model_document
from tapstack.elastic.templates import mapping_properties


def test_identical_populations_have_no_drift():
    assert drift.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_is_the_textbook_sum():
    expected, actual = [0.5, 0.5], [0.8, 0.2]
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(by_hand)


def test_an_empty_bin_is_floored_not_infinite():
    assert math.isfinite(drift.psi([0.5, 0.5], [1.0, 0.0]))
    assert drift.psi([0.5, 0.5], [1.0, 0.0]) > 1


def test_bins_are_lower_bound_inclusive():
    edges = (10.0, 20.0)
    assert [drift.bin_index(v, edges) for v in (5, 10, 19.9, 20, 99)] == [0, 1, 1, 2, 2]


def test_repeated_quantiles_of_a_discrete_feature_make_one_edge():
    assert drift.distinct_edges([3, 3, 3, 4, 6, 6]) == (3, 4, 6)


def test_a_shifted_sample_drifts_more_than_a_resample():
    rng = random.Random(7)
    training = [rng.lognormvariate(4, 0.6) for _ in range(20_000)]
    ordered = sorted(training)
    edges = drift.distinct_edges(ordered[len(ordered) * q // 10] for q in range(1, 10))

    def shares_of(values):
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[drift.bin_index(v, edges)] += 1
        return drift.shares(counts)

    reference = shares_of(training)
    same = shares_of(rng.lognormvariate(4, 0.6) for _ in range(5000))
    shifted = shares_of(rng.lognormvariate(4.8, 0.6) for _ in range(5000))
    assert drift.psi(reference, same) < 0.02
    assert drift.psi(reference, shifted) > 0.25


def test_mismatched_bins_and_empty_counts_are_refused():
    with pytest.raises(ValueError):
        drift.psi([0.5, 0.5], [1.0])
    with pytest.raises(ValueError):
        drift.shares([0, 0])


def test_measures_say_retrain_above_the_threshold_and_nothing_without_orders():
    references = [
        drift.Reference("duration_session", (10.0,), (0.5, 0.5)),
        drift.Reference("pages_viewed", (3.0,), (0.5, 0.5)),
    ]
    counts = {"duration_session": [90, 10], "pages_viewed": [0, 0]}
    moved, empty = drift.measure(references, counts, threshold=0.25)
    assert moved == drift.Measure(
        "duration_session", 100, drift.psi((0.5, 0.5), (0.9, 0.1)), "retrain"
    )
    assert moved.psi > 0.25
    assert empty == drift.Measure("pages_viewed", 0, None, "no orders")
    same = drift.measure(references[:1], {"duration_session": [50, 50]}, threshold=0.25)
    assert same[0].verdict == "stable" and same[0].psi == 0


def test_drift_documents_of_one_window_have_the_same_ids():
    measures = [drift.Measure("duration_session", 100, 0.3, "retrain")]
    until = datetime(2026, 12, 2, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    since = until - timedelta(days=1)

    def docs(measured_at):
        return drift.documents(
            measures, model_version="v1", since=since, until=until, threshold=0.25,
            measured_at=measured_at,
        )  # fmt: skip

    first = docs(datetime(2026, 12, 2, 11, 1, tzinfo=UTC))
    again = docs(datetime(2026, 12, 2, 11, 30, tzinfo=UTC))
    assert (
        [i for i, _ in first]
        == [i for i, _ in again]
        == ["v1-duration_session-2026-12-02T11:00:00+00:00"]
    )
    [(_, doc)] = first
    assert doc == {
        "measured_at": "2026-12-02T11:01:00+00:00",
        "window_from": "2026-12-01T11:00:00+00:00",
        "window_to": "2026-12-02T11:00:00+00:00",
        "model_version": "v1",
        "feature": "duration_session",
        "orders": 100,
        "psi": 0.3,
        "threshold": 0.25,
        "verdict": "retrain",
    }
    assert set(doc) == set(mapping_properties("drift"))


def test_a_model_document_holds_its_metadata_figures():
    metadata = {
        "version": "behaviour-1",
        "created": "2026-12-01T10:00:00+00:00",
        "training_rows": 4000,
        "silhouette": 0.88,
        "boundary": {"duration_seconds": 377.6, "pages_viewed": 7},
        "centres": [
            {"behaviour": "Reasoned", "duration_seconds": 1355.7, "pages_viewed": 16.6},
            {"behaviour": "Impulsive", "duration_seconds": 104.0, "pages_viewed": 2.6},
        ],
    }
    recorded = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    doc_id, doc = model_document(metadata, recorded)
    assert doc_id == "behaviour-1"
    assert set(doc) == set(mapping_properties("models"))
    assert (doc["impulsive_seconds"], doc["impulsive_pages"]) == (104.0, 2.6)
    assert (doc["reasoned_seconds"], doc["reasoned_pages"]) == (1355.7, 16.6)
    assert (doc["boundary_seconds"], doc["boundary_pages"]) == (377.6, 7)
    assert doc["recorded_at"] == "2026-12-02T09:00:00+00:00"


def test_an_unreachable_elasticsearch_ends_a_measurement_with_a_clear_error(tmp_path, monkeypatch):
    """Exit 1 with the reason, not a traceback: the exit --every's loop goes on after."""
    reference = {"edges": [10.0], "shares": [0.5, 0.5]}
    metadata = {"version": "v1", "drift_reference": {"duration_session": reference}}
    (tmp_path / "tap_model.json").write_text(json.dumps(metadata))
    monkeypatch.setenv("TAP_ES_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("TAP_SECRETS_DIR", str(tmp_path / "no-secrets"))
    result = CliRunner().invoke(app, ["drift", "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert "cannot measure drift: Elasticsearch" in result.output
