"""What happens when a handler fails: the :class:`ErrorHandler` protocol and its default.

The container asks the error handler what to do with a failed record: retry it (after an
optional back-off, with only its partition paused) or treat it as recovered (logged,
dead-lettered, ...) and move on. Back-off policies, dead-letter publishing and retry topics
plug into this same interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from kafkaboot.errorhandling.backoff import BackOff, FixedBackOff
from kafkaboot.errors import DeserializationError

__all__ = [
    "NOT_RETRYABLE",
    "DefaultErrorHandler",
    "ErrorAction",
    "ErrorHandler",
    "FailedRecord",
    "Recoverer",
    "Recovery",
    "log_record",
]

log = logging.getLogger("kafkaboot.listener")
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, slots=True)
class Recovery:
    """Where a recoverer sent a record it gave up on (what it returns, if it sends one)."""

    kind: Literal["dead-letter", "retry-topic"]
    topic: str


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorAction:
    """The error handler's decision for one failed record."""

    retry: bool
    delay: timedelta = timedelta(0)
    stop_reason: str | None = None
    """Set when the container must stop: the record stays uncommitted."""
    recovery: Recovery | None = None
    """For a recovered record: where its recoverer sent it (``None``: logged, or a
    recoverer that does not say)."""

    @classmethod
    def retry_after(cls, delay: timedelta = timedelta(0)) -> ErrorAction:
        """Deliver the record again after ``delay``; its partition waits, others go on."""
        return cls(True, delay)

    @classmethod
    def recovered(cls, recovery: Recovery | None = None) -> ErrorAction:
        """The record is dealt with (logged, dead-lettered): commit past it."""
        return cls(False, recovery=recovery)

    @classmethod
    def stop_container(cls, reason: str) -> ErrorAction:
        """Stop the listener's container, leaving the record uncommitted (Spring's
        ``CommonContainerStoppingErrorHandler``): for failures that need an operator."""
        return cls(True, timedelta(0), reason)


@dataclasses.dataclass(frozen=True, slots=True)
class FailedRecord:
    """A failed record, with its raw bytes, and how often delivery has been tried."""

    record: ConsumerRecord[bytes, bytes]
    error: BaseException
    attempt: int
    """1 on the first failure, 2 on the second, ..."""
    listener_id: str
    group_id: str | None
    batch: tuple[ConsumerRecord[bytes, bytes], ...] = ()
    """For a batch listener whose whole batch failed: every record of the batch, which a
    recoverer must deal with one by one (``record`` is the first of them)."""
    deadline: float | None = None
    """``time.monotonic()`` by which the decision must be made: past it, the consumer would
    stop polling for longer than ``max.poll.interval.ms`` and be removed from its group
    (``None``: no limit). :class:`DefaultErrorHandler` gives up on its recoverer then."""

    @property
    def records(self) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        """The records to recover: the batch, or just the record."""
        return self.batch or (self.record,)


@runtime_checkable
class ErrorHandler(Protocol):
    """Decides what to do with a record whose handler raised (or that could not be decoded).

    ``handle`` may be sync or ``async``.
    """

    def handle(self, failure: FailedRecord) -> ErrorAction | Awaitable[ErrorAction]: ...


Recoverer = Callable[[FailedRecord], Awaitable[Recovery | None] | Recovery | None]
"""Called once retries are over, before the record is committed: it must not return until
the record is safe (a dead-letter send acknowledged), and raise if it could not be; it may
return where it sent the record (a :class:`Recovery`, for interceptors and metrics). An async
recoverer still running at the failure's ``deadline`` is cancelled and counts as failed."""

_MAX_TRACKED = 10_000
NOT_RETRYABLE: tuple[type[BaseException], ...] = (DeserializationError, ValidationError)
"""Failures that cannot succeed on retry: the payload cannot be decoded or is invalid."""


def _preview(data: bytes | None, limit: int = 200) -> str:
    if data is None:
        return "null"
    text = repr(data[:limit])
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def _where(record: ConsumerRecord[Any, Any]) -> str:
    return f"{record.topic}-{record.partition}@{record.offset}"


def log_record(failure: FailedRecord) -> None:
    """The default recoverer: an ERROR line per record with its raw key and value, so a
    skipped record is never lost silently."""
    retryable = not isinstance(failure.error, NOT_RETRYABLE)
    why = f"after {failure.attempt} attempts" if retryable else "(not retryable)"
    for record in failure.records:
        log.error(
            "listener %s gave up on record %s %s; skipping it. key=%s value=%s error=%r",
            failure.listener_id,
            _where(record),
            why,
            _preview(record.key),
            _preview(record.value),
            failure.error,
            exc_info=failure.error if retryable else None,
        )


