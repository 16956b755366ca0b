"""A listener container's effective options, resolved once at registration."""

from __future__ import annotations

import dataclasses
from typing import Any

from kafkaboot.listener.acks import AckMode

__all__ = ["ContainerSettings"]


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
