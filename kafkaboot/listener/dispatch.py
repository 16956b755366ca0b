"""Record listeners: how a partition's records reach the handler one at a time.

Records of a partition are handled strictly in order. Each outcome goes to
:class:`~kafkaboot.listener.outcomes.Outcomes`: a run of handled records is booked once,
a failure goes to the error handler (whose decision rewinds, pauses or recovers), and a
manual acknowledgment is reported whenever it comes, from whichever task or thread.
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
from kafkaboot.listener.attempts import Failures
from kafkaboot.listener.binding import Invoker
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.listener.reply import send_result

__all__ = [
    "BatchAcknowledgment",
    "Handling",
    "HeldAcknowledgment",
    "RecordDispatcher",
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


class RecordDispatcher:
    """Hands a partition's records to a record listener, one at a time, in order."""

    def __init__(self, handling: Handling) -> None:
        self.handling = handling
        plain = handling.plain
        mode = handling.ack_mode
        automatic = mode is not AckMode.RECORD and not mode.is_manual
        self._fast = plain and automatic
        self._fast_manual = plain and mode.is_manual
        self._observed = (
            automatic
            and handling.interceptor is not None
            and handling.invoker.is_coroutine
            and handling.filter is None
            and handling.send_to is None
            and handling.not_before is None
        )

    async def dispatch(self, state: PartitionState, records: list[Record]) -> None:
        attempts = self.handling.outcomes.attempts
        failing = attempts.of(state.tp)
        if failing:
            attempts.forget_before(state.tp, records[0].offset)
            failing = attempts.of(state.tp)
        if self._fast:
            await self._run_plain(state, records, failing)
        elif self._observed:
            await self._run_observed(state, records, failing)
        elif self._fast_manual:
            await self._run_manual(state, records, failing)
        else:
            for record in records:
                if state.closing or not await self._one(state, record, failing):
                    return

    async def _run_plain(
        self, state: PartitionState, records: list[Record], failing: Failures | None
    ) -> None:
        """The common case (async handler, automatic commits per poll) with nothing per
        record but the call and one attribute: the finished offset moves with every record
        (a revocation that cannot wait for the record in hand still commits the ones
        before it), and the run is counted once."""
        handling = self.handling
        call = handling.invoker.call
        consumer = handling.consumer
        outcomes = handling.outcomes
        count = 0
        try:
            for record in records:
                if state.closing:
                    return
                offset = record.offset
                if failing and offset in failing and self._waiting(state, record):
                    return
                try:
                    await call(record, None, consumer)
                except Exception as exc:
                    if not await outcomes.failed(state, record, exc):
                        return  # Rewound: the rest of its records come again.
                    # Recovered: finished like a handled record.
                    failing = outcomes.attempts.of(state.tp)
                else:
                    if failing:
                        outcomes.attempts.done(state.tp, offset)
                if state.open:
                    state.finished = offset + 1
                count += 1
        finally:
            outcomes.book.uncommitted += count

    async def _run_observed(
        self, state: PartitionState, records: list[Record], failing: Failures | None
    ) -> None:
        """``_run_plain`` with interceptors: what ``Handling.keep`` and ``Handling.run`` do,
        inline, as metrics and tracing run on every record."""
        handling = self.handling
        hooks = handling.interceptor
        assert hooks is not None  # noqa: S101 - checked by the caller
        intercept, success, after = hooks.intercept, hooks.success, hooks.after_record
        call = handling.invoker.call
        consumer = handling.consumer
        outcomes = handling.outcomes
        count = 0
        try:
            for record in records:
                if state.closing:
                    return
                offset = record.offset
                if failing and offset in failing and self._waiting(state, record):
                    return
                try:
                    kept = record if intercept is None else intercept(record, consumer)
                    if kept is None:
                        handling.keep_skipped(hooks, record)
                    else:
                        try:
                            await call(kept, None, consumer)
                        except BaseException:
                            record = kept
                            raise
                        if success is not None:
                            try:
                                success(kept, consumer)
                            except Exception as exc:
                                hook_failed(success, exc)
                        if after is not None:
                            try:
                                after(kept, consumer)
                            except Exception as exc:
                                hook_failed(after, exc)
                except Exception as exc:
                    handling.failed_hooks(hooks, record, exc)
                    if not await outcomes.failed(state, record, exc):
                        return
                    failing = outcomes.attempts.of(state.tp)
                except BaseException:
                    handling.after_hooks(hooks, record)
                    raise
                else:
                    if failing:
                        outcomes.attempts.done(state.tp, offset)
                if state.open:
                    state.finished = offset + 1
                count += 1
        finally:
            outcomes.book.uncommitted += count

    async def _run_manual(
        self, state: PartitionState, records: list[Record], failing: Failures | None
    ) -> None:
        """Manual acknowledgments with an async handler: what ``_one`` does, without the
        checks that do not apply. The record is booked when its handler returns (finished
        if it acknowledged it, else open until it does), as lanes do: one step per record
        instead of "delivered" before the call and "acknowledged" from within it."""
        handling = self.handling
        call = handling.invoker.call
        consumer = handling.consumer
        outcomes = handling.outcomes
        immediate = handling.ack_mode is AckMode.MANUAL_IMMEDIATE
        count = 0
        try:
            for record in records:
                if state.closing:
                    return
                offset = record.offset
                if failing and offset in failing and self._waiting(state, record):
                    return
                ack = HeldAcknowledgment(handling, state, offset)
                try:
                    await call(record, ack, consumer)
                except Exception as exc:
                    ack._returned = True
                    if not await outcomes.failed(state, record, exc):
                        return
                    state.returned(offset, ack._epoch, True)  # Recovered: finished.
                    count += 1
                    failing = outcomes.attempts.of(state.tp)
                    continue
                ack._returned = True
                if failing:
                    outcomes.attempts.done(state.tp, offset)
                if ack.nacked:
                    await self._nacked(state, offset, ack.nack_sleep)
                    return
                acknowledged = ack.acknowledged
                state.returned(offset, ack._epoch, acknowledged)
                if acknowledged:
                    count += 1
                    if immediate:
                        await outcomes.commit()
        finally:
            outcomes.book.uncommitted += count

    def _waiting(self, state: PartitionState, record: Record) -> bool:
        """A record still in its back-off (from before a rebalance): wait for it."""
        wait = self.handling.outcomes.attempts.remaining(state.tp, record.offset)
        if wait <= 0:
            return False
        self.handling.outcomes.rewind(state, record.offset, timedelta(seconds=wait))
        return True

    async def _nacked(self, state: PartitionState, offset: int, sleep: timedelta) -> None:
        outcomes = self.handling.outcomes
        outcomes.rewind(state, offset, sleep)
        await outcomes.commit([state.tp])  # What came before the nacked record is done.

    async def _one(self, state: PartitionState, record: Record, failing: Failures | None) -> bool:
        """Handle one record; ``False`` when its partition stops here (rewound, halted)."""
        handling = self.handling
        outcomes = handling.outcomes
        offset = record.offset
        wait = handling.not_due(record)
        if wait > 0:
            # A retry-topic record that is not due yet: its partition waits, polling goes on.
            outcomes.rewind(state, offset, timedelta(seconds=wait))
            return False
        if failing and offset in failing and self._waiting(state, record):
            return False
        manual = handling.ack_mode.is_manual
        ack: TrackedAcknowledgment | None = None
        epoch = state.epoch
        try:
            kept = handling.keep(record)
            if kept is None:
                outcomes.handled(state, offset, 1)  # Filtered out: finished.
                return True
            if manual:
                state.delivered(offset)
                ack = TrackedAcknowledgment(handling, state, offset)
            await handling.run(kept, ack)
        except Exception as exc:
            if ack is not None:
                ack.handler_returned()
            if not await outcomes.failed(state, record, exc):
                return False
            if ack is not None:
                outcomes.acknowledged(state, offset, epoch)  # Recovered.
            else:
                outcomes.handled(state, offset, 1)
            return True
        outcomes.attempts.done(state.tp, offset)
        if ack is None:
            outcomes.handled(state, offset, 1)
            if handling.ack_mode is AckMode.RECORD:
                await outcomes.commit()
            return True
        ack.handler_returned()
        if ack.nacked:
            await self._nacked(state, offset, ack.nack_sleep)
            return False
        if ack.acknowledged and handling.ack_mode is AckMode.MANUAL_IMMEDIATE:
            await outcomes.commit()
        return True