class DefaultErrorHandler:
    """Spring's ``DefaultErrorHandler``: retry a failed record in place as ``backoff``
    says, then hand it to ``recoverer`` and move on. While a record waits, only its
    partition is paused; the consumer keeps polling, so a long back-off causes no rebalance.

    Args:
        backoff: when to retry and when to give up (default: 10 deliveries, no wait).
        recoverer: what happens to a record that will not succeed, e.g. a
            :class:`~kafkaboot.errorhandling.DeadLetterPublishingRecoverer` (default: an
            ERROR log line with its raw bytes). The record is committed only once this
            returns; if it raises, or is still running when ``max.poll.interval.ms`` would
            run out (then it is cancelled), the record stays uncommitted and is tried
            again, and after ``recovery_attempts`` such failures the container stops.
        not_retryable: exception types that skip the retries and go to the recoverer at once
            (default: decoding and validation errors).
        recovery_attempts: recoverer failures in a row before the container stops.
    """

    def __init__(
        self,
        backoff: BackOff | None = None,
        recoverer: Recoverer | None = None,
        *,
        not_retryable: tuple[type[BaseException], ...] = NOT_RETRYABLE,
        recovery_attempts: int = 3,
    ) -> None:
        self.backoff: BackOff = backoff or FixedBackOff(timedelta(0), max_attempts=10)
        self.recoverer: Recoverer = recoverer or log_record
        self.not_retryable = not_retryable
        if recovery_attempts < 1:
            raise ValueError(f"recovery_attempts must be at least 1, not {recovery_attempts}")
        self.recovery_attempts = recovery_attempts
        # Per listener and record; one handler may serve many listeners.
        self._recovery_failures: dict[tuple[str, str, int, int], int] = {}

    async def handle(self, failure: FailedRecord) -> ErrorAction:
        record = failure.record
        retryable = not isinstance(failure.error, self.not_retryable)
        delay = self.backoff.delay(failure.attempt) if retryable else None
        if delay is not None:
            log.warning(
                "listener %s failed on %s (attempt %d of %s), retrying in %.3gs: %r",
                failure.listener_id,
                _where(record),
                failure.attempt,
                self.backoff.max_attempts or "unlimited",
                delay.total_seconds(),
                failure.error,
            )
            return ErrorAction.retry_after(delay)
        return await self._recover(failure)

    async def _recover(self, failure: FailedRecord) -> ErrorAction:
        record = failure.record
        key = (failure.listener_id, record.topic, record.partition, record.offset)
        try:
            outcome = self.recoverer(failure)
            if inspect.isawaitable(outcome):
                outcome = await _within(outcome, failure.deadline, "the recoverer")
        except Exception as exc:
            failures = self._recovery_failures.pop(key, 0) + 1
            self._recovery_failures[key] = failures
            if len(self._recovery_failures) > _MAX_TRACKED:  # Records that succeeded later.
                del self._recovery_failures[next(iter(self._recovery_failures))]
            if failures >= self.recovery_attempts:
                del self._recovery_failures[key]
                return ErrorAction.stop_container(
                    f"could not recover record {_where(record)} after {failures} tries "
                    f"({exc!r}); it stays uncommitted. Fix the cause (is the dead-letter "
                    "topic writable?) and start the listener again"
                )
            log.error(
                "listener %s: recovering record %s failed (%d of %d): %r; it stays "
                "uncommitted and will be tried again",
                failure.listener_id,
                _where(record),
                failures,
                self.recovery_attempts,
                exc,
            )
            return ErrorAction.retry_after(timedelta(seconds=1))
        self._recovery_failures.pop(key, None)
        return ErrorAction.recovered(outcome if isinstance(outcome, Recovery) else None)


class _TooLate(TimeoutError):
    """An error handler or recoverer ran past its deadline, and was cancelled."""

    def __init__(self, what: str, budget: float) -> None:
        super().__init__(
            f"{what} was still running after {budget:.1f}s, when its consumer had to poll "
            "again to stay in its group; raise max.poll.interval.ms or make it faster"
        )


async def _within(awaitable: Awaitable[_T], deadline: float | None, what: str) -> _T:
    """Await ``awaitable``, cancelled at ``deadline`` (``time.monotonic()``; ``None``: never).

    Raises:
        _TooLate: the deadline passed first.
    """
    if deadline is None:
        return await awaitable
    budget = max(0.0, deadline - time.monotonic())
    try:
        async with asyncio.timeout(budget) as bound:
            return await awaitable
    except TimeoutError:
        if bound.expired():
            raise _TooLate(what, budget) from None
        raise  # The awaitable's own.


async def decide(handler: Any, failure: FailedRecord, limit: float | None = None) -> ErrorAction:
    """Run a sync or async error handler; an error handler that itself fails retries, and
    so does an async one still running at ``limit`` (``time.monotonic()``): it is cancelled
    so that its consumer polls in time to stay in its group."""
    try:
        action = handler.handle(failure)
        if inspect.isawaitable(action):
            action = await _within(action, limit, "the error handler")
    except _TooLate as late:
        log.error(
            "listener %s: deciding about %s-%d@%d: %s; the record will be retried",
            failure.listener_id,
            failure.record.topic,
            failure.record.partition,
            failure.record.offset,
            late,
        )
        return ErrorAction.retry_after(timedelta(seconds=1))
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
