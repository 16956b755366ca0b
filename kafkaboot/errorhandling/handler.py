"""What happens when a handler fails: the :class:`ErrorHandler` protocol and its default.

The container asks the error handler what to do with a failed record: retry it (after an
optional back-off, with only its partition paused) or treat it as recovered (logged,
dead-lettered, ...) and move on. Back-off policies, dead-letter publishing and retry topics
plug into this same interface.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from kafkaboot.errors import DeserializationError

__all__ = ["DefaultErrorHandler", "ErrorAction", "ErrorHandler", "FailedRecord"]

log = logging.getLogger("kafkaboot.listener")


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorAction:
    """The error handler's decision for one failed record."""

    retry: bool
    delay: timedelta = timedelta(0)

    @classmethod
    def retry_after(cls, delay: timedelta = timedelta(0)) -> ErrorAction:
        """Deliver the record again after ``delay``; its partition waits, others go on."""
        return cls(True, delay)

    @classmethod
    def recovered(cls) -> ErrorAction:
        """The record is dealt with (logged, dead-lettered): commit past it."""
        return cls(False)


@dataclasses.dataclass(frozen=True, slots=True)
class FailedRecord:
    """A failed record, with its raw bytes, and how often delivery has been tried."""

    record: ConsumerRecord[bytes, bytes]
    error: BaseException
    attempt: int
    """1 on the first failure, 2 on the second, ..."""
    listener_id: str
    group_id: str | None


@runtime_checkable
class ErrorHandler(Protocol):
    """Decides what to do with a record whose handler raised (or that could not be decoded).

    ``handle`` may be sync or ``async``.
    """

    def handle(self, failure: FailedRecord) -> ErrorAction | Awaitable[ErrorAction]: ...


_NOT_RETRYABLE: tuple[type[BaseException], ...] = (DeserializationError, ValidationError)


def _preview(data: bytes | None, limit: int = 200) -> str:
    if data is None:
        return "null"
    text = repr(data[:limit])
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


class DefaultErrorHandler:
    """Spring's ``DefaultErrorHandler`` defaults: retry a failed record in place up to
    ``max_attempts`` deliveries, then log it with topic, partition, offset and raw bytes,
    and move on. Records that can never succeed (undecodable or invalid payloads) are not
    retried.

    Args:
        max_attempts: deliveries in all, the first one included (Spring: 10).
        interval: wait before each retry; only the record's partition waits.
        not_retryable: exception types recovered at once, without retries.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 10,
        interval: timedelta = timedelta(0),
        not_retryable: tuple[type[BaseException], ...] = _NOT_RETRYABLE,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.interval = interval
        self.not_retryable = not_retryable

    def handle(self, failure: FailedRecord) -> ErrorAction:
        retryable = not isinstance(failure.error, self.not_retryable)
        if retryable and failure.attempt < self.max_attempts:
            log.warning(
                "listener %s failed on %s-%d@%d (attempt %d of %d), retrying: %r",
                failure.listener_id,
                failure.record.topic,
                failure.record.partition,
                failure.record.offset,
                failure.attempt,
                self.max_attempts,
                failure.error,
            )
            return ErrorAction.retry_after(self.interval)
        self.recover(failure, retryable)
        return ErrorAction.recovered()

    def recover(self, failure: FailedRecord, retryable: bool) -> None:
        """Called when retries are over; logs the record so it is never lost silently."""
        record = failure.record
        why = f"after {failure.attempt} attempts" if retryable else "(not retryable)"
        log.error(
            "listener %s gave up on record %s-%d@%d %s; skipping it. key=%s value=%s error=%r",
            failure.listener_id,
            record.topic,
            record.partition,
            record.offset,
            why,
            _preview(record.key),
            _preview(record.value),
            failure.error,
            exc_info=failure.error if retryable else None,
        )


async def decide(handler: Any, failure: FailedRecord) -> ErrorAction:
    """Run a sync or async error handler; an error handler that itself fails retries."""
    try:
        action = handler.handle(failure)
        if inspect.isawaitable(action):
            action = await action
    except Exception:
        log.exception(
            "error handler %r failed for %s-%d@%d; the record will be retried",
            handler,
            failure.record.topic,
            failure.record.partition,
            failure.record.offset,
        )
        return ErrorAction.retry_after(timedelta(seconds=1))
    if not isinstance(action, ErrorAction):
        log.error(
            "error handler %r returned %r, not an ErrorAction; the record will be retried",
            handler,
            action,
        )
        return ErrorAction.retry_after(timedelta(seconds=1))
    return action
