"""The headers spring-kafka 3.3's ``DeadLetterPublishingRecoverer`` writes on a failed
record, with Spring's names, order and encodings, so Spring consumers read kafkaboot's dead
letters (``@Header(KafkaHeaders.DLT_EXCEPTION_CAUSE_FQCN)`` and all) and the other way round.

Two sets of names, as in Spring: ``kafka_dlt-*`` for a plain dead letter, and
``kafka_original-*`` / ``kafka_exception-*`` for the ``@RetryableTopic`` chain (retry topics
and the dead-letter topic at its end).

The exception is described as Spring's listener container presents it: a handler's error is
wrapped in ``ListenerExecutionFailedException("Listener failed")`` and the cause header names
the handler's own exception (its Python qualified name); an undecodable key or value is a
``DeserializationException``, as Spring's ``ErrorHandlingDeserializer`` reports it.
"""

from __future__ import annotations

import dataclasses
import struct
import traceback
from typing import Any

from aiokafka import ConsumerRecord

from kafkaboot.errors import DeserializationError

__all__ = [
    "DESERIALIZATION_EXCEPTION",
    "DLT_NAMES",
    "LISTENER_FAILED",
    "LISTENER_FAILED_EXCEPTION",
    "RETRY_NAMES",
    "HeaderNames",
    "failure_headers",
    "java_big_integer",
    "python_name",
]

LISTENER_FAILED_EXCEPTION = "org.springframework.kafka.listener.ListenerExecutionFailedException"
"""What Spring's container wraps a listener's exception in before the recoverer sees it."""
LISTENER_FAILED = "Listener failed"
"""That wrapper's message (``KafkaMessageListenerContainer.decorateException``)."""
DESERIALIZATION_EXCEPTION = "org.springframework.kafka.support.serializer.DeserializationException"
_DESERIALIZATION_FAILED = "failed to deserialize"  # ErrorHandlingDeserializer's message.
_STACKTRACE_LIMIT = 16_000  # Characters; a deep stack must not make the record too large.
_MESSAGE_LIMIT = 4_000  # Pydantic messages repeat the input, which may be large.
_TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}


@dataclasses.dataclass(frozen=True)
class HeaderNames:
    """Spring's ``DeadLetterPublishingRecoverer.HeaderNames``: one name per fact."""

    topic: str
    partition: str
    offset: str
    timestamp: str
    timestamp_type: str
    consumer_group: str
    exception_fqcn: str
    exception_cause_fqcn: str
    exception_message: str
    exception_stacktrace: str
    key_exception_fqcn: str
    key_exception_message: str
    key_exception_stacktrace: str

    @property
    def exception_names(self) -> tuple[str, ...]:
        return (
            self.exception_fqcn,
            self.exception_cause_fqcn,
            self.exception_message,
            self.exception_stacktrace,
            self.key_exception_fqcn,
            self.key_exception_message,
            self.key_exception_stacktrace,
        )

    @property
    def original_names(self) -> tuple[str, ...]:
        return (
            self.topic,
            self.partition,
            self.offset,
            self.timestamp,
            self.timestamp_type,
            self.consumer_group,
        )


DLT_NAMES = HeaderNames(
    topic="kafka_dlt-original-topic",
    partition="kafka_dlt-original-partition",
    offset="kafka_dlt-original-offset",
    timestamp="kafka_dlt-original-timestamp",
    timestamp_type="kafka_dlt-original-timestamp-type",
    consumer_group="kafka_dlt-original-consumer-group",
    exception_fqcn="kafka_dlt-exception-fqcn",
    exception_cause_fqcn="kafka_dlt-exception-cause-fqcn",
    exception_message="kafka_dlt-exception-message",
    exception_stacktrace="kafka_dlt-exception-stacktrace",
    key_exception_fqcn="kafka_dlt-key-exception-fqcn",
    key_exception_message="kafka_dlt-key-exception-message",
    key_exception_stacktrace="kafka_dlt-key-exception-stacktrace",
)
"""``KafkaHeaders.DLT_*``: what Spring's ``DeadLetterPublishingRecoverer`` writes."""

