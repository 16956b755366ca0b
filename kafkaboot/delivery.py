"""Deliveries: how each send of the template ends (not queued, refused by the broker,
delivered, or outcome unknown), and whether Kafka answers at all.

Every send stays in flight until the broker confirms it, refuses it or the delivery timeout
passes; one sweeper task fails the overdue ones instead of a timer per record. When sends get
stuck (or one ran into trouble) the sweeper has the template's ``Availability`` ask the
brokers, so that while none answers the template refuses sends at once instead of letting
each wait out the delivery timeout; and it has the template's ``PartitionHealth`` open the
breaker of each partition whose sends are stuck (confirmed deliveries close them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from aiokafka.errors import (
    IllegalOperation,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)

from kafkaboot.availability import Availability
from kafkaboot.errors import (
    KafkaSendError,
    SendOutcomeUnknownError,
)
from kafkaboot.interceptors import ProducerInterceptors
from kafkaboot.partition_health import PartitionHealth
from kafkaboot.producer_listener import LoggingProducerListener, ProducerListener
from kafkaboot.records import ProducerRecord, SendResult

__all__ = ["Deliveries", "Pending", "notify", "resumed"]

log = logging.getLogger("kafkaboot.template")
_COMPACT_ABOVE = 10_000
_new_tuple = tuple.__new__
_T = TypeVar("_T")


class Pending(asyncio.Future[SendResult]):
    """The future ``send`` returns, until the broker settles the record: with its deadline
    (``time.monotonic()``), the record and its serialized size, and it is the done callback
    of aiokafka's delivery future.

    One object per send for all of that, where a future, a tuple and a ``functools.partial``
    would cost three: the allocations that outlive a send are what the garbage collector
    pays for, many times over, while thousands of sends are in flight.
    """

    __slots__ = ("deadline", "deliveries", "record", "size")

    # Set by ``send`` right after it makes the future, without an ``__init__`` of its own
    # (a Python frame and a ``super()`` call per send): ``Pending(loop=loop)``.
    deliveries: Deliveries
    deadline: float
    record: ProducerRecord
    size: int

    def __call__(self, delivery: asyncio.Future[Any]) -> None:
        """Settle on aiokafka's delivery: a confirmed one here, in one frame (it runs once
        per record on the event loop); anything else as ``Deliveries.delivered`` says."""
        deliveries = self.deliveries
        if (
            deliveries.interceptors is not None
            or deliveries.on_success is not None
            or deliveries.health.open
            or delivery.cancelled()
            or delivery.exception() is not None
            or self.done()
        ):
            deliveries.delivered(self.record, self, self.size, delivery)
            return
        metadata = delivery.result()
        # SendResult's fields, in order, without the Python-level NamedTuple.__new__ frame.
        self.set_result(
            _new_tuple(
                SendResult,
                (
                    self.record,
                    metadata.topic,
                    metadata.partition,
                    metadata.offset,
                    metadata.timestamp,
                    self.size,
                ),
            )
        )


class Deliveries:
    """The template's sends in flight, oldest first, with their deadlines, and the errors
    that say what became of a send.

    The template's ``send`` appends a ``Pending`` to ``in_flight`` and registers it as the
    delivery's callback itself: that is its hot path, so there is no method call in between.

    A send waiting inside aiokafka's ``send()`` is in ``enqueuing`` (its task → its
    deadline): aiokafka can wait there (for the topic's metadata, or for room in the
    partition's batch) up to its request timeout before the record is queued at all. Past
    the deadline the sweeper cancels the task and puts it in ``expired``, and the send fails
    as not queued. A send queued without a wait (most) is never registered: the sweeper
    cannot run in between.
    """

    __slots__ = (
        "_availability",
        "_bootstrap_servers",
        "_listener",
        "_sweeper",
        "context",
        "enqueuing",
        "expired",
        "health",
        "in_flight",
        "interceptors",
        "on_success",
        "suspect",
        "timeout",
    )

    def __init__(
        self,
        timeout: float,
        bootstrap_servers: str,
        listener: ProducerListener,
        availability: Availability,
        health: PartitionHealth,
    ) -> None:
        self.timeout = timeout
        self.on_success: Callable[[ProducerRecord, SendResult], None] | None = None
        """The listener's ``on_success``; None when it does nothing (the default's)."""
        self.listener = listener
        self._bootstrap_servers = bootstrap_servers
        self._availability = availability
        self.health = health
        """The template's partition breakers, told of each confirmed delivery."""
        self.in_flight: collections.deque[Pending] = collections.deque()
        self.suspect = False  # A send ran into trouble: ask the brokers on the next sweep.
        self._sweeper: asyncio.Task[None] | None = None
        self.enqueuing: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.context = contextvars.Context()
        """Where outcomes are told (listener, interceptors): not the sender's context, as
        Kafka tells them on its I/O thread; copying the sender's would cost each send."""
        self.interceptors: ProducerInterceptors | None = None
        """The template's producer interceptors (``None``: none, nothing to call)."""

    @property
    def listener(self) -> ProducerListener:
        """Told about every delivery."""
        return self._listener

    @listener.setter
    def listener(self, listener: ProducerListener) -> None:
        self._listener = listener
        on_success = listener.on_success
        silent = getattr(on_success, "__func__", None) is LoggingProducerListener.on_success
        self.on_success = None if silent else on_success

    def enqueue_until(self, deadline: float) -> asyncio.Task[Any] | None:
        """Register the current task as waiting inside the producer until ``deadline``
        (``time.monotonic()``): past it the sweeper cancels the task. Returns the task."""
        task = asyncio.current_task()
        if task is not None:
            self.enqueuing[task] = deadline
        return task

    def start(self) -> None:
        """Start the sweeper."""
        self.suspect = False
        self._sweeper = asyncio.create_task(self._sweep(), name="kafkaboot:template")

    async def stop(self) -> None:
        """Stop the sweeper; deliveries still settle as the broker answers."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def fail_pending(self) -> None:
        """Fail every send still in flight: nobody waits forever on a record the stop gave
        up on."""
        while self.in_flight:
            pending = self.in_flight.popleft()
            if not pending.done():
                self.fail(pending.record, pending, self.unknown_error(pending.record, None))

    async def _sweep(self) -> None:
        availability = self._availability
        interval = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            # A send unconfirmed for the unavailable timeout (or a quarter of the delivery
            # timeout) makes the template ask whether any broker answers.
            probe_after = min(availability.timeout, self.timeout / 4)
            for task, deadline in tuple(self.enqueuing.items()):
                if deadline <= now and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()  # The template turns it into a KafkaSendError.
            in_flight = self.in_flight
            while in_flight and in_flight[0].done():
                in_flight.popleft()
            stuck = bool(in_flight) and in_flight[0].deadline - self.timeout + probe_after <= now
            if stuck or self.suspect or availability.unreachable_since is not None:
                # Its own task: a broker that is merely slow to answer must not hold up expiry.
                self.suspect = False
                availability.check()
            self.health.sweep(now, probe_after)
            probing = availability.probing
            if probing is not None and in_flight and in_flight[0].deadline <= now:
                # Expire after the probe: a caller told "outcome unknown" then finds the next
                # sends refused at once, if the brokers are gone.
                await asyncio.wait([probing])
            while in_flight and (in_flight[0].done() or in_flight[0].deadline <= now):
                pending = in_flight.popleft()
                if not pending.done():
                    self.fail(pending.record, pending, self.unknown_error(pending.record, None))
            if len(in_flight) > _COMPACT_ABOVE:
                # One stuck record at the head must not keep every later, delivered one.
                self.in_flight = collections.deque(p for p in in_flight if not p.done())

    # -- outcomes -------------------------------------------------------------------------

    def not_queued_in_time(self, record: ProducerRecord) -> KafkaSendError:
        """Why a send that waited inside the producer past the delivery timeout failed."""
        self.suspect = True
        return KafkaSendError(
            f"record for topic {record.topic!r} (key {record.key!r}) was not queued within "
            f"the delivery timeout of {self.timeout:g}s: the producer was still waiting for "
            "the topic's metadata or for room in the partition's batch (is Kafka at "
            f"{self._bootstrap_servers} reachable, and can the partition take writes?); "
            "nothing was written",
            topic=record.topic,
            key=record.key,
            retriable=True,
        )

    def not_queued(
        self, record: ProducerRecord, exc: KafkaError | IllegalOperation, size: int, limit: int
    ) -> KafkaSendError:
        """Why the producer did not take ``record`` (``size`` bytes serialized, ``limit`` the
        producer's max.request.size)."""
        topic, key = record.topic, record.key
        if isinstance(exc, MessageSizeTooLargeError):
            return KafkaSendError(
                f"record for topic {topic!r} (key {key!r}, a {type(record.value).__name__}) is "
                f"about {size} bytes serialized, over the producer limit max.request.size = "
                f"{limit}; send smaller records, or raise "
                "kafka.producer.properties.max.request.size together with the topic's "
                "max.message.bytes",
                topic=topic,
                key=key,
            )
        if isinstance(exc, IllegalOperation):
            return KafkaSendError(
                f"cannot send to {topic!r}: this template is transactional, so sends must be "
                "inside `async with template.transaction():`",
                topic=topic,
                key=key,
            )
        self.suspect = self.suspect or exc.retriable
        return KafkaSendError(
            f"cannot send to {topic!r} (key {key!r}): {exc!r}; the record was not queued, "
            "so nothing was written",
            topic=topic,
            key=key,
            retriable=exc.retriable or isinstance(exc, KafkaTimeoutError),
        )

    def unknown_error(
        self, record: ProducerRecord, exc: BaseException | None
    ) -> SendOutcomeUnknownError:
        self.suspect = True
        cause = f" ({exc!r})" if exc is not None else ""
        return SendOutcomeUnknownError(
            f"outcome unknown: the record may still be written. It was queued for topic "
            f"{record.topic!r} (key {record.key!r}) but not confirmed within the delivery "
            f"timeout of {self.timeout:g}s (or before the template stopped){cause}; "
            f"is Kafka at "
            f"{self._bootstrap_servers} reachable and does the topic exist? Retrying may write "
            "it twice.",
            topic=record.topic,
            key=record.key,
            retriable=True,
        )

    def delivered(
        self,
        record: ProducerRecord,
        result: asyncio.Future[SendResult],
        size: int,
        delivery: asyncio.Future[Any],
    ) -> None:
        """Done callback of aiokafka's delivery future: settle the caller's ``result``."""
        if self.health.open:  # Even a confirmation after the delivery timeout counts.
            self.health.delivered(delivery)
        if result.done():
            return  # Cancelled by the caller, or already failed by the delivery timeout.
        outcome = self.outcome(record, delivery, size)
        if isinstance(outcome, KafkaSendError):
            self.fail(record, result, outcome)
            return
        result.set_result(outcome)
        if self.on_success is not None:
            notify(self.on_success, record, outcome)
        if self.interceptors is not None:
            self.interceptors.on_acknowledgement(record, outcome, None)

    def outcome(
        self, record: ProducerRecord, delivery: asyncio.Future[Any], size: int = -1
    ) -> SendResult | KafkaSendError:
        """What a finished aiokafka delivery means for ``record`` (of ``size`` bytes)."""
        error = delivery.exception() if not delivery.cancelled() else asyncio.CancelledError()
        if error is None:
            metadata = delivery.result()
            return SendResult(
                record,
                metadata.topic,
                metadata.partition,
                metadata.offset,
                metadata.timestamp,
                size,
            )
        failure: KafkaSendError
        if isinstance(error, asyncio.CancelledError) or getattr(error, "retriable", False):
            # aiokafka gives up on a retriable error only after the batch expired; an
            # earlier attempt of it may have been written.
            failure = self.unknown_error(record, error)
        else:
            failure = KafkaSendError(
                f"the broker refused the record for topic {record.topic!r} (key "
                f"{record.key!r}): {error!r}; it was not written",
                topic=record.topic,
                key=record.key,
            )
        failure.__cause__ = error
        return failure

    def fail(
        self, record: ProducerRecord, result: asyncio.Future[SendResult], failure: KafkaSendError
    ) -> None:
        result.set_exception(failure)
        # The listener reports it; a caller that never awaits the future is not warned twice.
        result.exception()
        notify(self.listener.on_error, record, failure)
        if self.interceptors is not None:
            self.interceptors.on_acknowledgement(record, None, failure)


@types.coroutine
def resumed(coroutine: Coroutine[Any, Any, _T], waiting_on: Any) -> Generator[Any, Any, _T]:
    """``await coroutine`` for a coroutine whose first step was already taken, and yielded
    ``waiting_on``: what the task sends or throws in (its wake-up, a cancellation) goes on
    to the coroutine, as ``await`` passes it."""
    try:
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                raise
            except BaseException as exc:
                waiting_on = coroutine.throw(exc)
            else:
                waiting_on = coroutine.send(sent)
    except StopIteration as done:
        result: _T = done.value
        return result
    finally:
        coroutine.close()  # Nothing when it finished; stops it when this one is closed.


def notify(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("producer listener %r failed", callback)
