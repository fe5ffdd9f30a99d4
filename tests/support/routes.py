"""Running the test stack's loader against another Elasticsearch address (a fault proxy)."""

from __future__ import annotations

import contextlib

from tapstack import contracts
from tapstack.native import processes
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
        stack.wait_pipeline_ready(processes_=(LOADER,))
        yield routed
    finally:
        processes.stop(run_dir, LOADER)
        stack.start_process(LOADER)
        stack.wait_pipeline_ready(processes_=(LOADER,))


def still_running(stack: Stack, managed: processes.Managed) -> bool:
    """The same process is still registered (it did not crash and get restarted)."""
    now = processes.find(stack.run_dir, managed.name)
    return now is not None and now.pid == managed.pid
