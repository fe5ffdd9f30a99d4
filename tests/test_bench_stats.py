"""The benchmark's arithmetic: pacing, percentiles, rates, lag and the verdicts (no engines)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tapstack.bench import latency as calc
from tapstack.bench import report

# -- pacing ------------------------------------------------------------------------------------


def test_the_first_order_is_due_at_once_and_then_one_per_period():
    assert calc.due(0.0, 200, 1000) == 1
    assert calc.due(0.004, 200, 1000) == 1
    assert calc.due(0.005, 200, 1000) == 2
    assert calc.due(1.0, 200, 1000) == 201
    assert calc.due(-1.0, 200, 1000) == 0


def test_pacing_never_exceeds_the_total_and_zero_rate_means_at_once():
    assert calc.due(10_000, 200, 1000) == 1000
    assert calc.due(0.0, 0, 1000) == 1000
    assert calc.due(5.0, 200, 0) == 0


def test_due_at_inverts_due():
    rate = 2000
    for index in (0, 1, 999, 123_456):
        assert calc.due(calc.due_at(index, rate), rate, 10**9) == index + 1


def test_order_id_blocks_stay_above_existing_ids_and_apart():
    first = calc.order_id_block(0, 0)
    assert first == calc.ID_BLOCK + 1
    assert calc.order_id_block(0, 1) == first + calc.ID_BLOCK
    assert calc.order_id_block(first + 5_000_000, 0) == 2 * calc.ID_BLOCK + 1


# -- latency -----------------------------------------------------------------------------------


def test_latencies_skip_orders_never_seen():
    appended = np.array([10.0, 11.0, 12.0, np.nan])
    seen = np.array([11.5, np.nan, 14.0, 20.0])
    assert calc.latencies(appended, seen).tolist() == [1.5, 2.0]


def test_summary_percentiles_match_numpy_linear_interpolation():
    values = np.arange(1, 101, dtype=float)  # 1 .. 100
    figures = calc.summarise(values)
    assert figures["count"] == 100
    assert figures["p50"] == pytest.approx(50.5)
    assert figures["p95"] == pytest.approx(95.05)
    assert figures["p99"] == pytest.approx(99.01)
    assert figures["max"] == 100


def test_summary_of_nothing_is_empty_not_an_error():
    assert calc.summarise([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    assert calc.summarise([np.nan])["count"] == 0


def test_window_rate_counts_only_inside_the_window():
    times = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    assert calc.window_rate(times, 1.0, 3.0) == pytest.approx(2.0)  # 1.0, 1.5, 2.0, 2.5
    assert calc.window_rate(times, 3.0, 3.0) is None


def test_steady_window_skips_the_warm_up_but_keeps_half_the_run():
    assert calc.steady_window(100.0, 400.0, 10.0) == (110.0, 400.0)
    assert calc.steady_window(100.0, 110.0, 10.0) == (105.0, 110.0)


# -- lag ---------------------------------------------------------------------------------------


def test_partition_lag_is_end_minus_position_per_partition():
    end = {0: 120, 1: 80}
    assert calc.partition_lag(end, {0: 100, 1: 80}) == 20
    # No position yet: counted from the beginning offset.
    assert calc.partition_lag(end, {0: 100}, beginning={1: 30}) == 20 + 50
    # A position past the end (topic recreated) is no lag, not a negative one.
    assert calc.partition_lag({0: 5}, {0: 9}) == 0


def test_appended_lag_counts_lines_not_yet_in_kafka():
    assert calc.appended_lag(appended=1000, produced_now=5900, produced_before=5000) == 100
    assert calc.appended_lag(appended=1000, produced_now=6100, produced_before=5000) == 0


def test_growth_is_the_slope_and_flags_only_real_growth():
    times = [0, 1, 2, 3, 4]
    assert calc.growth_per_second(times, [500, 500, 500, 500, 500]) == pytest.approx(0.0)
    slope = calc.growth_per_second(times, [0, 100, 200, 300, 400])
    assert slope == pytest.approx(100.0)
    assert calc.lag_is_growing(slope, rate=2000) is True  # 5% of the rate
    assert calc.lag_is_growing(40.0, rate=2000) is False  # 2%
    assert calc.growth_per_second([0, 1], [0, 1]) is None
    assert calc.lag_is_growing(None, 2000) is None


def test_second_half_picks_samples_after_the_middle():
    samples = [{"t": t, "in_flight": t * 10} for t in range(11)]
    times, values = calc.second_half(samples, "in_flight", 0, 10)
    assert times == [5, 6, 7, 8, 9, 10]
    assert values == [50, 60, 70, 80, 90, 100]


# -- Spark checkpoints -------------------------------------------------------------------------


def test_checkpoint_offsets_reads_the_kafka_source_line():
    text = (
        "v1\n"
        '{"batchWatermarkMs":0,"batchTimestampMs":1795512085106,"conf":{}}\n'
        '{"Topic_Purchase":{"1":2302,"0":2198}}\n'
    )
    assert calc.checkpoint_offsets(text) == {"Topic_Purchase": {0: 2198, 1: 2302}}
    assert calc.checkpoint_offsets("v1\n{}\nnull\n") == {}


def test_latest_batch_ignores_temporary_and_crc_files():
    assert calc.latest_batch(["0", "1", "10", ".10.crc", "2", ".11.tmp"]) == 10
    assert calc.latest_batch([".0.crc"]) is None


def test_span_rate_uses_first_to_last_output_record():
    assert calc.span_rate(20_000, 1_000, 2_000) == pytest.approx(20_000)
    assert calc.span_rate(0, 1_000, 2_000) is None
    assert calc.span_rate(10, 1_000, 1_000) is None


# -- verdicts ----------------------------------------------------------------------------------


def _phase(rate, p95, accepted=None, indexed=None, growing=False, unseen=0):
    return {
        "label": f"{rate:g}/s",
        "rate_offered": rate,
        "duration_s": 30,
        "accepted_per_s": rate if accepted is None else accepted,
        "indexed_per_s_steady": rate if indexed is None else indexed,
        "lag_growing": growing,
        "unseen_after_drain": unseen,
        "latency_s": {"p50": p95 / 2, "p95": p95, "p99": p95, "max": p95},
        "in_flight_growth_per_s": 0.0,
    }


def test_verdicts_pass_and_miss_per_target():
    tap200 = _phase(200, 1.8)
    original = _phase(200, 36.0)
    result = {
        "phases": [tap200, _phase(2000, 2.5, indexed=1500, growing=True)],
        "original": {"phase": original, "p95_ratio": report.p95_ratio(original, tap200)},
        "replay": {
            "stages": [
                {"job": "process_orders", "orders_per_s": 25_000.0},
                {"job": "behaviour", "orders_per_s": 18_000.0},
            ]
        },
        "rss": {"peak_total_bytes": 5 * 2**30},
    }
    verdicts = {row["target"]: row["verdict"] for row in report.verdicts(result)}
    assert list(verdicts.values()) == ["PASS", "PASS", "MISS", "MISS", "PASS"]
    assert math.isclose(result["original"]["p95_ratio"], 20.0)


def test_verdicts_without_figures_are_not_applicable():
    rows = report.verdicts({"phases": []})
    assert {row["verdict"] for row in rows} == {"n/a"}


def test_a_rate_skipped_after_an_unsustained_one_is_a_miss():
    result = {"phases": [_phase(1000, 9.0, unseen=500)], "skipped_rates": [2000.0]}
    rows = {row["target"]: row for row in report.verdicts(result)}
    sustained = rows[">= 2000 orders/s sustained end-to-end, lag not growing"]
    assert sustained["verdict"] == "MISS"
    assert "not run" in sustained["figure"]


def test_the_replay_scratch_home_renames_only_topics_group_and_indices(tmp_path):
    import tomllib

    from tapstack import contracts
    from tapstack.bench.replay import Scratch, scratch_home

    scratch = Scratch.named("123")
    home = scratch_home(tmp_path, scratch)
    copied = tomllib.loads((home / "contracts" / "settings.toml").read_text())
    original = contracts.settings()
    assert copied["topics"]["purchase"] == "Replay123_" + original["topics"]["purchase"]
    assert (
        copied["consumer_groups"]["loader"] == "Replay123_" + original["consumer_groups"]["loader"]
    )
    assert copied["indices"]["orders"] == "replay123-" + original["indices"]["orders"]
    for section in ("versions", "ports", "enrichment", "streaming", "shop"):
        assert copied[section] == original[section]
    assert (home / "contracts" / "order.schema.json").read_text() == (
        contracts.ORDER_SCHEMA_FILE.read_text()
    )


# -- the retraining figure -----------------------------------------------------------------------


def test_the_retraining_line_gives_the_flipped_share_and_both_versions():
    figure = {
        "orders": 12345,
        "training_seconds": 21.5,
        "rows": 12345,
        "flipped": 123,
        "share": 123 / 12345,
        "first": "behaviour-a",
        "second": "behaviour-b",
    }
    assert report.retraining_line(figure) == (
        "Retrained on the bench's 12,345 orders in 21.5 s: 123 of 12,345 (1.00%) would change"
        " label from behaviour-a to behaviour-b."
    )


def test_a_retraining_that_could_not_run_says_why():
    line = report.retraining_line({"error": "only 12 orders in the window: 200 needed"})
    assert line == (
        "Retraining on the bench's orders was not measured: only 12 orders in the window: 200"
        " needed"
    )
