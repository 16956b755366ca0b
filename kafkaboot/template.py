"""KafkaTemplate: sending records, Spring style, on aiokafka's producer.

``send`` returns as soon as the record is queued, with a future for its delivery (Spring's
``CompletableFuture<SendResult>``), so a service can fire many sends and await them
together. Values are serialized by type unless a serializer is configured or given.

KafkaTemplate is configuration and lifecycle here; its sends are in
:mod:`kafkaboot.template_sending` and its transactions in :mod:`kafkaboot.template_transactions`,
the two classes it inherits from.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from kafkaboot import clients
from kafkaboot.availability import Availability, ask_brokers
from kafkaboot.components import import_component
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.delivery import Deliveries
from kafkaboot.errors import KafkaBootError
from kafkaboot.interceptors import ProducerInterceptor, ProducerInterceptors
from kafkaboot.partition_health import PartitionHealth
from kafkaboot.producer_listener import LoggingProducerListener, ProducerListener
from kafkaboot.records import HeadersArg, ProducerRecord, SendResult
from kafkaboot.serialization import AutoSerializer, Serializer, SerializerArg, writes_type_headers
from kafkaboot.template_sending import TemplateSending, resolve_serializer
from kafkaboot.template_transactions import STOP_TIMEOUT_S, TemplateTransactions, close_quietly
from kafkaboot.transaction import TransactionScope, transaction_scope, transactional_id

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


class KafkaTemplate(TemplateSending, TemplateTransactions):
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
        self._key_serializer = resolve_serializer(
            key_serializer or producer.key_serializer, auto, self._properties, True
        )
        self._value_serializer = resolve_serializer(
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
        producer = clients.producer(**self._kwargs)
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
        if not clients.has_connections(producer):
            # No brokers to watch nor batches to sweep: it answers while it is open, and a
            # record is in its log once sent (the partition breakers stay closed).
            self._availability.start(producer.flush, None)
        else:
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
