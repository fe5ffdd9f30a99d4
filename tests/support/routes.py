"""Running the test stack's loader against another Elasticsearch address (a fault proxy)."""

from __future__ import annotations

import contextlib

from tapstack import contracts
from tapstack.native import kafka, processes
from tapstack.native.stack import Stack

LOADER = "loader"


@contextlib.contextmanager
def loader_through(stack: Stack, url: str):
    """The loader restarted with TAP_ES_URL=url for the block, then restarted as the stack
    runs it. Yields the routed loader's process, so a row can tell that it never crashed (the
    supervisor would restart it without the route)."""
    run_dir = stack.run_dir
    processes.stop(run_dir, LOADER)
    (run_dir / "ready" / LOADER).unlink(missing_ok=True)
    env = {**stack.pipeline_env(LOADER), "TAP_ES_URL": url}
    routed = processes.start(run_dir, LOADER, stack.command(LOADER), env=env, cwd=contracts.ROOT)
    try:
        _wait_joined(stack)
        yield routed
    finally:
        processes.stop(run_dir, LOADER)
        stack.start_process(LOADER)
        _wait_joined(stack)


def _in_group() -> bool:
    """The loader's consumer group has a member (a loader that is ready but never joined
    reads nothing: seen once, a restarted loader spinning outside its group)."""
    admin = kafka.admin()
    try:
        group = contracts.consumer_group(LOADER)
        return bool(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


def _wait_joined(stack: Stack) -> None:
    stack.wait_pipeline_ready(processes_=(LOADER,))
    processes.wait_until(_in_group, timeout=90, interval=1, what="the loader to join its group")


def still_running(stack: Stack, managed: processes.Managed) -> bool:
    """The same process is still registered (it did not crash and get restarted)."""
    now = processes.find(stack.run_dir, managed.name)
    return now is not None and now.pid == managed.pid
