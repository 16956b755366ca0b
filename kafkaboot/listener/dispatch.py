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

from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.binding import Invoker
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.listener.reply import send_result

__all__ = ["Handling", "RecordDispatcher", "TrackedAcknowledgment"]


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
    """An acknowledgment bound to the records it covers: one record, or (batch listeners)
    every record of the batch, each with the partition state it was delivered in."""

    __slots__ = ("_handling", "_records")

    def __init__(self, handling: Handling, records: list[tuple[PartitionState, int, int]]) -> None:
        super().__init__()
        self._handling = handling
        self._records = records
        """``(state, offset, epoch)`` per record."""

    def _report(self) -> None:
        self._handling.acknowledge(self)

    def apply(self, outcomes: Outcomes) -> None:
        for state, offset, epoch in self._records:
            outcomes.acknowledged(state, offset, epoch)


class RecordDispatcher:
    """Hands a partition's records to a record listener, one at a time, in order."""

    def __init__(self, handling: Handling) -> None:
        self.handling = handling
        invoker = handling.invoker
        plain = (
            invoker.is_coroutine
            and handling.filter is None
            and handling.send_to is None
            and handling.not_before is None
        )
        self._fast = (
            plain
            and handling.ack_mode not in (AckMode.RECORD,)
            and not (handling.ack_mode.is_manual)
        )
        self._fast_manual = plain and handling.ack_mode.is_manual

    async def dispatch(self, state: PartitionState, records: list[Record]) -> None:
        if self._fast:
            await self._run_plain(state, records)
        elif self._fast_manual:
            await self._run_manual(state, records)
        else:
            for record in records:
                if state.closing or not await self._one(state, record):
                    return

    async def _run_plain(self, state: PartitionState, records: list[Record]) -> None:
        """The common case (async handler, automatic commits per poll) with nothing per
        record but the call: the run of handled records is booked once."""
        handling = self.handling
        call = handling.invoker.call
        consumer = handling.consumer
        outcomes = handling.outcomes
        attempts = outcomes.attempts
        tp = state.tp
        count = 0
        last = -1
        try:
            for record in records:
                if state.closing:
                    return
                if attempts and self._waiting(state, record):
                    return
                try:
                    await call(record, None, consumer)
                except Exception as exc:
                    if count:
                        outcomes.handled(state, last, count)
                        count = 0
                    if not await outcomes.failed(state, record, exc):
                        return  # Rewound: the rest of its records come again.
                    outcomes.handled(state, record.offset, 1)  # Recovered.
                    continue
                if attempts:
                    attempts.done(tp, record.offset)
                count += 1
                last = record.offset
        finally:
            if count:
                outcomes.handled(state, last, count)

    async def _run_manual(self, state: PartitionState, records: list[Record]) -> None:
        """Manual acknowledgments with an async handler: what ``_one`` does, without the
        checks that do not apply."""
        handling = self.handling
        call = handling.invoker.call
        consumer = handling.consumer
        outcomes = handling.outcomes
        attempts = outcomes.attempts
        immediate = handling.ack_mode is AckMode.MANUAL_IMMEDIATE
        for record in records:
            if state.closing:
                return
            if attempts and self._waiting(state, record):
                return
            offset = record.offset
            epoch = state.epoch
            state.delivered(offset)
            ack = TrackedAcknowledgment(handling, [(state, offset, epoch)])
            try:
                await call(record, ack, consumer)
            except Exception as exc:
                ack.handler_returned()
                if not await outcomes.failed(state, record, exc):
                    return
                outcomes.acknowledged(state, offset, epoch)  # Recovered.
                continue
            ack.handler_returned()
            if attempts:
                attempts.done(state.tp, offset)
            if ack.nacked:
                await self._nacked(state, offset, ack.nack_sleep)
                return
            if immediate and ack.acknowledged:
                await outcomes.commit()

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

    async def _one(self, state: PartitionState, record: Record) -> bool:
        """Handle one record; ``False`` when its partition stops here (rewound, halted)."""
        handling = self.handling
        outcomes = handling.outcomes
        offset = record.offset
        wait = handling.not_due(record)
        if wait > 0:
            # A retry-topic record that is not due yet: its partition waits, polling goes on.
            outcomes.rewind(state, offset, timedelta(seconds=wait))
            return False
        if outcomes.attempts and self._waiting(state, record):
            return False
        manual = handling.ack_mode.is_manual
        ack: TrackedAcknowledgment | None = None
        epoch = state.epoch
        try:
            if handling.filter is not None and not handling.filter(record):
                outcomes.handled(state, offset, 1)  # Filtered out: finished.
                return True
            if manual:
                state.delivered(offset)
                ack = TrackedAcknowledgment(handling, [(state, offset, epoch)])
            result = await handling.invoke(record, ack)
            await handling.reply(record, result)
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
