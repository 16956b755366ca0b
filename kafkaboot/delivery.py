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
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import (
    IllegalOperation,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)

from kafkaboot.availability import Availability
from kafkaboot.errors import (
    KafkaSendError,
    PartitionUnavailableError,
    SendBatchError,
    SendOutcomeUnknownError,
    SerializationError,
)
from kafkaboot.interceptors import ProducerInterceptors
from kafkaboot.partition_health import PartitionHealth
from kafkaboot.producer_listener import ProducerListener
from kafkaboot.records import ProducerRecord, SendResult
from kafkaboot.serialization import SerializerArg

__all__ = ["Deliveries", "Enqueue"]

log = logging.getLogger("kafkaboot.template")
_COMPACT_ABOVE = 10_000


class Enqueue:
    """A send inside aiokafka's ``send()``, which can wait there (for the topic's metadata,
    or for room in the partition's batch) up to its request timeout before the record is
    queued at all. Past ``deadline`` the sweeper cancels the waiting ``task``, and the send
    fails as not queued."""

    __slots__ = ("deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any] | None) -> None:
        self.deadline = deadline
        self.task = task
        self.expired = False


class Deliveries:
    """The template's sends in flight, oldest first, with their deadlines, and the errors
    that say what became of a send.

    The template's ``send`` appends to ``in_flight`` and registers ``delivered`` itself:
    that is its hot path, so there is no method call in between.
    """

    __slots__ = (
        "_availability",
        "_bootstrap_servers",
        "_health",
        "_sweeper",
        "enqueuing",
        "in_flight",
        "interceptors",
        "listener",
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
        self.listener = listener
        self._bootstrap_servers = bootstrap_servers
        self._availability = availability
        self._health = health
        self.in_flight: collections.deque[
            tuple[float, ProducerRecord, asyncio.Future[SendResult]]
        ] = collections.deque()
        self.suspect = False  # A send ran into trouble: ask the brokers on the next sweep.
        self._sweeper: asyncio.Task[None] | None = None
        self.enqueuing: set[Enqueue] = set()
        """Sends still inside aiokafka's ``send()``."""
        self.interceptors: ProducerInterceptors | None = None
        """The template's producer interceptors (``None``: none, nothing to call)."""

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
            _, record, result = self.in_flight.popleft()
            if not result.done():
                self.fail(record, result, self.unknown_error(record, None))

    async def _sweep(self) -> None:
        availability = self._availability
        interval = min(1.0, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            # A send unconfirmed for the unavailable timeout (or a quarter of the delivery
            # timeout) makes the template ask whether any broker answers.
            probe_after = min(availability.timeout, self.timeout / 4)
            for waiting in tuple(self.enqueuing):
                if waiting.deadline <= now and not waiting.expired and waiting.task is not None:
                    waiting.expired = True
                    waiting.task.cancel()  # The template turns it into a KafkaSendError.
            in_flight = self.in_flight
            while in_flight and in_flight[0][2].done():
                in_flight.popleft()
            stuck = bool(in_flight) and in_flight[0][0] - self.timeout + probe_after <= now
            if stuck or self.suspect or availability.unreachable_since is not None:
                # Its own task: a broker that is merely slow to answer must not hold up expiry.
                self.suspect = False
                availability.check()
            self._health.sweep(now, probe_after)
            probing = availability.probing
            if probing is not None and in_flight and in_flight[0][0] <= now:
                # Expire after the probe: a caller told "outcome unknown" then finds the next
                # sends refused at once, if the brokers are gone.
                await asyncio.wait([probing])
            while in_flight and (in_flight[0][2].done() or in_flight[0][0] <= now):
                _, record, result = in_flight.popleft()
                if not result.done():
                    self.fail(record, result, self.unknown_error(record, None))
            if len(in_flight) > _COMPACT_ABOVE:
                # One stuck record at the head must not keep every later, delivered one.
                self.in_flight = collections.deque(e for e in in_flight if not e[2].done())

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
        if self._health.open:  # Even a confirmation after the delivery timeout counts.
            self._health.delivered(delivery)
        if result.done():
            return  # Cancelled by the caller, or already failed by the delivery timeout.
        outcome = self.outcome(record, delivery, size)
        if isinstance(outcome, KafkaSendError):
            self.fail(record, result, outcome)
            return
        result.set_result(outcome)
        _notify(self.listener.on_success, record, outcome)
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
        _notify(self.listener.on_error, record, failure)
        if self.interceptors is not None:
            self.interceptors.on_acknowledgement(record, None, failure)

    async def send_batch(
        self,
        batch: Sequence[ProducerRecord],
        enqueue: Callable[..., Awaitable[tuple[ProducerRecord, asyncio.Future[Any], int]]],
        key_serializer: SerializerArg,
        value_serializer: SerializerArg,
    ) -> list[SendResult]:
        """Queue each record of ``batch`` with ``enqueue`` (the template's), then wait for all
        of them; a record that cannot be queued is an outcome too.

        Raises:
            SendBatchError: some records were not delivered, with each record's outcome.
        """
        outcomes: list[SendResult | KafkaSendError | None] = []
        queued: list[tuple[int, asyncio.Future[Any], int]] = []
        batch = list(batch)  # As the interceptors leave each record.
        refusal: KafkaSendError | None = None
        for index, r in enumerate(batch):
            try:
                if refusal is not None:
                    # Kafka is in trouble: the rest would each wait as long as this one did.
                    raise KafkaSendError(
                        f"not sent to topic {r.topic!r} (key {r.key!r}): an earlier record of "
                        f"the batch could not be queued ({refusal}); nothing was written",
                        topic=r.topic,
                        key=r.key,
                        retriable=True,
                    )
                batch[index], delivery, size = await enqueue(
                    r, key_serializer, value_serializer, time.monotonic() + self.timeout
                )
            except KafkaSendError as exc:
                outcomes.append(exc)
                if exc.retriable and not isinstance(exc, PartitionUnavailableError):
                    refusal = refusal or exc  # Not for one partition: others may take sends.
                continue
            except SerializationError as exc:
                failure = KafkaSendError(
                    f"record {index} of the batch (topic {r.topic!r}, key {r.key!r}) was not "
                    f"sent: {exc}",
                    topic=r.topic,
                    key=r.key,
                )
                failure.__cause__ = exc
                outcomes.append(failure)
                continue
            queued.append((index, delivery, size))
            outcomes.append(None)  # Known once the delivery settles, below.
        return await self.settle_batch(batch, outcomes, queued)

    async def settle_batch(
        self,
        batch: Sequence[ProducerRecord],
        outcomes: list[SendResult | KafkaSendError | None],
        queued: Sequence[tuple[int, asyncio.Future[Any], int]],
    ) -> list[SendResult]:
        """Wait for the queued records of a batch (``outcomes`` holds None for them) and tell
        the listener of each record.

        Raises:
            SendBatchError: some records were not delivered, with each record's outcome.
        """
        # One wait for all of them instead of a result future per record: the batch path
        # costs little more than aiokafka's own send loop.
        if queued:
            _, pending = await asyncio.wait([d for _, d, _ in queued], timeout=self.timeout)
            if self._health.open:
                for _, delivery, _ in queued:
                    delivery.add_done_callback(self._health.delivered)
            for index, delivery, size in queued:
                record = batch[index]
                outcomes[index] = (
                    self.unknown_error(record, None)
                    if delivery in pending
                    else self.outcome(record, delivery, size)
                )
        listener, interceptors = self.listener, self.interceptors
        settled: list[SendResult | KafkaSendError] = []
        results: list[SendResult] = []
        for record, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, SendResult):
                results.append(outcome)
                _notify(listener.on_success, record, outcome)
                if interceptors is not None:
                    interceptors.on_acknowledgement(record, outcome, None)
            elif outcome is not None:
                _notify(listener.on_error, record, outcome)
                if interceptors is not None:
                    interceptors.on_acknowledgement(record, None, outcome)
            settled.append(outcome or self.unknown_error(record, None))
        if len(results) < len(batch):
            raise SendBatchError(batch, settled)
        return results


def _notify(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("producer listener %r failed", callback)
