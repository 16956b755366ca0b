"""Transactional listeners: consume-process-produce exactly once.

Each assigned partition gets its own transactional producer whose id is derived from the
group, topic and partition. When the partition moves to another consumer, that consumer's
producer starts with the same id and fences this one (Kafka's original exactly-once
design; aiokafka commits offsets in transactions without the group generation, so the
per-consumer scheme of newer Java clients cannot fence zombies here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from kafkaboot.template import TransactionScope, transaction_scope

__all__ = ["PartitionRevokedError", "TransactionalProducers", "in_transaction"]

log = logging.getLogger("kafkaboot.listener")


class PartitionRevokedError(Exception):
    """The partition was revoked while its record was handled: do not commit."""


async def in_transaction(
    producer: AIOKafkaProducer,
    work: Callable[[], Awaitable[Any]] | None,
    offsets: dict[TopicPartition, int],
    group_id: str,
    timeout: float,
    still_owner: Callable[[], bool],
) -> None:
    """Run ``work`` in a transaction with ``offsets``: its sends and the offsets commit
    together, or the transaction aborts (a failed send, an exception, a revocation).

    Raises:
        PartitionRevokedError: the partition was revoked meanwhile (nothing committed).
        Exception: whatever ``work`` or the producer raised (nothing committed).
    """
    await producer.begin_transaction()
    scope = TransactionScope(producer)
    try:
        if work is not None:
            with transaction_scope(scope):
                await work()
        await scope.settle(timeout)
        if not still_owner():
            raise PartitionRevokedError
        await asyncio.wait_for(producer.send_offsets_to_transaction(offsets, group_id), timeout)
        await asyncio.wait_for(producer.commit_transaction(), timeout)
    except BaseException:  # Cancellation too: never leave a transaction open.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.abort_transaction(), timeout)
        raise


class TransactionalProducers:
    """The transactional producers of one listener consumer, one per assigned partition."""

    def __init__(self, template: Any, prefix: str, group_id: str, timeout: float) -> None:
        self._template = template
        self._prefix = prefix
        self._group_id = group_id
        self.timeout = timeout
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self._prefix}{self._group_id}.{tp.topic}.{tp.partition}"

    def get(self, tp: TopicPartition) -> AIOKafkaProducer | None:
        return self._producers.get(tp)

    async def for_partition(self, tp: TopicPartition) -> AIOKafkaProducer:
        """The partition's producer, started (which fences any older one with its id)."""
        producer = self._producers.get(tp)
        if producer is None:
            producer = self._template.transactional_producer(self.transactional_id(tp))
            await asyncio.wait_for(producer.start(), self.timeout)
            self._producers[tp] = producer
        return producer

    @staticmethod
    def is_fatal(error: BaseException, producer: AIOKafkaProducer) -> bool:
        """Whether the producer can no longer run transactions (fenced, or a fatal error)."""
        if isinstance(error, ProducerFenced | AssertionError):
            return True
        manager = getattr(producer, "_txn_manager", None)
        return bool(manager is not None and manager.is_fatal_error())

    async def close(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Close the producers of ``partitions`` (all by default), each within the timeout."""
        chosen = list(self._producers) if partitions is None else list(partitions)
        for tp in chosen:
            producer = self._producers.pop(tp, None)
            if producer is None:
                continue
            try:
                await asyncio.wait_for(producer.stop(), self.timeout)
            except Exception as exc:  # a fenced producer may fail to close cleanly
                log.warning(
                    "transactional producer %s closed with %r", self.transactional_id(tp), exc
                )
