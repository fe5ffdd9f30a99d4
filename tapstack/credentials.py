"""Credentials of the stack's users, found one way by every client.

Compose, and each native pipeline process, get their own user in the environment
(TAP_ES_USER / TAP_ES_PASSWORD, TAP_KAFKA_USER / TAP_KAFKA_PASSWORD): a process holds only what
its stage needs. Commands run by hand against a native stack (`tap summary`, `tap report html`,
the tests) read that stack's secrets folder: TAP_SECRETS_DIR, by default .run/demo/secrets.

Secrets are files of mode 0600 in folders of mode 0700, created with those modes (never
written first and narrowed afterwards).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from tapstack import contracts


def secrets_dir() -> Path:
    return Path(os.environ.get("TAP_SECRETS_DIR") or contracts.ROOT / ".run" / "demo" / "secrets")


def private_dir(path: Path) -> Path:
    """A folder only its owner can enter (made so, or narrowed if it existed)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_secret(path: Path, value: str) -> None:
    """Create a secret file with mode 0600 from the start; an existing one is kept."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)


def _path(kind: str, name: str, folder: Path | None) -> Path:
    return (folder or secrets_dir()) / kind / name


def read(kind: str, name: str, folder: Path | None = None) -> str | None:
    """A stored secret (kind: elasticsearch, kafka, ...), or None when there is none."""
    try:
        return _path(kind, name, folder).read_text().strip()
    except FileNotFoundError:
        return None


def ensure(kind: str, name: str, folder: Path | None = None) -> str:
    """The stored secret, generated (32 random bytes, hex) the first time."""
    path = _path(kind, name, folder)
    if not path.exists():
        private_dir(folder or secrets_dir())  # the secrets root too, not only <root>/<kind>
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            write_secret(path, secrets.token_hex(32))
    return path.read_text().strip()
