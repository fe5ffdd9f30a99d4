"""The native stack's process registry (tapstack.native.processes), on real child processes."""

from __future__ import annotations

import os
import stat
import time

import psutil

from tapstack.native import processes

SLEEPER = ["sleep", "60"]


def test_stop_ends_the_process_and_forgets_it(tmp_path):
    managed = processes.start(tmp_path, "job", SLEEPER)
    assert processes.find(tmp_path, "job").pid == managed.pid
    assert processes.stop(tmp_path, "job", timeout=5)
    assert not psutil.pid_exists(managed.pid) or psutil.Process(managed.pid).status() == "zombie"
    assert processes.find(tmp_path, "job") is None
    assert processes.held(tmp_path, "job"), "a stop on purpose holds the process"


def test_a_successor_started_during_a_kill_stays_registered(tmp_path, monkeypatch):
    """kill -9, and the supervisor restarts the job before the kill has finished: the
    successor's registration must survive, or it would run on unseen by every later stop."""
    first = processes.start(tmp_path, "job", SLEEPER)
    real_wait = psutil.wait_procs
    successor = {}

    def wait_and_restart(procs, timeout=None):
        # The supervisor's restart lands in the window between the group's death and stop's
        # cleanup. It can only see the job as dead once the kill has landed, so wait for that
        # first (under load SIGKILL is not instantaneous, and a restart before it would find
        # the old process still running and rightly start nothing).
        outcome = real_wait(procs, timeout=timeout)
        if not successor:
            successor["managed"] = processes.start(tmp_path, "job", SLEEPER, unless_held=True)
        return outcome

    monkeypatch.setattr(processes.psutil, "wait_procs", wait_and_restart)
    assert processes.kill_hard(tmp_path, "job")
    monkeypatch.undo()
    try:
        started = successor["managed"]
        assert started is not None and (started.pid, started.started) != (first.pid, first.started)
        assert processes.find(tmp_path, "job").pid == started.pid
    finally:
        processes.stop(tmp_path, "job", timeout=5)
    assert processes.find(tmp_path, "job") is None


def test_a_process_and_its_log_are_private_whatever_the_callers_umask(tmp_path):
    """A stage's log and every file it writes may hold customer data: owner-only (0600), even
    when the caller's umask would let the group and others read them."""
    previous = os.umask(0o022)
    try:
        made = tmp_path / "made-by-the-child"
        managed = processes.start(
            tmp_path, "writer", ["sh", "-c", f"echo hello > {made}; sleep 60"]
        )
        _wait_for(made.exists)
        assert processes.stop(tmp_path, "writer", timeout=5)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert stat.S_IMODE(managed.log.stat().st_mode) == 0o600
    assert stat.S_IMODE(managed.log.parent.stat().st_mode) == 0o700


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
