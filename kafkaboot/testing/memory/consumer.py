"""An aiokafka consumer whose broker is an in-memory Kafka.

``MemoryConsumer`` is an ``AIOKafkaConsumer`` (so type checks and ``isinstance`` hold
wherever a consumer is handed to user code) that overrides every public method: it reads
the cluster's logs, keeps its positions, pauses, seeks and commits as aiokafka does, and
raises the same errors. Here: its lifecycle, subscriptions and assignment, and commits;
polling is in ``polling.py``, positions and seeks in ``positions.py``, and group
membership runs on a task of its own (``membership.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalOperation,
    IllegalStateError,
    KafkaConnectionError,
)
from aiokafka.util import commit_structure_validate

from kafkaboot.inmemory import InMemoryClient
from kafkaboot.testing.memory.cluster import InMemoryKafka, connect
from kafkaboot.testing.memory.errors import NotSupportedInMemory
from kafkaboot.testing.memory.fetching import PartitionFetch, SubscriptionView
from kafkaboot.testing.memory.groups import ConsumerGroup
from kafkaboot.testing.memory.membership import Membership
from kafkaboot.testing.memory.polling import Polling
from kafkaboot.testing.memory.positions import Positions
from kafkaboot.testing.memory.records import UnknownTopicError

__all__ = ["MemoryConsumer"]

log = logging.getLogger("kafkaboot.testing.memory")


class _Coordinator:
    """What kafkaboot reads of aiokafka's group coordinator: whether it is known, and a
    commit that bypasses the consumer's assignment check."""

    def __init__(self, consumer: MemoryConsumer) -> None:
        self._consumer = consumer

    @property
    def coordinator_id(self) -> int | None:
        membership = self._consumer._membership
        return 0 if membership is not None and membership.joined else None

    async def commit_offsets(self, assignment: Any, offsets: dict[TopicPartition, Any]) -> None:
        await self._consumer._commit_checked(offsets)


