"""An aiokafka producer whose broker is an in-memory Kafka.

``MemoryProducer`` is an ``AIOKafkaProducer`` that overrides every public method. ``send``
keeps aiokafka's contract, which kafkaboot's template relies on: a coroutine that returns
a future once the record is queued, the future settled with ``RecordMetadata`` on a later
step of the event loop (as a broker's answer would be), never inside ``send``. Transactions
keep Kafka's rules: records of an open transaction are invisible to ``read_committed``
consumers, an abort hides them for ever, each commit or abort writes a marker that takes an
offset, consumer offsets sent to a transaction are committed with it, and a new producer
with the same ``transactional_id`` fences the old one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    IllegalOperation,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    ProducerClosed,
    ProducerFenced,
    UnknownTopicOrPartitionError,
)
from aiokafka.producer.producer import TransactionContext
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata
from aiokafka.util import commit_structure_validate

from kafkaboot.inmemory import InMemoryClient
from kafkaboot.testing.memory.cluster import InMemoryKafka, check_offsets, connect
from kafkaboot.testing.memory.errors import NotSupportedInMemory
from kafkaboot.testing.memory.records import StoredRecord, Transaction, UnknownTopicError

__all__ = ["MemoryProducer"]

_FATAL = "Invalid state transition TransactionState.FATAL_ERROR -> TransactionState."
"""aiokafka's transaction manager refuses to begin or end a transaction once fenced."""


class _TransactionState:
    """What kafkaboot reads of aiokafka's transaction manager: whether the producer can no
    longer be used (fenced)."""

    def __init__(self) -> None:
        self.fenced = False

    def is_fatal_error(self) -> bool:
        return self.fenced


