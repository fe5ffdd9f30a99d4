"""`tap faults`: the fault and bad-input suite on the real engines, ending with its table."""

from __future__ import annotations

import subprocess
import sys

import typer

from tapstack.contracts import ROOT


def faults(
    keyword: str = typer.Option("", "-k", help="Only the cases matching this pytest expression."),
) -> None:
    """Kill and restart every stage, rotate and truncate the log, take Elasticsearch down,
    replay every topic, feed hostile lines, a poison record on every topic, Elasticsearch
    answering 429 and 413 (a fault proxy), refusing a mapping, slow, past its flood stage, the
    log's disk full, an order with 5,000 items, a stuck lock in the plugin; print: case, sent,
    found, lost, duplicated, dead-lettered, stuck (missing, and still unconsumed by a stage)."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "faults"),
        "-p",
        "no:warnings",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    if keyword:
        argv += ["-k", keyword]
    raise typer.Exit(subprocess.run(argv, cwd=ROOT).returncode)
