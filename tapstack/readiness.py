"""Ready markers: a pipeline process touches TAP_READY_DIR/<name> once it is serving, and the
native stack waits on them. Outside the native stack (compose) TAP_READY_DIR is unset."""

from __future__ import annotations

import os
from pathlib import Path


def mark_ready(name: str) -> None:
    folder = os.environ.get("TAP_READY_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, name).touch()
