"""Acknowledgment and the per-partition bookkeeping that makes commits safe.

The committed offset of a partition is always "last handled record + 1" of a contiguous
prefix: no offset is committed past a record that was not handled (or acknowledged, in the
manual modes) or deliberately recovered.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from aiokafka import TopicPartition

__all__ = ["AckMode", "Acknowledgment", "OffsetTracker"]


class AckMode(enum.Enum):
    """When the container commits (Spring Kafka's ``ContainerProperties.AckMode``)."""

    RECORD = "record"
    """After each record is handled."""
    BATCH = "batch"
    """After all records of a poll are handled (the default)."""
    TIME = "time"
    """After a poll's records are handled, if ``ack-time`` passed since the last commit."""
    COUNT = "count"
    """After a poll's records are handled, if ``ack-count`` records were handled since."""
    COUNT_TIME = "count_time"
    """``TIME`` or ``COUNT``, whichever comes first."""
    MANUAL = "manual"
    """The handler calls ``ack.acknowledge()``; acknowledged offsets commit after the poll."""
    MANUAL_IMMEDIATE = "manual_immediate"
    """The handler calls ``ack.acknowledge()``; the commit happens right away."""

    @property
    def is_manual(self) -> bool:
        return self in (AckMode.MANUAL, AckMode.MANUAL_IMMEDIATE)


class OffsetTracker:
    """Offsets that are safe to commit, per partition.

    Automatic ack modes handle a partition's records strictly in order, so "done" is always
    the oldest outstanding record: a single number per partition. Manual modes may
    acknowledge out of order (an ``Acknowledgment`` kept and used later); those records are
    tracked in delivery order and only the acknowledged prefix becomes committable.
    """

    def __init__(self) -> None:
        self._committable: dict[TopicPartition, int] = {}
        self._outstanding: dict[TopicPartition, deque[int]] = {}
        self._acked: dict[TopicPartition, set[int]] = {}
        self.uncommitted = 0
        """Records handled since the last commit (for ``ack-count``)."""

    def done(self, tp: TopicPartition, offset: int) -> None:
        """A record handled (or recovered) in order."""
        self._committable[tp] = offset + 1
        self.uncommitted += 1

    def done_many(self, tp: TopicPartition, last_offset: int, count: int) -> None:
        """A run of records, up to ``last_offset``, handled in order."""
        self._committable[tp] = last_offset + 1
        self.uncommitted += count

    def delivered(self, tp: TopicPartition, offset: int) -> None:
        """A record handed to a manual-ack handler; it is outstanding until acknowledged."""
        queue = self._outstanding.get(tp)
        if queue is None:
            queue = self._outstanding[tp] = deque()
            self._acked[tp] = set()
        queue.append(offset)

    def acknowledged(self, tp: TopicPartition, offset: int) -> None:
        """A manual acknowledgment; commits advance over the acknowledged prefix only."""
        queue = self._outstanding.get(tp)
        if not queue:
            return
        acked = self._acked[tp]
        acked.add(offset)
        while queue and queue[0] in acked:
            head = queue.popleft()
            acked.discard(head)
            self._committable[tp] = head + 1
            self.uncommitted += 1

    def rewind(self, tp: TopicPartition, offset: int, *, retry: bool = False) -> None:
        """The partition will be read again from ``offset`` (a retry, nack or seek):
        forget outstanding records from there on. For a ``retry`` of the record at
        ``offset``, nothing from it on may be committed either."""
        queue = self._outstanding.get(tp)
        if queue:
            while queue and queue[-1] >= offset:
                self._acked[tp].discard(queue.pop())
        # A record acknowledged and then failed must not be committed past.
        if retry and self._committable.get(tp, offset) > offset:
            self._committable[tp] = offset

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Partitions that were revoked or lost: nothing of theirs may be committed later."""
        for tp in partitions:
            self._committable.pop(tp, None)
            self._outstanding.pop(tp, None)
            self._acked.pop(tp, None)

    def take(self, partitions: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The offsets to commit now (all partitions, or only ``partitions``)."""
        if partitions is None:
            offsets, self._committable = self._committable, {}
        else:
            offsets = {
                tp: self._committable.pop(tp) for tp in partitions & self._committable.keys()
            }
        if offsets:
            self.uncommitted = 0
        return offsets

    def restore(self, offsets: dict[TopicPartition, int]) -> None:
        """Put back offsets whose commit failed with a retriable error."""
        for tp, offset in offsets.items():
            self._committable[tp] = max(offset, self._committable.get(tp, offset))

    @property
    def has_pending(self) -> bool:
        return bool(self._committable)


class Acknowledgment:
    """Handed to a handler in a manual ack mode; ``acknowledge()`` marks the record (or the
    whole batch, for a batch listener) as handled.

    ``nack(sleep)`` instead has the record (and what follows it in its partition) delivered
    again after ``sleep``, while other partitions go on; what came before it is committed.
    """

    __slots__ = ("_on_acknowledge", "acknowledged", "nack_sleep", "nacked")

    def __init__(self, on_acknowledge: Callable[[], None] | None = None) -> None:
        self._on_acknowledge = on_acknowledge
        self.acknowledged = False
        self.nacked = False
        self.nack_sleep = timedelta(0)

    def acknowledge(self) -> None:
        if not self.acknowledged:
            self.acknowledged = True
            if self._on_acknowledge is not None:
                self._on_acknowledge()

    def nack(self, sleep: timedelta | float = 0.0) -> None:
        """Redeliver this record after ``sleep`` (seconds, or a timedelta).

        Raises:
            RuntimeError: the record was already acknowledged.
        """
        if self.acknowledged:
            raise RuntimeError("cannot nack a record that was already acknowledged")
        self.nacked = True
        self.nack_sleep = sleep if isinstance(sleep, timedelta) else timedelta(seconds=sleep)
