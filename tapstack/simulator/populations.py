"""The two buyer populations of the simulated shop, with ground truth.

Each paid order comes from a visit by one of two kinds of buyer:

* **Impulsive** - short visits (median about 1.75 minutes, a heavy right tail), a handful of
  pages, one or two cheap-ish items.
* **Reasoned** - long visits (median about 21 minutes, most between 10 and 40), many pages
  (median 17, most between 8 and 40), more items, more premium pieces.

Within a visit, duration and pages are drawn as a correlated pair of log-normal variables: a
longer visit tends to see more pages, but not in lock-step. Both populations also contain a small
share of *abandoned tabs*: the visitor opened the shop, left the tab for hours and came back to
buy. Their duration gains one to many hours (capped at the plugin's 86400 s) while their page
count stays that of the real visit. Those rows are what a K-Means on raw duration trips on.

Everything is drawn from a caller-supplied ``random.Random``, so a seed fixes the outcome.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tapstack.contracts import settings

IMPULSIVE = "Impulsive"
REASONED = "Reasoned"
BEHAVIOURS = (IMPULSIVE, REASONED)

MAX_SESSION_SECONDS = int(settings()["shop"]["max_session_seconds"])

# Share of visits, in either population, whose tab stayed open for hours before the purchase.
ABANDONED_TAB_SHARE = 0.02
# Extra idle time of an abandoned tab: log-uniform between these bounds (seconds).
ABANDONED_IDLE_MIN = 3_600
ABANDONED_IDLE_MAX = 30 * 3_600


@dataclass(frozen=True)
class Population:
    """How one kind of buyer browses and buys."""

    behaviour: str
    # Session duration: log-normal with this median (seconds) and log-space sigma.
    duration_median: float
    duration_sigma: float
    # Pages viewed: log-normal with this median and sigma, correlated with the duration.
    pages_median: float
    pages_sigma: float
    pages_correlation: float
    # Distinct order lines: weights for 1, 2, 3, ... lines.
    line_weights: tuple[float, ...]
    # Quantity per line: weights for 1, 2, 3, ...
    quantity_weights: tuple[float, ...]
    # Preference multipliers per category (1.0 when absent) and for premium pieces.
    category_affinity: tuple[tuple[str, float], ...]
    premium_affinity: float

    def session(self, rng: random.Random) -> tuple[int, int, bool]:
        """Draw (duration_session seconds, pages_viewed, abandoned_tab) for one visit."""
        z_duration = rng.gauss(0.0, 1.0)
        rho = self.pages_correlation
        z_pages = rho * z_duration + math.sqrt(1.0 - rho * rho) * rng.gauss(0.0, 1.0)
        duration = self.duration_median * math.exp(self.duration_sigma * z_duration)
        pages = self.pages_median * math.exp(self.pages_sigma * z_pages)
        abandoned = rng.random() < ABANDONED_TAB_SHARE
        if abandoned:
            idle = math.exp(rng.uniform(math.log(ABANDONED_IDLE_MIN), math.log(ABANDONED_IDLE_MAX)))
            duration += idle
        # Even the quickest purchase needs a few seconds (product page, cart, checkout).
        seconds = min(MAX_SESSION_SECONDS, max(5, int(round(duration))))
        return seconds, max(1, int(round(pages))), abandoned

    def line_count(self, rng: random.Random) -> int:
        return _weighted_index(rng, self.line_weights) + 1

    def quantity(self, rng: random.Random) -> int:
        return _weighted_index(rng, self.quantity_weights) + 1

    def affinity(self, category: str, premium: bool) -> float:
        weight = dict(self.category_affinity).get(category, 1.0)
        return weight * (self.premium_affinity if premium else 1.0)


IMPULSIVE_POPULATION = Population(
    behaviour=IMPULSIVE,
    duration_median=105.0,
    duration_sigma=0.6,
    pages_median=2.6,
    pages_sigma=0.4,
    pages_correlation=0.4,
    line_weights=(0.74, 0.22, 0.04),
    quantity_weights=(0.9, 0.1),
    category_affinity=(
        ("T-shirts", 1.6),
        ("Accessories", 1.8),
        ("Shoes", 1.1),
        ("Knitwear", 0.7),
        ("Jackets", 0.6),
    ),
    premium_affinity=0.5,
)

REASONED_POPULATION = Population(
    behaviour=REASONED,
    duration_median=1_260.0,
    duration_sigma=0.4,
    pages_median=17.0,
    pages_sigma=0.4,
    pages_correlation=0.4,
    line_weights=(0.25, 0.30, 0.24, 0.13, 0.08),
    quantity_weights=(0.82, 0.14, 0.04),
    category_affinity=(
        ("Jackets", 1.5),
        ("Knitwear", 1.4),
        ("Shoes", 1.3),
        ("Jeans", 1.2),
        ("Accessories", 0.8),
    ),
    premium_affinity=1.2,
)

POPULATIONS: dict[str, Population] = {
    IMPULSIVE: IMPULSIVE_POPULATION,
    REASONED: REASONED_POPULATION,
}


def _weighted_index(rng: random.Random, weights: tuple[float, ...]) -> int:
    point = rng.random() * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1
