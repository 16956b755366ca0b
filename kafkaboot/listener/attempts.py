"""How often each failing record was delivered, and when it may be delivered again.

Kept per container, not per assignment: a rebalance that takes a partition away and gives it
back (to this consumer or to another one of the same container) does not reset a poison
record's count or cut its back-off short, so it still reaches the recoverer.

Kept per partition, so that the hot path asks once per poll whether a partition has any
failing record at all, and nothing per record when it has none.
"""

from __future__ import annotations

import time

from aiokafka import TopicPartition

__all__ = ["DeliveryAttempts", "Failures"]

_MAX_TRACKED = 10_000
"""Records that failed and were never seen again (another process took the partition) are
dropped oldest first beyond this many, per partition."""

Failures = dict[int, tuple[int, float]]
"""Per offset: failed deliveries so far, and the monotonic time the next one is due."""


class DeliveryAttempts:
    """Failed deliveries per record, with the back-off's due time."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, Failures] = {}

    def of(self, tp: TopicPartition) -> Failures | None:
        """The partition's failing records (``None`` when it has none)."""
        return self._partitions.get(tp)

    def failed(self, tp: TopicPartition, offset: int) -> int:
        """Count one more failed delivery; returns the attempt number (1 for the first)."""
        failures = self._partitions.setdefault(tp, {})
        count = failures.pop(offset, (0, 0.0))[0] + 1
        failures[offset] = (count, 0.0)
        if len(failures) > _MAX_TRACKED:
            del failures[next(iter(failures))]
        return count

    def wait_until(self, tp: TopicPartition, offset: int, delay_s: float) -> None:
        """The record's next delivery is not due for ``delay_s`` seconds."""
        failures = self._partitions.setdefault(tp, {})
        count = failures.get(offset, (0, 0.0))[0]
        failures[offset] = (count, time.monotonic() + delay_s)

    def remaining(self, tp: TopicPartition, offset: int) -> float:
        """Seconds until the record is due again (0 when it is due, or never failed)."""
        failures = self._partitions.get(tp)
        entry = failures.get(offset) if failures else None
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - time.monotonic())

    def done(self, tp: TopicPartition, offset: int) -> None:
        """The record succeeded or was recovered: forget it."""
        failures = self._partitions.get(tp)
        if failures and failures.pop(offset, None) is not None and not failures:
            del self._partitions[tp]

    def forget_before(self, tp: TopicPartition, offset: int) -> None:
        """Records before ``offset`` will not come again (the partition is read from there):
        forget them."""
        failures = self._partitions.get(tp)
        if failures:
            for stale in [o for o in failures if o < offset]:
                del failures[stale]
            if not failures:
                del self._partitions[tp]
