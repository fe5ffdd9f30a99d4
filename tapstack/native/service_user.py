"""Engines started by root run as their own system user, from files that user can reach.

An engine's user (tap-es, tap-kafka) is created if missing: a system account with no login and
its own group. It may not be able to enter the checkout (a `mktemp -d` folder or root's home is
0700), so its files live in its own service home:

- engines/<name>/  the engine's distribution, copied once per version (root-owned, readable);
- nodes/<stack>-<hash of the run folder>/  the node's config, data and logs (the user's, 0700).

The run folder's entry for the engine links to the node's folder, and a purge of the stack
removes it. Run by another user, an engine runs as that user, its node inside the run folder.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tapstack.native.errors import StackError


@dataclass(frozen=True)
class ServiceUser:
    name: str  # the system user's name
    engine: str  # the run folder's entry for it, and the word errors use
    home_variable: str  # the environment variable that moves the service home

    @property
    def home(self) -> Path:
        return Path(os.environ.get(self.home_variable, f"/var/lib/{self.name}"))

    def active(self) -> bool:
        """Whether the engine runs as this user: only when TAP runs as root."""
        return os.geteuid() == 0

    def ensure(self) -> str | None:
        """The user to run as (created if missing), or None to run as ourselves."""
        if not self.active():
            return None
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            command = ["useradd", "--system", "--user-group", "--no-create-home",
                       "--shell", "/usr/sbin/nologin", self.name]  # fmt: skip
            try:
                subprocess.run(command, check=True, capture_output=True, text=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", None) or exc
                raise StackError(
                    f"{self.engine} runs as the user {self.name} when TAP runs as root, and "
                    f"that user could not be created ({str(detail).strip()}): run "
                    f"`{' '.join(command)}` yourself, or start TAP as a non-root user."
                ) from exc
        return self.name

    def identity(self) -> dict:
        """subprocess keyword arguments that run a child as this user, its own group only (not
        root's: Popen's user= alone changes only the uid)."""
        if not self.active():
            return {}
        account = pwd.getpwnam(self.name)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def node_home(self, run_dir: Path) -> Path:
        """Where the node's config, data and logs live."""
        if not self.active():
            return run_dir / self.engine
        digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
        return self.home / "nodes" / f"{run_dir.name}-{digest}"

    def prepare(self, run_dir: Path, distribution: Path) -> tuple[Path, Path]:
        """(the distribution to run, the node's folder), both reachable by the engine's user."""
        home = self.node_home(run_dir)
        if not self.active():
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            return distribution, home
        entry = run_dir / self.engine
        try:
            distribution = self._engine_copy(distribution)
            if entry.is_dir() and not entry.is_symlink() and not home.exists():
                # A node made in the run folder before it moved out: keep its data.
                home.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                shutil.move(entry, home)
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StackError(
                f"{self.engine} runs as {self.name}, whose files go to {self.home}, and that "
                f"failed ({exc}): free or fix that folder, or choose another with "
                f"{self.home_variable}=..."
            ) from exc
        self._link(entry, home)
        return distribution, home

    def hand_over(self, home: Path) -> None:
        """Give the node's folder, as prepared by root, to the engine's user."""
        if not self.active():
            return
        account = pwd.getpwnam(self.name)
        for root, dirs, files in os.walk(home):
            os.chown(root, account.pw_uid, account.pw_gid)
            for name in dirs + files:
                path = os.path.join(root, name)
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
        home.chmod(0o700)

    def purge(self, run_dir: Path) -> None:
        """Delete the node's files kept outside the run folder (the stack deletes the rest)."""
        home = self.node_home(run_dir)
        if home != run_dir / self.engine:
            shutil.rmtree(home, ignore_errors=True)

    def _engine_copy(self, distribution: Path) -> Path:
        target = self.home / "engines" / distribution.name
        if (target / ".complete").exists():
            return target
        self.home.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.parent.mkdir(mode=0o755, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(distribution, partial, symlinks=True)
        for root, _dirs, files in os.walk(partial):  # readable whatever the checkout's umask
            os.chmod(root, 0o755)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    mode = os.stat(path).st_mode
                    os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))
        partial.rename(target)
        (target / ".complete").touch()
        return target

    @staticmethod
    def _link(link: Path, home: Path) -> None:
        if link.is_symlink() and link.resolve() == home:
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        link.symlink_to(home, target_is_directory=True)
