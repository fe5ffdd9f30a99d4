"""How far recent orders' visit features have moved from the model's training data: the
population stability index (PSI) per feature, over the training data's own decile bins.

PSI = sum over bins of (actual - expected) * ln(actual / expected), shares of rows per bin.
The customary reading: below 0.1 no shift, 0.1 to 0.25 a moderate one, above 0.25 a shift
the model should be retrained for; [model] retrain_psi_above in settings.toml picks the line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

# An empty bin would make ln(0); its share is floored to this instead (a common convention).
SHARE_FLOOR = 1e-4


@dataclass(frozen=True)
class Reference:
    """A feature's training bins: `edges` split the line into len(edges) + 1 bins
    (-inf, e0), [e0, e1), ... [e_last, inf); `shares` are the training rows' share per bin."""

    feature: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]

    @classmethod
    def of(cls, feature: str, data: dict) -> Reference:
        return cls(feature, tuple(data["edges"]), tuple(data["shares"]))


def bin_index(value: float, edges: Sequence[float]) -> int:
    """Which bin of `edges` the value falls in (edges sorted, lower bound inclusive)."""
    for index, edge in enumerate(edges):
        if value < edge:
            return index
    return len(edges)


def distinct_edges(quantiles: Iterable[float]) -> tuple[float, ...]:
    """Quantiles of a discrete feature repeat (many visits of exactly 3 pages): keep each
    edge once, or two bins would be the same bin."""
    return tuple(sorted(set(quantiles)))


def shares(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    if total == 0:
        raise ValueError("no rows: a share of nothing is undefined")
    return tuple(c / total for c in counts)


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of two share vectors over the same bins."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected bins against {len(actual)} actual ones")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, SHARE_FLOOR), max(a, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


@dataclass(frozen=True)
class Measure:
    """One feature's drift over a window: psi is None when the window holds no order."""

    feature: str
    orders: int
    psi: float | None
    verdict: Literal["stable", "retrain", "no orders"]


def measure(
    references: Sequence[Reference], counts: dict[str, Sequence[int]], threshold: float
) -> list[Measure]:
    """Each reference feature's PSI for the window's bin counts, and what it calls for."""
    found = []
    for reference in references:
        seen = counts[reference.feature]
        if not sum(seen):
            found.append(Measure(reference.feature, 0, None, "no orders"))
            continue
        value = psi(reference.shares, shares(seen))
        verdict = "retrain" if value > threshold else "stable"
        found.append(Measure(reference.feature, sum(seen), value, verdict))
    return found


def documents(
    measures: Sequence[Measure],
    *,
    model_version: str,
    since: datetime,
    until: datetime,
    threshold: float,
    measured_at: datetime,
) -> list[tuple[str, dict]]:
    """(id, document) per feature for the drift index: the same window of the same model has
    the same ids, so recording it again creates nothing."""
    window_to = until.astimezone(UTC).isoformat()
    return [
        (
            f"{model_version}-{m.feature}-{window_to}",
            {
                "measured_at": measured_at.astimezone(UTC).isoformat(),
                "window_from": since.astimezone(UTC).isoformat(),
                "window_to": window_to,
                "model_version": model_version,
                "feature": m.feature,
                "orders": m.orders,
                "psi": m.psi,
                "threshold": threshold,
                "verdict": m.verdict,
            },
        )
        for m in measures
    ]
