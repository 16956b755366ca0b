"""Stalled partitions: lag above zero while the committed offset has not moved for
``management.health.kafka.stalled-after``. Health checks that only see connectivity miss a
partition stuck behind one record; this one does not."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from aiokafka import TopicPartition

from kafkaboot.observability.lag import PartitionLag

__all__ = ["Stall", "Stalls"]


@dataclasses.dataclass(frozen=True, slots=True)
class Stall:
    """A partition whose consumption has not moved."""

    listener: str
    topic: str
    partition: int
    lag_records: float
    committed: float
    since: float
    """Epoch seconds: since when the committed offset has stood still with lag."""
    paused: bool
    """Paused on purpose (the listener or the partition): reported, not a failure."""

    def describe(self) -> dict[str, object]:
        return {
            "listener": self.listener,
            "topic": self.topic,
            "partition": self.partition,
            "lag": self.lag_records,
            "committed": self.committed,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "stalled_for_s": round(time.time() - self.since, 1),
            "paused": self.paused,
        }


class Stalls:
    """Remembers, per listener and partition, since when the committed offset has stood at
    its value while there was lag.

    Args:
        after: seconds without progress before a partition counts as stalled.
    """

    def __init__(self, after: float) -> None:
        self.after = after
        self._since: dict[tuple[str, TopicPartition], tuple[float, float]] = {}

    def update(self, lags: Iterable[PartitionLag], now: float | None = None) -> list[Stall]:
        """Take in a lag snapshot; the partitions stalled now."""
        now = time.time() if now is None else now
        stalled: list[Stall] = []
        seen = set()
        for lag in lags:
            key = (lag.listener, TopicPartition(lag.topic, lag.partition))
            seen.add(key)
            if not lag.lag_records > 0:  # Also NaN: not known, not stalled.
                self._since.pop(key, None)
                continue
            held = self._since.get(key)
            if held is None or held[0] != lag.committed:
                self._since[key] = (lag.committed, now)
                continue
            if now - held[1] >= self.after:
                stalled.append(
                    Stall(
                        lag.listener,
                        lag.topic,
                        lag.partition,
                        lag.lag_records,
                        lag.committed,
                        held[1],
                        lag.paused,
                    )
                )
        for key in set(self._since) - seen:
            del self._since[key]
        return stalled
