"""How often each failing record was delivered, and when it may be delivered again.

Kept per container, not per assignment: a rebalance that takes a partition away and gives it
back (to this consumer or to another one of the same container) does not reset a poison
record's count or cut its back-off short, so it still reaches the recoverer.
"""

from __future__ import annotations

import time

from aiokafka import TopicPartition

__all__ = ["DeliveryAttempts"]

_MAX_TRACKED = 10_000
"""Records that failed and were never seen again (another process took the partition) are
dropped oldest first beyond this many."""


class DeliveryAttempts:
    """Failed deliveries per record (``(partition, offset)``), with the back-off's due time."""

    def __init__(self) -> None:
        self._failures: dict[tuple[TopicPartition, int], tuple[int, float]] = {}

    def __bool__(self) -> bool:
        return bool(self._failures)

    def failed(self, tp: TopicPartition, offset: int) -> int:
        """Count one more failed delivery; returns the attempt number (1 for the first)."""
        key = (tp, offset)
        count = self._failures.pop(key, (0, 0.0))[0] + 1
        self._failures[key] = (count, 0.0)
        if len(self._failures) > _MAX_TRACKED:
            del self._failures[next(iter(self._failures))]
        return count

    def wait_until(self, tp: TopicPartition, offset: int, delay_s: float) -> None:
        """The record's next delivery is not due for ``delay_s`` seconds."""
        key = (tp, offset)
        count = self._failures.get(key, (0, 0.0))[0]
        self._failures[key] = (count, time.monotonic() + delay_s)

    def remaining(self, tp: TopicPartition, offset: int) -> float:
        """Seconds until the record is due again (0 when it is due, or never failed)."""
        entry = self._failures.get((tp, offset))
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - time.monotonic())

    def done(self, tp: TopicPartition, offset: int) -> None:
        """The record succeeded or was recovered: forget it."""
        self._failures.pop((tp, offset), None)
