"""The ``kafka:`` section (alias ``spring.kafka:``), shaped like Spring Boot's ``spring.kafka.*``.

Each option is declared once: here, or in :mod:`kafkaboot.config.listener` for the listener
sections (re-exported here). Each model turns itself into aiokafka keyword arguments in one
place (``*_kwargs``), in Spring Boot's order of precedence: common typed options, then common
``properties``, then the client's typed options, then the client's ``properties``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
)

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
from kafkaboot.config.properties import map_properties
from kafkaboot.config.section import RawProperties, Section, lowercase, uppercase
from kafkaboot.config.types import DataSize, Duration, ImportPaths, ServerList, to_ms
from kafkaboot.errors import ConfigurationError, SerializationError

__all__ = [
    "AckModeName",
    "AdminProperties",
    "BackOffProperties",
    "ConsumerProperties",
    "DeadLetterProperties",
    "ErrorHandlerProperties",
    "KafkaProperties",
    "ListenerOverrides",
    "ListenerProperties",
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


def _acks(value: Any) -> Any:
    text = str(value).strip().lower()
    if text in {"all", "-1"}:
        return "all"
    return int(text) if text in {"0", "1"} else value


def _known_serializer(name: str | None) -> str | None:
    from kafkaboot.serialization import serializer_for

    if name is not None:
        try:
            serializer_for(name)
        except SerializationError as exc:
            raise ValueError(str(exc)) from None
    return name


def _known_deserializer(name: str | None) -> str | None:
    from kafkaboot.serialization import deserializer_for

    if name is not None:
        try:
            # The delegate is checked where the consumer is built; here, only the name.
            deserializer_for(name, delegate="bytes")
        except SerializationError as exc:
            raise ValueError(str(exc)) from None
    return name


SerializerName = Annotated[str | None, AfterValidator(_known_serializer)]
DeserializerName = Annotated[str | None, AfterValidator(_known_deserializer)]
Acks = Annotated[Literal["all", 0, 1], BeforeValidator(_acks)]


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _ms(duration: timedelta | None) -> int | None:
    return None if duration is None else to_ms(duration)


class SslProperties(Section):
    """TLS with PEM files (Java key stores are Java-only; convert them with ``keytool``)."""

    ca_location: Path | None = None
    """CA bundle that signs the brokers' certificates (Spring: trust store)."""
    certificate_location: Path | None = None
    """Client certificate, for mutual TLS."""
    key_location: Path | None = None
    """Client private key, for mutual TLS."""
    key_password: SecretStr | None = None
    check_hostname: bool = True

    def ssl_context(self) -> Any:
        """An ``ssl.SSLContext`` for aiokafka.

        Raises:
            ConfigurationError: a file is missing or cannot be read.
        """
        from aiokafka.helpers import create_ssl_context

        for key, path in (
            ("ca-location", self.ca_location),
            ("certificate-location", self.certificate_location),
            ("key-location", self.key_location),
        ):
            if path is not None and not path.is_file():
                raise ConfigurationError(
                    f"kafka.security.ssl.{key}: file {str(path)!r} does not exist; "
                    "give the path of a PEM file"
                )
        try:
            context = create_ssl_context(
                cafile=self.ca_location,
                certfile=self.certificate_location,
                keyfile=self.key_location,
                password=self.key_password.get_secret_value() if self.key_password else None,
            )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"kafka.security.ssl: cannot load the PEM files: {exc}"
            ) from exc
        context.check_hostname = self.check_hostname
        return context


class SaslProperties(Section):
    mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"] | None,
        BeforeValidator(uppercase),
    ] = None
    username: str | None = None
    password: SecretStr | None = None
    kerberos_service_name: str | None = None


class SecurityProperties(Section):
    protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(uppercase)
    ] = "PLAINTEXT"
    ssl: SslProperties = SslProperties()
    sasl: SaslProperties = SaslProperties()

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in {"SSL", "SASL_SSL"}:
            kwargs["ssl_context"] = self.ssl.ssl_context()
        if self.protocol.startswith("SASL"):
            sasl = self.sasl
            kwargs |= _drop_none(
                {
                    "sasl_mechanism": sasl.mechanism,
                    "sasl_plain_username": sasl.username,
                    "sasl_plain_password": sasl.password.get_secret_value()
                    if sasl.password
                    else None,
                    "sasl_kerberos_service_name": sasl.kerberos_service_name,
                }
            )
        return kwargs


