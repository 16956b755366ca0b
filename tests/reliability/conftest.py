"""The reliability suite (issue 13): every test here is marked ``reliability``; each
scenario reports one row of the results table, printed at the end of the session and,
for the full-sized run (``make reliability``), written into docs/reliability.md."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ledger import Verdict

FULL = os.environ.get("KAFKABOOT_RELIABILITY") == "full"
DOCS = Path(__file__).parents[2] / "docs" / "reliability.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = (
    "scenario",
    "faults injected",
    "sent",
    "acknowledged to the producer",
    "handled",
    "lost",
    "duplicates",
    "out-of-order per key",
    "longest recovery",
)


@dataclass(frozen=True)
class Size:
    """How big a run is: CI-sized by default, ``KAFKABOOT_RELIABILITY=full`` for
    ``make reliability``."""

    full: bool

    def pick(self, ci: int, full: int) -> int:
        return full if self.full else ci


@dataclass(frozen=True)
class Row:
    scenario: str
    faults: str
    verdict: Verdict
    recovery_s: float | None

    def cells(self) -> tuple[str, ...]:
        v = self.verdict
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        return (
            self.scenario,
            self.faults,
            str(v.sent),
            str(v.acknowledged),
            str(v.handled),
            str(len(v.lost)),
            str(v.duplicates),
            str(v.out_of_order),
            recovery,
        )


_rows: list[Row] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def size() -> Size:
    return Size(full=FULL)


@pytest.fixture
def report() -> Iterator[list[Row]]:
    """Append the scenario's Row; it joins the table only when the test passes or fails
    on its own assertions (a row is evidence either way)."""
    rows: list[Row] = []
    yield rows
    _rows.extend(rows)


def scenario_order(row: Row) -> tuple[int, str]:
    """By the scenario's number in issue 13 ("12. ..." after "2. ...")."""
    number, _, rest = row.scenario.partition(".")
    return (int(number) if number.isdigit() else 99, rest)


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _rows:
        return
    rows = sorted(_rows, key=scenario_order)
    terminalreporter.section(f"reliability ({'full' if FULL else 'CI'}-sized)")
    terminalreporter.write_line(table(rows))
    if FULL and DOCS.exists():
        text = DOCS.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            DOCS.write_text(f"{head}{START}\n{table(rows)}\n{END}{tail}")
            terminalreporter.write_line(f"written to {DOCS}")
