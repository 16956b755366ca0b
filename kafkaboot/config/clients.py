"""The clients' sections: ``kafka.producer.*``, ``kafka.consumer.*`` and ``kafka.admin.*``,
each with Spring Boot's per-client overrides (brokers, client id, security, TLS, raw
``properties``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from kafkaboot.config.ignored import spring_only
from kafkaboot.config.section import RawProperties, Section, drop_none, lowercase
from kafkaboot.config.security import ClientSecurityProperties, SslProperties
from kafkaboot.config.types import DataSize, Duration, ServerList, to_ms
from kafkaboot.errors import SerializationError

__all__ = ["AdminProperties", "ClientSection", "ConsumerProperties", "ProducerProperties"]


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


def _ms(duration: timedelta | None) -> int | None:
    return None if duration is None else to_ms(duration)


def _servers(servers: list[str] | None) -> str | None:
    return None if servers is None else ",".join(servers)


class ClientSection(Section):
    """What Spring Boot lets each client (consumer, producer, admin) override."""

    bootstrap_servers: ServerList | None = None
    """This client's brokers, instead of ``kafka.bootstrap-servers``."""
    client_id: str | None = None
    security: ClientSecurityProperties = ClientSecurityProperties()
    ssl: SslProperties = SslProperties()
    properties: RawProperties = {}  # noqa: RUF012 - pydantic copies defaults.


class ProducerProperties(ClientSection):
    """``kafka.producer.*``; safe by default: acks=all with idempotence, as Kafka 3+."""

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

    @property
    def delivery_timeout_s(self) -> float:
        raw = self.properties.get("delivery.timeout.ms")
        return int(raw) / 1000 if raw is not None else to_ms(self.delivery_timeout) / 1000

    def typed_kwargs(self) -> dict[str, Any]:
        return drop_none(
            {
                "bootstrap_servers": _servers(self.bootstrap_servers),
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


class ConsumerProperties(ClientSection):
    """``kafka.consumer.*``; auto-commit is off: the listener container commits."""

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

    def typed_kwargs(self) -> dict[str, Any]:
        return drop_none(
            {
                "bootstrap_servers": _servers(self.bootstrap_servers),
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


class AdminProperties(ClientSection):
    auto_create: bool = True
    """Create the declared topics at startup."""
    fail_fast: bool = False
    """Stop startup when the broker cannot be reached to create topics."""
    operation_timeout: Duration = timedelta(seconds=30)
    close_timeout: Duration | None = spring_only(
        "aiokafka's admin client closes at once; there is nothing to wait for"
    )
    modify_topic_configs: bool | None = spring_only(
        "not supported yet: declared topics are created when missing, and existing topics' "
        "configs are left as they are"
    )
