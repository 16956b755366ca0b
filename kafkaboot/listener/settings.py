"""A listener container's effective options, resolved once at registration, and what its
consumers need of it."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import TopicPartition

from kafkaboot.config.properties import validate_properties
from kafkaboot.config.secrets import MaskedDict
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.config.types import to_ms
from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.listener.acks import AckMode

if TYPE_CHECKING:
    from kafkaboot.config.kafka import SeekProperties
    from kafkaboot.listener.attempts import DeliveryAttempts
    from kafkaboot.listener.binding import Invoker
    from kafkaboot.listener.endpoint import ListenerEndpoint, TopicPartitionOffset
    from kafkaboot.listener.inflight import InFlight
    from kafkaboot.listener.stored import StoredOffsets

__all__ = ["ContainerSettings", "Listener", "Ordering", "effective_settings"]


class Ordering(enum.Enum):
    """Which records of a listener may be handled at the same time."""

    PARTITION = "partition"
    """One record of a partition at a time, in offset order (the default)."""
    KEY = "key"
    """Records of one key one at a time, in offset order; different keys concurrently, up
    to ``max_in_flight``. Records without a key share one lane per partition."""
    NONE = "none"
    """Any records concurrently, up to ``max_in_flight``: no order at all."""


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerSettings:
    """A listener's effective options: the endpoint's, else configuration's, else defaults."""

    group_id: str | None
    concurrency: int
    ack_mode: AckMode
    ack_count: int
    ack_time: float
    """Seconds."""
    poll_timeout: float
    shutdown_timeout: float
    auto_startup: bool
    batch: bool
    consumer_kwargs: dict[str, Any]
    client_id_prefix: str
    missing_topics_fatal: bool = False
    transaction_id_prefix: str | None = None
    """Set when each record is handled in a Kafka transaction together with its offset."""
    ordering: Ordering = Ordering.PARTITION
    max_in_flight: int = 256
    """With ``ordering`` key or none: records taken and not finished, at most."""
    idle_event_interval: float | None = None
    """Seconds without records before a ``ListenerIdle`` event (``None``: never)."""
    idle_partition_event_interval: float | None = None
    """The same for each partition (``PartitionIdle``)."""
    monitor_interval: float = 30.0
    """How often a consumer that does not poll is reported (``NonResponsiveConsumer``)."""
    no_poll_threshold: float = 3.0
    """A consumer that has not polled for this many ``poll_timeout``s is not responsive."""
    idle_between_polls: float = 0.0
    """Seconds to wait after a poll's records are handled before the next poll."""
    auth_exception_retry_interval: float | None = None
    """Seconds before polling again after an authentication or authorization failure
    (``None``: such a failure stops the container)."""
    log_container_config: bool = False
    offset_store: str | None = None
    """A database URL: offsets are stored there with the handler's results."""

    @property
    def transactional(self) -> bool:
        return self.transaction_id_prefix is not None

    @property
    def concurrent(self) -> bool:
        """Whether records of one partition may be handled at the same time."""
        return self.ordering is not Ordering.PARTITION

    def conflict(self) -> str | None:
        """Why these options cannot work together (``None``: they can)."""
        if self.offset_store is not None:
            stored = self._offset_store_conflict()
            if stored is not None:
                return stored
        if self.transactional and self.ack_mode.is_manual:
            return (
                "with transactions (kafka.producer.transaction-id-prefix) each record's offset "
                "commits in its transaction, so a manual ack mode cannot apply; use an "
                "automatic ack mode"
            )
        if not self.concurrent:
            return None
        name = self.ordering.value
        if self.transactional:
            return (
                f"ordering={name!r} cannot run in transactions (kafka.producer."
                "transaction-id-prefix): a transaction commits its record's offset, and "
                "records finishing out of order would commit past unfinished ones; use "
                "ordering='partition' (the default) or a template without transactions"
            )
        if self.batch:
            return (
                f"ordering={name!r} applies to record listeners, and this one is a batch "
                "listener; use ordering='partition' (the default), or a record listener"
            )
        return None

    def _offset_store_conflict(self) -> str | None:
        problem = None
        if self.group_id is None:
            problem = "it has no group id (offsets are stored per group); give it one"
        elif self.transactional:
            problem = (
                "Kafka transactions (kafka.producer.transaction-id-prefix) commit offsets to "
                "Kafka, not with the database's results; use one or the other"
            )
        elif self.ack_mode.is_manual:
            problem = (
                "the offsets commit with the handler's transaction, so there is nothing to "
                "acknowledge; use an automatic ack mode and raise to roll back"
            )
        elif self.concurrent:
            problem = (
                f"ordering={self.ordering.value!r} finishes records out of order, and the "
                "store keeps one next offset per partition; use ordering='partition'"
            )
        elif self.consumer_kwargs.get("enable_auto_commit"):
            problem = (
                "auto-commit (kafka.consumer.enable-auto-commit) would commit offsets to "
                "Kafka without the results; turn it off"
            )
        return None if problem is None else f"an offset store cannot work here: {problem}"

    @property
    def commits(self) -> bool:
        """Whether the container commits offsets itself (not with Kafka auto-commit, not
        without a group, and not when transactions commit them)."""
        return (
            self.group_id is not None
            and not self.consumer_kwargs.get("enable_auto_commit")
            and not self.transactional
        )


