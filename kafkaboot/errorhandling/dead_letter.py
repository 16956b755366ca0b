"""Dead-letter topics: a record that will not succeed is published, byte for byte, to
``<topic>-dlt`` (spring-kafka 3.3's default name) with headers saying where it came from and
why it failed (Spring's ``DeadLetterPublishingRecoverer``, with the same header names, order
and encodings, so Spring consumers read kafkaboot's dead letters and the other way round)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord

from kafkaboot.errorhandling.handler import FailedRecord, Recovery
from kafkaboot.errorhandling.headers import DLT_NAMES, RETRY_NAMES, failure_headers
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

DLT_EXCEPTION_FQCN = DLT_NAMES.exception_fqcn
DLT_EXCEPTION_CAUSE_FQCN = DLT_NAMES.exception_cause_fqcn
DLT_EXCEPTION_MESSAGE = DLT_NAMES.exception_message
DLT_EXCEPTION_STACKTRACE = DLT_NAMES.exception_stacktrace
DLT_ORIGINAL_TOPIC = DLT_NAMES.topic
DLT_ORIGINAL_PARTITION = DLT_NAMES.partition
"""A 4-byte big-endian int, as Spring writes it."""
DLT_ORIGINAL_OFFSET = DLT_NAMES.offset
"""An 8-byte big-endian long."""
DLT_ORIGINAL_TIMESTAMP = DLT_NAMES.timestamp
"""An 8-byte big-endian long: epoch milliseconds."""
DLT_ORIGINAL_TIMESTAMP_TYPE = DLT_NAMES.timestamp_type
DLT_ORIGINAL_CONSUMER_GROUP = DLT_NAMES.consumer_group
_ADDED_PREFIXES = ("kafka_dlt-", "kafka_original-", "kafka_exception-", "kafka_key-exception-")
_RETRY_PREFIX = "retry_topic-"

Destination = Callable[[ConsumerRecord[Any, Any], BaseException], "str | tuple[str, int | None]"]
"""Picks the dead-letter topic (and optionally partition; ``None``: by key) of a record."""


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], error: BaseException, group_id: str | None
) -> list[tuple[str, bytes | None]]:
    """The record's own headers followed by Spring's ``kafka_dlt-*`` headers, as Spring's
    ``DeadLetterPublishingRecoverer`` writes them (see :mod:`.headers`).

    As in Spring, earlier ``kafka_dlt-exception-*`` values are replaced and the
    ``kafka_dlt-original-*`` ones are appended: the last value names the latest topic.
    """
    return failure_headers(record, error, group_id, DLT_NAMES)


class DeadLetterRecord:
    """A dead letter as read back: the raw record and its headers decoded.

    Reads Spring's ``kafka_dlt-*`` headers (a dead letter of Spring's or kafkaboot's
    ``DeadLetterPublishingRecoverer``) and, where those are missing, the ``@RetryableTopic``
    chain's ``kafka_original-*`` / ``kafka_exception-*``. The last value of a name wins, as
    Kafka's ``lastHeader()``.
    """

    def __init__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.record = record
        self._found = dict(record.headers)
        self.original_topic = self._text("topic")
        self.original_partition = self._int("partition")
        self.original_offset = self._int("offset")
        self.original_timestamp = self._int("timestamp")
        self.original_consumer_group = self._text("consumer_group")
        # A record whose key could not be decoded has the key-exception headers instead.
        self.exception_fqcn = self._text("exception_fqcn") or self._text("key_exception_fqcn")
        self.exception_cause_fqcn = self._text("exception_cause_fqcn")
        """For a kafkaboot dead letter: the Python exception's qualified name."""
        self.exception_message = self._text("exception_message") or self._text(
            "key_exception_message"
        )

    def _value(self, field: str) -> bytes | None:
        for names in (DLT_NAMES, RETRY_NAMES):
            value = self._found.get(getattr(names, field))
            if value is not None:
                return bytes(value)
        return None

    def _text(self, field: str) -> str | None:
        value = self._value(field)
        return None if value is None else value.decode(errors="replace")

    def _int(self, field: str) -> int | None:
        value = self._value(field)
        return None if not value else int.from_bytes(value, "big", signed=True)

    @property
    def original_headers(self) -> list[tuple[str, bytes | None]]:
        """The headers the record had before it failed: without the dead-letter and
        retry-topic headers Spring (or kafkaboot) added."""
        return [
            (name, None if value is None else bytes(value))
            for name, value in self.record.headers
            if not name.startswith((*_ADDED_PREFIXES, _RETRY_PREFIX))
        ]


class DeadLetterPublishingRecoverer:
    """Publishes failed records to a dead-letter topic; use it as a
    ``DefaultErrorHandler(recoverer=...)``.

    The record's key and value bytes go out untouched (also when they could not be decoded),
    to the same partition number when the dead-letter topic has it, with the original
    headers plus Spring's ``kafka_dlt-*`` headers. The call returns only once the broker has
    acknowledged the send, so the failed record is committed only after its dead letter is
    safe; if the send fails it raises, and the record stays uncommitted.

    Args:
        template: the application's ``KafkaTemplate``.
        destination: picks the topic (or ``(topic, partition)``) per record and error;
            default ``<topic><topic_suffix>`` on the same partition.
        topic_suffix: the default destination's suffix: ``-dlt``, the default of Spring's
            ``DeadLetterPublishingRecoverer`` and of its retry topics since spring-kafka 3.3
            (earlier versions' recoverer used ``.DLT``).
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
