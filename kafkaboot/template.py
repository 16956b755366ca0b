"""KafkaTemplate: sending records, Spring style, on aiokafka's producer.

``send`` returns as soon as the record is queued, with a future for its delivery (Spring's
``CompletableFuture<SendResult>``), so a service can fire many sends and await them
together. Values are serialized by type unless a serializer is configured or given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalOperation, KafkaError

from kafkaboot.availability import Availability, ask_brokers
from kafkaboot.batch_send import send_batch
from kafkaboot.components import import_component
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.delivery import Deliveries, Pending, resumed
from kafkaboot.errors import KafkaBootError, KafkaSendError, SerializationError
from kafkaboot.interceptors import ProducerInterceptor, ProducerInterceptors
from kafkaboot.partition_health import PartitionHealth
from kafkaboot.producer_listener import LoggingProducerListener, ProducerListener
from kafkaboot.records import HeadersArg, ProducerRecord, SendResult
from kafkaboot.serialization import (
    AutoSerializer,
    Serializer,
    SerializerArg,
    configured,
    encode_headers,
    record_headers,
    serializer_for,
    writes_type_headers,
)
from kafkaboot.template_transactions import STOP_TIMEOUT_S, TemplateTransactions, close_quietly
from kafkaboot.transaction import (
    TransactionScope,
    current_scope,
    transaction_scope,
    transactional_id,
)

__all__ = [
    "HeadersArg",
    "KafkaTemplate",
    "LoggingProducerListener",
    "ProducerListener",
    "ProducerRecord",
    "SendResult",
    "TransactionScope",
    "transaction_scope",
]

log = logging.getLogger("kafkaboot.template")
_new_tuple = tuple.__new__


def _resolve(
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


class KafkaTemplate(TemplateTransactions):
    """Sends records; one per application, started and stopped with it.

    Args:
        settings: configuration; ``kafka.producer.*`` and ``kafka.template.*`` apply.
        key_serializer, value_serializer: override configuration (objects or names).
        producer_listener: told about every delivery (default: logs failures).
        transaction_id_suffix: appended to ``kafka.producer.transaction-id-prefix``; over
            ``kafka.producer.transaction-id-suffix``, whose default is ``<host>-<worker
            index>``. Unique per running process for its transactions not to be fenced by
            its siblings, and the same for a restarted process, so that it fences its zombie.
    """

    def __init__(
        self,
        settings: KafkaBootSettings | None = None,
        *,
        key_serializer: SerializerArg = None,
        value_serializer: SerializerArg = None,
        producer_listener: ProducerListener | None = None,
        default_topic: str | None = None,
        transaction_id_suffix: str | None = None,
    ) -> None:
        self.settings = settings or KafkaBootSettings()
        producer = self.settings.kafka.producer
        auto = AutoSerializer()
        self._properties = {**self.settings.kafka.properties, **producer.properties}
        self._key_serializer = _resolve(
            key_serializer or producer.key_serializer, auto, self._properties, True
        )
        self._value_serializer = _resolve(
            value_serializer or producer.value_serializer, auto, self._properties
        )
        self._type_headers = self._writes_type_headers()
        self.default_topic = default_topic or self.settings.kafka.template.default_topic
        self._kwargs = self.settings.kafka.producer_kwargs()
        self._transaction_id = transactional_id(
            self.settings.kafka.template.transaction_id_prefix or producer.transaction_id_prefix,
            transaction_id_suffix,
            producer.transaction_id_suffix,
        )
        if self._transaction_id is not None:
            self._kwargs["transactional_id"] = self._transaction_id
        unavailable_timeout = self.settings.kafka.template.unavailable_timeout.total_seconds()
        self._availability = Availability(unavailable_timeout, self.bootstrap_servers)
        self._health = PartitionHealth(unavailable_timeout)
        self._deliveries = Deliveries(
            producer.delivery_timeout_s,
            self.bootstrap_servers,
            producer_listener or LoggingProducerListener(),
            self._availability,
            self._health,
        )
        for path in self.settings.kafka.template.interceptors:
            self.add_interceptor(
                import_component(
                    path,
                    "kafka.template.interceptors",
                    "a producer interceptor",
                    lambda obj: isinstance(obj, ProducerInterceptor),
                    "to subclass kafkaboot.ProducerInterceptor",
                )
            )
        self._producer: AIOKafkaProducer | None = None
        self._checked_partitions: dict[str, set[int]] = {}
        self._transaction_lock = asyncio.Lock()

    @property
    def key_serializer(self) -> Serializer:
        """Writes keys (unless a send names its own)."""
        return self._key_serializer

    @key_serializer.setter
    def key_serializer(self, serializer: Serializer) -> None:
        self._key_serializer = serializer
        self._type_headers = self._writes_type_headers()

    @property
    def value_serializer(self) -> Serializer:
        """Writes values (unless a send names its own)."""
        return self._value_serializer

    @value_serializer.setter
    def value_serializer(self, serializer: Serializer) -> None:
        self._value_serializer = serializer
        self._type_headers = self._writes_type_headers()

    def _writes_type_headers(self) -> bool:
        """Whether a send may need type headers: asked per send only when one may."""
        return writes_type_headers(self._key_serializer) or writes_type_headers(
            self._value_serializer
        )

    @property
    def producer_listener(self) -> ProducerListener:
        """Told about every delivery."""
        return self._deliveries.listener

    @producer_listener.setter
    def producer_listener(self, listener: ProducerListener) -> None:
        self._deliveries.listener = listener

    def add_interceptor(self, interceptor: ProducerInterceptor) -> None:
        """Run ``interceptor`` around every send, after those added before it.

        Raises:
            TypeError: it is not a ``ProducerInterceptor``.
        """
        if not isinstance(interceptor, ProducerInterceptor):
            raise TypeError(
                f"{interceptor!r} is not a producer interceptor; subclass "
                "kafkaboot.ProducerInterceptor"
            )
        current = self._deliveries.interceptors
        given = current.interceptors if current is not None else ()
        self._deliveries.interceptors = ProducerInterceptors([*given, interceptor])

    @property
    def interceptors(self) -> tuple[ProducerInterceptor, ...]:
        """The producer interceptors, in the order they run."""
        current = self._deliveries.interceptors
        return current.interceptors if current is not None else ()

    @property
    def delivery_timeout(self) -> float:
        """Seconds a send may stay unconfirmed before its outcome is unknown."""
        return self._deliveries.timeout

    @delivery_timeout.setter
    def delivery_timeout(self, seconds: float) -> None:
        self._deliveries.timeout = seconds

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def broker_reachable(self, timeout: float = 2.0) -> bool:
        """Whether a broker answers a metadata request now (for readiness checks). When
        every broker fails to, sends are refused at once from then on, until one answers."""
        if self._producer is None:
            return False
        return await self._availability.ask(timeout)

    @property
    def kafka_available(self) -> bool:
        """False while the template knows that no broker answers, and so refuses sends at
        once (and while it is not started); True otherwise. No round trip."""
        return self._producer is not None and self._availability.unreachable_since is None

    @property
    def bootstrap_servers(self) -> str:
        return str(self._kwargs.get("bootstrap_servers", ""))

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer.

        Raises:
            KafkaBootError: already started, or Kafka cannot be reached.
        """
        if self._producer is not None:
            raise KafkaBootError("the KafkaTemplate is already started; stop it first")
        producer = AIOKafkaProducer(**self._kwargs)
        try:
            await producer.start()
        except BaseException as exc:
            # Whatever stopped it (a token provider's own error, say), close what it opened.
            await close_quietly(producer)
            if not isinstance(exc, KafkaError):
                raise
            raise KafkaBootError(
                f"the KafkaTemplate cannot reach Kafka at {self.bootstrap_servers} ({exc}); "
                "check kafka.bootstrap-servers and that the brokers are running "
                "(`kafkaboot broker start` runs one locally)"
            ) from exc
        self._producer = producer
        client = producer.client
        # The producer's own partitioner and accumulator: see partition_health.py.
        self._health.start(
            client.cluster, producer._partitioner, producer._message_accumulator, client.ready
        )
        ask = functools.partial(ask_brokers, client)
        self._availability.start(ask, client.cluster, self._health.refreshed)
        self._deliveries.start()

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Deliver what is queued and close, within ``timeout`` even if the broker is gone."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        await self._deliveries.stop()
        await self._availability.stop()
        await self._health.stop()
        deadline = time.monotonic() + timeout
        # Most of the budget goes to delivering what is queued; what is still in flight
        # after that fails below, and the close gets the rest.
        with contextlib.suppress(TimeoutError, KafkaError):
            await asyncio.wait_for(producer.flush(), timeout * 0.8)
        self._deliveries.fail_pending()
        try:
            await asyncio.wait_for(producer.stop(), max(0.5, deadline - time.monotonic()))
        except TimeoutError:
            log.warning(
                "the KafkaTemplate did not close within %.1fs (broker away?); records not yet "
                "delivered have failed",
                timeout,
            )
        except KafkaError as exc:
            log.warning("the KafkaTemplate closed with an error: %r", exc)

    async def __aenter__(self) -> KafkaTemplate:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaBootError("the KafkaTemplate is not started; call `await template.start()`")
        return self._producer

    # -- sending ------------------------------------------------------------------------

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
            key_serializer = _resolve(key_serializer, None, self._properties, True)
        if value_serializer is not None:
            value_serializer = _resolve(value_serializer, None, self._properties)
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
