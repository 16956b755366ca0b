"""What the template sends and what it reports back: records and their results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

__all__ = ["HeadersArg", "ProducerRecord", "SendResult"]

HeadersArg: TypeAlias = (
    Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]] | None
)


class ProducerRecord(NamedTuple):
    """A record to send, as given (before serialization)."""

    topic: str
    value: Any = None
    key: Any = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: HeadersArg = None


class SendResult(NamedTuple):
    """A delivered record and where it landed."""

    record: ProducerRecord
    topic: str
    partition: int
    offset: int
    timestamp: int
    """Epoch milliseconds: the record's timestamp as the broker stored it (-1 if unknown)."""
    serialized_size: int = -1
    """Bytes of the serialized key and value (-1 if unknown)."""
