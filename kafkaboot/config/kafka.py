"""The ``kafka:`` section (alias ``spring.kafka:``), shaped like Spring Boot's ``spring.kafka.*``.

Each option is declared once: here, or in :mod:`kafkaboot.config.listener` for the listener
sections (re-exported here). Each model turns itself into aiokafka keyword arguments in one
place (``*_kwargs``), in Spring Boot's order of precedence: common typed options, then common
``properties``, then the client's typed options, then the client's ``properties``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
)

from kafkaboot.config.clients import (
    AdminProperties,
    ClientSection,
    ConsumerProperties,
    ProducerProperties,
)
from kafkaboot.config.ignored import ignored_settings
from kafkaboot.config.listener import (
    AckModeName,
    BackOffProperties,
    DeadLetterProperties,
    ErrorHandlerProperties,
    ListenerOverrides,
    ListenerProperties,
    RetryProperties,
    RetryTopicProperties,
    SeekProperties,
)
from kafkaboot.config.properties import ClientKind, ignored_properties, map_properties
from kafkaboot.config.secrets import MaskedDict
from kafkaboot.config.section import RawProperties, Section, drop_none
from kafkaboot.config.security import (
    JaasProperties,
    PemSslProperties,
    SaslProperties,
    SecurityProperties,
    SslProperties,
)
from kafkaboot.config.streams import StreamsProperties
from kafkaboot.config.types import Duration, ImportPaths, ServerList, to_ms
from kafkaboot.security.client import security_kwargs
from kafkaboot.security.names import KEY_LOCATION, SECURITY_PROPERTIES

__all__ = [
    "AckModeName",
    "AdminProperties",
    "BackOffProperties",
    "ConsumerProperties",
    "DeadLetterProperties",
    "ErrorHandlerProperties",
    "JaasProperties",
    "KafkaProperties",
    "ListenerOverrides",
    "ListenerProperties",
    "PemSslProperties",
    "ProducerProperties",
    "RetryProperties",
    "RetryTopicProperties",
    "SaslProperties",
    "Section",
    "SecurityProperties",
    "SeekProperties",
    "SslProperties",
    "TemplateProperties",
    "TopicDeclaration",
]


def _security_only(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k in SECURITY_PROPERTIES}


class TemplateProperties(Section):
    default_topic: str | None = None
    transaction_id_prefix: str | None = None
    """The template's transactional id prefix, instead of ``kafka.producer.transaction-id-prefix``
    (Spring Boot's ``spring.kafka.template.transaction-id-prefix``)."""
    observation_enabled: bool | None = None
    """``false``: no tracing spans for sends even with a tracer provider."""
    interceptors: ImportPaths = []
    """Producer interceptors, in order: import paths (``package.module:Name``)."""
    unavailable_timeout: Duration = timedelta(seconds=5)
    """How long a broker has to answer the template's "are you there?" before it counts as
    not answering; asked when a send stays unconfirmed this long (or aiokafka fails to
    refresh its metadata). While no broker answers, sends are refused at once, nothing
    written, instead of each waiting out the delivery timeout."""

    @field_validator("unavailable_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        # 0 would make every question time out at once: every send refused, for good.
        if value <= timedelta(0):
            raise ValueError("must be more than 0 (e.g. 5s): it is how long a broker may take")
        return value


_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def _topic_name(name: str) -> str:
    if not _TOPIC_NAME.match(name) or name in {".", ".."}:
        raise ValueError(
            f"{name!r} is not a valid topic name: use 1-249 letters, digits, '.', '_' or '-'"
        )
    return name


class TopicDeclaration(Section):
    """A topic to create at startup (Spring's ``NewTopic``)."""

    name: Annotated[str, AfterValidator(_topic_name)]
    partitions: int | None = Field(default=None, ge=1)
    """``None``: the broker's ``num.partitions``."""
    replication_factor: int | None = Field(default=None, ge=1)
    """``None``: the broker's ``default.replication.factor``."""
    configs: dict[
        str,
        Annotated[
            str, BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
        ],
    ] = {}


class KafkaProperties(Section):
    """Everything under ``kafka:`` (or ``spring.kafka:``)."""

    bootstrap_servers: ServerList = ["localhost:9092"]
    client_id: str | None = None
    properties: RawProperties = {}
    security: SecurityProperties = SecurityProperties()
    ssl: SslProperties = SslProperties()
    """Spring Boot's ``spring.kafka.ssl``: stores as PEM, PKCS12 or JKS."""
    jaas: JaasProperties = JaasProperties()
    """Spring Boot's ``spring.kafka.jaas``: a login module and its options."""
    producer: ProducerProperties = ProducerProperties()
    consumer: ConsumerProperties = ConsumerProperties()
    listener: ListenerProperties = ListenerProperties()
    listeners: dict[str, ListenerOverrides] = {}
    """Per listener id (``@kafka_listener(id=...)``, else ``module.function``)."""
    retry: RetryProperties = RetryProperties()
    template: TemplateProperties = TemplateProperties()
    admin: AdminProperties = AdminProperties()
    streams: StreamsProperties = StreamsProperties()
    """Spring Boot's ``spring.kafka.streams``: accepted so that a Spring file loads; warned."""
    topics: list[TopicDeclaration] = []

    def security_properties(
        self, client: ClientSection | None = None, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The Kafka security properties of a client, merged as Spring Boot merges them:
        ``jaas``, then ``security`` and ``ssl``, then ``properties``, then the client's own
        ``security``, ``ssl`` and ``properties``, then ``overrides`` (a listener's own
        properties), each key overriding the one before."""
        layers = [
            self.jaas.kafka_properties(),
            self.security.kafka_properties(),
            self.ssl.kafka_properties(),
            _security_only(self.properties),
        ]
        if client is not None:
            layers += [
                client.security.kafka_properties(),
                client.ssl.kafka_properties(),
                _security_only(client.properties),
            ]
        layers.append(_security_only(dict(overrides or {})))
        props: dict[str, Any] = {}
        for layer in layers:
            if any(key.startswith("ssl.keystore.") for key in layer) and KEY_LOCATION not in layer:
                # Another key store: a separate key file of a lower layer is not its key.
                props.pop(KEY_LOCATION, None)
            props |= layer
        return props

    def _kwargs(
        self,
        kind: ClientKind,
        client: ClientSection,
        typed: dict[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> MaskedDict:
        common = drop_none(
            {"bootstrap_servers": ",".join(self.bootstrap_servers), "client_id": self.client_id}
        )
        return MaskedDict(
            common
            | map_properties(self.properties, kind)
            | typed
            | map_properties(client.properties, kind)
            | map_properties(overrides or {}, kind)
            | security_kwargs(self.security_properties(client, overrides))
        )

    def producer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer`` (serializers excluded).

        Raises:
            ConfigurationError: a trust or key store cannot be read, or SASL is incomplete.
        """
        return self._kwargs("producer", self.producer, self.producer.typed_kwargs())

    def consumer_kwargs(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaConsumer`` (deserializers excluded); ``overrides``
        are raw properties above all the others (a listener's own ``properties``).

        Raises:
            ConfigurationError: a trust or key store cannot be read, or SASL is incomplete.
        """
        typed = self.consumer.typed_kwargs()
        return self._kwargs("consumer", self.consumer, typed, overrides)

    def admin_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaAdminClient``.

        Raises:
            ConfigurationError: a trust or key store cannot be read, or SASL is incomplete.
        """
        typed = drop_none({"client_id": self.admin.client_id}) | {
            "request_timeout_ms": to_ms(self.admin.operation_timeout)
        }
        return self._kwargs("admin", self.admin, typed)

    def check_security(self) -> None:
        """Read every store and check the SASL settings of each client, as at startup.

        Raises:
            ConfigurationError: naming the setting and file that cannot be used.
        """
        for client in (self.producer, self.consumer, self.admin):
            security_kwargs(self.security_properties(client))

    def notices(self) -> list[str]:
        """Options that were set but have no effect with aiokafka, worded for a log line."""
        notes = []
        if self.producer.retries is not None:
            notes.append(
                "kafka.producer.retries is ignored: aiokafka retries a send until "
                "request.timeout.ms passes (set kafka.producer.properties.request.timeout.ms)"
            )
        if self.producer.buffer_memory is not None:
            notes.append(
                "kafka.producer.buffer-memory is ignored: aiokafka has no producer buffer limit"
            )
        notes += [f"{key} is ignored: {why}" for key, why in ignored_settings(self, "kafka")]
        maps = {
            "kafka.properties": self.properties,
            "kafka.producer.properties": self.producer.properties,
            "kafka.consumer.properties": self.consumer.properties,
            "kafka.admin.properties": self.admin.properties,
        } | {f"kafka.listeners.{i}.properties": o.properties for i, o in self.listeners.items()}
        for where, properties in maps.items():
            notes += [
                f"{where}.{key} is ignored: {why}" for key, why in ignored_properties(properties)
            ]
        return notes
