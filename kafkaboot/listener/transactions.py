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
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from kafkaboot.errors import BatchListenerFailedError, KafkaSendError
from kafkaboot.listener.handling import Handling
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.template import TransactionScope, transaction_scope

__all__ = [
    "PartitionRevokedError",
    "TransactionalDispatcher",
    "TransactionalProducers",
    "in_transaction",
]

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


_AFTER_FENCING = timedelta(seconds=5)


class TransactionalDispatcher:
    """Runs a listener's work in its partition's transaction, together with the offsets it
    moves past; used for record listeners (a transaction per record) and by batch listeners
    (a transaction per partition's batch)."""

    def __init__(
        self, handling: Handling, producers: TransactionalProducers, group_id: str
    ) -> None:
        self.handling = handling
        self.producers = producers
        self.group_id = group_id

    async def dispatch(self, state: PartitionState, records: list[Record]) -> None:
        """Record listeners: one transaction per record, in order."""
        handling = self.handling
        outcomes = handling.outcomes
        if outcomes.attempts.of(state.tp):
            outcomes.attempts.forget_before(state.tp, records[0].offset)
        for record in records:
            if state.closing:
                return
            # A retry-topic record not due yet, or one still in a back-off from before a
            # rebalance: the partition waits, polling goes on.
            wait = max(
                handling.not_due(record), outcomes.attempts.remaining(state.tp, record.offset)
            )
            if wait > 0:
                outcomes.rewind(state, record.offset, timedelta(seconds=wait))
                return

            async def work(record: Record = record) -> None:
                kept = handling.keep(record)
                if kept is not None:  # Else filtered out: only its offset is committed.
                    await handling.run(kept, None)

            if not await self.run(state, record, work, record.offset):
                return
            handling.outcomes.attempts.done(state.tp, record.offset)

    async def run(
        self,
        state: PartitionState,
        first: Record,
        work: Callable[[], Awaitable[None]],
        last: int,
        batch: tuple[Record, ...] = (),
    ) -> bool:
        """Run ``work`` in the partition's transaction with the offsets up to ``last``; on
        failure, the error handler decides. ``True`` when the records are finished (handled,
        or recovered); ``False`` when the partition was rewound or revoked. ``first`` is the
        first record the transaction covers, ``batch`` all of them (a recovery must deal
        with every record the offsets move past)."""
        outcomes = self.handling.outcomes
        tp = state.tp
        offsets = {tp: last + 1}

        def still_owner() -> bool:
            return state.open

        try:
            producer = await self.producers.for_partition(tp)
            await in_transaction(
                producer, work, offsets, self.group_id, self.producers.timeout, still_owner
            )
        except PartitionRevokedError:
            return False
        except Exception as exc:
            if await self._producer_lost(state, first.offset, exc) or not state.open:
                return False
            if isinstance(exc, KafkaError | KafkaSendError | TimeoutError):
                # A send was refused or lost: renew the producer so its sequence numbers
                # start clean (the transaction is already aborted).
                await self.producers.close([tp])
            # In a transaction a batch commits or aborts as a whole: no partial commit.
            error = exc.failure if isinstance(exc, BatchListenerFailedError) else exc
            action = await outcomes.decide(first, error, batch)
            if not outcomes.act(state, first.offset, action):
                return False
            if not await self._commit_offsets(state, first.offset, offsets):
                return False  # Recovered: move past the record(s) in a transaction of their own.
        self._committed(state, last)
        return True

    async def _commit_offsets(
        self, state: PartitionState, first: int, offsets: dict[TopicPartition, int]
    ) -> bool:
        try:
            producer = await self.producers.for_partition(state.tp)
            await in_transaction(
                producer, None, offsets, self.group_id, self.producers.timeout, lambda: state.open
            )
        except PartitionRevokedError:
            return False
        except Exception as exc:
            if not await self._producer_lost(state, first, exc):
                self.handling.outcomes.rewind(state, first, timedelta(seconds=1))
            return False
        return True

    def _committed(self, state: PartitionState, last: int) -> None:
        self.handling.outcomes.handled(state, last, 1)
        state.committed = last + 1

    async def _producer_lost(self, state: PartitionState, first: int, error: BaseException) -> bool:
        """A fenced or broken producer: close it and read the partition again from the
        first record not committed (the fencer may own the partition now; if so, the
        rebalance takes it away). ``True`` if that was the case."""
        producers = self.producers
        producer = producers.get(state.tp)
        if producer is None or not producers.is_fatal(error, producer):
            return False
        log.warning(
            "listener %s: the transactional producer of %s-%d cannot go on (%r); reopening "
            "it and reading the partition again from offset %d",
            self.handling.listener_id,
            state.tp.topic,
            state.tp.partition,
            error,
            first,
        )
        await producers.close([state.tp])
        # Not at once: if another consumer fenced this one, reopening the producer would
        # fence it back; the rebalance that takes the partition away comes meanwhile.
        self.handling.outcomes.rewind(state, first, _AFTER_FENCING)
        return True
