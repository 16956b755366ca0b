"""What an in-memory consumer holds per partition, and how it turns stored records into
aiokafka's ``ConsumerRecord``.

The shapes are the ones kafkaboot reads from aiokafka's consumer (see
``observability/lag.py`` and ``listener/outcomes.py``): a fetch state with ``highwater``,
``lso``, ``timestamp`` and a position, and a subscription view with the consumer's idle
time. Here they are computed from the cluster when read, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from kafkaboot.testing.memory.cluster import InMemoryKafka
from kafkaboot.testing.memory.records import StoredRecord

__all__ = ["PartitionFetch", "SubscriptionView", "to_consumer_record"]

CREATE_TIME, LOG_APPEND_TIME = 0, 1

Deserializer = Callable[[bytes | None], Any] | None


class PartitionFetch:
    """One assigned partition: the consumer's position, whether it is paused, and the
    partition's marks as a fetch would have reported them just now."""

    __slots__ = ("cluster", "paused", "position", "read_committed", "tp")

    def __init__(self, cluster: InMemoryKafka, tp: TopicPartition, read_committed: bool) -> None:
        self.cluster = cluster
        self.tp = tp
        self.read_committed = read_committed
        self.position: int | None = None
        self.paused = False

    @property
    def has_valid_position(self) -> bool:
        return self.position is not None

    @property
    def highwater(self) -> int:
        return self.cluster.end_offset(self.tp)

    @property
    def lso(self) -> int:
        return self.cluster.stable_offset(self.tp)

    @property
    def timestamp(self) -> int:
        """When the marks were last fetched (wall milliseconds): now, as they are live."""
        return int(time.time() * 1000)


class SubscriptionView:
    """The two things kafkaboot reads from aiokafka's subscription state: how long the
    consumer has gone without polling, and each assigned partition's fetch state."""

    def __init__(self, partitions: Callable[[], dict[TopicPartition, PartitionFetch]]) -> None:
        self._partitions = partitions
        self.polling = 0
        self.last_poll_ended = time.monotonic()

    @property
    def fetcher_idle_time(self) -> float:
        """Seconds since the last poll ended; 0 while one is waiting (aiokafka's measure
        for ``max.poll.interval.ms``)."""
        return 0.0 if self.polling else time.monotonic() - self.last_poll_ended

    @property
    def subscription(self) -> SubscriptionView:
        return self

    @property
    def assignment(self) -> SubscriptionView:
        return self

    def state_value(self, tp: TopicPartition) -> PartitionFetch:
        """Raises KeyError when ``tp`` is not assigned, as aiokafka's does."""
        return self._partitions()[tp]


def to_consumer_record(
    stored: StoredRecord,
    timestamp_type: int,
    key_deserializer: Deserializer,
    value_deserializer: Deserializer,
) -> ConsumerRecord[Any, Any]:
    """The record as aiokafka hands it over, sizes and deserializers included."""
    key, value = stored.key, stored.value
    return ConsumerRecord(
        topic=stored.topic,
        partition=stored.partition,
        offset=stored.offset,
        timestamp=stored.timestamp,
        timestamp_type=timestamp_type,
        key=key_deserializer(key) if key_deserializer is not None else key,
        value=value_deserializer(value) if value_deserializer is not None else value,
        checksum=None,
        serialized_key_size=len(key) if key is not None else -1,
        serialized_value_size=len(value) if value is not None else -1,
        headers=stored.headers,
    )
