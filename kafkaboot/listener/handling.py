"""What every dispatch style (one record at a time, lanes, batches, transactions) needs to
call a listener's handler, and the acknowledgments it books.

An acknowledgment is bound to the record (or batch) and the delivery it came with: one that
comes after a rebalance took its partition, or after a rewind took its record back, books
nothing, and the record comes again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer

from kafkaboot.interceptors import BatchInterceptors, RecordHooks, hook_failed
from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.binding import Invoker
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.listener.reply import send_result

__all__ = [
    "BatchAcknowledgment",
    "Handling",
    "HeldAcknowledgment",
    "TrackedAcknowledgment",
]

_NO_WAIT = timedelta(0)


@dataclasses.dataclass(slots=True)
class Handling:
    """What every dispatch style needs to call a listener's handler (one per consumer)."""

    invoker: Invoker
    consumer: AIOKafkaConsumer
    outcomes: Outcomes
    listener_id: str
    ack_mode: AckMode
    filter: Callable[[Any], bool] | None = None
    send_to: str | None = None
    not_before: Callable[[Any], float | None] | None = None
    """Retry topics: when a record is due (epoch seconds); until then its partition waits."""
    template: Any = None
    after_late_ack: Callable[[], None] | None = None
    """Called after an acknowledgment that came while no handler ran (immediate commits)."""
    loop: asyncio.AbstractEventLoop | None = None
    loop_thread: int | None = None
    interceptor: RecordHooks | None = None
    batch_interceptor: BatchInterceptors | None = None

    @property
    def plain(self) -> bool:
        """Nothing per record but the call: an async handler, no filter, reply, due time
        or interceptor (the dispatch styles' fast paths)."""
        return (
            self.invoker.is_coroutine
            and self.filter is None
            and self.send_to is None
            and self.not_before is None
            and self.interceptor is None
        )

    def keep(self, record: Record) -> Record | None:
        """Whether to hand ``record`` on: the interceptors' ``intercept``, then the filter.
        ``None``: left out (finished, and the interceptors' delivery is over). Raises what
        they raise: the record's failure."""
        hooks = self.interceptor
        if hooks is None:
            if self.filter is not None and not self.filter(record):
                return None
            return record
        consumer = self.consumer
        try:
            kept: Record | None = record
            if hooks.intercept is not None:
                kept = hooks.intercept(record, consumer)
            if kept is not None and (self.filter is None or self.filter(kept)):
                return kept
        except Exception as exc:
            self.failed_hooks(hooks, record, exc)
            raise
        self.keep_skipped(hooks, record)
        return None

    def keep_skipped(self, hooks: RecordHooks, record: Record) -> None:
        """``filtered`` then ``after_record``, for a record an ``intercept`` left out."""
        if hooks.filtered is not None:
            try:
                hooks.filtered(record, self.consumer)
            except Exception as exc:
                hook_failed(hooks.filtered, exc)
        self.after_hooks(hooks, record)

    async def run(self, record: Record, ack: Acknowledgment | None) -> None:
        """The handler and its reply for a record ``keep`` handed on, with the interceptors'
        ``success`` or ``failure`` and ``after_record``."""
        hooks = self.interceptor
        if hooks is None:
            await self.reply(record, await self.invoke(record, ack))
            return
        try:
            await self.reply(record, await self.invoke(record, ack))
        except Exception as exc:
            self.failed_hooks(hooks, record, exc)
            raise
        except BaseException:  # Cancelled (a stop that could not wait): still "after".
            self.after_hooks(hooks, record)
            raise
        if hooks.success is not None:
            try:
                hooks.success(record, self.consumer)
            except Exception as exc:
                hook_failed(hooks.success, exc)
        self.after_hooks(hooks, record)

    def failed_hooks(self, hooks: RecordHooks, record: Record, error: Exception) -> None:
        """``failure`` then ``after_record``."""
        if hooks.failure is not None:
            try:
                hooks.failure(record, error, self.consumer)
            except Exception as exc:
                hook_failed(hooks.failure, exc)
        self.after_hooks(hooks, record)

    def after_hooks(self, hooks: RecordHooks, record: Record) -> None:
        if hooks.after_record is not None:
            try:
                hooks.after_record(record, self.consumer)
            except Exception as exc:
                hook_failed(hooks.after_record, exc)

    async def invoke(self, argument: Any, ack: Acknowledgment | None) -> Any:
        """Call the handler (a ``def`` one in a worker thread) and its ``@send_to``."""
        invoker = self.invoker
        if invoker.is_async:
            result = invoker.call(argument, ack, self.consumer)
        else:
            result = await asyncio.to_thread(invoker.call, argument, ack, self.consumer)
        if inspect.isawaitable(result):  # Also a sync wrapper around a coroutine function.
            result = await result
        return result

    async def reply(self, record: Record, result: Any) -> None:
        if self.send_to is not None:
            await send_result(self.template, self.send_to, self.listener_id, record, result)

    def acknowledge(self, ack: TrackedAcknowledgment) -> None:
        """An acknowledgment from any task or thread, applied on the consumer's loop."""
        if self.loop is not None and threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(self._apply, ack)
        else:
            self._apply(ack)

    def _apply(self, ack: TrackedAcknowledgment) -> None:
        ack.apply(self.outcomes)
        if ack._returned and self.after_late_ack is not None:
            self.after_late_ack()

    def not_due(self, record: Record) -> float:
        """Seconds until a retry-topic record is due (0: due now)."""
        if self.not_before is None:
            return 0.0
        try:
            due = self.not_before(record)
        except Exception:  # A malformed due-time header: the record is due.
            return 0.0
        return 0.0 if due is None else max(0.0, due - time.time())


class TrackedAcknowledgment(Acknowledgment):
    """An acknowledgment bound to the record it covers and the delivery it came with."""

    __slots__ = ("_epoch", "_handling", "_offset", "_state")

    def __init__(self, handling: Handling, state: PartitionState, offset: int) -> None:
        self._on_acknowledge = None
        self._returned = False
        self.acknowledged = False
        self.nacked = False
        self.nack_sleep = _NO_WAIT
        self._handling = handling
        self._state = state
        self._offset = offset
        self._epoch = state.epoch

    def _report(self) -> None:
        self._handling.acknowledge(self)

    def apply(self, outcomes: Outcomes) -> None:
        outcomes.acknowledged(self._state, self._offset, self._epoch)


class HeldAcknowledgment(TrackedAcknowledgment):
    """An acknowledgment given while the handler runs is booked by the dispatcher once the
    handler returns (a handler that acknowledges and then raises is retried with its
    record still open, as a rewind takes it back anyway); one given later is reported at
    once, from whichever task or thread."""

    __slots__ = ()

    def acknowledge(self) -> None:
        if not self.acknowledged and not self.nacked:
            self.acknowledged = True
            if self._returned:
                self._handling.acknowledge(self)

    def _report(self) -> None:
        if self._returned:
            self._handling.acknowledge(self)


class BatchAcknowledgment(TrackedAcknowledgment):
    """Batch listeners: one acknowledgment for every record of the batch, each with the
    partition state and epoch it was delivered in."""

    __slots__ = ("_records",)

    def __init__(self, handling: Handling, records: list[tuple[PartitionState, int, int]]) -> None:
        state, offset, _ = records[0]
        super().__init__(handling, state, offset)
        self._records = records

    def apply(self, outcomes: Outcomes) -> None:
        for state, offset, epoch in self._records:
            outcomes.acknowledged(state, offset, epoch)
