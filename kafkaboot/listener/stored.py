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
    OffsetStoreError,
    OffsetStoreFenced,
    OffsetStoreUnavailable,
    StoredRange,
    current_transaction,
)

__all__ = ["StoredOffsets", "stored_record_invoker"]

log = logging.getLogger("kafkaboot.listener")
T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class StoredOffsets:
    """A listener's offset store, and the group its offsets are kept under."""

    store: OffsetStore
    group_id: str
    listener_id: str
    stored_past: dict[TopicPartition, int] = dataclasses.field(default_factory=dict)
    """Per partition, an offset the store holds (loaded at an assignment, or found by a
    refused save): records below it are stored already, by this consumer or another. Stored
    offsets only grow, so this stays true until the next assignment reloads it."""
    saved: dict[TopicPartition, int] = dataclasses.field(default_factory=dict)
    """Per partition, the highest next offset this process knows the store holds (saved
    by a transaction here, or loaded): a commit up to there needs no transaction."""

    async def positions(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the stored offsets say ``partitions`` go on (those that have one)."""
        found = await self.store.load(self.group_id, partitions)
        for tp in partitions:  # What the store says now, even if lower (a replay).
            self.stored_past.pop(tp, None)
            self.saved.pop(tp, None)
        for tp, offset in found.items():
            self._past(tp, offset)
            self._saved(tp, offset)
        return found

    async def advance(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Kafka is about to commit ``offsets``: the store moves there too where it is
        behind them (records finished without a transaction: filtered, or sent to a
        dead-letter topic); usually the handlers' transactions saved them already."""
        ahead = {tp: offset for tp, offset in offsets.items() if offset > self.saved.get(tp, -1)}
        if ahead:
            await self.store.advance(self.group_id, ahead)
            for tp, offset in ahead.items():
                self._saved(tp, offset)

    async def run(
        self, ranges: Mapping[TopicPartition, StoredRange], work: Callable[[], Awaitable[T]]
    ) -> tuple[T | None, dict[TopicPartition, int] | None]:
        """``work()`` and the save of ``ranges`` in one transaction: ``(its result, None)``;
        or, when the store refused the save, ``(None, the stored offsets of the ranges'
        partitions)`` (nothing of ``work`` is kept). Raises what ``work`` raises, after
        the rollback."""
        store = self.store
        phase = "begin"
        try:
            async with store.transaction() as session:
                token = current_transaction.set(session)
                phase = "work"
                try:
                    result = await work()
                finally:
                    current_transaction.reset(token)
                phase = "save"
                await store.save(session, self.group_id, ranges)
                phase = "commit"
            for tp, stored in ranges.items():
                self._saved(tp, stored.next_offset)
        except OffsetStoreFenced as fenced:
            for tp, offset in fenced.stored.items():
                self._past(tp, offset)
            log.warning("listener %s: %s", self.listener_id, fenced)
            return None, await self.positions(set(ranges))
        except Exception as exc:
            if phase == "work" and await self._passed(ranges):
                # Another consumer stored some of these first, and its results were in the
                # way of the handler's (a unique key): a refusal, not the records' fault.
                log.warning(
                    "listener %s: the handler failed (%r), and another consumer stored some "
                    "of these records first; going on from the stored offsets",
                    self.listener_id,
                    exc,
                )
                return None, await self.positions(set(ranges))
            # The handler's failures (and its misuse of the transaction, which the save
            # names) are the record's; the rest is the store's.
            misuse = phase == "save" and isinstance(exc, OffsetStoreError)
            if phase == "work" or misuse or isinstance(exc, OffsetStoreUnavailable):
                raise
            raise OffsetStoreUnavailable(
                f"listener {self.listener_id}: the offset store failed ({exc!r}); the records "
                "are read again once it answers"
            ) from exc
        return result, None

    async def _passed(self, ranges: Mapping[TopicPartition, StoredRange]) -> bool:
        """Whether the store is past the first record of one of ``ranges``: the save would
        have been refused anyway, whatever made the handler fail."""
        try:
            found = await self.store.load(self.group_id, set(ranges))
        except Exception as exc:  # The handler's failure stands: the error handler decides.
            log.debug("listener %s: could not read the stored offsets: %r", self.listener_id, exc)
            return False
        return any(found.get(tp, -1) > stored.first for tp, stored in ranges.items())

    def already_stored(self, tp: TopicPartition, offset: int) -> bool:
        past = self.stored_past.get(tp)
        return past is not None and offset < past

    def _saved(self, tp: TopicPartition, offset: int) -> None:
        if offset > self.saved.get(tp, -1):
            self.saved[tp] = offset

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
