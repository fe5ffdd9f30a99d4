"""Regenerate the behaviour model's training set from the shop simulator.

    .venv/bin/python training_data/generate.py            # -> training_data/training_data.csv

The rows are the (duration_session, pages_viewed) of simulated paid orders, with the buyer
population that produced each order as ground truth. Same seed and row count, same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tapstack.simulator import generate_training_data, write_training_csv

HERE = Path(__file__).resolve().parent
DEFAULT_ROWS = 4000
DEFAULT_SEED = 2026


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="simulator seed")
    parser.add_argument(
        "--out", type=Path, default=HERE / "training_data.csv", help="CSV file to (over)write"
    )
    args = parser.parse_args(argv)
    rows = generate_training_data(rows=args.rows, seed=args.seed)
    written = write_training_csv(args.out, rows)
    impulsive = sum(row["behaviour"] == "Impulsive" for row in rows)
    print(
        f"wrote {written} rows to {args.out} "
        f"(seed {args.seed}: {impulsive} Impulsive, {written - impulsive} Reasoned)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
