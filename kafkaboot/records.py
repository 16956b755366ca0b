"""What the template sends and what it reports back: records, results, producer listeners."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from kafkaboot.errors import KafkaSendError

__all__ = [
    "HeadersArg",
    "LoggingProducerListener",
    "ProducerListener",
    "ProducerRecord",
    "SendResult",
]

log = logging.getLogger("kafkaboot.template")
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


@runtime_checkable
class ProducerListener(Protocol):
    """Told about every delivery (Spring's ``ProducerListener``); callbacks must be quick."""

    def on_success(self, record: ProducerRecord, result: SendResult) -> None: ...

    def on_error(self, record: ProducerRecord, error: KafkaSendError) -> None: ...


class LoggingProducerListener:
    """The default: logs failed deliveries with topic and key (successes are silent)."""

    def on_success(self, record: ProducerRecord, result: SendResult) -> None:
        return None

    def on_error(self, record: ProducerRecord, error: KafkaSendError) -> None:
        log.error("send to topic %s with key %r failed: %s", record.topic, record.key, error)
