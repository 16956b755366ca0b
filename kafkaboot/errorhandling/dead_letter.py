"""Dead-letter topics: a record that will not succeed is published, byte for byte, to
``<topic>-dlt`` with headers saying where it came from and why it failed (Spring's
``DeadLetterPublishingRecoverer``, with the same header names and encodings, so Spring
tooling reads kafkaboot's dead letters and the other way round)."""

from __future__ import annotations

import logging
import struct
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord

from kafkaboot.errorhandling.handler import FailedRecord, Recovery
from kafkaboot.errorhandling.topics import TopicCreator
from kafkaboot.errors import DeserializationError

if TYPE_CHECKING:
    from kafkaboot.template import KafkaTemplate

__all__ = [
    "DLT_EXCEPTION_CAUSE_FQCN",
    "DLT_EXCEPTION_FQCN",
    "DLT_EXCEPTION_MESSAGE",
    "DLT_EXCEPTION_STACKTRACE",
    "DLT_ORIGINAL_CONSUMER_GROUP",
    "DLT_ORIGINAL_OFFSET",
    "DLT_ORIGINAL_PARTITION",
    "DLT_ORIGINAL_TIMESTAMP",
    "DLT_ORIGINAL_TIMESTAMP_TYPE",
    "DLT_ORIGINAL_TOPIC",
    "DeadLetterPublishingRecoverer",
    "DeadLetterRecord",
    "Destination",
    "dead_letter_headers",
]

log = logging.getLogger("kafkaboot.listener")

DLT_EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
DLT_EXCEPTION_CAUSE_FQCN = "kafka_dlt-exception-cause-fqcn"
DLT_EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
DLT_EXCEPTION_STACKTRACE = "kafka_dlt-exception-stacktrace"
DLT_ORIGINAL_TOPIC = "kafka_dlt-original-topic"
DLT_ORIGINAL_PARTITION = "kafka_dlt-original-partition"
"""A 4-byte big-endian int, as Spring writes it."""
DLT_ORIGINAL_OFFSET = "kafka_dlt-original-offset"
"""An 8-byte big-endian long."""
DLT_ORIGINAL_TIMESTAMP = "kafka_dlt-original-timestamp"
"""An 8-byte big-endian long: epoch milliseconds."""
DLT_ORIGINAL_TIMESTAMP_TYPE = "kafka_dlt-original-timestamp-type"
DLT_ORIGINAL_CONSUMER_GROUP = "kafka_dlt-original-consumer-group"

_STACKTRACE_LIMIT = 16_000  # Characters; a deep stack must not make the record too large.
_MESSAGE_LIMIT = 4_000  # Pydantic messages repeat the input, which may be large.
_TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}

Destination = Callable[[ConsumerRecord[Any, Any], BaseException], "str | tuple[str, int | None]"]
"""Picks the dead-letter topic (and optionally partition; ``None``: by key) of a record."""


def _raw(value: Any) -> bytes | None:
    """A header value as bytes; Kafka allows null header values."""
    return None if value is None else bytes(value)


