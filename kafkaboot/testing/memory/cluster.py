"""An in-memory Kafka cluster: its topics' logs (:mod:`~kafkaboot.testing.memory.topics`),
and what coordinates the clients over them: transactions, consumer groups with their
committed offsets, and waking the clients that wait for a change. Clusters are found by
name (``memory://<name>``) in the process that made them.

It is the state an in-memory client reads and writes; it keeps Kafka's rules where a test
could tell the difference (offsets start at 0 and never repeat, a key always lands on the
partition a Java client would choose, an unknown topic is an error unless auto-creation is
on, a committed offset belongs to its group alone).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from kafkaboot.inmemory import MEMORY_SCHEME
from kafkaboot.testing.memory.groups import ConsumerGroup
from kafkaboot.testing.memory.records import StoredRecord, Transaction, TransactionState
from kafkaboot.testing.memory.topics import TopicLogs

__all__ = ["InMemoryKafka", "check_offsets", "cluster_for", "connect"]

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


def connect(bootstrap_servers: str | Sequence[str]) -> InMemoryKafka:
    """What a client's ``start()`` does: find the cluster, or fail as aiokafka fails to
    bootstrap.

    Raises:
        KafkaConnectionError: no such cluster in this process.
    """
    try:
        return cluster_for(bootstrap_servers)
    except LookupError as exc:
        raise KafkaConnectionError(f"Unable to bootstrap from memory: {exc}") from exc


class InMemoryKafka(TopicLogs):
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
        self._topics = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._groups: dict[str, ConsumerGroup] = {}
        self._producer_epochs: dict[str, int] = {}
        self._open_transactions: dict[str, Transaction] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._lock = threading.RLock()
        self.closed = False
        with _CLUSTERS_LOCK:
            if self.name in _CLUSTERS:
                raise ValueError(f"an in-memory Kafka named {self.name!r} exists already")
            _CLUSTERS[self.name] = self

    @property
    def bootstrap_servers(self) -> str:
        return f"{MEMORY_SCHEME}{self.name}"

    def close(self) -> None:
        """Forget the cluster: ``memory://<name>`` no longer finds it, and clients still
        connected to it see it gone."""
        self.closed = True
        with _CLUSTERS_LOCK:
            if _CLUSTERS.get(self.name) is self:
                del _CLUSTERS[self.name]
        self.notify()

    def __enter__(self) -> InMemoryKafka:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InMemoryKafka({self.bootstrap_servers!r}, topics={sorted(self._topics)})"

    # -- waking clients -------------------------------------------------------------------

    def changed(self) -> asyncio.Future[None]:
        """A future settled at the next change (a record appended, a transaction ended, a
        group rebalanced, a client's own seek): what a waiting poll awaits."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def forget(self, waiter: asyncio.Future[None]) -> None:
        """A waiter that stopped waiting (its timeout came first): drop it."""
        with self._lock:
            self._waiters.discard(waiter)

    def notify(self) -> None:
        """Wake every waiting poll (in its own event loop's thread)."""
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                loop = waiter.get_loop()
                if _running_loop() is loop:
                    waiter.set_result(None)
                elif not loop.is_closed():
                    loop.call_soon_threadsafe(_settle, waiter)

    # -- transactions ---------------------------------------------------------------------

    def fence(self, transactional_id: str) -> int:
        """A producer with ``transactional_id`` starts: it gets a new epoch, and every older
        producer with that id is fenced (its open transaction is aborted)."""
        with self._lock:
            epoch = self._producer_epochs.get(transactional_id, -1) + 1
            self._producer_epochs[transactional_id] = epoch
            unfinished = self._open_transactions.pop(transactional_id, None)
        if unfinished is not None:
            self.end_transaction(unfinished, commit=False)
        return epoch

    def begin_transaction(self, transactional_id: str) -> Transaction:
        transaction = Transaction(transactional_id)
        with self._lock:
            self._open_transactions[transactional_id] = transaction
        return transaction

    def current_epoch(self, transactional_id: str) -> int:
        with self._lock:
            return self._producer_epochs.get(transactional_id, -1)

    def end_transaction(self, transaction: Transaction, *, commit: bool) -> None:
        """Commit or abort ``transaction``: a marker takes an offset in each of its
        partitions, and a commit commits the consumer offsets sent to it."""
        if transaction.state is not TransactionState.OPEN:
            return
        with self._lock:
            if self._open_transactions.get(transaction.transactional_id) is transaction:
                del self._open_transactions[transaction.transactional_id]
        if commit:
            for group_id, offsets in transaction.offsets.items():
                self.commit(group_id, offsets)
        with self._lock:
            transaction.state = TransactionState.COMMITTED if commit else TransactionState.ABORTED
            stamp = int(time.time() * 1000)
            for tp in sorted(transaction.partitions):
                records = self._log(tp)
                records.append(
                    StoredRecord(
                        tp.topic,
                        tp.partition,
                        len(records),
                        stamp,
                        None,
                        None,
                        (),
                        transaction,
                        control=True,
                    )
                )
        self.notify()

    # -- consumer groups ------------------------------------------------------------------

    def group(self, group_id: str) -> ConsumerGroup:
        """The consumer group ``group_id`` (made on first use, as Kafka makes it)."""
        with self._lock:
            found = self._groups.get(group_id)
            if found is None:
                found = self._groups[group_id] = ConsumerGroup(
                    group_id, self.topics, self.partitions, self.notify
                )
            return found

    def _metadata_changed(self) -> None:
        """Topics or partitions changed: groups whose subscriptions they touch rebalance."""
        with self._lock:
            groups = list(self._groups.values())
        for group in groups:
            group.metadata_changed()
        self.notify()

    def groups(self) -> list[str]:
        with self._lock:
            return sorted(set(self._groups) | set(self._committed))

    def commit(self, group_id: str, offsets: dict[TopicPartition, int]) -> None:
        """Store ``group_id``'s committed offsets (the next record to read, per partition).
        As Kafka, it does not check them against the log: a consumer that starts past the
        end is reset by its ``auto_offset_reset``.

        Raises:
            ValueError: a negative offset.
        """
        check_offsets(offsets)
        with self._lock:
            self._committed.setdefault(group_id, {}).update(offsets)

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """What ``group_id`` has committed (``{}``: nothing)."""
        with self._lock:
            return dict(self._committed.get(group_id, {}))


def check_offsets(offsets: dict[TopicPartition, int]) -> None:
    """Raises ValueError for an offset a commit cannot carry (a negative one)."""
    for tp, offset in offsets.items():
        if offset < 0:
            raise ValueError(
                f"cannot commit offset {offset} for {tp.topic}-{tp.partition}: offsets are 0 "
                "or more (the next record to read)"
            )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
