"""``kafka.streams.*`` (Spring Boot's ``spring.kafka.streams``): declared so that a Spring
file loads, and warned about: Kafka Streams is a Java library."""

from __future__ import annotations

from typing import Any, ClassVar

from kafkaboot.config.section import Section
from kafkaboot.config.security import ClientSecurityProperties, SslProperties
from kafkaboot.config.types import DataSize, ServerList

__all__ = ["StreamsCleanupProperties", "StreamsProperties"]


class StreamsCleanupProperties(Section):
    on_startup: bool = False
    on_shutdown: bool = False


class StreamsProperties(Section):
    """``kafka.streams.*`` (Spring Boot's ``spring.kafka.streams``): accepted, not applied."""

    ignored_reason: ClassVar[str] = (
        "Kafka Streams is a Java library; a kafkaboot service consumes with listeners"
    )

    application_id: str | None = None
    auto_startup: bool = True
    bootstrap_servers: ServerList | None = None
    cache_max_size_buffering: int | None = None
    """Removed in Spring Boot 3.1 (``state-store-cache-max-size``)."""
    cache_max_bytes_buffering: int | None = None
    """Removed in Spring Boot 2.2 (``state-store-cache-max-size``)."""
    state_store_cache_max_size: DataSize | None = None
    cleanup: StreamsCleanupProperties = StreamsCleanupProperties()
    client_id: str | None = None
    replication_factor: int | None = None
    state_dir: str | None = None
    security: ClientSecurityProperties = ClientSecurityProperties()
    ssl: SslProperties = SslProperties()
    properties: dict[str, Any] = {}  # noqa: RUF012 - pydantic copies defaults.
    """Kafka Streams' own properties: not checked, since nothing reads them."""
