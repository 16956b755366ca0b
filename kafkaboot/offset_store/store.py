"""What a listener needs from a place that keeps its offsets with its results.

A listener with an offset store writes its results and the next offset of each partition in
one database transaction, so that a crash can neither store a record twice nor skip one: on
every assignment it reads again from the offsets stored there. Kafka's own committed offsets
follow afterwards, for lag monitoring only.

A save names, per partition, the first offset of the records it covers. The store refuses it
(:class:`OffsetStoreFenced`) when the stored offset is already past that first offset: then
another consumer (the partition's new owner after a rebalance, or a zombie that outlived
its revocation) stored those records first, and this transaction rolls back instead of
storing them twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any, Protocol, runtime_checkable

from aiokafka import TopicPartition

from kafkaboot.errors import KafkaBootError

__all__ = [
    "OffsetStore",
    "OffsetStoreError",
    "OffsetStoreFenced",
    "OffsetStoreUnavailable",
    "StoredRange",
    "current_transaction",
]

current_transaction: ContextVar[Any] = ContextVar("kafkaboot_offset_store_transaction")
"""The session of the transaction a handler runs in (what its session parameter gets)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRange:
    """The records of one partition that a transaction stores: from ``first`` (the first
    record's offset) up to ``next_offset`` (the offset after the last one)."""

    first: int
    next_offset: int


class OffsetStoreError(KafkaBootError):
    """The offset store cannot be reached or used (the database is down, the table is
    missing and cannot be created, the driver is not installed)."""

    retriable = True


class OffsetStoreUnavailable(OffsetStoreError):
    """The store's own part of a transaction failed (begin, save, commit): no record's
    fault. The records are read again after a pause, as often as it takes; the error
    handler is not asked and no attempt is counted, so an outage never recovers (skips)
    records."""


class OffsetStoreFenced(KafkaBootError):
    """Another consumer stored these records first: this transaction must roll back.

    Attributes:
        stored: the offsets the store holds for the partitions refused.
    """

    retriable = False

    def __init__(self, group_id: str, stored: Mapping[TopicPartition, int]) -> None:
        self.group_id = group_id
        self.stored = dict(stored)
        where = ", ".join(f"{tp.topic}-{tp.partition} at {offset}" for tp, offset in stored.items())
        super().__init__(
            f"group {group_id!r}: the offset store is already past these records ({where}); "
            "another consumer stored them, so this transaction rolls back and reading "
            "goes on from the stored offset"
        )


@runtime_checkable
class OffsetStore(Protocol):
    """Offsets kept in the same database as a listener's results.

    ``transaction()`` opens a transaction and yields the session the handler writes with;
    ``save`` (inside it) books the offsets; leaving the block commits both, or rolls both
    back when it raises.
    """

    @property
    def session_type(self) -> type:
        """The type of the session ``transaction()`` yields: a handler parameter of this
        type receives it."""

    async def start(self) -> None:
        """Connect and create the offsets table where it is missing."""

    async def stop(self) -> None:
        """Close the connections."""

    async def load(
        self, group_id: str, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The stored next offsets of ``partitions`` (only those that have one)."""

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A new transaction; yields the session the handler receives."""

    async def save(
        self, session: Any, group_id: str, ranges: Mapping[TopicPartition, StoredRange]
    ) -> None:
        """Book ``ranges`` inside ``session``'s transaction.

        Raises:
            OffsetStoreFenced: the store is already past a range's first offset.
        """

    async def advance(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Move stored offsets forward to ``offsets`` (never back), in a transaction of
        its own: records finished without the handler's transaction (filtered, or sent to
        a dead-letter topic) are not read again after a restart."""
