"""Non-blocking retries (Spring's ``@RetryableTopic``): a failed record moves on to
``<topic>-retry-0``, ``<topic>-retry-1``, ... and finally ``<topic>-dlt``, so the main
partition never waits for it.

Each retry topic has its own listener container (group ``<group>-retry-<n>``) calling the
same handler. A forwarded record carries the time it is due; a retry consumer pauses the
partition until then (the consumer keeps polling, so the group does not rebalance). The
record is committed on its topic only once the broker has acknowledged the forward.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import ConsumerRecord

from kafkaboot.config.kafka import RetryTopicProperties
from kafkaboot.errorhandling.backoff import BackOff, ExponentialBackOff, FixedBackOff
from kafkaboot.errorhandling.dead_letter import send_raw
from kafkaboot.errorhandling.handler import NOT_RETRYABLE, FailedRecord, Recovery
from kafkaboot.errorhandling.headers import (
    DLT_NAMES,
    RETRY_NAMES,
    failure_headers,
    java_big_integer,
)
from kafkaboot.errorhandling.topics import TopicCreator

if TYPE_CHECKING:
    from kafkaboot.template import KafkaTemplate

__all__ = [
    "ATTEMPTS_HEADER",
    "BACKOFF_TIMESTAMP_HEADER",
    "DLT_HANDLER_ATTRIBUTE",
    "ORIGINAL_TIMESTAMP_HEADER",
    "RETRYABLE_ATTRIBUTE",
    "RetryTopicConfig",
    "RetryTopicForwarder",
    "dlt_handler",
    "due_time",
    "forwarded_headers",
    "main_topic",
    "retry_config_from",
    "retryable_topic",
]

log = logging.getLogger("kafkaboot.listener")

ATTEMPTS_HEADER = "retry_topic-attempts"
"""The delivery number of the record on its next topic (4-byte int): 2 on ``-retry-0``."""
BACKOFF_TIMESTAMP_HEADER = "retry_topic-backoff-timestamp"
"""When the record is due, in epoch milliseconds (``java.math.BigInteger`` bytes)."""
ORIGINAL_TIMESTAMP_HEADER = "retry_topic-original-timestamp"
"""The main-topic record's timestamp, epoch milliseconds (``BigInteger`` bytes)."""
RETRYABLE_ATTRIBUTE = "__kafkaboot_retryable_topic__"
DLT_HANDLER_ATTRIBUTE = "__kafkaboot_dlt_handler__"
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class RetryTopicConfig:
    """How a listener retries through topics.

    Args:
        attempts: deliveries in all, the first (on the main topic) included; so
            ``attempts - 1`` retry topics.
        backoff: the wait before each retry (its ``max_attempts`` is not used: ``attempts``
            decides).
        dlt: after the last attempt, publish to ``<topic>-dlt`` (else log and drop).
        include: only these exception types are retried (default: all but ``exclude``).
        exclude: these go straight to the dead-letter topic (default: decoding and
            validation errors, which cannot succeed on retry).
        retry_suffix, dlt_suffix: topic name suffixes.
    """

    attempts: int = 3
    backoff: BackOff = dataclasses.field(default_factory=lambda: FixedBackOff(1.0))
    dlt: bool = True
    include: tuple[type[BaseException], ...] = ()
    exclude: tuple[type[BaseException], ...] = NOT_RETRYABLE
    retry_suffix: str = "-retry"
    dlt_suffix: str = "-dlt"

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts counts deliveries and must be at least 1: {self.attempts}")
        if dataclasses.is_dataclass(self.backoff) and self.backoff.max_attempts is not None:
            # ``attempts`` decides how often; the back-off only how long to wait.
            unlimited = dataclasses.replace(self.backoff, max_attempts=None)
            object.__setattr__(self, "backoff", unlimited)

    def retry_topic(self, main: str, stage: int) -> str:
        return f"{main}{self.retry_suffix}-{stage}"

    def dlt_topic(self, main: str) -> str:
        return main + self.dlt_suffix

    def derived_topics(self, main: str) -> list[str]:
        """The retry topics and the dead-letter topic of ``main``."""
        names = [self.retry_topic(main, n) for n in range(self.attempts - 1)]
        return names + ([self.dlt_topic(main)] if self.dlt else [])

    def retryable(self, error: BaseException) -> bool:
        if self.include and not isinstance(error, self.include):
            return False
        return not isinstance(error, self.exclude)


def retryable_topic(
    attempts: int = 3,
    backoff: BackOff | None = None,
    *,
    dlt: bool = True,
    include: tuple[type[BaseException], ...] = (),
    exclude: tuple[type[BaseException], ...] = NOT_RETRYABLE,
) -> Callable[[F], F]:
    """Retry a ``@kafka_listener``'s failed records through retry topics instead of in
    place (Spring's ``@RetryableTopic``); above or below ``@kafka_listener``.

    Retry and dead-letter topics are created at startup with the main topic's partition
    count. Not for batch listeners or manual partition assignment.
    """
    config = RetryTopicConfig(
        attempts, backoff or FixedBackOff(1.0), dlt=dlt, include=include, exclude=exclude
    )

    def decorate(handler: F) -> F:
        setattr(handler, RETRYABLE_ATTRIBUTE, config)
        return handler

    return decorate


def dlt_handler(listener: Callable[..., Any]) -> Callable[[F], F]:
    """Handle the dead letters of a ``@retryable_topic`` listener (Spring's
    ``@DltHandler``): ``@dlt_handler(on_order)`` under the listener's definition. The
    handler's parameters bind like a listener's; it runs in group ``<group>-dlt``.
    Without one, dead letters stay in the topic (see ``kafkaboot dlt replay``)."""

    def decorate(handler: F) -> F:
        setattr(listener, DLT_HANDLER_ATTRIBUTE, handler)
        return handler

    return decorate


