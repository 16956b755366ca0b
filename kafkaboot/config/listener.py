"""The listener sections: ``kafka.listener.*`` (every container's defaults and error
handler), ``kafka.listeners.<id>`` (one listener's overrides, where it starts reading) and
``kafka.retry.topic.*`` (retry topics)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from kafkaboot.config.ignored import spring_only
from kafkaboot.config.section import RawProperties, Section, lowercase
from kafkaboot.config.types import Duration, ImportPaths, ServerList

__all__ = [
    "AckModeName",
    "BackOffProperties",
    "DeadLetterProperties",
    "ErrorHandlerProperties",
    "ListenerOverrides",
    "ListenerProperties",
    "OffsetStoreProperties",
    "OrderingName",
    "RetryProperties",
    "RetryTopicProperties",
    "SeekProperties",
]

AckModeName = Literal[
    "record", "batch", "time", "count", "count_time", "manual", "manual_immediate"
]
OrderingName = Literal["partition", "key", "none"]


class BackOffProperties(Section):
    """``kafka.listener.error-handler.backoff.*``: retries in place before recovery."""

    initial: Duration = timedelta(0)
    """The wait before the first retry."""
    multiplier: float = Field(default=1.0, ge=1.0)
    """1: the same wait every time (``FixedBackOff``); more: waits grow (``ExponentialBackOff``)."""
    max_interval: Duration = timedelta(seconds=30)
    max_attempts: int = Field(default=10, ge=1)
    """Deliveries in all, the first one included."""
    jitter: float = Field(default=0.0, ge=0.0, lt=1.0)


class DeadLetterProperties(Section):
    """``kafka.listener.error-handler.dead-letter.*``: where records go after the retries."""

    enabled: bool = False
    """Publish failed records to ``<topic><topic-suffix>`` instead of logging and skipping."""
    topic_suffix: str = "-dlt"


class ErrorHandlerProperties(Section):
    """``kafka.listener.error-handler.*``: the default error handler of every listener."""

    backoff: BackOffProperties = BackOffProperties()
    dead_letter: DeadLetterProperties = DeadLetterProperties()


class ListenerProperties(Section):
    """``kafka.listener.*``: defaults for every listener container (Spring's names)."""

    type: Annotated[Literal["single", "batch"], BeforeValidator(lowercase)] = "single"
    ack_mode: Annotated[AckModeName, BeforeValidator(lowercase)] = "batch"
    ack_count: int = Field(default=1, ge=1)
    ack_time: Duration = timedelta(seconds=5)
    concurrency: int | None = Field(default=None, ge=1)
    poll_timeout: Duration = timedelta(seconds=5)
    auto_startup: bool = True
    missing_topics_fatal: bool = False
    shutdown_timeout: Duration = timedelta(seconds=10)
    error_handler: ErrorHandlerProperties = ErrorHandlerProperties()
    ordering: Annotated[OrderingName, BeforeValidator(lowercase)] = "partition"
    """``key``: records of different keys concurrently, each key's in offset order;
    ``none``: any records concurrently; ``partition``: one record of a partition at a time."""
    max_in_flight: int = Field(default=256, ge=1)
    """With ``ordering`` key or none: records handled or waiting at once, at most."""
    interceptors: ImportPaths = []
    """Record or batch interceptors of every listener, in order: import paths
    (``package.module:ClassOrFactoryOrObject``)."""
    idle_event_interval: Duration | None = None
    """Publish ``ListenerIdle`` when a listener has had no records this long."""
    idle_partition_event_interval: Duration | None = None
    """Publish ``PartitionIdle`` when a partition has had no records this long."""
    monitor_interval: Duration = timedelta(seconds=30)
    """How often a consumer that does not poll is reported (``NonResponsiveConsumer``)."""
    no_poll_threshold: float = Field(default=3.0, gt=0)
    """A consumer that has not polled for this many ``poll-timeout``s is not responsive."""
    client_id: str | None = None
    """Prefix of the listeners' consumer client ids (``<prefix>-<n>``), before
    ``kafka.consumer.client-id``."""
    observation_enabled: bool | None = None
    """``false``: no tracing spans for records even with a tracer provider; ``true`` or unset:
    spans when OpenTelemetry is set up (``management.tracing.enabled``)."""
    async_acks: bool | None = None
    """Accepted: acknowledgements may always come out of order; the commit is the prefix of
    acknowledged records in each partition, whatever this says."""
    idle_between_polls: Duration = timedelta(0)
    """Wait this long after each poll's records are handled before polling again (bounded
    by ``max.poll.interval.ms``); a stop interrupts the wait."""
    auth_exception_retry_interval: Duration | None = None
    """``None``: an authentication or authorization failure stops the container. Set: it
    polls again after this long (the failure stays in its status until a poll works)."""
    immediate_stop: bool | None = spring_only(
        "a stop always finishes only the records in hand (within shutdown-timeout) and leaves "
        "the rest of the fetched batch to be redelivered"
    )
    change_consumer_thread_name: bool | None = spring_only(
        "listeners run as tasks on the event loop: there are no consumer threads to name"
    )
    log_container_config: bool = False
    """Log each container's effective settings (secrets masked) when it starts."""
    only_log_record_metadata: bool | None = spring_only(
        "removed in Spring Kafka 3.0; kafkaboot logs record metadata, never record values"
    )


class RetryTopicBackOffProperties(Section):
    """``kafka.retry.topic.backoff.*`` (Spring Boot 3.4+)."""

    delay: Duration = timedelta(seconds=1)
    multiplier: float = Field(default=0.0, ge=0.0)
    max_delay: Duration = timedelta(0)
    random: bool = False


class RetryTopicProperties(Section):
    """``kafka.retry.topic.*`` (Spring Boot's ``spring.kafka.retry.topic.*``): non-blocking
    retries through retry topics for every listener that declares no ``@retryable_topic``."""

    enabled: bool = False
    attempts: int = Field(default=3, ge=1)
    """Deliveries in all, the first one (on the main topic) included."""
    delay: Duration = timedelta(seconds=1)
    multiplier: float = Field(default=0.0, ge=0.0)
    """0 or 1: the same delay every time; more: delays grow."""
    max_delay: Duration = timedelta(0)
    """0: no cap."""
    random_back_off: bool = False
    backoff: RetryTopicBackOffProperties | None = None
    """Spring Boot 3.4's spelling of ``delay``, ``multiplier``, ``max-delay`` and
    ``random-back-off``; where set, it wins over them."""

    @model_validator(mode="after")
    def _backoff_wins(self) -> RetryTopicProperties:
        if self.backoff is None:
            return self
        fields = {"delay": "delay", "multiplier": "multiplier", "max_delay": "max_delay"}
        for name, target in fields.items():
            if name in self.backoff.model_fields_set:
                object.__setattr__(self, target, getattr(self.backoff, name))
        if "random" in self.backoff.model_fields_set:
            object.__setattr__(self, "random_back_off", self.backoff.random)
        return self


class RetryProperties(Section):
    topic: RetryTopicProperties = RetryTopicProperties()


class SeekProperties(Section):
    """``kafka.listeners.<id>.seek``: where a listener starts reading each assigned partition."""

    to: Annotated[
        Literal["committed", "beginning", "end", "timestamp", "offset"], BeforeValidator(lowercase)
    ] = "committed"
    timestamp: datetime | None = None
    """For ``to: timestamp``: the first record at or after this time (with a zone)."""
    ago: Duration | None = None
    """For ``to: timestamp``: instead of ``timestamp``, this long before the assignment."""
    offsets: dict[int, int] = {}
    """For ``to: offset``: partition number → offset."""
    once: bool = False
    """``false`` (default): seek only partitions for which the group has no committed offset
    yet, so a rebalance or a restart never skips or repeats records. ``true``: seek on the
    first assignment of each partition in this process, committed offset or not (a replay,
    or a skip, on start); a partition that later moves to this process from another one is
    sought too."""

    @model_validator(mode="after")
    def _complete(self) -> SeekProperties:
        if self.to == "timestamp":
            if (self.timestamp is None) == (self.ago is None):
                raise ValueError(
                    "to: timestamp needs timestamp: <time with a zone> or ago: <duration>"
                )
            if self.timestamp is not None and self.timestamp.tzinfo is None:
                raise ValueError("timestamp needs a zone, e.g. 2026-01-01T00:00:00Z")
        if self.to == "offset" and not self.offsets:
            raise ValueError("to: offset needs offsets: {partition: offset, ...}")
        return self


class OffsetStoreProperties(Section):
    """``kafka.listeners.<id>.offset-store``: keep the listener's offsets in a database,
    in the transaction its handler writes its results in (docs/offset-store.md)."""

    url: str
    """``sqlite+aiosqlite:///central.db`` (embedded) or
    ``postgresql+asyncpg://user:password@host/db``; ``${DATABASE_URL}`` works."""


class ListenerOverrides(Section):
    """``kafka.listeners.<id>``: one listener's settings, above its decorator's arguments
    and the ``kafka.listener.*`` / ``kafka.consumer.*`` defaults."""

    topics: ServerList | None = None
    topic_pattern: str | None = None
    group_id: str | None = None
    concurrency: int | None = Field(default=None, ge=1)
    auto_startup: bool | None = None
    batch: bool | None = None
    ack_mode: Annotated[AckModeName | None, BeforeValidator(lowercase)] = None
    ack_count: int | None = Field(default=None, ge=1)
    ack_time: Duration | None = None
    max_poll_records: int | None = Field(default=None, ge=1)
    ordering: Annotated[OrderingName | None, BeforeValidator(lowercase)] = None
    max_in_flight: int | None = Field(default=None, ge=1)
    interceptors: ImportPaths = []
    """This listener's interceptors, after ``kafka.listener.interceptors`` and the
    decorator's."""
    properties: RawProperties = {}
    rebalance_listener: str | None = None
    """An import path, ``package.module:ClassOrFactory``."""
    error_handler: str | None = None
    """An import path, ``package.module:ClassOrFactory``."""
    seek: SeekProperties | None = None
    offset_store: OffsetStoreProperties | None = None