class Listener(Protocol):
    """What a consumer needs of its container (a ``ListenerContainer``)."""

    endpoint: ListenerEndpoint
    settings: ContainerSettings
    invoker: Invoker
    template: Any
    send_to: str | None
    error_handler: Any
    rebalance_listener: Any
    initial_seek: SeekProperties | None
    offset_store: StoredOffsets | None
    seeked: set[TopicPartition]
    paused: bool
    attempts: DeliveryAttempts
    in_flight: InFlight | None

    @property
    def listener_id(self) -> str: ...

    @property
    def filter(self) -> Any: ...

    @property
    def not_before(self) -> Any: ...

    @property
    def interceptors(self) -> Sequence[Any]: ...

    def partitions_for(self, index: int) -> list[TopicPartitionOffset]: ...

    def record_error(self, error: BaseException) -> None: ...

    def fail(self, reason: str) -> None: ...


def effective_settings(
    endpoint: ListenerEndpoint, settings: KafkaBootSettings, transaction_id_prefix: str | None
) -> ContainerSettings:
    """A listener's options: the endpoint's (its decorator and ``kafka.listeners.<id>``),
    else ``kafka.listener.*`` / ``kafka.consumer.*``, else the defaults.

    Raises:
    ListenerDefinitionError: no group id for a subscription, or bad raw properties.
    """
    kafka = settings.kafka
    listener, consumer = kafka.listener, kafka.consumer
    group_id = endpoint.group_id or consumer.group_id
    if group_id is None and not endpoint.partitions:
        raise ListenerDefinitionError(
            f"listener {endpoint.listener_id}: a group subscription needs a group id; pass "
            "group_id=... or set kafka.consumer.group-id"
        )
    try:
        own = validate_properties(dict(endpoint.properties))
    except ValueError as exc:
        raise ListenerDefinitionError(
            f"listener {endpoint.listener_id}: properties: {exc}"
        ) from None
    kwargs = MaskedDict(kafka.consumer_kwargs(own))
    kwargs.pop("client_id", None)
    kwargs.pop("group_id", None)
    prefix = (
        endpoint.client_id_prefix or listener.client_id or consumer.client_id or kafka.client_id
    )
    return ContainerSettings(
        group_id=group_id,
        concurrency=endpoint.concurrency or listener.concurrency or 1,
        ack_mode=AckMode(endpoint.ack_mode or listener.ack_mode),
        ack_count=endpoint.ack_count or listener.ack_count,
        ack_time=to_ms(endpoint.ack_time or listener.ack_time) / 1000,
        poll_timeout=to_ms(listener.poll_timeout) / 1000,
        shutdown_timeout=to_ms(listener.shutdown_timeout) / 1000,
        auto_startup=listener.auto_startup
        if endpoint.auto_startup is None
        else endpoint.auto_startup,
        batch=(listener.type == "batch") if endpoint.batch is None else endpoint.batch,
        consumer_kwargs=kwargs,
        client_id_prefix=prefix or f"kafkaboot-{endpoint.listener_id.rsplit('.', 1)[-1]}",
        missing_topics_fatal=listener.missing_topics_fatal,
        transaction_id_prefix=transaction_id_prefix,
        ordering=Ordering(endpoint.ordering or listener.ordering),
        max_in_flight=endpoint.max_in_flight or listener.max_in_flight,
        idle_event_interval=_seconds(listener.idle_event_interval),
        idle_partition_event_interval=_seconds(listener.idle_partition_event_interval),
        monitor_interval=to_ms(listener.monitor_interval) / 1000,
        no_poll_threshold=listener.no_poll_threshold,
        idle_between_polls=to_ms(listener.idle_between_polls) / 1000,
        auth_exception_retry_interval=_seconds(listener.auth_exception_retry_interval),
        log_container_config=listener.log_container_config,
        offset_store=endpoint.offset_store,
    )


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else to_ms(duration) / 1000