def _fqcn(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def dead_letter_headers(
    record: ConsumerRecord[Any, Any],
    error: BaseException,
    group_id: str | None,
    drop: tuple[str, ...] = ("retry_topic-",),
) -> list[tuple[str, bytes | None]]:
    """The record's own headers followed by Spring's ``kafka_dlt-*`` headers.

    A record that was forwarded before (through retry topics) keeps the ``original-*``
    headers of its first failure, so they name the topic it was first consumed from; the
    exception headers always describe the latest failure. Headers starting with one of
    ``drop`` are left out.
    """
    stack = "".join(traceback.format_exception(error))[-_STACKTRACE_LIMIT:]
    replaced = (*drop, "kafka_dlt-exception-")
    headers: list[tuple[str, bytes | None]] = [
        (name, _raw(value)) for name, value in record.headers if not name.startswith(replaced)
    ]
    if not any(name == DLT_ORIGINAL_TOPIC for name, _ in headers):
        timestamp_type = _TIMESTAMP_TYPES.get(record.timestamp_type, "NoTimestampType")
        headers += [
            (DLT_ORIGINAL_TOPIC, record.topic.encode()),
            (DLT_ORIGINAL_PARTITION, struct.pack(">i", record.partition)),
            (DLT_ORIGINAL_OFFSET, struct.pack(">q", record.offset)),
            (DLT_ORIGINAL_TIMESTAMP, struct.pack(">q", record.timestamp)),
            (DLT_ORIGINAL_TIMESTAMP_TYPE, timestamp_type.encode()),
        ]
        if group_id is not None:
            headers.append((DLT_ORIGINAL_CONSUMER_GROUP, group_id.encode()))
    headers += [
        (DLT_EXCEPTION_FQCN, _fqcn(error).encode()),
        (DLT_EXCEPTION_MESSAGE, str(error)[:_MESSAGE_LIMIT].encode()),
        (DLT_EXCEPTION_STACKTRACE, stack.encode()),
    ]
    cause = error.__cause__
    if cause is not None:
        headers.append((DLT_EXCEPTION_CAUSE_FQCN, _fqcn(cause).encode()))
    return headers


class DeadLetterRecord:
    """A dead letter as read back: the raw record and its ``kafka_dlt-*`` headers decoded."""

    def __init__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.record = record
        self._found = dict(record.headers)
        self.original_topic = self._text(DLT_ORIGINAL_TOPIC)
        self.original_partition = self._int(DLT_ORIGINAL_PARTITION)
        self.original_offset = self._int(DLT_ORIGINAL_OFFSET)
        self.original_timestamp = self._int(DLT_ORIGINAL_TIMESTAMP)
        self.original_consumer_group = self._text(DLT_ORIGINAL_CONSUMER_GROUP)
        self.exception_fqcn = self._text(DLT_EXCEPTION_FQCN)
        self.exception_message = self._text(DLT_EXCEPTION_MESSAGE)

    def _text(self, name: str) -> str | None:
        value = self._found.get(name)
        return None if value is None else bytes(value).decode(errors="replace")

    def _int(self, name: str) -> int | None:
        value = self._found.get(name)
        return None if value is None else int.from_bytes(value, "big", signed=True)

    @property
    def original_headers(self) -> list[tuple[str, bytes | None]]:
        """The headers the record had before it was dead-lettered."""
        return [
            (name, _raw(value))
            for name, value in self.record.headers
            if not name.startswith(("kafka_dlt-", "retry_topic-"))
        ]


class DeadLetterPublishingRecoverer:
    """Publishes failed records to a dead-letter topic; use it as a
    ``DefaultErrorHandler(recoverer=...)``.

    The record's key and value bytes go out untouched (also when they could not be decoded),
    to the same partition number when the dead-letter topic has it, with the original
    headers plus the ``kafka_dlt-*`` headers. The call returns only once the broker has
    acknowledged the send, so the failed record is committed only after its dead letter is
    safe; if the send fails it raises, and the record stays uncommitted.

    Args:
        template: the application's ``KafkaTemplate``.
        destination: picks the topic (or ``(topic, partition)``) per record and error;
            default ``<topic><topic_suffix>`` on the same partition.
        topic_suffix: the default destination's suffix (Spring Boot's retry topics use
            ``-dlt``; Spring's ``DeadLetterPublishingRecoverer`` alone uses ``.DLT``).
        create_topics: create a missing dead-letter topic with the source topic's partition
            count before the first send (default on).
    """

    def __init__(
        self,
        template: KafkaTemplate,
        destination: Destination | None = None,
        *,
        topic_suffix: str = "-dlt",
        create_topics: bool = True,
    ) -> None:
        self.template = template
        self.topic_suffix = topic_suffix
        self._destination = destination
        self._topics = TopicCreator(template) if create_topics else None

    def destination(
        self, record: ConsumerRecord[Any, Any], error: BaseException
    ) -> tuple[str, int | None]:
        """Where ``record`` goes; ``None`` as partition: the producer picks by key."""
        if self._destination is None:
            return record.topic + self.topic_suffix, record.partition
        chosen = self._destination(record, error)
        return (chosen, None) if isinstance(chosen, str) else chosen

    async def __call__(self, failure: FailedRecord) -> Recovery:
        topic = ""
        for record in failure.records:
            topic = await self.publish(record, failure.error, failure.group_id, failure.listener_id)
        return Recovery("dead-letter", topic)

    async def publish(
        self,
        record: ConsumerRecord[bytes, bytes],
        error: BaseException,
        group_id: str | None = None,
        listener_id: str = "?",
    ) -> str:
        """Publish one dead letter and wait for the broker's acknowledgement; its topic.

        Raises:
            KafkaSendError: the dead letter could not be written.
        """
        topic, partition = self.destination(record, error)
        if self._topics is not None:
            await self._topics.ensure_like(record.topic, [topic])
        if partition is not None and partition not in await self.template.partitions_for(topic):
            partition = None  # Fewer partitions than the source: partition by key instead.
        headers = dead_letter_headers(record, error, group_id)
        result = await send_raw(self.template, topic, record, headers, partition)
        log.warning(
            "listener %s: record %s-%d@%d (%s) dead-lettered to %s-%d@%d",
            listener_id,
            record.topic,
            record.partition,
            record.offset,
            "not decodable" if isinstance(error, DeserializationError) else type(error).__name__,
            topic,
            result.partition,
            result.offset,
        )
        return topic


async def send_raw(
    template: KafkaTemplate,
    topic: str,
    record: ConsumerRecord[bytes, bytes],
    headers: Sequence[tuple[str, bytes | None]],
    partition: int | None = None,
) -> Any:
    """Send ``record``'s key and value bytes as they are and wait for the acknowledgement
    (in a transaction of its own when the template is transactional)."""
    options: dict[str, Any] = {
        "key": record.key,
        "partition": partition,
        "headers": list(headers),
        "key_serializer": "bytes",
        "value_serializer": "bytes",
    }
    if template.transactional:
        async with template.transaction():
            future = await template.send(topic, record.value, **options)
        return future.result()
    return await template.send_and_wait(topic, record.value, **options)
