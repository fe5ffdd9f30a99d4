"""The benchmark's arithmetic, free of I/O so that it can be tested on its own.

Pacing (when is the n-th order due), latency figures (percentiles of seen - appended), rates
over a window, consumer lag (end offsets minus progress, per partition) and whether a lag grows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Order ids of one benchmark phase live in their own block of this size, so that phases (and
# repeated runs on a kept stack) never share an id.
ID_BLOCK = 10_000_000


# -- pacing ------------------------------------------------------------------------------------


def due(elapsed: float, rate: float, total: int) -> int:
    """How many orders a writer pacing `rate` per second should have appended after `elapsed`
    seconds: order k (from 0) is due at k / rate, so the first one at once."""
    if elapsed < 0 or total <= 0:
        return 0
    if rate <= 0:
        return total
    return min(total, math.floor(elapsed * rate + 1e-9) + 1)


def due_at(index: int, rate: float) -> float:
    """Seconds after the start at which order `index` (from 0) is due."""
    return index / rate if rate > 0 else 0.0


def order_id_block(highest_existing: int, phase: int) -> int:
    """The first order id of a phase: above every id already stored, one block per phase."""
    base = (max(highest_existing, 0) // ID_BLOCK + 1) * ID_BLOCK
    return base + phase * ID_BLOCK + 1


# -- latency -----------------------------------------------------------------------------------


def latencies(appended: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Seconds from append to first searchable, for the orders that were seen (NaN = unseen)."""
    appended = np.asarray(appended, dtype=float)
    seen = np.asarray(seen, dtype=float)
    both = ~np.isnan(appended) & ~np.isnan(seen)
    return seen[both] - appended[both]


def summarise(values: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """count, p50, p95, p99 and max of a sample (None for an empty one)."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "count": int(data.size),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data.max()),
    }


def window_rate(times: np.ndarray, start: float, end: float) -> float | None:
    """Events per second whose time falls in [start, end)."""
    if end <= start:
        return None
    data = np.asarray(times, dtype=float)
    inside = np.count_nonzero((data >= start) & (data < end))
    return inside / (end - start)


def steady_window(start: float, end: float, warmup: float) -> tuple[float, float]:
    """The part of a run after its warm-up; never less than the last half."""
    length = end - start
    skip = min(warmup, length / 2) if length > 0 else 0.0
    return start + skip, end


# -- lag ---------------------------------------------------------------------------------------


def partition_lag(
    end: Mapping[int, int], progress: Mapping[int, int], beginning: Mapping[int, int] | None = None
) -> int:
    """Records not yet consumed: per partition, end offset minus the consumer's position.

    A partition the consumer has no position for counts from its beginning offset (0 unless
    given); a position past the end (a topic recreated under a consumer) counts as no lag.
    """
    beginning = beginning or {}
    lag = 0
    for partition, end_offset in end.items():
        position = progress.get(partition, beginning.get(partition, 0))
        lag += max(0, end_offset - position)
    return lag


def appended_lag(appended: int, produced_now: int, produced_before: int) -> int:
    """Lines appended to the log but not yet in Topic_Purchase (the tailer's lag)."""
    return max(0, appended - (produced_now - produced_before))


def growth_per_second(times: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of values over times (units per second); None under 3 samples."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.size < 3 or np.ptp(t) == 0:
        return None
    slope, _ = np.polyfit(t - t[0], v, 1)
    return float(slope)


def lag_is_growing(slope: float | None, rate: float, tolerance: float = 0.03) -> bool | None:
    """Does a backlog grow faster than `tolerance` of the offered rate? (None: unknown)."""
    if slope is None:
        return None
    return slope > tolerance * rate


def second_half(samples: Sequence[Mapping], key: str, start: float, end: float):
    """(times, values) of the samples taken in the second half of [start, end]."""
    middle = start + (end - start) / 2
    chosen = [s for s in samples if middle <= s["t"] <= end and s.get(key) is not None]
    return [s["t"] for s in chosen], [s[key] for s in chosen]


# -- Spark checkpoints ---------------------------------------------------------------------------


def checkpoint_offsets(text: str) -> dict[str, dict[int, int]]:
    """Source offsets of one Spark checkpoint offsets/<batch> file: topic -> partition -> offset.

    The file is a version line ("v1"), the batch metadata, then one JSON line per source (null
    for a source with nothing yet); the Kafka source writes {"topic": {"partition": offset}}.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    offsets: dict[str, dict[int, int]] = {}
    for line in lines[2:]:
        source = json.loads(line)
        if not isinstance(source, dict):
            continue
        for topic, partitions in source.items():
            if isinstance(partitions, dict):
                offsets.setdefault(topic, {}).update(
                    {int(p): int(o) for p, o in partitions.items()}
                )
    return offsets


def latest_batch(names: Iterable[str]) -> int | None:
    """The highest batch id among checkpoint file names (temporary and .crc files skipped)."""
    ids = [int(name) for name in names if name.isdigit()]
    return max(ids) if ids else None


# -- replay --------------------------------------------------------------------------------------


def span_rate(records: int, first_ms: int | None, last_ms: int | None) -> float | None:
    """Records per second between the first and the last output record's timestamps."""
    if not records or first_ms is None or last_ms is None or last_ms <= first_ms:
        return None
    return records / ((last_ms - first_ms) / 1000.0)


# -- where the latency goes ----------------------------------------------------------------------


def stage_breakdown(
    points: Sequence[tuple[str, Mapping[int, float]]], segments: Sequence[str]
) -> dict[str, Any]:
    """Latency per hop for the orders observed at every point.

    points: (name, order id -> time in seconds) in flow order, e.g. appended, the record
    timestamps in each topic, searchable; segments names the len(points) - 1 hops between them.
    """
    if len(segments) != len(points) - 1:
        raise ValueError("one segment name per pair of consecutive points")
    maps = [times for _, times in points]
    common = set(maps[0]).intersection(*maps[1:]) if maps else set()
    ids = sorted(common)
    result: dict[str, Any] = {"orders": len(ids)}
    for number, name in enumerate(segments):
        before, after = maps[number], maps[number + 1]
        result[name] = summarise([after[i] - before[i] for i in ids])
    return result