class MemoryConsumer(InMemoryClient, Positions, Polling, AIOKafkaConsumer):  # type: ignore[misc] # aiokafka is untyped
    """``AIOKafkaConsumer(*topics, bootstrap_servers="memory://<name>", ...)``: the same
    arguments (those that matter in memory are honoured, the rest accepted)."""

    def __init__(
        self,
        *topics: str,
        bootstrap_servers: str,
        group_id: str | None = None,
        client_id: str = "aiokafka",
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        auto_offset_reset: str = "latest",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        max_poll_records: int | None = None,
        max_poll_interval_ms: int = 300_000,
        isolation_level: str = "read_uncommitted",
        security_protocol: str = "PLAINTEXT",
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int | None = None,
        partition_assignment_strategy: Any = (RoundRobinPartitionAssignor,),
        group_instance_id: str | None = None,
        **ignored: Any,
    ) -> None:
        if security_protocol != "PLAINTEXT":
            raise NotSupportedInMemory(f"security protocol {security_protocol}")
        if tuple(partition_assignment_strategy) != (RoundRobinPartitionAssignor,):
            raise NotSupportedInMemory(
                "a partition assignment strategy other than aiokafka's default round-robin"
            )
        if group_instance_id is not None:
            raise NotSupportedInMemory("static membership (group_instance_id)")
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(f"{auto_offset_reset!r} is not a valid auto_offset_reset")
        if isolation_level not in ("read_uncommitted", "read_committed"):
            raise ValueError(f"{isolation_level!r} is not a valid isolation_level")
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._client_id = client_id
        self._key_deserializer = key_deserializer
        self._value_deserializer = value_deserializer
        self._auto_offset_reset = auto_offset_reset
        self._enable_auto_commit = enable_auto_commit and group_id is not None
        self._auto_commit_interval = auto_commit_interval_ms / 1000
        self._max_poll_records = max_poll_records or 500
        self._max_poll_interval = max_poll_interval_ms / 1000
        # aiokafka's default, as the group coordinator waits for a member to rejoin.
        self._rebalance_timeout = (rebalance_timeout_ms or session_timeout_ms) / 1000
        self._read_committed = isolation_level == "read_committed"
        self._cluster: InMemoryKafka | None = None
        self._closed: bool | None = None  # aiokafka's __del__ warns only when False,
        self._loop: asyncio.AbstractEventLoop | None = None  # and tells this loop.
        self._source_traceback = None
        self._topics: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        self._listener: ConsumerRebalanceListener | None = None
        self._manual: set[TopicPartition] | None = None
        self._partitions: dict[TopicPartition, PartitionFetch] = {}
        self._membership: Membership | None = None
        self._membership_task: asyncio.Task[None] | None = None
        self._subscription = SubscriptionView(lambda: self._partitions)
        self._coordinator = _Coordinator(self)
        self._turn = 0
        self._reassigning = False
        self._leaving: asyncio.Future[None] | None = None
        self._woken = False
        if topics:
            self.subscribe(list(topics))

    def __repr__(self) -> str:
        return f"MemoryConsumer({self._bootstrap_servers!r}, group_id={self._group_id!r})"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect: find the cluster, and join the group when subscribed with one."""
        self._cluster = connect(self._bootstrap_servers)
        self._closed = False
        self._loop = asyncio.get_running_loop()
        if self._manual is not None:
            self._take(frozenset(self._manual))
        elif self._topics or self._pattern is not None:
            self._start_membership()

    async def stop(self) -> None:
        """Commit once more when auto-committing, leave the group, then close."""
        if self._closed is not False:
            self._closed = True
            return
        membership, task = self._membership, self._membership_task
        if membership is not None:
            await membership.close(task)  # Its last auto-commit needs the consumer open.
        self._membership = self._membership_task = None
        self._closed = True
        if self._cluster is not None:
            self._cluster.notify()  # Wake a waiting poll: it raises ConsumerStoppedError.

    def _running(self) -> InMemoryKafka:
        if self._closed is True:
            raise ConsumerStoppedError()
        if self._cluster is None:
            raise IllegalStateError("the consumer is not started; await start() first")
        if self._cluster.closed:
            raise KafkaConnectionError(f"{self._bootstrap_servers} was closed")
        return self._cluster

    # -- subscriptions and assignment -----------------------------------------------------

    def subscribe(
        self,
        topics: Any = (),
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        if not (topics or pattern):
            raise TypeError("You should provide either `topics` or `pattern`")
        if topics and pattern:
            raise TypeError("You can't provide both `topics` and `pattern`")
        if listener is not None and not isinstance(listener, ConsumerRebalanceListener):
            raise TypeError("listener should be an instance of ConsumerRebalanceListener")
        if self._manual is not None:
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        self._topics = tuple(topics) if topics else ()
        self._pattern = re.compile(pattern) if pattern is not None else None
        self._listener = listener
        if self._membership is not None:
            self._membership.subscribe(self._topics, self._pattern)
        elif self._cluster is not None and self._closed is False:
            self._start_membership()

    def _start_membership(self) -> None:
        cluster = self._running()
        group = (
            cluster.group(self._group_id)
            if self._group_id is not None
            # No group: a group of one that takes every partition, as aiokafka does alone.
            else ConsumerGroup("", cluster.topics, cluster.partitions, cluster.notify)
        )
        self._membership = membership = Membership(
            group,
            self._client_id,
            revoke=self._revoked,
            assign=self._assigned,
            auto_commit=self._commit_consumed if self._enable_auto_commit else None,
            auto_commit_interval=self._auto_commit_interval,
            max_poll_interval=self._max_poll_interval,
            rebalance_timeout=self._rebalance_timeout,
            idle_time=lambda: self._subscription.fetcher_idle_time,
            changed=cluster.changed,
            forget=cluster.forget,
        )
        for topic in self._topics:  # Its metadata request creates them, as a broker's would.
            with contextlib.suppress(UnknownTopicError):
                cluster.partitions(topic)
        membership.subscribe(self._topics, self._pattern)
        self._membership_task = task = asyncio.create_task(
            membership.run(), name=f"kafkaboot:memory-member-{membership.member_id}"
        )
        task.add_done_callback(_log_crash)

    def subscription(self) -> frozenset[str]:
        if self._pattern is not None and self._cluster is not None:
            return frozenset(t for t in self._cluster.topics() if self._pattern.fullmatch(t))
        return frozenset(self._topics)

    def unsubscribe(self) -> None:
        membership, task = self._membership, self._membership_task
        self._membership = self._membership_task = None
        self._topics, self._pattern, self._partitions = (), None, {}
        if membership is not None:
            self._leaving = asyncio.ensure_future(membership.close(task))

    def assign(self, partitions: Any) -> None:
        if self._topics or self._pattern is not None:
            raise IllegalStateError(
                "Subscription to topics, partitions and pattern are mutually exclusive"
            )
        self._manual = set(partitions)
        if self._cluster is not None:
            self._take(frozenset(self._manual))

    def assignment(self) -> set[TopicPartition]:
        return set(self._partitions)

    async def _revoked(self) -> None:
        """As aiokafka: fetching stops, the callback runs with the partitions still held
        (so it can commit them), then they are gone."""
        self._reassigning = True
        if self._listener is not None and self._group_id is not None:
            await _call_listener(self._listener.on_partitions_revoked, set(self._partitions))
        self._partitions = {}

    async def _assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self._take(assigned)
        if self._listener is not None and self._group_id is not None:
            await _call_listener(self._listener.on_partitions_assigned, set(assigned))
        self.wakeup()  # The poll in progress ends: its caller sees the new assignment now.

    def _take(self, assigned: frozenset[TopicPartition]) -> None:
        """Hold ``assigned``, each at its committed offset or where ``auto_offset_reset``
        puts it."""
        cluster = self._running()
        self._reassigning = False
        committed = cluster.committed(self._group_id) if self._group_id is not None else {}
        self._partitions = {}
        for tp in sorted(assigned):
            fetch = PartitionFetch(cluster, tp, self._read_committed)
            fetch.position = committed.get(tp, self._reset_position(tp))
            self._partitions[tp] = fetch
        cluster.notify()

    # -- commits --------------------------------------------------------------------------

    async def commit(self, offsets: dict[TopicPartition, Any] | None = None) -> None:
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        membership = self._membership
        if self._manual is None and (membership is None or not membership.joined):
            raise IllegalStateError("No partitions assigned")
        if offsets is None:
            offsets = {
                tp: fetch.position
                for tp, fetch in self._partitions.items()
                if fetch.position is not None
            }
        else:
            offsets = commit_structure_validate(offsets)
            for tp in offsets:
                if tp not in self._partitions:
                    raise IllegalStateError(f"Partition {tp} is not assigned")
        await self._commit_checked(offsets)

    async def _commit_consumed(self) -> None:
        """What auto-commit commits: the positions of the partitions held, if any."""
        if self._partitions:
            await self.commit()

    async def _commit_checked(self, offsets: dict[TopicPartition, Any]) -> None:
        cluster = self._running()
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        if self._membership is not None:
            await self._membership.commit_allowed()
        elif cluster.group(self._group_id).members:
            # Kafka takes a commit from outside the group only while it has no members.
            raise CommitFailedError(
                f"commit refused: group {self._group_id!r} has active members, and this "
                "consumer (assigned its partitions by hand) is not one of them"
            )
        plain = {
            tp: offset if isinstance(offset, int) else int(offset[0])
            for tp, offset in offsets.items()
        }
        cluster.commit(self._group_id, plain)

    async def committed(self, partition: TopicPartition) -> int | None:
        if self._group_id is None:
            raise IllegalOperation("Requires group_id")
        return self._running().committed(self._group_id).get(partition)


async def _call_listener(callback: Any, partitions: set[TopicPartition]) -> None:
    """A rebalance callback, awaited if it is a coroutine; its error logged, as aiokafka
    logs and swallows it."""
    try:
        result = callback(partitions)
        if asyncio.iscoroutine(result):
            await result
    except Exception:
        log.exception("a rebalance listener failed on %s", sorted(partitions))


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("an in-memory consumer's group membership failed", exc_info=task.exception())
