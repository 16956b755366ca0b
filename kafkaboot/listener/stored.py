"""Listeners whose offsets live in a database with their results (an offset store).

Each record (or each batch) is handled inside one transaction of the store: the handler
writes its results through the session it is given, then the records' offsets are saved in
the same transaction, and only then does it commit. A failure rolls both back and goes to
the error handler as usual. A save the store refuses (another consumer stored those
records first: a zombie after a rebalance) rolls back too; the records then count as
finished, and reading goes on from the stored offset. Kafka's committed offsets follow
afterwards, for lag monitoring only.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiokafka import TopicPartition

from kafkaboot.listener.binding import Invoker
from kafkaboot.offset_store.store import (
    OffsetStore,
    OffsetStoreFenced,
    StoredRange,
    current_transaction,
)

__all__ = ["OffsetStores", "StoredOffsets", "stored_record_invoker"]

log = logging.getLogger("kafkaboot.listener")
T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class StoredOffsets:
    """A listener's offset store, and the group its offsets are kept under."""

    store: OffsetStore
    group_id: str
    listener_id: str
    stored_past: dict[TopicPartition, int] = dataclasses.field(default_factory=dict)
    """Per partition, an offset the store was found past (a refused save): records below
    it were stored by another consumer. Stored offsets only grow, so this stays true."""

    async def positions(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the stored offsets say ``partitions`` go on (those that have one)."""
        found = await self.store.load(self.group_id, partitions)
        for tp, offset in found.items():
            self._past(tp, offset)
        return found

    async def advance(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Kafka is about to commit ``offsets``: the store moves there too (records
        finished without a transaction: filtered, or sent to a dead-letter topic)."""
        await self.store.advance(self.group_id, offsets)

    async def run(
        self, ranges: Mapping[TopicPartition, StoredRange], work: Callable[[], Awaitable[T]]
    ) -> tuple[T | None, dict[TopicPartition, int] | None]:
        """``work()`` and the save of ``ranges`` in one transaction: ``(its result, None)``;
        or, when the store refused the save, ``(None, the stored offsets of the ranges'
        partitions)`` (nothing of ``work`` is kept). Raises what ``work`` raises, after
        the rollback."""
        store = self.store
        try:
            async with store.transaction() as session:
                token = current_transaction.set(session)
                try:
                    result = await work()
                finally:
                    current_transaction.reset(token)
                await store.save(session, self.group_id, ranges)
        except OffsetStoreFenced as fenced:
            for tp, offset in fenced.stored.items():
                self._past(tp, offset)
            log.warning("listener %s: %s", self.listener_id, fenced)
            return None, await self.positions(set(ranges))
        return result, None

    def already_stored(self, tp: TopicPartition, offset: int) -> bool:
        past = self.stored_past.get(tp)
        return past is not None and offset < past

    def _past(self, tp: TopicPartition, offset: int) -> None:
        if offset > self.stored_past.get(tp, -1):
            self.stored_past[tp] = offset


def stored_record_invoker(invoker: Invoker, stored: StoredOffsets) -> Invoker:
    """``invoker`` with each record handled in a transaction of the store that also saves
    its offset. A record the store is already past is not handled again."""
    inner = invoker.call

    async def call(record: Any, ack: Any, consumer: Any) -> Any:
        tp = TopicPartition(record.topic, record.partition)
        offset = record.offset
        if stored.already_stored(tp, offset):
            return None

        async def work() -> Any:
            result = inner(record, ack, consumer)
            return await result if invoker.is_async else result

        result, _ = await stored.run({tp: StoredRange(offset, offset + 1)}, work)
        return result

    return dataclasses.replace(
        invoker, call=call, is_async=True, is_coroutine=True, model_call=None
    )


class OffsetStores:
    """The registry's offset stores, one per database URL (listeners that name the same
    URL share its connections); started before the containers, stopped after them."""

    def __init__(self) -> None:
        self._stores: dict[str, OffsetStore] = {}
        self._started: set[str] = set()

    def for_listener(
        self, url: str | None, group_id: str | None, listener_id: str
    ) -> StoredOffsets | None:
        if url is None or group_id is None:
            return None
        store = self._stores.get(url)
        if store is None:
            from kafkaboot.offset_store.sql import SqlOffsetStore

            store = self._stores[url] = SqlOffsetStore(url)
        return StoredOffsets(store, group_id, listener_id)

    async def start(self) -> None:
        for url, store in self._stores.items():
            if url not in self._started:
                await store.start()
                self._started.add(url)

    async def stop(self) -> None:
        for url in list(self._started):
            self._started.discard(url)
            await self._stores[url].stop()
