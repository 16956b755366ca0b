"""The KafkaTemplate's transactions: a block whose sends commit or abort together, the
producer renewed after a transaction leaves it unusable, offsets committed in a transaction,
and producers of their own for transactional listeners.

How one transaction runs on a producer (begin, settle, commit or abort) and the scope a
task's sends join are in :mod:`kafkaboot.transaction`; this is the template's side of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Self

from aiokafka import AIOKafkaProducer

from kafkaboot import clients
from kafkaboot.errors import KafkaBootError
from kafkaboot.transaction import current_scope, run_transaction

__all__ = ["STOP_TIMEOUT_S", "TemplateTransactions", "close_quietly"]

log = logging.getLogger("kafkaboot.template")
STOP_TIMEOUT_S = 10.0


async def close_quietly(producer: AIOKafkaProducer) -> None:
    """Close a producer that is being given up on, whatever state it is in."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), STOP_TIMEOUT_S)


class TemplateTransactions:
    """KafkaTemplate's transactional methods; the template sets the attributes below."""

    _producer: AIOKafkaProducer | None
    _kwargs: dict[str, Any]
    _transaction_id: str | None
    _transaction_lock: asyncio.Lock

    if TYPE_CHECKING:  # KafkaTemplate's own.

        def _started(self) -> AIOKafkaProducer: ...

        @property
        def delivery_timeout(self) -> float: ...

    @property
    def transactional(self) -> bool:
        return self._transaction_id is not None

    @property
    def transactional_id(self) -> str | None:
        """The template's own transactional id (prefix + suffix), if it is transactional."""
        return self._transaction_id

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Self]:
        """Commit every send inside the block together, or abort them all on an exception
        (or if one of them fails). Inside a transactional listener, the block joins the
        listener's transaction; if it fails, that transaction aborts too.

        Raises:
            KafkaBootError: the template is not transactional.
            KafkaSendError: a send of the transaction failed, so it was aborted.
        """
        outer = current_scope()
        if outer is not None:
            with outer.joined():
                yield self
            return
        if self._transaction_id is None:
            raise KafkaBootError(
                "transactions need kafka.producer.transaction-id-prefix (e.g. 'tx-') in the "
                "configuration"
            )
        # One producer has one transaction at a time: concurrent callers take turns.
        async with self._transaction_lock:
            # Read under the lock: the transaction before may have renewed the producer.
            producer = self._started()
            async with run_transaction(
                producer, self._transaction_id, self.delivery_timeout, self._renew_producer
            ):
                yield self

    async def _renew_producer(self, old: AIOKafkaProducer) -> None:
        """Replace ``old`` by a new producer with the same id, and close ``old``."""
        fresh = clients.producer(**self._kwargs)
        try:
            await asyncio.wait_for(fresh.start(), self.delivery_timeout)
        except Exception:
            await close_quietly(fresh)
            log.exception("could not renew the transactional producer; keeping the old one")
            return
        if self._producer is not old:  # The template stopped (closing ``old``) meanwhile.
            await close_quietly(fresh)
            return
        self._producer = fresh
        await close_quietly(old)

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, int], group_id: str) -> None:
        """Commit a consumer group's offsets in the current transaction
        (consume-process-produce exactly once)."""
        scope = current_scope()
        producer = scope.producer if scope is not None else self._started()
        await producer.send_offsets_to_transaction(dict(offsets), group_id)

    def transactional_producer(self, transactional_id: str) -> AIOKafkaProducer:
        """A new producer configured like this template's, with its own transactional id
        (transactional listeners use one per partition, so transactions never interleave)."""
        return clients.producer(**(self._kwargs | {"transactional_id": transactional_id}))
