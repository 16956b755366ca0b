"""The template's transactions: which transactional id a template uses, how one transaction
runs on a producer (begin, settle the sends, commit or abort), and the open transaction that a
task's sends belong to."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced

from kafkaboot.errors import KafkaSendError

__all__ = [
    "WORKER_INDEX_ENV",
    "TransactionScope",
    "current_scope",
    "default_transaction_id_suffix",
    "run_transaction",
    "transaction_scope",
    "transactional_id",
]

WORKER_INDEX_ENV = "KAFKABOOT_WORKER_INDEX"
"""Set by ``kafkaboot run --workers N`` in each worker process: 0 to N-1."""


def default_transaction_id_suffix(environ: Mapping[str, str] | None = None) -> str:
    """``<host name>-<worker index>``: unique among the processes of a service (one host
    name per machine, container or pod; one index per ``--workers`` process), and the same
    again when that process slot restarts, so the restarted producer fences its zombie."""
    environ = os.environ if environ is None else environ
    return f"{socket.gethostname()}-{environ.get(WORKER_INDEX_ENV, '0')}"


def transactional_id(prefix: str | None, *suffixes: str | None) -> str | None:
    """``prefix`` and the first of ``suffixes`` that is not None (else
    ``default_transaction_id_suffix()``); None without a prefix: not transactional."""
    if not prefix:
        return None
    suffix = next((s for s in suffixes if s is not None), None)
    return prefix + (default_transaction_id_suffix() if suffix is None else suffix)


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

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        """A block that joins this transaction: if it fails, the transaction must abort."""
        try:
            yield
        except BaseException:
            self.rollback_only = True
            raise


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


@contextlib.asynccontextmanager
async def run_transaction(
    producer: AIOKafkaProducer,
    transactional_id: str,
    timeout: float,
    renew: Callable[[AIOKafkaProducer], Awaitable[None]],
) -> AsyncIterator[None]:
    """One transaction on ``producer``: the sends made in the block commit together, or abort
    together on an exception (or if one of them fails). ``renew`` replaces the producer after
    a failure that may have left it out of step.

    Raises:
        KafkaSendError: a send of the transaction failed, or another producer with the same
            transactional id fenced this one; the transaction was aborted.
    """
    try:
        await producer.begin_transaction()
    except AssertionError as exc:  # aiokafka's state check, after a fence or a failed abort.
        manager = getattr(producer, "_txn_manager", None)
        if manager is not None and manager.is_fatal_error():  # Fenced by an earlier send.
            raise _fenced(transactional_id) from exc
        raise
    scope = TransactionScope(producer)
    try:
        with transaction_scope(scope):
            yield
        await scope.settle(timeout)
        await asyncio.wait_for(producer.commit_transaction(), timeout)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.abort_transaction(), timeout)
        if isinstance(exc, ProducerFenced) or isinstance(exc.__cause__, ProducerFenced):
            # A new producer would fence the newer one in turn: this one is the zombie.
            raise _fenced(transactional_id) from exc
        if isinstance(exc, KafkaError | KafkaSendError | TimeoutError):
            # A refused or lost send can leave the idempotent producer's sequence
            # numbers out of step; a new producer with the same id starts clean.
            await renew(producer)
        raise


def _fenced(transactional_id: str) -> KafkaSendError:
    """Another producer has the template's transactional id: this one stays fenced."""
    return KafkaSendError(
        f"the transaction was aborted: another producer started with this template's "
        f"transactional id {transactional_id!r}, which fences this one. If this process "
        "was replaced, stop it; if two running processes share the id, give each its own "
        "kafka.producer.transaction-id-suffix",
        topic="?",
    )
