"""An in-memory Kafka cluster's storage: topics of partitioned logs with Kafka's offsets,
timestamps and key partitioning, and each consumer group's committed offsets.

It is the state an in-memory client reads and writes; it keeps Kafka's rules where a test
could tell the difference (offsets start at 0 and never repeat, a key always lands on the
partition a Java client would choose, an unknown topic is an error unless auto-creation is
on, a committed offset belongs to its group alone).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

__all__ = [
    "MEMORY_SCHEME",
    "InMemoryKafka",
    "StoredRecord",
    "TopicExistsError",
    "UnknownTopicError",
    "cluster_for",
]

MEMORY_SCHEME = "memory://"

Header = tuple[str, bytes]


class UnknownTopicError(LookupError):
    """The topic does not exist and the cluster does not create topics on first use."""


class TopicExistsError(ValueError):
    """A topic of that name exists already."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the broker keeps it: where it is, and what was sent."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    """Epoch milliseconds: the producer's, or the append time when it gave none."""
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


@dataclasses.dataclass(slots=True)
class _Topic:
    partitions: list[list[StoredRecord]]
    configs: dict[str, str]


_CLUSTERS: dict[str, InMemoryKafka] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster_for(bootstrap_servers: str | Sequence[str]) -> InMemoryKafka:
    """The running in-memory cluster that ``bootstrap_servers`` (``memory://<name>``) names.

    Raises:
        LookupError: no such cluster in this process (it was closed, or never made; an
            in-memory cluster lives in the process that made it).
    """
    servers = (
        bootstrap_servers if isinstance(bootstrap_servers, str) else ",".join(bootstrap_servers)
    )
    name = servers.removeprefix(MEMORY_SCHEME)
    with _CLUSTERS_LOCK:
        cluster = _CLUSTERS.get(name)
    if cluster is None:
        raise LookupError(
            f"no in-memory Kafka named {name!r} in this process (bootstrap servers "
            f"{servers!r}); make one with InMemoryKafka({name!r}) first: an in-memory broker "
            "lives only in the process that made it"
        )
    return cluster


class InMemoryKafka:
    """A Kafka cluster in this process, for tests: ``bootstrap_servers`` (``memory://<name>``)
    stands where a real cluster's addresses would.

    Args:
        name: the cluster's name in ``memory://<name>`` (default: a random one).
        auto_create_topics: create a topic on its first use, with ``default_partitions``
            partitions, as a broker with ``auto.create.topics.enable`` does.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        auto_create_topics: bool = True,
        default_partitions: int = 1,
    ) -> None:
        self.name = name or f"kafka-{uuid.uuid4().hex[:8]}"
        self.auto_create_topics = auto_create_topics
        self.default_partitions = default_partitions
        self._topics: dict[str, _Topic] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._lock = threading.Lock()
        with _CLUSTERS_LOCK:
            if self.name in _CLUSTERS:
                raise ValueError(f"an in-memory Kafka named {self.name!r} exists already")
            _CLUSTERS[self.name] = self

    @property
    def bootstrap_servers(self) -> str:
        return f"{MEMORY_SCHEME}{self.name}"

    def close(self) -> None:
        """Forget the cluster: ``memory://<name>`` no longer finds it."""
        with _CLUSTERS_LOCK:
            if _CLUSTERS.get(self.name) is self:
                del _CLUSTERS[self.name]

    def __enter__(self) -> InMemoryKafka:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- topics ---------------------------------------------------------------------------

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

    def topics(self) -> set[str]:
        with self._lock:
            return set(self._topics)

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (created now if auto-creation is on).

        Raises:
            UnknownTopicError: it does not exist and auto-creation is off.
        """
        return len(self._topic(topic).partitions)

    def _topic(self, name: str) -> _Topic:
        with self._lock:
            found = self._topics.get(name)
            if found is None:
                if not self.auto_create_topics:
                    raise UnknownTopicError(
                        f"topic {name!r} does not exist in {self.bootstrap_servers} (and it "
                        "creates no topics on first use); create it first"
                    )
                found = self._topics[name] = _Topic(
                    [[] for _ in range(self.default_partitions)], {}
                )
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
        stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        with self._lock:
            records = log.partitions[partition]
            record = StoredRecord(topic, partition, len(records), stamp, key, value, tuple(headers))
            records.append(record)
        return record

    def read(
        self, tp: TopicPartition, offset: int, max_records: int | None = None
    ) -> list[StoredRecord]:
        """The records of ``tp`` from ``offset`` on (at most ``max_records``)."""
        records = self._topic(tp.topic).partitions[tp.partition]
        with self._lock:
            stop = len(records) if max_records is None else offset + max_records
            return records[offset:stop]

    def end_offset(self, tp: TopicPartition) -> int:
        """The offset the next record of ``tp`` will get."""
        return len(self._topic(tp.topic).partitions[tp.partition])

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int | None:
        """The first offset of ``tp`` whose timestamp is at or after ``timestamp_ms``."""
        records = self._topic(tp.topic).partitions[tp.partition]
        with self._lock:
            return next((r.offset for r in records if r.timestamp >= timestamp_ms), None)

    # -- consumer groups ------------------------------------------------------------------

    def commit(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Store ``group_id``'s committed offsets (the next record to read, per partition).

        Raises:
            ValueError: an offset past the partition's end, or negative.
        """
        for tp, offset in offsets.items():
            end = self.end_offset(tp)
            if not 0 <= offset <= end:
                raise ValueError(
                    f"cannot commit offset {offset} for {tp.topic}-{tp.partition}: its offsets "
                    f"run 0-{end}"
                )
        with self._lock:
            self._committed.setdefault(group_id, {}).update(offsets)

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """What ``group_id`` has committed (``{}``: nothing)."""
        with self._lock:
            return dict(self._committed.get(group_id, {}))
