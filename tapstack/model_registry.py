"""The behaviour models a shop has trained, kept side by side: each version in its own folder
(the saved PipelineModel and tap_model.json, as `tap model train` writes them), and one of
them promoted: the one the behaviour stage labels with when it starts.

    <registry>/<version>/         one trained model, never changed once registered
    <registry>/promoted.json      {"version", "promoted_at", "history": [earlier promotions]}

The registry is `.run/models`, or TAP_MODEL_REGISTRY. Files only: no Spark needed to list,
promote or roll back.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tapstack import contracts

METADATA_FILE = "tap_model.json"  # as spark/tap_spark/model.py writes it
POINTER = "promoted.json"


class RegistryError(RuntimeError):
    """A version that is not there, or a promotion that cannot be undone."""


def root() -> Path:
    return Path(os.environ.get("TAP_MODEL_REGISTRY") or contracts.ROOT / ".run" / "models")


def metadata(model_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RegistryError(f"{model_dir} holds no trained model ({METADATA_FILE})") from error


def register(model_dir: Path, registry: Path | None = None) -> str:
    """Copy a trained model into the registry under its version; the same version twice is
    kept once (a version names its training data's digest, so it is the same model)."""
    version = metadata(model_dir)["version"]
    target = (registry or root()) / version
    if not target.exists():
        staging = target.with_name(f".{version}.tmp-{uuid.uuid4().hex[:8]}")
        shutil.copytree(model_dir, staging)
        staging.rename(target)  # whole or not at all: a reader never sees half a model
    return version


def versions(registry: Path | None = None) -> list[dict[str, Any]]:
    """Every registered version's metadata, oldest first."""
    folder = registry or root()
    found = [
        metadata(child)
        for child in (folder.iterdir() if folder.is_dir() else [])
        if child.is_dir() and not child.name.startswith(".") and (child / METADATA_FILE).exists()
    ]
    return sorted(found, key=lambda m: (m.get("created", ""), m["version"]))


def promoted(registry: Path | None = None) -> dict[str, Any] | None:
    try:
        return json.loads(((registry or root()) / POINTER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def promoted_dir(registry: Path | None = None) -> Path | None:
    """The folder of the promoted version, or None before any promotion."""
    pointer = promoted(registry)
    return (registry or root()) / pointer["version"] if pointer else None


def promote(version: str, registry: Path | None = None, now: datetime | None = None) -> dict:
    """Make `version` the one the behaviour stage loads; the one before goes on the history."""
    folder = registry or root()
    if not (folder / version / METADATA_FILE).exists():
        known = ", ".join(m["version"] for m in versions(folder)) or "none"
        raise RegistryError(f"no version {version} in {folder} (registered: {known})")
    current = promoted(folder)
    history = [*current["history"], current["version"]] if current else []
    if current and current["version"] == version:
        return current
    return _write_pointer(folder, version, history, now)


def rollback(registry: Path | None = None, now: datetime | None = None) -> dict:
    """Promote again the version promoted before the current one."""
    folder = registry or root()
    current = promoted(folder)
    if not current or not current["history"]:
        raise RegistryError("nothing to roll back to: no earlier promotion")
    *earlier, previous = current["history"]
    return _write_pointer(folder, previous, earlier, now)


def _write_pointer(folder: Path, version: str, history: list[str], now: datetime | None) -> dict:
    pointer = {
        "version": version,
        "promoted_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "history": history,
    }
    staging = folder / f".{POINTER}.{uuid.uuid4().hex[:8]}"
    staging.write_text(json.dumps(pointer, indent=2) + "\n", encoding="utf-8")
    staging.replace(folder / POINTER)  # atomic: a starting stage reads the old or the new
    return pointer
