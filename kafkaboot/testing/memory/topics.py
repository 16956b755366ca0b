"""The in-memory Kafka's topics: partitioned logs with Kafka's offsets, timestamps and key
partitioning, read as a consumer at its isolation level reads them (past transaction
markers; for ``read_committed``, without aborted records and up to the last stable offset).

A mixin of :class:`~kafkaboot.testing.memory.cluster.InMemoryKafka`, which holds the state
these read and wakes waiting clients; the cluster's other half coordinates (transactions,
consumer groups and their committed offsets).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from kafkaboot.inmemory import MEMORY_SCHEME
from kafkaboot.testing.memory.records import (
    Header,
    StoredRecord,
    TopicExistsError,
    Transaction,
    TransactionState,
    UnknownTopicError,
)

__all__ = ["TopicLogs"]


@dataclasses.dataclass(slots=True)
class _Topic:
    partitions: list[list[StoredRecord]]
    configs: dict[str, str]


class TopicLogs:
    """Topics and their partitions' logs: creating and growing topics, appending records,
    and reading them back with their offsets."""

    # What the cluster this is mixed into holds and does.
    name: str
    auto_create_topics: bool
    default_partitions: int
    _topics: dict[str, _Topic]
    _lock: threading.RLock
    notify: Callable[[], None]
    _metadata_changed: Callable[[], None]
    """Topics or partitions changed (the groups whose subscriptions they touch rebalance)."""

    def create_topic(
        self, name: str, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> None:
        """Create ``name`` with ``partitions`` empty partitions.

        Raises:
            TopicExistsError: it exists.
            ValueError: fewer than one partition.
        """
        if partitions < 1:
            raise ValueError(f"a topic needs at least one partition, not {partitions}")
        with self._lock:
            if name in self._topics:
                raise TopicExistsError(f"topic {name!r} exists already")
            self._topics[name] = _Topic([[] for _ in range(partitions)], dict(configs or {}))
        self._metadata_changed()

    def add_partitions(self, name: str, total: int) -> None:
        """Grow ``name`` to ``total`` partitions (Kafka never shrinks a topic).

        Raises:
            ValueError: ``total`` is not more than it has.
        """
        log = self._topic(name)
        with self._lock:
            if total <= len(log.partitions):
                raise ValueError(
                    f"topic {name!r} has {len(log.partitions)} partitions; a topic can only "
                    f"grow, so {total} is not more"
                )
            log.partitions.extend([] for _ in range(total - len(log.partitions)))
        self._metadata_changed()

    def topics(self) -> set[str]:
        with self._lock:
            return set(self._topics)

    def topic_configs(self, name: str) -> dict[str, str]:
        return dict(self._topic(name).configs)

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (created now if auto-creation is on).

        Raises:
            UnknownTopicError: it does not exist and auto-creation is off.
        """
        return len(self._topic(topic).partitions)

    def _topic(self, name: str) -> _Topic:
        created = False
        with self._lock:
            found = self._topics.get(name)
            if found is None:
                if not self.auto_create_topics:
                    raise UnknownTopicError(
                        f"topic {name!r} does not exist in {MEMORY_SCHEME}{self.name} (and it "
                        "creates no topics on first use); create it first"
                    )
                found = self._topics[name] = _Topic(
                    [[] for _ in range(self.default_partitions)], {}
                )
                created = True
        if created:
            self._metadata_changed()
        return found

    # -- the log --------------------------------------------------------------------------

    def partition_for(self, topic: str, key: bytes | None) -> int:
        """Where a record with ``key`` goes: murmur2 of the key, as Java clients and aiokafka
        compute it. A record without a key goes to partition 0 here (Java clients spread
        them; tests must not depend on where they land)."""
        count = self.partitions(topic)
        if key is None:
            return 0
        hashed: int = murmur2(key)  # Java's Utils.murmur2, made positive as Java does.
        return (hashed & 0x7FFFFFFF) % count

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[Header] = (),
        transaction: Transaction | None = None,
    ) -> StoredRecord:
        """Append a record and return it with its offset.

        Raises:
            UnknownTopicError: no such topic, and auto-creation is off.
            ValueError: ``partition`` is not one of the topic's.
        """
        log = self._topic(topic)
        if partition is None:
            partition = self.partition_for(topic, key)
        if not 0 <= partition < len(log.partitions):
            raise ValueError(
                f"topic {topic!r} has partitions 0-{len(log.partitions) - 1}, not {partition}"
            )
        now = int(time.time() * 1000)
        log_append_time = log.configs.get("message.timestamp.type") == "LogAppendTime"
        stamp = timestamp_ms if timestamp_ms is not None and not log_append_time else now
        with self._lock:
            records = log.partitions[partition]
            record = StoredRecord(
                topic, partition, len(records), stamp, key, value, tuple(headers), transaction
            )
            records.append(record)
            if transaction is not None:
                transaction.partitions.add(TopicPartition(topic, partition))
        self.notify()
        return record

    def read(
        self, tp: TopicPartition, offset: int, max_records: int | None = None
    ) -> list[StoredRecord]:
        """The records of ``tp`` a ``read_uncommitted`` consumer is handed from ``offset``
        on (at most ``max_records``)."""
        return self.fetch(tp, offset, max_records)[0]

    def fetch(
        self,
        tp: TopicPartition,
        offset: int,
        max_records: int | None = None,
        *,
        read_committed: bool = False,
    ) -> tuple[list[StoredRecord], int]:
        """The records a consumer at ``offset`` is handed, and its position after them: past
        transaction markers (and, for ``read_committed``, aborted records), up to the last
        stable offset for ``read_committed``.

        Raises:
            UnknownTopicError, IndexError: no such topic or partition.
        """
        records = self._log(tp)
        found: list[StoredRecord] = []
        limit = max_records if max_records is not None else len(records)
        with self._lock:
            position = offset
            while position < len(records) and len(found) < limit:
                record = records[position]
                txn = record.transaction
                if read_committed and txn is not None and txn.state is TransactionState.OPEN:
                    break  # The last stable offset: nothing after it yet.
                if record.visible(read_committed):
                    found.append(record)
                position += 1
        return found, position

    def _log(self, tp: TopicPartition) -> list[StoredRecord]:
        partitions = self._topic(tp.topic).partitions
        if not 0 <= tp.partition < len(partitions):
            raise IndexError(
                f"topic {tp.topic!r} has partitions 0-{len(partitions) - 1}, not {tp.partition}"
            )
        return partitions[tp.partition]

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of ``tp`` will get (the high watermark)."""
        return len(self._log(tp))

    def stable_offset(self, tp: TopicPartition) -> int:
        """The last stable offset: the first offset of an open transaction, else the end."""
        records = self._log(tp)
        with self._lock:
            for record in records:
                txn = record.transaction
                if txn is not None and txn.state is TransactionState.OPEN:
                    return record.offset
            return len(records)

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> StoredRecord | None:
        """The first record of ``tp`` whose timestamp is at or after ``timestamp_ms``."""
        records = self._log(tp)
        with self._lock:
            return next((r for r in records if not r.control and r.timestamp >= timestamp_ms), None)
