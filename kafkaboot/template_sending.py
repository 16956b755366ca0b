"""The KafkaTemplate's sends: from a record to aiokafka's producer and a future for its
delivery, one record at a time or a batch. ``send`` and ``_enqueue`` are the hot path, one
frame each per send: measure (bench/, or instructions per send) before adding to either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError

from kafkaboot.availability import Availability
from kafkaboot.batch_send import send_batch
from kafkaboot.delivery import Deliveries, Pending, resumed
from kafkaboot.errors import KafkaBootError, KafkaSendError, SerializationError
from kafkaboot.partition_health import PartitionHealth
from kafkaboot.records import HeadersArg, ProducerRecord, SendResult
from kafkaboot.serialization import (
    Serializer,
    SerializerArg,
    configured,
    encode_headers,
    record_headers,
    serializer_for,
)
from kafkaboot.transaction import current_scope

__all__ = ["TemplateSending", "resolve_serializer"]

_new_tuple = tuple.__new__


def resolve_serializer(
    serializer: SerializerArg,
    fallback: Serializer | None,
    properties: Mapping[str, Any] | None = None,
    is_key: bool = False,
) -> Serializer:
    """A serializer object as given, or one built from a name (or the fallback) and set up
    from the producer's ``properties`` (``spring.json.*``), as Kafka configures those."""
    if serializer is None:
        if fallback is None:
            raise ValueError("no serializer")
        return configured(fallback, properties, is_key)
    if isinstance(serializer, str):
        return serializer_for(serializer, properties, is_key=is_key)
    return serializer


