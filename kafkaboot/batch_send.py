"""``send_batch``: many records queued at once, then one wait for all of them, each record
with its own outcome (Spring has no batch send; this is the template's cheap path for many)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kafkaboot.delivery import Deliveries, notify
from kafkaboot.errors import (
    KafkaSendError,
    PartitionUnavailableError,
    SendBatchError,
    SerializationError,
)
from kafkaboot.records import ProducerRecord, SendResult
from kafkaboot.serialization import SerializerArg

__all__ = ["send_batch"]


class _Queued:
    """The records of a batch handed to the producer: their index in the batch, delivery
    future and serialized size, as three lists rather than a tuple per record (fewer objects
    for the garbage collector to walk while the batch is in flight)."""

    __slots__ = ("deliveries", "indexes", "sizes")

    def __init__(self) -> None:
        self.indexes: list[int] = []
        self.deliveries: list[asyncio.Future[Any]] = []
        self.sizes: list[int] = []


async def send_batch(
    deliveries: Deliveries,
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
    queued = _Queued()
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
                r, key_serializer, value_serializer, time.monotonic() + deliveries.timeout
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
        queued.indexes.append(index)
        queued.deliveries.append(delivery)
        queued.sizes.append(size)
        outcomes.append(None)  # Known once the delivery settles, below.
    return await _settle(deliveries, batch, outcomes, queued)


async def _wait_all(timeout: float, deliveries: Sequence[asyncio.Future[Any]]) -> None:
    """Wait until every delivery settles or ``timeout`` seconds pass.

    In order, one wait per delivery still pending when the one before it settled: as many
    waits as the producer's batches, where ``asyncio.wait`` on them all would add a callback
    (and a context) to every record's future.
    """
    deadline = time.monotonic() + timeout
    for delivery in deliveries:
        if not delivery.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.wait((delivery,), timeout=remaining)


async def _settle(
    deliveries: Deliveries,
    batch: Sequence[ProducerRecord],
    outcomes: list[SendResult | KafkaSendError | None],
    queued: _Queued,
) -> list[SendResult]:
    """Wait for the queued records of a batch (``outcomes`` holds None for them) and tell
    the listener of each record.

    Raises:
        SendBatchError: some records were not delivered, with each record's outcome.
    """
    futures = queued.deliveries
    if futures:
        await _wait_all(deliveries.timeout, futures)
        health = deliveries.health
        if health.open:
            for delivery in futures:
                delivery.add_done_callback(health.delivered)
        for index, delivery, size in zip(queued.indexes, futures, queued.sizes, strict=True):
            record = batch[index]
            outcomes[index] = (
                deliveries.outcome(record, delivery, size)
                if delivery.done()
                else deliveries.unknown_error(record, None)
            )
    listener, on_success = deliveries.listener, deliveries.on_success
    interceptors = deliveries.interceptors
    settled: list[SendResult | KafkaSendError] = []
    results: list[SendResult] = []
    for record, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, SendResult):
            results.append(outcome)
            if on_success is not None:
                notify(on_success, record, outcome)
            if interceptors is not None:
                interceptors.on_acknowledgement(record, outcome, None)
        elif outcome is not None:
            notify(listener.on_error, record, outcome)
            if interceptors is not None:
                interceptors.on_acknowledgement(record, None, outcome)
        settled.append(outcome or deliveries.unknown_error(record, None))
    if len(results) < len(batch):
        raise SendBatchError(batch, settled)
    return results
