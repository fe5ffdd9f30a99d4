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
