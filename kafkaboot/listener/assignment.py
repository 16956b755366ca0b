"""How a consumer's partitions come and go.

A revocation lets the record (or batch) in hand finish within the shutdown timeout, commits
what is finished, and only then closes the partitions' states. An assignment pauses the new
partitions until their seeks (``kafka.listeners.<id>.seek``, a seek-aware listener) are
applied: aiokafka fetches as soon as it assigned, and what it fetched before the seeks is
held back and read again from where it started. Runtime seeks run on the consumer's own task
at its next poll.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from kafkaboot.config.kafka import SeekProperties
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionBook, PartitionState
from kafkaboot.listener.rebalance import (
    ConsumerSeekAware,
    SeekCallback,
    SeekRequest,
    apply_seeks,
    call_maybe_async,
    initial_seek_requests,
)
from kafkaboot.listener.settings import Listener
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.listener.transactions import TransactionalProducers

__all__ = ["PartitionAssignment"]

log = logging.getLogger("kafkaboot.listener")


class PartitionAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """The partitions of one consumer: aiokafka's rebalance callbacks, and seeks.

    Args:
        container: the listener container.
        index: which of the container's consumers this is.
        consumer: the consumer.
        book: its partition states.
        outcomes: where commits happen.
        idle: set while the consumer's poll loop handles no records.
    """

    def __init__(
        self,
        container: Listener,
        index: int,
        consumer: AIOKafkaConsumer,
        book: PartitionBook,
        outcomes: Outcomes,
        idle: asyncio.Event,
    ) -> None:
        self.container = container
        self.index = index
        self.consumer = consumer
        self.book = book
        self.outcomes = outcomes
        self.idle = idle
        self.name = f"{container.listener_id}-{index}"
        self.transactions: TransactionalProducers | None = None
        self.seeks: list[SeekRequest] = []
        self.drain: Callable[[set[TopicPartition], float], Awaitable[None]] | None = None
        """With lanes: lets the records in hand of revoked partitions finish (within a
        timeout) and gives up the rest."""
        self.joined_at: float | None = None
        """When (monotonic clock) the consumer's latest group join completed (an empty
        assignment counts: more consumers than partitions is a steady state); ``None``
        before the first join and from a revocation (a rejoin begins) until the next."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.joined_at = None
        await self.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.assigned(set(assigned))
        finally:
            # aiokafka's join is complete whatever a callback did (it logs and goes on).
            self.joined_at = time.monotonic()

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return  # The first join of a group "revokes" nothing; not worth a callback.
        timeout = self.container.settings.shutdown_timeout
        for tp in revoked:
            state = self.book.get(tp)
            if state is not None:
                state.closing = True  # Handling stops after the record in hand.
        if not self.idle.is_set():
            try:
                await asyncio.wait_for(self.idle.wait(), timeout=timeout)
            except TimeoutError:
                log.warning(
                    "listener %s: a record was still being handled %.1fs after partitions "
                    "were revoked; it will be delivered again to the new owner",
                    self.name,
                    timeout,
                )
        if self.drain is not None:
            await self.drain(revoked, timeout)
        try:
            await asyncio.wait_for(self.outcomes.commit(revoked), timeout=timeout)
        except TimeoutError:
            log.warning("listener %s: commit before revocation timed out", self.name)
        self.book.remove(revoked)
        if self.transactions is not None:
            await self.transactions.close(revoked)
        listener = self.container.rebalance_listener
        if listener is not None and hasattr(listener, "on_partitions_revoked"):
            await self._call_listener(listener.on_partitions_revoked, revoked, self.consumer)

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        states = [self.book.assign(tp) for tp in assigned]
        # aiokafka fetches as soon as it assigned, before this callback (and its seeks)
        # ran: pause until the seeks are done, and hold back what was fetched already.
        if assigned:
            self.consumer.pause(*assigned)
        for state in states:
            state.ready = False
        try:
            await self._assigned(assigned)
        finally:
            self._release(states, assigned)

    def _release(self, states: list[PartitionState], assigned: set[TopicPartition]) -> None:
        """After the assignment's callbacks: read held-back records again, let records
        through, resume fetching. Each step on its own, so one failure stalls nothing."""
        try:
            for state in states:
                state.ready = True
                start = state.resume_offset
                if start is None or not state.open:
                    continue
                # Records were fetched (and held back) from ``start``: read them again.
                log.debug(
                    "listener %s: %s-%d reads again from %d after its assignment",
                    self.name,
                    state.tp.topic,
                    state.tp.partition,
                    start,
                )
                try:
                    self.consumer.seek(state.tp, start)
                except Exception as exc:  # Revoked meanwhile: the new owner reads it.
                    log.warning("listener %s: cannot seek %s: %r", self.name, state.tp, exc)
                state.sought(start)
        finally:
            if not self.container.paused:
                resume = (assigned & self.book.partitions) - self.outcomes.held
                if resume:
                    self.consumer.resume(*resume)

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        container = self.container
        if container.initial_seek is not None:
            await self._initial_seek(container.initial_seek, assigned)
        if container.offset_store is not None:
            await self._stored_seek(container.offset_store, assigned)
        listener = container.rebalance_listener
        if listener is None:
            return
        if isinstance(listener, ConsumerSeekAware) or _takes_seek(listener):
            positions = {}
            for tp in assigned:
                state = self.book.get(tp)
                held = state.resume_offset if state is not None else None
                positions[tp] = held if held is not None else await self.consumer.position(tp)
            seek = SeekCallback()
            await self._call_listener(listener.on_partitions_assigned, positions, seek)
            await self._sought(await apply_seeks(self.consumer, seek.requests, assigned))
        elif hasattr(listener, "on_partitions_assigned"):
            await self._call_listener(listener.on_partitions_assigned, assigned, self.consumer)

    async def _initial_seek(self, seek: SeekProperties, assigned: set[TopicPartition]) -> None:
        """``kafka.listeners.<id>.seek``: with ``once``, the first assignment of each
        partition in this process; otherwise only partitions the group has no committed
        offset for, so a rebalance or a restart never skips records."""
        container = self.container
        try:
            if seek.once:
                targets = assigned - container.seeked
                container.seeked |= targets
            else:
                committed = await asyncio.gather(
                    *(self.consumer.committed(tp) for tp in sorted(assigned))
                )
                targets = {
                    tp
                    for tp, offset in zip(sorted(assigned), committed, strict=True)
                    if offset is None
                }
            requests = initial_seek_requests(seek, targets)
            await self._sought(await apply_seeks(self.consumer, requests, targets))
        except (KafkaError, ValueError) as exc:
            container.record_error(exc)
            log.error("listener %s: the configured seek failed: %r", self.name, exc)

    async def _stored_seek(self, stored: StoredOffsets, assigned: set[TopicPartition]) -> None:
        """An offset store: each partition goes on from its stored offset (one without goes
        on from the committed offset, or ``auto-offset-reset``). If the store cannot be
        read, reading starts from the committed offset, which is never past the stored
        one: the first save then finds the store ahead and skips to it."""
        try:
            positions = await stored.positions(assigned)
            requests = [SeekRequest("offset", (tp,), at) for tp, at in positions.items()]
            await self._sought(await apply_seeks(self.consumer, requests, assigned))
        except Exception as exc:
            self.container.record_error(exc)
            log.error(
                "listener %s: cannot seek to the stored offsets (%r); reading from the "
                "committed offsets until a save finds the store ahead",
                self.name,
                exc,
            )

    async def _sought(self, partitions: Iterable[TopicPartition]) -> None:
        """Tell the states of ``partitions`` where their seeks landed (a seek to the end or
        the beginning resolves here)."""
        for tp in set(partitions):
            state = self.book.get(tp)
            if state is not None:
                state.sought(await self.consumer.position(tp))

    def apply_pauses(self, assigned: set[TopicPartition]) -> None:
        held = self.outcomes.held
        paused = assigned if self.container.paused else assigned & held
        if paused:
            self.consumer.pause(*paused)

    async def lost(self, lost: set[TopicPartition]) -> None:
        self.book.remove(lost)
        if self.drain is not None:
            await self.drain(lost, 0)  # Someone else has them: stop at once.
        listener = self.container.rebalance_listener
        if listener is not None and hasattr(listener, "on_partitions_lost"):
            await self._call_listener(listener.on_partitions_lost, lost, self.consumer)

    async def _call_listener(self, callback: Any, *args: Any) -> None:
        try:
            await call_maybe_async(callback, *args)
        except Exception as exc:
            self.container.record_error(exc)
            log.exception("listener %s: rebalance listener %r failed", self.name, callback)

    # -- seeks ------------------------------------------------------------------------------

    async def apply_runtime_seeks(self) -> None:
        requests, self.seeks = self.seeks, []
        try:
            moved = await apply_seeks(self.consumer, requests, self.book.partitions)
        except (KafkaError, ValueError) as exc:
            self.container.record_error(exc)
            log.error("listener %s: seek failed: %r", self.name, exc)
            return
        await self._sought(moved)

    async def initial_manual_positions(self) -> None:
        seek = SeekCallback()
        for spec in self.container.partitions_for(self.index):
            tp = TopicPartition(spec.topic, spec.partition)
            if spec.position == "beginning":
                seek.seek_to_beginning(tp)
            elif spec.position == "end":
                seek.seek_to_end(tp)
            elif spec.offset is not None and spec.relative:
                seek.seek_relative(tp, spec.offset)
            elif spec.offset is not None and spec.offset < 0:
                end = (await self.consumer.end_offsets([tp]))[tp]
                seek.seek(tp, max(0, end + spec.offset))
            elif spec.offset is not None:
                seek.seek(tp, spec.offset)
        await apply_seeks(self.consumer, seek.requests, self.book.partitions)


def _takes_seek(listener: Any) -> bool:
    method = getattr(listener, "on_partitions_assigned", None)
    if method is None:
        return False
    return "seek" in inspect.signature(method).parameters
