"""Start, find and stop the stack's background processes.

Each process runs in its own session (process group) so that stopping it also stops what it
spawned (Elasticsearch's launcher and its JVM, PySpark and its JVM). Its pid and start time are
kept in <run>/pids/<name>.json; the start time guards against signalling a reused pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Managed:
    name: str
    pid: int
    started: float
    log: Path


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.json"


def _held_file(run_dir: Path, name: str) -> Path:
    return run_dir / "held" / name


def held(run_dir: Path, name: str) -> bool:
    """Stopped on purpose (the supervisor leaves it alone), as opposed to crashed."""
    return _held_file(run_dir, name).exists()


@contextlib.contextmanager
def _start_lock(run_dir: Path, name: str):
    """Serialise starts of one process name across processes (the supervisor and a user may
    start the same stage at the same moment; two Spark queries on one checkpoint must never
    run)."""
    path = run_dir / "pids" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(
    run_dir: Path,
    name: str,
    argv: list[str],
    env: dict[str, str | None] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    unless_held: bool = False,
) -> Managed | None:
    """Start argv in the background (unless it runs already), its output appended to
    <run>/logs/<name>.log; env is laid over this process's environment (None removes a
    variable). unless_held: leave a process stopped on purpose alone (None)."""
    with _start_lock(run_dir, name):
        if unless_held and held(run_dir, name):
            return None
        existing = find(run_dir, name)
        if existing is None:
            existing = _spawn(run_dir, name, argv, env, cwd, user)
        _held_file(run_dir, name).unlink(missing_ok=True)
        return existing


# Everything a stage writes (logs, checkpoints, Kafka's and Spark's files) may hold customer
# data or a secret in an error: owner-only, whatever the caller's umask.
PRIVATE_UMASK = 0o077


def _spawn(run_dir, name, argv, env, cwd, user) -> Managed:
    log = run_dir / "logs" / f"{name}.log"
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    identity = {}
    if user:
        # The user's own group and no supplementary ones: not root's group (Popen's user=
        # alone changes only the uid).
        account = pwd.getpwnam(user)
        identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},
            cwd=cwd,
            start_new_session=True,
            umask=PRIVATE_UMASK,
            **identity,
        )
    started = psutil.Process(proc.pid).create_time()
    _pid_file(run_dir, name).write_text(json.dumps({"pid": proc.pid, "started": started}))
    return Managed(name, proc.pid, started, log)


def find(run_dir: Path, name: str) -> Managed | None:
    """The running process registered under name, or None (stale pid files are removed)."""
    path = _pid_file(run_dir, name)
    try:
        data = json.loads(path.read_text())
        proc = psutil.Process(data["pid"])
        if abs(proc.create_time() - data["started"]) < 1 and proc.status() != psutil.STATUS_ZOMBIE:
            return Managed(name, data["pid"], data["started"], run_dir / "logs" / f"{name}.log")
    except (FileNotFoundError, json.JSONDecodeError, psutil.NoSuchProcess, KeyError):
        pass
    path.unlink(missing_ok=True)
    return None


def registered(run_dir: Path) -> list[str]:
    return sorted(p.stem for p in (run_dir / "pids").glob("*.json"))


def _group_members(pid: int) -> list[psutil.Process]:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return []
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def stop(run_dir: Path, name: str, timeout: float = 30.0, hard: bool = False) -> bool:
    """Stop a process and its group: SIGTERM, then SIGKILL after timeout (at once if hard).

    A stop holds the process (the supervisor will not restart it); a hard kill is a crash.
    """
    if not hard:
        _held_file(run_dir, name).parent.mkdir(parents=True, exist_ok=True)
        _held_file(run_dir, name).touch()
    managed = find(run_dir, name)
    if managed is None:
        return False
    members = _group_members(managed.pid)
    sig = signal.SIGKILL if hard else signal.SIGTERM
    with contextlib.suppress(ProcessLookupError):
        os.killpg(managed.pid, sig)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)
    _forget(run_dir, name, managed.pid)
    return True


def _forget(run_dir: Path, name: str, pid: int) -> None:
    """Remove the pid file if it still names pid. After a crash-like kill the supervisor may
    already have started a successor and registered it; losing its pid file would leave it
    running unseen by stop."""
    path = _pid_file(run_dir, name)
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
        if json.loads(path.read_text())["pid"] == pid:
            path.unlink(missing_ok=True)


def kill_hard(run_dir: Path, name: str) -> bool:
    """kill -9 the whole group, as a crash would."""
    return stop(run_dir, name, timeout=5, hard=True)


def wait_until(check, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll check() until it returns a truthy value; raise TimeoutError naming what."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def rss_bytes(run_dir: Path, name: str) -> int:
    """Resident memory of a process and everything in its group."""
    managed = find(run_dir, name)
    if managed is None:
        return 0
    total = 0
    for proc in _group_members(managed.pid):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total
