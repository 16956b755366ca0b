"""Where an in-memory consumer reads from: its positions, seeks, and the offsets it can
look up (beginning, end, by time, the marks of the last fetch). A mixin of
``MemoryConsumer``, which holds the state these read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, NoOffsetForPartitionError
from aiokafka.structs import OffsetAndTimestamp

from kafkaboot.testing.memory.cluster import InMemoryKafka
from kafkaboot.testing.memory.fetching import PartitionFetch

__all__ = ["Positions"]


class Positions:
    """aiokafka's position and offset methods over the partitions a consumer holds."""

    # What the consumer this is mixed into holds and does.
    _partitions: dict[TopicPartition, PartitionFetch]
    _cluster: InMemoryKafka | None
    _auto_offset_reset: str
    _read_committed: bool
    _running: Callable[[], InMemoryKafka]
    committed: Callable[[TopicPartition], Awaitable[int | None]]

    def _reset_position(self, tp: TopicPartition) -> int | None:
        if self._auto_offset_reset == "earliest":
            return 0
        if self._auto_offset_reset == "latest":
            return self._end(tp)
        return None

    def _end(self, tp: TopicPartition) -> int:
        cluster = self._running()
        return cluster.stable_offset(tp) if self._read_committed else cluster.end_offset(tp)

    def _held(self, tp: TopicPartition) -> PartitionFetch:
        fetch = self._partitions.get(tp)
        if fetch is None:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        return fetch

    async def position(self, partition: TopicPartition) -> int:
        fetch = self._held(partition)
        if fetch.position is None:
            raise NoOffsetForPartitionError(partition)
        return fetch.position

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("Offset must be a positive integer")
        self._held(partition).position = offset
        if self._cluster is not None:
            self._cluster.notify()

    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool:
        for tp in partitions or tuple(self._partitions):
            self.seek(tp, 0)
        return True

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        for tp in partitions or tuple(self._partitions):
            self.seek(tp, self._end(tp))
        return True

    async def seek_to_committed(
        self, *partitions: TopicPartition
    ) -> dict[TopicPartition, int | None]:
        found = {}
        for tp in partitions or tuple(self._partitions):
            found[tp] = committed = await self.committed(tp)
            if committed is not None:
                self.seek(tp, committed)
        return found

    async def offsets_for_times(
        self, timestamps: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        cluster = self._running()
        found: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, stamp in timestamps.items():
            record = cluster.offset_for_time(tp, stamp)
            found[tp] = (
                None if record is None else OffsetAndTimestamp(record.offset, record.timestamp)
            )
        return found

    async def beginning_offsets(self, partitions: Any) -> dict[TopicPartition, int]:
        self._running()
        return dict.fromkeys(partitions, 0)

    async def end_offsets(self, partitions: Any) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in partitions}

    def highwater(self, partition: TopicPartition) -> int:
        return self._held(partition).highwater

    def last_stable_offset(self, partition: TopicPartition) -> int:
        return self._held(partition).lso

    def last_poll_timestamp(self, partition: TopicPartition) -> int:
        return self._held(partition).timestamp

    async def topics(self) -> set[str]:
        return self._running().topics()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        cluster = self._running()
        if topic not in cluster.topics():
            return None
        return set(range(cluster.partitions(topic)))
