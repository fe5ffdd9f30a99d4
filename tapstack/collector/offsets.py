"""The tailer's persisted position: which file (by inode) and how far, written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Position:
    inode: int | None = None
    offset: int = 0
    # Inodes of rotated siblings (orders.log.N) already drained, or there before the tailer
    # began this file: never read again. Files of the log rotated later are not in it.
    passed: list[int] = field(default_factory=list)


class OffsetStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> Position:
        try:
            return Position(**json.loads(self.path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return Position()

    def save(self, position: Position) -> None:
        """Write then rename, so a crash leaves the old or the new position, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as out:
            json.dump(asdict(position), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