RETRY_NAMES = HeaderNames(
    topic="kafka_original-topic",
    partition="kafka_original-partition",
    offset="kafka_original-offset",
    timestamp="kafka_original-timestamp",
    timestamp_type="kafka_original-timestamp-type",
    # KafkaHeaders.ORIGINAL_CONSUMER_GROUP really is "kafka_dlt-original-consumer-group".
    consumer_group="kafka_dlt-original-consumer-group",
    exception_fqcn="kafka_exception-fqcn",
    exception_cause_fqcn="kafka_exception-cause-fqcn",
    exception_message="kafka_exception-message",
    exception_stacktrace="kafka_exception-stacktrace",
    key_exception_fqcn="kafka_key-exception-fqcn",
    key_exception_message="kafka_key-exception-message",
    key_exception_stacktrace="kafka_key-exception-stacktrace",
)
"""What ``@RetryableTopic``'s recoverer (``DeadLetterPublishingRecovererFactory``) writes on
retry topics and on the dead-letter topic at the end of the chain."""

Header = tuple[str, bytes | None]


def python_name(error: BaseException) -> str:
    """``module.QualifiedName`` of the error's class: the Python "fully qualified class name"."""
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def java_big_integer(value: int) -> bytes:
    """``BigInteger.valueOf(value).toByteArray()``: the shortest two's-complement big-endian
    bytes, which Spring writes for the ``retry_topic-*-timestamp`` headers."""
    bits = value.bit_length() if value >= 0 else (~value).bit_length()
    return value.to_bytes(bits // 8 + 1, "big", signed=True)


def _raw(value: Any) -> bytes | None:
    """A header value as bytes; Kafka allows null header values."""
    return None if value is None else bytes(value)


def _describe(error: BaseException) -> tuple[bool, str, str]:
    """(for the key?, Spring's exception class, its message) for ``error``."""
    if isinstance(error, DeserializationError) and error.part in ("key", "value"):
        return error.part == "key", DESERIALIZATION_EXCEPTION, _DESERIALIZATION_FAILED
    return False, LISTENER_FAILED_EXCEPTION, LISTENER_FAILED


def _exception_headers(error: BaseException, names: HeaderNames) -> list[Header]:
    is_key, fqcn, wrapper_message = _describe(error)
    cause = python_name(error)
    detail = str(error)[:_MESSAGE_LIMIT]
    # As Spring's buildMessage: "<wrapper message>; <cause message>".
    message = f"{wrapper_message}; {detail}"
    python_trace = "".join(traceback.format_exception(error))
    head = f"{fqcn}: {wrapper_message}\nCaused by: {cause}: {detail}\n"
    stack = head + python_trace[-max(_STACKTRACE_LIMIT - len(head), 0) :]
    return [
        (names.key_exception_fqcn if is_key else names.exception_fqcn, fqcn.encode()),
        (names.exception_cause_fqcn, cause.encode()),
        (names.key_exception_message if is_key else names.exception_message, message.encode()),
        (
            names.key_exception_stacktrace if is_key else names.exception_stacktrace,
            stack.encode(),
        ),
    ]


def _original_headers(
    record: ConsumerRecord[Any, Any], group_id: str | None, names: HeaderNames
) -> list[Header]:
    timestamp = -1 if record.timestamp is None else record.timestamp
    timestamp_type = _TIMESTAMP_TYPES.get(record.timestamp_type, "NoTimestampType")
    headers: list[Header] = [
        (names.topic, record.topic.encode()),
        (names.partition, struct.pack(">i", record.partition)),
        (names.offset, struct.pack(">q", record.offset)),
        (names.timestamp, struct.pack(">q", timestamp)),
        (names.timestamp_type, timestamp_type.encode()),
    ]
    if group_id is not None:
        headers.append((names.consumer_group, group_id.encode()))
    return headers


def failure_headers(
    record: ConsumerRecord[Any, Any],
    error: BaseException,
    group_id: str | None,
    names: HeaderNames = DLT_NAMES,
    *,
    append_original: bool = True,
) -> list[Header]:
    """The headers Spring's recoverer puts on ``record``'s copy: its own headers, then the
    exception headers (earlier values of those names removed), then the original topic,
    partition, offset, timestamp and group.

    ``append_original``: add the original headers even when the record has them already
    (Spring's default); ``False`` keeps the first ones, as the retry-topic chain does.
    """
    exception = _exception_headers(error, names)
    replaced = {name for name, _ in exception}
    headers: list[Header] = [
        (name, _raw(value)) for name, value in record.headers if name not in replaced
    ]
    headers += exception
    present = {name for name, _ in headers}
    for name, value in _original_headers(record, group_id, names):
        if append_original or name not in present:
            headers.append((name, value))
    return headers
