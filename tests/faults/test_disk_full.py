"""The log's disk fills up under the writer, then space is freed.

The log lives on a tmpfs of 256 KiB (mount -t tmpfs: the tests run as root); a second collector
(`tap collect`, the same command the stack runs) tails it into Topic_Purchase, beside the
stack's own. A filler file takes the rest of the space, the writer runs into ENOSPC, the filler
is removed and the writer goes on with the order that failed and the rest. Two writers: the
simulator's append_orders (the native path's shop) and the plugin's own TAP_Log_Writer
(wordpress_plugin/tests/append-lines.php, the compose path's shop), both one write per line."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tapstack import contracts
from tapstack.native import processes
from tapstack.simulator import append_orders, format_line
from tests.support import tally

pytestmark = [pytest.mark.engines, pytest.mark.spark, pytest.mark.faults]

N = 200
COLLECTOR = "tailer-diskfull"


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "256k"):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:  # not root, or no mount in this container
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write zeros to path until the filesystem refuses one more byte."""
    with open(path, "wb", buffering=0) as filler:
        for size in (64 * 1024, 4096, 1):
            try:
                while filler.write(b"\0" * size):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


@contextlib.contextmanager
def collector_of(stack, log: Path):
    run_dir = stack.run_dir
    argv = [*stack.command("tailer")]
    argv[argv.index("--log") + 1] = str(log)
    argv[argv.index("--state") + 1] = str(run_dir / "collector-diskfull" / "offsets.json")
    processes.start(run_dir, COLLECTOR, argv, env=stack.pipeline_env("tailer"), cwd=contracts.ROOT)
    try:
        yield
    finally:
        processes.stop(run_dir, COLLECTOR)


class SimulatorWriter:
    """The simulator's writer, as pipeline.append uses it for the stack's own log."""

    def __init__(self, log: Path):
        self.log = log

    def append(self, order) -> None:
        append_orders(self.log, [order])

    def close(self) -> None:
        pass


class PluginWriter:
    """The plugin's TAP_Log_Writer in a PHP process of its own, one line at a time."""

    DRIVER = contracts.ROOT / "wordpress_plugin" / "tests" / "append-lines.php"

    def __init__(self, log: Path):
        self.process = subprocess.Popen(
            ["php", str(self.DRIVER), str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def append(self, order) -> None:
        self.process.stdin.write(format_line(order.event).encode("utf-8"))
        self.process.stdin.flush()
        answer = self.process.stdout.readline().decode("utf-8", "replace").strip()
        if answer == "ok":
            return
        if "errno=28" in answer:
            raise OSError(errno.ENOSPC, answer)
        raise RuntimeError(f"the plugin's writer: {answer or 'no answer'}")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(SimulatorWriter, id="simulator"),
        pytest.param(
            PluginWriter,
            id="plugin",
            marks=pytest.mark.skipif(shutil.which("php") is None, reason="no php"),
        ),
    ],
)
def test_the_logs_disk_fills_up(pipeline, report, writer):
    stack = pipeline.stack
    orders = pipeline.simulate(N, seed=160 if writer is SimulatorWriter else 161)
    with small_filesystem(stack.run_dir / "smalldisk") as disk:
        log = disk / "orders.log"
        log.touch()
        shop = writer(log)
        try:
            with collector_of(stack, log):
                first = orders[: N // 2]
                for order in first:
                    shop.append(order)
                assert pipeline.wait_indexed([o.order_id for o in first]) == len(first)

                fill(disk / "filler")
                refused = None
                for index in range(len(first), N):
                    try:
                        shop.append(orders[index])
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        refused = index
                        break
                assert refused is not None, "the disk did fill up"
                half_line = not log.read_bytes().endswith(b"\n")
                os.unlink(disk / "filler")
                for order in orders[refused:]:  # the writer resumes with the order that failed
                    shop.append(order)

                figures = tally.tally(pipeline, orders, timeout=60)
        finally:
            shop.close()
    ids = [str(o.order_id).encode() for o in orders]
    letters = [d for d in pipeline.dead_letters() if any(i in (d["value"] or b"") for i in ids)]
    case = f"log's disk full, then freed ({writer.__name__.removesuffix('Writer').lower()})"
    report(case, N, figures.found, figures.lost, figures.duplicated, len(letters), figures.stuck)
    assert not half_line, "no part of a line stays in the log after ENOSPC"
    tally.assert_clean(case, figures, orders)
    assert letters == []
