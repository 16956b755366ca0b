"""Which sequence numbers of each customer the central consumer has seen: gaps and
duplicates per process, and the count by id across the processes of ``--workers N``."""

from __future__ import annotations

from typing import Any

__all__ = ["CustomerSequences", "unique_across"]


class CustomerSequences:
    """The sequence numbers seen of one customer, in memory that does not grow with them:
    the contiguous prefix as one number, and only those above it one by one."""

    def __init__(self) -> None:
        self.contiguous = 0
        """Every sequence number below this one has been seen."""
        self.above: set[int] = set()
        """Seen, but with a gap below them (out of order, or a message missing)."""

    def add(self, sequence: int) -> bool:
        """Record ``sequence``; False if it was seen before (a duplicate)."""
        if sequence < self.contiguous or sequence in self.above:
            return False
        self.above.add(sequence)
        while self.contiguous in self.above:
            self.above.remove(self.contiguous)
            self.contiguous += 1
        return True

    @property
    def unique(self) -> int:
        return self.contiguous + len(self.above)

    @property
    def gaps(self) -> int:
        """Sequence numbers missing below the highest one seen (they start at 0)."""
        return max(self.above) + 1 - self.unique if self.above else 0

    def as_dict(self) -> dict[str, Any]:
        return {"contiguous": self.contiguous, "above": sorted(self.above)}


def unique_across(processes: list[dict[str, dict[str, Any]]]) -> int:
    """How many distinct (customer, sequence) pairs the processes of ``--workers N`` saw
    together, from each one's ``/stats/sequences``: a record redelivered to another process
    after a rebalance counts once, so received minus this is the duplicates, and what the
    producers had acknowledged minus this is what was lost."""
    total = 0
    for customer in {c for seen in processes for c in seen}:
        parts = [seen[customer] for seen in processes if customer in seen]
        prefix = max(part["contiguous"] for part in parts)
        above = {n for part in parts for n in part["above"] if n >= prefix}
        total += prefix + len(above)
    return total