class TemplateSending:
    """KafkaTemplate's sending methods; the template sets the attributes below."""

    default_topic: str | None
    _properties: dict[str, Any]
    _key_serializer: Serializer
    _value_serializer: Serializer
    _type_headers: bool
    _kwargs: dict[str, Any]
    _transaction_id: str | None
    _availability: Availability
    _health: PartitionHealth
    _deliveries: Deliveries
    _producer: AIOKafkaProducer | None
    _checked_partitions: dict[str, set[int]]

    if TYPE_CHECKING:  # KafkaTemplate's own.

        def _started(self) -> AIOKafkaProducer: ...

        @property
        def delivery_timeout(self) -> float: ...

        @property
        def bootstrap_servers(self) -> str: ...

    async def send(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: HeadersArg = None,
        key_serializer: SerializerArg = None,
        value_serializer: SerializerArg = None,
    ) -> asyncio.Future[SendResult]:
        """Queue a record; returns at once with a future for its delivery. The future fails
        with a ``SendOutcomeUnknownError`` when the delivery is not confirmed within the
        delivery timeout (the record may still be written), with a ``KafkaSendError`` when
        the broker refused it (not written).

        Raises:
            SerializationError: the key, value or a header cannot be serialized.
            KafkaSendError: the record was not queued, so not written (too large, unknown
                partition, no metadata for the topic, no broker answering).
        """
        deliveries = self._deliveries
        deadline = time.monotonic() + deliveries.timeout  # From the call: enqueue included.
        # ProducerRecord's fields, in order, without the NamedTuple.__new__ frame.
        given = _new_tuple(ProducerRecord, (topic, value, key, partition, timestamp_ms, headers))
        try:
            record, delivery, size = await self._enqueue(
                given, key_serializer, value_serializer, deadline
            )
        except (KafkaSendError, SerializationError) as exc:
            if deliveries.interceptors is not None:
                deliveries.interceptors.on_acknowledgement(given, None, exc)
            raise
        pending = Pending(loop=delivery.get_loop())
        pending.deliveries = deliveries
        pending.deadline = deadline
        pending.record = record
        pending.size = size
        delivery.add_done_callback(pending, context=deliveries.context)
        deliveries.in_flight.append(pending)
        return pending

    async def _enqueue(
        self,
        record: ProducerRecord,
        key_serializer: SerializerArg,
        value_serializer: SerializerArg,
        deadline: float,
    ) -> tuple[ProducerRecord, asyncio.Future[Any], int]:
        """Serialize and hand a record to the producer: the record as the interceptors left
        it, its aiokafka delivery future and its size in bytes (key and value). Past
        ``deadline`` (``time.monotonic()``) a wait inside the producer ends the send."""
        interceptors = self._deliveries.interceptors
        if interceptors is not None:
            record = interceptors.on_send(record)
        topic, value, key, partition, timestamp_ms, headers = record
        scope = current_scope()
        if scope is not None:
            producer = scope.producer
        else:
            producer = self._producer
            if producer is None:
                producer = self._started()
            if self._availability.unreachable_since is not None:
                raise self._availability.refused(topic, key)
            if self._transaction_id is not None:
                raise KafkaSendError(
                    f"cannot send to {topic!r}: this template is transactional, so sends must "
                    "be inside `async with template.transaction():` (or a transactional "
                    "listener)",
                    topic=topic,
                    key=key,
                )
        if key_serializer is not None:
            key_serializer = resolve_serializer(key_serializer, None, self._properties, True)
        if value_serializer is not None:
            value_serializer = resolve_serializer(value_serializer, None, self._properties)
        key_writer = self._key_serializer if key_serializer is None else key_serializer
        value_writer = self._value_serializer if value_serializer is None else value_serializer
        key_bytes = key_writer.serialize(topic, key)
        value_bytes = value_writer.serialize(topic, value)
        if key_bytes is None and value_bytes is None:
            raise KafkaSendError(
                f"a record for topic {topic!r} needs a key or a value (both are None)",
                topic=topic,
            )
        if topic in self._health.topics and scope is None:
            partition = self._health.admit(topic, partition, key_bytes, key)
        if key_serializer is None and value_serializer is None and not self._type_headers:
            record_headers_ = encode_headers(headers) if headers else None
        else:
            record_headers_ = record_headers(headers, key_writer, key, value_writer, value)
        deliveries = self._deliveries
        task: asyncio.Task[Any] | None = None
        try:
            if partition is not None:
                task = deliveries.enqueue_until(deadline)
                await self._check_partition(producer, topic, partition, key)
            sending = producer.send(
                topic,
                value_bytes,
                key=key_bytes,
                partition=partition,
                timestamp_ms=timestamp_ms,
                headers=record_headers_,
            )
            # Its first step here, as `await` would take it: most sends are queued within
            # it, and only one that waits inside the producer needs its task registered
            # for the sweeper to end the wait at the deadline.
            try:
                waiting_on = sending.send(None)
            except StopIteration as queued:
                delivery = queued.value
            else:
                if task is None:
                    task = deliveries.enqueue_until(deadline)
                delivery = await resumed(sending, waiting_on)
        except asyncio.CancelledError:
            # The sweeper's doing (and no one else's): nothing was queued.
            if task is None or task not in deliveries.expired or task.uncancel() > 0:
                raise
            raise deliveries.not_queued_in_time(record) from None
        except (KafkaError, IllegalOperation) as exc:
            size = len(key_bytes or b"") + len(value_bytes or b"")
            limit = self._kwargs.get("max_request_size", 1048576)
            raise deliveries.not_queued(record, exc, size, limit) from exc
        finally:
            if task is not None:
                del deliveries.enqueuing[task]
                if deliveries.expired:
                    deliveries.expired.discard(task)
        if scope is not None:
            scope.deliveries.append(delivery)
        return record, delivery, len(key_bytes or b"") + len(value_bytes or b"")

    async def _check_partition(
        self, producer: AIOKafkaProducer, topic: str, partition: int, key: Any
    ) -> None:
        known = self._checked_partitions.get(topic)
        if known is None or partition not in known:
            known = set(await producer.partitions_for(topic))
            self._checked_partitions[topic] = known
        if partition not in known:
            raise KafkaSendError(
                f"topic {topic!r} has no partition {partition}; it has "
                f"{len(known)} (0-{len(known) - 1})",
                topic=topic,
                key=key,
            )

    async def send_and_wait(self, topic: str, value: Any = None, **options: Any) -> SendResult:
        """Send and wait for the delivery.

        Raises:
            KafkaSendError: not delivered (within the delivery timeout).
        """
        return await (await self.send(topic, value, **options))

    async def send_default(self, value: Any = None, **options: Any) -> asyncio.Future[SendResult]:
        """Send to ``kafka.template.default-topic``.

        Raises:
            KafkaBootError: no default topic is configured.
        """
        if self.default_topic is None:
            raise KafkaBootError(
                "send_default needs a default topic: set kafka.template.default-topic, or "
                "pass default_topic= to the KafkaTemplate"
            )
        return await self.send(self.default_topic, value, **options)

    async def send_batch(
        self,
        records: Iterable[ProducerRecord],
        *,
        key_serializer: SerializerArg = None,
        value_serializer: SerializerArg = None,
    ) -> list[SendResult]:
        """Queue many records at once, then wait for all of them; the producer listener
        hears of each one.

        Raises:
            SendBatchError: some records were not delivered; it lists each record's
                outcome, so that only the failed ones are retried.
        """
        return await send_batch(
            self._deliveries, list(records), self._enqueue, key_serializer, value_serializer
        )

    async def flush(self) -> None:
        """Wait until every queued record has been delivered (or failed)."""
        await self._started().flush()

    async def partitions_for(self, topic: str) -> set[int]:
        """The partition numbers of ``topic`` (Spring's ``partitionsFor``); fetching
        metadata may auto-create the topic if the broker allows that.

        Raises:
            KafkaSendError: no metadata for the topic within the delivery timeout.
        """
        try:
            return set(
                await asyncio.wait_for(self._started().partitions_for(topic), self.delivery_timeout)
            )
        except (KafkaError, TimeoutError) as exc:
            raise KafkaSendError(
                f"no metadata for topic {topic!r} from {self.bootstrap_servers}: {exc!r}",
                topic=topic,
                retriable=True,
            ) from exc
