"""Offsets stored with a listener's results, in one database transaction (exactly-once
into a database): the :class:`OffsetStore` protocol and its SQL implementation."""

from kafkaboot.offset_store.sql import SqlOffsetStore
from kafkaboot.offset_store.store import (
    OffsetStore,
    OffsetStoreError,
    OffsetStoreFenced,
    OffsetStoreUnavailable,
    StoredRange,
    current_transaction,
)

__all__ = [
    "OffsetStore",
    "OffsetStoreError",
    "OffsetStoreFenced",
    "OffsetStoreUnavailable",
    "SqlOffsetStore",
    "StoredRange",
    "current_transaction",
]