class ProducerProperties(Section):
    """``kafka.producer.*``; safe by default: acks=all with idempotence, as Kafka 3+."""

    client_id: str | None = None
    acks: Acks = "all"
    retries: int | None = Field(default=None, ge=0)
    """Accepted for Spring files; aiokafka retries until ``request.timeout.ms`` instead."""
    batch_size: DataSize | None = None
    linger: Duration | None = None
    compression_type: Annotated[
        Literal["none", "gzip", "snappy", "lz4", "zstd"], BeforeValidator(lowercase)
    ] = "none"
    buffer_memory: DataSize | None = None
    """Accepted for Spring files; aiokafka has no producer buffer limit."""
    key_serializer: SerializerName = None
    """``None`` picks by type: str → UTF-8, bytes as is, anything else → JSON."""
    value_serializer: SerializerName = None
    transaction_id_prefix: str | None = None
    transaction_id_suffix: str | None = None
    """Appended to the prefix for the template's transactional id. ``None``: ``<host
    name>-<worker index>`` (the index of ``kafkaboot run --workers N``), unique per process
    of a service and the same when that process restarts. Set it (e.g. to a StatefulSet pod
    name) where host names are not stable."""
    enable_idempotence: bool = True
    delivery_timeout: Duration = timedelta(minutes=2)
    """How long a send may take before it fails (Java's ``delivery.timeout.ms``). aiokafka
    alone retries forever while a partition's leader is unreachable; kafkaboot enforces it."""
    properties: RawProperties = {}

    @property
    def delivery_timeout_s(self) -> float:
        raw = self.properties.get("delivery.timeout.ms")
        return int(raw) / 1000 if raw is not None else to_ms(self.delivery_timeout) / 1000

    def typed_kwargs(self) -> dict[str, Any]:
        return _drop_none(
            {
                "client_id": self.client_id,
                "acks": self.acks,
                "max_batch_size": self.batch_size,
                "linger_ms": _ms(self.linger),
                "compression_type": None
                if self.compression_type == "none"
                else self.compression_type,
                "enable_idempotence": self.enable_idempotence,
            }
        )


class ConsumerProperties(Section):
    """``kafka.consumer.*``; auto-commit is off: the listener container commits."""

    client_id: str | None = None
    group_id: str | None = None
    auto_offset_reset: Annotated[
        Literal["earliest", "latest", "none"], BeforeValidator(lowercase)
    ] = "latest"
    enable_auto_commit: bool = False
    auto_commit_interval: Duration | None = None
    max_poll_records: int = Field(default=500, ge=1)
    max_poll_interval: Duration = timedelta(minutes=5)
    session_timeout: Duration = timedelta(seconds=45)
    heartbeat_interval: Duration = timedelta(seconds=3)
    isolation_level: Annotated[
        Literal["read_uncommitted", "read_committed"], BeforeValidator(lowercase)
    ] = "read_uncommitted"
    fetch_min_size: DataSize | None = None
    fetch_max_wait: Duration | None = None
    key_deserializer: DeserializerName = None
    value_deserializer: DeserializerName = None
    properties: RawProperties = {}

    def typed_kwargs(self) -> dict[str, Any]:
        return _drop_none(
            {
                "client_id": self.client_id,
                "group_id": self.group_id,
                "auto_offset_reset": self.auto_offset_reset,
                "enable_auto_commit": self.enable_auto_commit,
                "auto_commit_interval_ms": _ms(self.auto_commit_interval),
                "max_poll_records": self.max_poll_records,
                "max_poll_interval_ms": _ms(self.max_poll_interval),
                "session_timeout_ms": _ms(self.session_timeout),
                "heartbeat_interval_ms": _ms(self.heartbeat_interval),
                "isolation_level": self.isolation_level,
                "fetch_min_bytes": self.fetch_min_size,
                "fetch_max_wait_ms": _ms(self.fetch_max_wait),
            }
        )


class TemplateProperties(Section):
    default_topic: str | None = None
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


class AdminProperties(Section):
    client_id: str | None = None
    auto_create: bool = True
    """Create the declared topics at startup."""
    fail_fast: bool = False
    """Stop startup when the broker cannot be reached to create topics."""
    operation_timeout: Duration = timedelta(seconds=30)
    properties: RawProperties = {}


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
    producer: ProducerProperties = ProducerProperties()
    consumer: ConsumerProperties = ConsumerProperties()
    listener: ListenerProperties = ListenerProperties()
    listeners: dict[str, ListenerOverrides] = {}
    """Per listener id (``@kafka_listener(id=...)``, else ``module.function``)."""
    retry: RetryProperties = RetryProperties()
    template: TemplateProperties = TemplateProperties()
    admin: AdminProperties = AdminProperties()
    topics: list[TopicDeclaration] = []

    def _common_kwargs(self) -> dict[str, Any]:
        return (
            _drop_none(
                {"bootstrap_servers": ",".join(self.bootstrap_servers), "client_id": self.client_id}
            )
            | self.security.client_kwargs()
        )

    def producer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer`` (serializers excluded)."""
        return (
            self._common_kwargs()
            | map_properties(self.properties, "producer")
            | self.producer.typed_kwargs()
            | map_properties(self.producer.properties, "producer")
        )

    def consumer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaConsumer`` (deserializers excluded)."""
        return (
            self._common_kwargs()
            | map_properties(self.properties, "consumer")
            | self.consumer.typed_kwargs()
            | map_properties(self.consumer.properties, "consumer")
        )

    def admin_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaAdminClient``."""
        return (
            self._common_kwargs()
            | map_properties(self.properties, "admin")
            | _drop_none({"client_id": self.admin.client_id})
            | {"request_timeout_ms": to_ms(self.admin.operation_timeout)}
            | map_properties(self.admin.properties, "admin")
        )

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
        return notes
