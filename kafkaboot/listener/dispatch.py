"""Record listeners: how a partition's records reach the handler one at a time.

Records of a partition are handled strictly in order. Each outcome goes to
:class:`~kafkaboot.listener.outcomes.Outcomes`: a run of handled records is booked once,
a failure goes to the error handler (whose decision rewinds, pauses or recovers), and a
manual acknowledgment is reported whenever it comes, from whichever task or thread.
"""

from __future__ import annotations

from datetime import timedelta

from kafkaboot.interceptors import hook_failed
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.attempts import Failures
from kafkaboot.listener.handling import Handling, HeldAcknowledgment, TrackedAcknowledgment
from kafkaboot.listener.partition import PartitionState, Record

__all__ = ["RecordDispatcher"]


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
        model = handling.invoker.model_call
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
                    if model is None:
                        await call(record, None, consumer)
                    else:  # ``call``'s work, two frames fewer: the most common listener.
                        value = record.value
                        try:
                            event = model.namespace["__pydantic_validator__"].validate_json(value)
                        except ValueError:  # Bad bytes or a null: the decoder says which.
                            event = model.decode(value, record)
                        await model.handler(event)
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
