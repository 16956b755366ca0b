"""The template's transactions: which transactional id a template uses, and the open
transaction that a task's sends belong to."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from kafkaboot.errors import KafkaSendError

__all__ = [
    "WORKER_INDEX_ENV",
    "TransactionScope",
    "current_scope",
    "default_transaction_id_suffix",
    "transaction_scope",
]

WORKER_INDEX_ENV = "KAFKABOOT_WORKER_INDEX"
"""Set by ``kafkaboot run --workers N`` in each worker process: 0 to N-1."""


def default_transaction_id_suffix(environ: Mapping[str, str] | None = None) -> str:
    """``<host name>-<worker index>``: unique among the processes of a service (one host
    name per machine, container or pod; one index per ``--workers`` process), and the same
    again when that process slot restarts, so the restarted producer fences its zombie."""
    environ = os.environ if environ is None else environ
    return f"{socket.gethostname()}-{environ.get(WORKER_INDEX_ENV, '0')}"


class TransactionScope:
    """One open transaction: its producer, the deliveries of the sends made in it, and
    whether a nested block failed. Sends belong to the scope of the task that made them."""

    __slots__ = ("deliveries", "producer", "rollback_only")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.deliveries: list[asyncio.Future[Any]] = []
        self.rollback_only = False

    async def settle(self, timeout: float) -> None:
        """Wait for every send of the transaction; it must not commit if one failed.

        Raises:
            KafkaSendError: a send failed, or a nested block asked for a rollback.
        """
        if self.deliveries:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*self.deliveries, return_exceptions=True), timeout
            )
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            if failed:
                raise KafkaSendError(
                    f"{len(failed)} send(s) of the transaction failed ({failed[0]!r}); aborting it",
                    topic="?",
                ) from failed[0]
        if self.rollback_only:
            raise KafkaSendError("a block inside the transaction failed; aborting it", topic="?")


_scope: contextvars.ContextVar[TransactionScope | None] = contextvars.ContextVar(
    "kafkaboot_transaction_scope", default=None
)
current_scope = _scope.get
"""The transaction the current task's sends belong to, if any."""


@contextlib.contextmanager
def transaction_scope(scope: TransactionScope) -> Iterator[TransactionScope]:
    """While a transactional listener handles a record, the template's sends go to that
    listener's producer, inside its transaction (Spring binds the producer to the thread)."""
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
