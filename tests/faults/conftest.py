"""The fault and bad-input suite's report: one row per case, printed as a table at the end.

Columns: orders (or records) sent, documents found, lost, duplicated, dead-lettered, and stuck:
records that are neither found, dead-lettered nor lost once the row has waited, because a stage
still has them unconsumed in its input topic (a stage that stopped moving)."""

from __future__ import annotations

from dataclasses import astuple, dataclass

import pytest

ROWS: list[Row] = []
HEADER = (
    "fault or case",
    "orders sent",
    "docs found",
    "lost",
    "duplicated",
    "dead-lettered",
    "stuck",
)


@dataclass
class Row:
    case: str
    sent: int
    found: int
    lost: int
    duplicated: int
    dead_lettered: int
    stuck: int


@pytest.fixture
def report():
    """report(case, sent, found, lost, duplicated, dead_lettered, stuck) adds a row."""

    def add(case, sent, found, lost, duplicated, dead_lettered=0, stuck=0):
        ROWS.append(Row(case, sent, found, lost, duplicated, dead_lettered, stuck))

    return add


def table(rows: list[Row]) -> list[str]:
    """The rows as aligned text lines, the header first."""
    cells = [HEADER, *(tuple(str(c) for c in astuple(r)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]

    def line(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return [line(row) for row in cells]


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    terminalreporter.section("TAP faults and bad input")
    for line in table(ROWS):
        terminalreporter.write_line(line)
    lost, duplicated = sum(r.lost for r in ROWS), sum(r.duplicated for r in ROWS)
    stuck = sum(r.stuck for r in ROWS)
    terminalreporter.write_line(
        f"total lost: {lost}, total duplicated: {duplicated}, total stuck: {stuck}"
    )


def pytest_collection_modifyitems(items):
    """The replay runs first: it re-reads every topic, so its cost grows with all that the
    session wrote before it; the other cases do not depend on their order."""
    items.sort(key=lambda item: 0 if "test_replaying_every_topic" in item.nodeid else 1)
