"""How an in-memory consumer polls: ``getmany`` and ``getone`` take records from the
partitions it holds, each partition getting its turn, and wait on the cluster for a change
when there are none; pausing, resuming, and ``wakeup`` ending a poll at once. A mixin of
``MemoryConsumer``, which holds the state these read (its positions are in
``positions.py``, its subscriptions and commits with the consumer itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Self

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, NoOffsetForPartitionError, OffsetOutOfRangeError

from kafkaboot.testing.memory.cluster import InMemoryKafka
from kafkaboot.testing.memory.fetching import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    PartitionFetch,
    SubscriptionView,
    to_consumer_record,
)

__all__ = ["Polling"]

Records = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


class Polling:
    """aiokafka's fetching methods over the partitions a consumer holds."""

    # What the consumer this is mixed into holds and does.
    _partitions: dict[TopicPartition, PartitionFetch]
    _cluster: InMemoryKafka | None
    _subscription: SubscriptionView
    _max_poll_records: int
    _read_committed: bool
    _key_deserializer: Any
    _value_deserializer: Any
    _reassigning: bool
    """A rebalance is under way: its partitions were revoked, the new ones not yet taken."""
    _turn: int
    """Which held partition the next poll starts from."""
    _woken: bool
    """``wakeup()`` was called: the poll in progress ends."""
    _running: Callable[[], InMemoryKafka]
    _held: Callable[[TopicPartition], PartitionFetch]
    _reset_position: Callable[[TopicPartition], int | None]

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Records:
        cluster = self._running()
        for tp in partitions:
            self._held(tp)
        limit = max_records if max_records is not None else self._max_poll_records
        deadline = time.monotonic() + timeout_ms / 1000
        view = self._subscription
        view.polling += 1
        try:
            while True:
                records = self._fetch(partitions, limit)
                remaining = deadline - time.monotonic()
                if records or remaining <= 0:
                    return records
                waiter = cluster.changed()
                try:
                    await asyncio.wait([waiter], timeout=remaining)
                finally:
                    waiter.cancel()
                    cluster.forget(waiter)
                cluster = self._running()
                if self._woken:
                    self._woken = False
                    return self._fetch(partitions, limit)
        finally:
            view.polling -= 1
            view.last_poll_ended = time.monotonic()

    def wakeup(self) -> None:
        """End the poll in progress at once, with what there is (Java's ``wakeup``, without
        its exception); aiokafka's consumer has none, its poll ends with its timeout."""
        self._woken = True
        if self._cluster is not None:
            self._cluster.notify()

    async def getone(self, *partitions: TopicPartition) -> ConsumerRecord[Any, Any]:
        while True:
            records = await self.getmany(*partitions, timeout_ms=60_000, max_records=1)
            for batch in records.values():
                return batch[0]

    def _fetch(self, partitions: tuple[TopicPartition, ...], limit: int) -> Records:
        cluster = self._running()
        chosen = list(partitions) if partitions else list(self._partitions)
        if not chosen or self._reassigning:
            return {}
        self._turn = (self._turn + 1) % len(chosen)
        chosen = chosen[self._turn :] + chosen[: self._turn]  # Every partition gets a turn.
        found: Records = {}
        for tp in chosen:
            fetch = self._partitions.get(tp)
            if fetch is None or fetch.paused or limit <= 0:
                continue
            if fetch.position is None:
                raise NoOffsetForPartitionError(tp)
            if fetch.position > cluster.end_offset(tp):  # Out of range: reset, as aiokafka.
                reset = self._reset_position(tp)
                if reset is None:
                    raise OffsetOutOfRangeError({tp: fetch.position})
                fetch.position = reset
            stored, fetch.position = cluster.fetch(
                tp, fetch.position, limit, read_committed=self._read_committed
            )
            if stored:
                stamp = (
                    LOG_APPEND_TIME
                    if cluster.topic_configs(tp.topic).get("message.timestamp.type")
                    == "LogAppendTime"
                    else CREATE_TIME
                )
                found[tp] = [
                    to_consumer_record(r, stamp, self._key_deserializer, self._value_deserializer)
                    for r in stored
                ]
                limit -= len(stored)
        return found

    def pause(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._held(tp).paused = True

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            fetch = self._partitions.get(tp)
            if fetch is not None:
                fetch.paused = False
        if self._cluster is not None:
            self._cluster.notify()

    def paused(self) -> set[TopicPartition]:
        return {tp for tp, fetch in self._partitions.items() if fetch.paused}

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConsumerRecord[Any, Any]:
        try:
            return await self.getone()
        except ConsumerStoppedError:
            raise StopAsyncIteration from None
