"""Training data for model tests: the committed CSV, and another shop made from it."""

from __future__ import annotations

import csv
from pathlib import Path

from tapstack.contracts import ROOT

TRAINING_CSV = ROOT / "training_data" / "training_data.csv"


def longer_visits(path: Path, factor: float) -> Path:
    """Another shop: the committed training data with every visit `factor` times as long."""
    with TRAINING_CSV.open() as source, path.open("w", newline="") as target:
        rows = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=rows.fieldnames)
        writer.writeheader()
        for row in rows:
            stretched = round(int(row["duration_session"]) * factor)
            writer.writerow({**row, "duration_session": stretched})
    return path
