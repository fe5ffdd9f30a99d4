"""Reading the settings contract: the trigger that selects Spark's execution mode."""

from __future__ import annotations

import pytest

from tapstack import contracts


@pytest.mark.parametrize(
    ("trigger", "interval"),
    [("real-time 1 minute", "1 minute"), ("0 seconds", None), ("20 seconds", None)],
)
def test_the_trigger_selects_real_time_mode_or_micro_batches(monkeypatch, trigger, interval):
    monkeypatch.setenv("TAP_TRIGGER", trigger)
    assert contracts.real_time_interval() == interval