def retry_config_from(properties: RetryTopicProperties) -> RetryTopicConfig | None:
    """``kafka.retry.topic.*`` (Spring Boot's names and defaults), if enabled."""
    if not properties.enabled:
        return None
    delay = properties.delay
    backoff: BackOff
    if properties.multiplier > 1:
        cap = properties.max_delay if properties.max_delay > timedelta(0) else timedelta(days=1)
        backoff = ExponentialBackOff(
            delay,
            properties.multiplier,
            cap,
            max_attempts=None,
            jitter=0.5 if properties.random_back_off else 0.0,
        )
    elif properties.random_back_off:
        backoff = ExponentialBackOff(delay, 1.0, delay, max_attempts=None, jitter=0.5)
    else:
        backoff = FixedBackOff(delay, max_attempts=None)
    return RetryTopicConfig(properties.attempts, backoff)


def _int_header(record: ConsumerRecord[Any, Any], name: str) -> int | None:
    for key, value in reversed(record.headers):
        if key == name and value:
            return int.from_bytes(value, "big", signed=True)
    return None


def due_time(record: ConsumerRecord[Any, Any]) -> float | None:
    """When a forwarded record may be handled (epoch seconds), or ``None``."""
    due_ms = _int_header(record, BACKOFF_TIMESTAMP_HEADER)
    return None if due_ms is None else due_ms / 1000


def main_topic(record: ConsumerRecord[Any, Any]) -> str:
    """The topic a forwarded record was first consumed from: ``kafka_original-topic``
    (Spring's, and kafkaboot's since it writes Spring's), else ``kafka_dlt-original-topic``
    (kafkaboot's forwards before that), else the record's own topic."""
    for name in (RETRY_NAMES.topic, DLT_NAMES.topic):
        for key, value in record.headers:
            if key == name and value:
                return bytes(value).decode()
    return str(record.topic)


def forwarded_headers(
    record: ConsumerRecord[Any, Any],
    error: BaseException,
    group_id: str | None,
    attempt: int,
    due_ms: int,
) -> list[tuple[str, bytes | None]]:
    """The headers Spring's ``@RetryableTopic`` chain puts on a record it forwards after
    delivery ``attempt`` failed (to a retry topic, or to the dead-letter topic at the end):
    ``kafka_exception-*`` replaced, the first ``kafka_original-*`` kept, and a new value of
    each ``retry_topic-*`` header appended (Spring's ``retainAllRetryHeaderValues``)."""
    headers = failure_headers(record, error, group_id, RETRY_NAMES, append_original=False)
    original = None
    for key, value in record.headers:
        if key == ORIGINAL_TIMESTAMP_HEADER and value:
            original = bytes(value)
    if original is None:
        original = java_big_integer(-1 if record.timestamp is None else record.timestamp)
    return [
        *headers,
        (ORIGINAL_TIMESTAMP_HEADER, original),
        (ATTEMPTS_HEADER, struct.pack(">i", attempt + 1)),
        (BACKOFF_TIMESTAMP_HEADER, java_big_integer(due_ms)),
    ]


class RetryTopicForwarder:
    """The recoverer of every container of a ``@retryable_topic`` listener: sends a failed
    record to the next retry topic (with its due time) or, after the last attempt or for a
    not-retryable error, to the dead-letter topic. Raises if the send fails, so the record
    stays uncommitted."""

    def __init__(self, config: RetryTopicConfig, template: KafkaTemplate) -> None:
        self.config = config
        self.template = template
        self.topics = TopicCreator(template)

    async def __call__(self, failure: FailedRecord) -> Recovery | None:
        recovery = None
        for record in failure.records:
            recovery = await self.forward(record, failure)
        return recovery

    async def forward(
        self, record: ConsumerRecord[bytes, bytes], failure: FailedRecord
    ) -> Recovery | None:
        """Send ``record`` on: where it went (``None``: logged, no dead-letter topic)."""
        config, error = self.config, failure.error
        main = main_topic(record)
        attempt = _int_header(record, ATTEMPTS_HEADER) or 1
        retry = attempt < config.attempts and config.retryable(error)
        if retry:
            wait = config.backoff.delay(attempt) or timedelta(0)
            topic = config.retry_topic(main, attempt - 1)
        elif config.dlt:
            wait, topic = timedelta(0), config.dlt_topic(main)
        else:
            log.error(
                "listener %s gave up on record %s-%d@%d after %d attempt(s) (no dead-letter "
                "topic): %r",
                failure.listener_id,
                record.topic,
                record.partition,
                record.offset,
                attempt,
                error,
            )
            return None
        due_ms = int((time.time() + wait.total_seconds()) * 1000)
        headers = forwarded_headers(record, error, failure.group_id, attempt, due_ms)
        await self.topics.ensure_like(main, [topic])
        partition = record.partition
        if partition not in await self.template.partitions_for(topic):
            partition = None
        result = await send_raw(self.template, topic, record, headers, partition)
        log.warning(
            "listener %s: record %s-%d@%d failed (attempt %d of %d: %r); %s %s-%d@%d",
            failure.listener_id,
            record.topic,
            record.partition,
            record.offset,
            attempt,
            config.attempts,
            error,
            "retrying through" if retry else "dead-lettered to",
            topic,
            result.partition,
            result.offset,
        )
        return Recovery("retry-topic" if retry else "dead-letter", topic)
