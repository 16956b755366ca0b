"""Every message of a reliability scenario, counted by id: what the producers were told,
and what the consumers' journals say was handled.

"Lost" is a message acknowledged to its producer and never handled — not a comparison of
committed offsets. A duplicate is any handling of a message after its first. Order is
checked per key over first handlings: a message handled for the first time after a later
message of its key was already handled is out of order (a redelivered tail is counted as
duplicates, not as disorder)."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

MessageId = tuple[str, int]
"""(key, sequence): the key is the customer id, the sequence counts up per key from 0."""


@dataclass(frozen=True)
class Handling:
    key: str
    sequence: int
    partition: int
    offset: int
    pid: int
    at: float
    """Epoch seconds when it was handled."""

    @property
    def id(self) -> MessageId:
        return (self.key, self.sequence)


def read_journal(path: Path) -> list[Handling]:
    """The handlings in the order they were written (lines are appended atomically by
    every consumer process; a line cut short by a SIGKILL is never half-written by
    O_APPEND writes of one line, but a final line without a newline is ignored)."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # The part after the last newline is incomplete.
    handlings = []
    for line in lines:
        key, sequence, partition, offset, pid, at = line.split()
        handlings.append(
            Handling(key, int(sequence), int(partition), int(offset), int(pid), float(at))
        )
    return handlings


@dataclass
class Ledger:
    """What the producers sent and were told, by message id."""

    sent: set[MessageId] = field(default_factory=set)
    acknowledged: set[MessageId] = field(default_factory=set)
    failed: Counter[str] = field(default_factory=Counter)
    """Failed sends by exception type (the producer was told it was not written, or that
    the outcome is unknown)."""

    def verdict(self, handlings: list[Handling]) -> Verdict:
        counts = Counter(h.id for h in handlings)
        first_seen: set[MessageId] = set()
        highest: dict[str, int] = defaultdict(lambda: -1)
        out_of_order = 0
        for handling in handlings:
            if handling.id in first_seen:
                continue
            first_seen.add(handling.id)
            if handling.sequence < highest[handling.key]:
                out_of_order += 1
            highest[handling.key] = max(highest[handling.key], handling.sequence)
        return Verdict(
            sent=len(self.sent),
            acknowledged=len(self.acknowledged),
            handled=len(counts),
            lost=sorted(self.acknowledged - counts.keys()),
            duplicates=sum(n - 1 for n in counts.values()),
            out_of_order=out_of_order,
            unknown=sorted(counts.keys() - self.sent),
        )


@dataclass(frozen=True)
class Verdict:
    sent: int
    acknowledged: int
    handled: int
    """Distinct messages handled at least once."""
    lost: list[MessageId]
    duplicates: int
    out_of_order: int
    unknown: list[MessageId]
    """Handled but never sent: a bug in the test itself."""

    def assert_nothing_lost(self) -> None:
        assert not self.unknown, f"handled messages nobody sent: {self.unknown[:10]}"
        assert not self.lost, (
            f"{len(self.lost)} of {self.acknowledged} acknowledged messages were never handled,"
            f" e.g. {self.lost[:10]}"
        )


def longest_stall(handlings: list[Handling], since: float, until: float) -> float:
    """The longest time in [since, until] in which nothing at all was handled: with
    messages sent all the time, how long consumption stood still (a rebalance, a crash
    until the group notices, a broker away)."""
    times = sorted(h.at for h in handlings if since <= h.at <= until)
    edges = [since, *times, until]
    return max(b - a for a, b in itertools.pairwise(edges))


class Stopwatch:
    """The longest time from a fault to the recovery the scenario waits for."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._started: float | None = None

    def fault(self) -> None:
        self._started = time.monotonic()

    def recovered(self) -> float:
        assert self._started is not None, "recovered() without a fault()"
        took = time.monotonic() - self._started
        self.longest = max(self.longest, took)
        self._started = None
        return took
