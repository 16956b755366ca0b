"""A listener container's effective options, resolved once at registration, and what its
consumers need of it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import TopicPartition

from kafkaboot.listener.acks import AckMode

if TYPE_CHECKING:
    from kafkaboot.config.kafka import SeekProperties
    from kafkaboot.listener.attempts import DeliveryAttempts
    from kafkaboot.listener.binding import Invoker
    from kafkaboot.listener.endpoint import ListenerEndpoint, TopicPartitionOffset

__all__ = ["ContainerSettings", "Listener"]


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

    @property
    def transactional(self) -> bool:
        return self.transaction_id_prefix is not None

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
    seeked: set[TopicPartition]
    paused: bool
    attempts: DeliveryAttempts

    @property
    def listener_id(self) -> str: ...

    @property
    def filter(self) -> Any: ...

    @property
    def not_before(self) -> Any: ...

    def partitions_for(self, index: int) -> list[TopicPartitionOffset]: ...

    def record_error(self, error: BaseException) -> None: ...

    def fail(self, reason: str) -> None: ...