class MemoryProducer(InMemoryClient, AIOKafkaProducer):  # type: ignore[misc] # aiokafka is untyped
    """``AIOKafkaProducer(bootstrap_servers="memory://<name>", ...)``: the same arguments
    (those that matter in memory are honoured, the rest accepted)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        client_id: str | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        max_request_size: int = 1_048_576,
        transactional_id: str | None = None,
        security_protocol: str = "PLAINTEXT",
        **ignored: Any,
    ) -> None:
        if security_protocol != "PLAINTEXT":
            raise NotSupportedInMemory(f"security protocol {security_protocol}")
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._key_serializer = key_serializer
        self._value_serializer = value_serializer
        self._max_request_size = max_request_size
        self._transactional_id = transactional_id
        self._cluster: InMemoryKafka | None = None
        self._closed: bool | None = None  # aiokafka's __del__ warns only when False,
        self._loop: asyncio.AbstractEventLoop | None = None  # and tells this loop.
        self._source_traceback = None
        self._epoch = -1
        self._transaction: Transaction | None = None
        self._txn_manager = _TransactionState()

    def __repr__(self) -> str:
        return f"MemoryProducer({self._bootstrap_servers!r})"

    @property
    def cluster(self) -> InMemoryKafka:
        """The in-memory Kafka it writes to (once started)."""
        return self._running()

    async def start(self) -> None:
        self._cluster = connect(self._bootstrap_servers)
        self._closed = False
        self._loop = asyncio.get_running_loop()
        if self._transactional_id is not None:
            self._epoch = self._cluster.fence(self._transactional_id)

    async def stop(self) -> None:
        """Close. An open transaction is aborted now (a broker aborts it when its
        ``transaction_timeout_ms`` runs out)."""
        if self._closed is False and self._transaction is not None and self._cluster:
            self._cluster.end_transaction(self._transaction, commit=False)
        self._transaction = None
        self._closed = True

    async def flush(self) -> None:
        """Nothing waits: every record is in the log when its ``send`` returns."""
        self._running()

    def _running(self) -> InMemoryKafka:
        if self._closed is True:
            raise ProducerClosed()
        if self._cluster is None:
            raise KafkaConnectionError("the producer is not started; await start() first")
        if self._cluster.closed:
            raise KafkaConnectionError(f"{self._bootstrap_servers} was closed")
        return self._cluster

    def _check_epoch(self) -> None:
        cluster = self._running()
        if self._transactional_id is not None and (
            self._txn_manager.fenced or cluster.current_epoch(self._transactional_id) != self._epoch
        ):
            self._txn_manager.fenced = True
            raise ProducerFenced(
                f"a newer producer with transactional_id {self._transactional_id!r} started"
            )

    async def partitions_for(self, topic: str) -> set[int]:
        try:
            return set(range(self._running().partitions(topic)))
        except UnknownTopicError as exc:
            raise UnknownTopicOrPartitionError(str(exc)) from exc

    # -- sending --------------------------------------------------------------------------

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Append the record; its future is settled on the event loop's next step."""
        assert not (value is None and key is None), "Need at least one: key or value"  # noqa: S101 - aiokafka's check
        cluster = self._running()
        if self._transactional_id is not None:
            if self._transaction is None or self._txn_manager.fenced:
                raise IllegalOperation("Can't send messages while not in transaction")
            if cluster.current_epoch(self._transactional_id) != self._epoch:
                return self._refused()
        headers = list(headers or [])
        key_bytes = self._key_serializer(key) if self._key_serializer else key
        value_bytes = self._value_serializer(value) if self._value_serializer else value
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key_bytes, value_bytes, headers)
        if size > self._max_request_size:
            raise MessageSizeTooLargeError(
                f"The message is {size} bytes when serialized which is larger than the "
                "maximum request size you have configured with the max_request_size "
                "configuration"
            )
        partitions = await self.partitions_for(topic)
        if partition is not None:
            assert partition in partitions, "Unrecognized partition"  # noqa: S101 - aiokafka's check
        stored = cluster.append(
            topic,
            key_bytes,
            value_bytes,
            partition=partition,
            timestamp_ms=timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            headers=[(str(k), v) for k, v in headers],  # bytes or None, as aiokafka takes.
            transaction=self._transaction,
        )
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.get_loop().call_soon(_settle, delivery, _metadata(cluster, stored))
        return delivery

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> RecordMetadata:
        delivery = await self.send(topic, value, key, partition, timestamp_ms, headers)
        return await delivery

    def _refused(self) -> asyncio.Future[RecordMetadata]:
        """As aiokafka: the record is queued, the broker refuses the transaction (a newer
        producer has the id), and the record's future fails with ``ProducerFenced``; from
        then on the producer is in its fatal state. Sends made before that answer (in the
        same step of the event loop) are queued and refused the same way."""
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        delivery.get_loop().call_soon(self._fenced_now, delivery)
        return delivery

    def _fenced_now(self, delivery: asyncio.Future[RecordMetadata]) -> None:
        self._txn_manager.fenced = True
        if not delivery.done():
            delivery.set_exception(
                ProducerFenced(
                    f"a newer producer with transactional_id {self._transactional_id!r} started"
                )
            )

    def create_batch(self) -> Any:
        raise NotSupportedInMemory("AIOKafkaProducer.create_batch (send records one by one)")

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        raise NotSupportedInMemory("AIOKafkaProducer.send_batch (send records one by one)")

    # -- transactions ---------------------------------------------------------------------

    def _transactional(self) -> InMemoryKafka:
        if self._transactional_id is None:
            raise IllegalOperation("the producer has no transactional_id")
        self._check_epoch()
        return self._running()

    async def begin_transaction(self) -> None:
        """As aiokafka's, which begins locally: a producer fenced since it started learns
        it only when the transaction's first send (or offsets) reaches the broker."""
        if self._transactional_id is None:
            raise IllegalOperation("the producer has no transactional_id")
        cluster = self._running()
        if self._txn_manager.fenced:
            raise AssertionError(_FATAL + "IN_TRANSACTION")
        if self._transaction is not None:
            raise IllegalOperation("a transaction is already open")
        if cluster.current_epoch(self._transactional_id) != self._epoch:
            self._transaction = Transaction(self._transactional_id)  # The broker never sees it.
        else:
            self._transaction = cluster.begin_transaction(self._transactional_id)

    async def commit_transaction(self) -> None:
        await self._end(commit=True)

    async def abort_transaction(self) -> None:
        await self._end(commit=False)

    async def _end(self, *, commit: bool) -> None:
        if self._transactional_id is not None and self._txn_manager.fenced:
            raise AssertionError(_FATAL + ("COMMITTING" if commit else "ABORTING") + "_TRANSACTION")
        transaction = self._transaction
        if transaction is None or transaction.partitions or transaction.offsets:
            self._transactional()  # aiokafka ends one that sent nothing without the broker.
        cluster = self._running()
        if transaction is None:
            raise IllegalOperation("no transaction is open")
        self._transaction = None
        cluster.end_transaction(transaction, commit=commit)

    def transaction(self) -> TransactionContext:
        return TransactionContext(self)

    async def send_offsets_to_transaction(
        self, offsets: dict[TopicPartition, Any], group_id: str
    ) -> None:
        self._transactional()
        if self._transaction is None:
            raise IllegalOperation("no transaction is open")
        plain = {tp: int(offset[0]) for tp, offset in commit_structure_validate(offsets).items()}
        check_offsets(plain)  # Now, so that the transaction's commit cannot fail half-way.
        self._transaction.offsets.setdefault(group_id, {}).update(plain)


def _metadata(cluster: InMemoryKafka, stored: StoredRecord) -> RecordMetadata:
    log_append = (
        cluster.topic_configs(stored.topic).get("message.timestamp.type") == "LogAppendTime"
    )
    tp = TopicPartition(stored.topic, stored.partition)
    return RecordMetadata(
        stored.topic, stored.partition, tp, stored.offset, stored.timestamp, int(log_append), 0
    )


def _settle(delivery: asyncio.Future[RecordMetadata], metadata: RecordMetadata) -> None:
    if not delivery.done():
        delivery.set_result(metadata)
