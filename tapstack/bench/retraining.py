"""The bench's model figure: what retraining on the bench's own orders would change.

As `tap model train --from elasticsearch` does on a shop: the visit features of the orders
indexed in the training window, a model trained on them, and the share of those orders that the
new version labels differently from the one that labelled them (`tap model compare`'s figure).
A figure, not a target: a shop whose buyers match the training data should see few flips.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from tapstack import contracts
from tapstack.elastic import history


def measure(model_dir: Path, es: Elasticsearch, work_dir: Path) -> dict[str, Any]:
    """Train on the indexed orders and compare with the model in model_dir."""
    from tap_spark import model

    settings = contracts.settings()["model"]
    index = contracts.index("orders")
    span = history.window(settings["training_window"], None, datetime.now(UTC))
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="retrained-") as folder:
        orders_csv = Path(folder) / "orders.csv"
        orders = history.export_features(
            es, span, orders_csv, minimum=settings["min_training_orders"], index=index
        )
        started = time.monotonic()
        source = {"elasticsearch": index, "since": span.since.isoformat(), "orders": orders}
        model.train(orders_csv, Path(folder) / "model", source=source)
        seconds = time.monotonic() - started
        flips = model.compare(model_dir, Path(folder) / "model", data_path=orders_csv)
    return {"orders": orders, "training_seconds": round(seconds, 1), **flips}
