"""The fault and bad-input suite's report: one row per case, printed as a table at the end."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ROWS: list[Row] = []


@dataclass
class Row:
    case: str
    sent: int
    found: int
    lost: int
    duplicated: int
    dead_lettered: int


@pytest.fixture
def report():
    """report(case, sent, found, lost, duplicated, dead_lettered) adds a row to the table."""

    def add(case, sent, found, lost, duplicated, dead_lettered=0):
        ROWS.append(Row(case, sent, found, lost, duplicated, dead_lettered))

    return add


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    header = ("fault or case", "orders sent", "docs found", "lost", "duplicated", "dead-lettered")
    widths = [max(len(header[0]), *(len(r.case) for r in ROWS)), *(len(h) for h in header[1:])]
    write = terminalreporter.write_line
    terminalreporter.section("TAP faults and bad input")
    write(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for r in ROWS:
        cells = (r.case, r.sent, r.found, r.lost, r.duplicated, r.dead_lettered)
        write(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    lost, duplicated = sum(r.lost for r in ROWS), sum(r.duplicated for r in ROWS)
    write(f"total lost: {lost}, total duplicated: {duplicated}")


def pytest_collection_modifyitems(items):
    """The replay runs first: it re-reads every topic, so its cost grows with all that the
    session wrote before it; the other cases do not depend on their order."""
    items.sort(key=lambda item: 0 if "test_replaying_every_topic" in item.nodeid else 1)
