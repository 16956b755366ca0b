"""Batch listeners: a poll's records reach the handler as one list.

A batch counts as handled when the handler returns. ``BatchListenerFailedError`` names the
failed record: the records before it are finished, the failed one is retried or recovered,
the ones after it come again. Any other exception retries the whole batch, then recovers it.
Undecodable records are recovered on their own and left out of the batch (and of its
retries). Outcomes go to :class:`~kafkaboot.listener.outcomes.Outcomes` like every other
dispatch style's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiokafka import TopicPartition

from kafkaboot.errors import BatchListenerFailedError
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.collector import CollectorHold
from kafkaboot.listener.handling import BatchAcknowledgment, Handling
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.listener.transactions import TransactionalDispatcher
from kafkaboot.offset_store.store import StoredRange

__all__ = ["BatchDispatcher"]

log = logging.getLogger("kafkaboot.listener")
Parts = dict[PartitionState, list[Record]]


class BatchDispatcher:
    """Hands each poll's records to a batch listener (one transaction per partition when
    the listener is transactional)."""

    def __init__(
        self, handling: Handling, transactions: TransactionalDispatcher | None = None
    ) -> None:
        self.handling = handling
        self.transactions = transactions
        self._hold = CollectorHold()

    async def dispatch(self, parts: Parts) -> None:
        parts = self._due(parts)
        if not parts:
            return
        if self.transactions is None:
            with self._hold:  # Until ``_batch`` has dropped the batch.
                await self._batch(parts)
            return
        for state in sorted(parts, key=lambda s: s.tp):
            if state.closing:
                return
            with self._hold:
                await self._batch({state: parts[state]})

    def _due(self, parts: Parts) -> Parts:
        """Leave out partitions whose first record is still in a back-off from before a
        rebalance: they wait for it, paused."""
        attempts = self.handling.outcomes.attempts
        due = {}
        for state, records in parts.items():
            first = records[0]
            if attempts.of(state.tp):
                attempts.forget_before(state.tp, first.offset)
                wait = attempts.remaining(state.tp, first.offset)
                if wait > 0:
                    self.handling.outcomes.rewind(state, first.offset, timedelta(seconds=wait))
                    continue
            due[state] = records
        return due

    async def _batch(self, parts: Parts) -> None:
        handling = self.handling
        outcomes = handling.outcomes
        records = [record for rs in parts.values() for record in rs]
        values: list[Any] = []
        passed: list[Record] = []  # The records behind ``values``, index for index.
        index = 0
        while index < len(records):
            index, failed = self._decode_run(parts, records, index, values, passed)
            if failed is not None:
                record, exc = failed
                action = await outcomes.decide(record, exc)
                if not action.retry:
                    state = self._state_of(parts, record)
                    if state is not None:
                        state.recovered.add(record.offset)
                    continue
                self._rewind(parts, action.delay)
                if action.stop_reason is not None:
                    outcomes.halt(action.stop_reason)
                return
        first = records[0]
        if self.transactions is not None:
            [state] = parts
            await self._transactional(state, parts[state], first, values, passed)
            return
        if outcomes.store is not None:
            await self._stored(outcomes.store, parts, first, values, passed)
            return
        ack = self._acknowledgment(parts) if handling.ack_mode.is_manual else None
        try:
            if not await self._call(values, ack, first, passed):
                ack = None  # An interceptor skipped the batch: finished.
        except BatchListenerFailedError as exc:
            if ack is not None:
                ack.handler_returned()
            at = _failed_record(exc, passed)
            if at is not None:
                await self._failed_at(parts, passed, at, exc.failure)
                return
            log.warning(
                "listener %s: BatchListenerFailedError names no record of this batch (%s); "
                "treating the whole batch as failed",
                handling.listener_id,
                exc,
            )
            if not await self._whole_batch_failed(parts, passed, exc.failure):
                return
            ack = None  # Recovered: finished, whatever the listener acknowledged.
        except Exception as exc:
            if ack is not None:
                ack.handler_returned()
            if not await self._whole_batch_failed(parts, passed, exc):
                return
            ack = None
        else:
            outcomes.attempts.done(TopicPartition(first.topic, first.partition), first.offset)
            if ack is not None:
                ack.handler_returned()
                if ack.nacked:
                    self._rewind(parts, ack.nack_sleep)
                    return
        if ack is None:  # Handled, or recovered; with an ack the listener says it itself.
            self._finish(parts, {})
        if handling.ack_mode in (AckMode.RECORD, AckMode.MANUAL_IMMEDIATE):
            await outcomes.commit()

    async def _transactional(
        self,
        state: PartitionState,
        records: list[Record],
        first: Record,
        values: list[Any],
        passed: list[Record],
    ) -> None:
        """The batch's sends and its offsets commit in one transaction, or neither does."""
        assert self.transactions is not None  # noqa: S101 - checked by the caller
        handling = self.handling

        async def work() -> None:
            await self._call(values, None, first, passed)

        last = records[-1].offset
        batch = tuple(passed) or (first,)
        if await self.transactions.run(state, first, work, last, batch):
            handling.outcomes.attempts.done(state.tp, first.offset)
            self._forget_recovered(state, last)

    async def _stored(
        self,
        stored: StoredOffsets,
        parts: Parts,
        first: Record,
        values: list[Any],
        passed: list[Record],
    ) -> None:
        """The handler's writes and the batch's offsets in one transaction of the offset
        store. A failure rolls back the whole batch, so it is retried (then recovered) as a
        whole: a ``BatchListenerFailedError`` cannot keep the records before the failed
        one, whose writes were rolled back with it."""
        outcomes = self.handling.outcomes
        ranges = {
            state.tp: StoredRange(records[0].offset, records[-1].offset + 1)
            for state, records in parts.items()
        }
        try:
            _, found = await stored.run(ranges, lambda: self._call(values, None, first, passed))
        except BatchListenerFailedError as exc:
            if not await self._whole_batch_failed(parts, passed, exc.failure):
                return
        except Exception as exc:
            if not await self._whole_batch_failed(parts, passed, exc):
                return
        else:
            outcomes.attempts.done(TopicPartition(first.topic, first.partition), first.offset)
            if found is not None:  # Another consumer stored some of it: go on after that.
                cut = {tp: max(r.first, found.get(tp, r.first)) for tp, r in ranges.items()}
                self._finish(parts, cut)
                for state in parts:
                    outcomes.rewind(state, cut[state.tp])
                if self.handling.ack_mode is AckMode.RECORD:
                    await outcomes.commit()
                return
        self._finish(parts, {})
        if self.handling.ack_mode is AckMode.RECORD:
            await outcomes.commit()

    async def _call(
        self,
        values: list[Any],
        ack: BatchAcknowledgment | None,
        first: Record,
        passed: list[Record],
    ) -> bool:
        """The handler and its reply, inside the batch interceptors; ``False`` when one of
        them skipped the batch."""
        handling = self.handling
        interceptor = handling.batch_interceptor
        if interceptor is None:
            await handling.reply(first, await handling.invoke(values, ack))
            return True
        consumer = handling.consumer
        try:
            if interceptor.intercept(passed, consumer) is None:
                return False
            await handling.reply(first, await handling.invoke(values, ack))
        except Exception as exc:
            interceptor.failure(passed, exc, consumer)
            raise
        interceptor.success(passed, consumer)
        return True

    def _acknowledgment(self, parts: Parts) -> BatchAcknowledgment:
        """One acknowledgment for every record of the batch (the filtered and recovered
        ones too: acknowledging the batch finishes them all)."""
        covered = []
        for state, records in parts.items():
            epoch = state.epoch
            for record in records:
                state.delivered(record.offset)
                covered.append((state, record.offset, epoch))
        return BatchAcknowledgment(self.handling, covered)

    def _decode_run(
        self,
        parts: Parts,
        records: list[Record],
        start: int,
        values: list[Any],
        passed: list[Record],
    ) -> tuple[int, tuple[Record, Exception] | None]:
        """Filter and decode ``records[start:]`` until one fails: where to go on, and the
        failure (a filter that raises is the record's failure too). The caller holds
        the cyclic garbage collector back (see :mod:`kafkaboot.listener.collector`).
        """
        decode: Callable[[Record], Any] | None = self.handling.invoker.decode_one
        keep = self.handling.filter
        recovered = {(state.tp, offset) for state in parts for offset in state.recovered}
        decode_value = self.handling.invoker.decode_value
        if not recovered and keep is None and decode_value is not None:
            # The common case: nothing to leave out, every record's value decoded.
            append = values.append
            for index in range(start, len(records)):
                record = records[index]
                try:
                    append(decode_value(record.value, record))
                except Exception as exc:
                    passed.extend(records[start:index])
                    return index + 1, (record, exc)
            passed.extend(records[start:])
            return len(records), None
        for index in range(start, len(records)):
            record = records[index]
            if recovered and (_tp(record), record.offset) in recovered:
                continue  # Undecodable and recovered already, on an earlier try.
            try:
                if keep is not None and not keep(record):
                    continue
                values.append(decode(record) if decode is not None else record)
            except Exception as exc:
                return index + 1, (record, exc)
            passed.append(record)
        return len(records), None

    async def _whole_batch_failed(
        self, parts: Parts, passed: list[Record], exc: BaseException
    ) -> bool:
        """Retry the whole batch, or once retries are over, recover its records one by one.
        ``True`` when the batch counts as handled."""
        outcomes = self.handling.outcomes
        first = next(iter(parts.values()))[0]
        action = await outcomes.decide(first, exc, tuple(passed) or (first,))
        if not all(state.open for state in parts):
            # Revoked (some of it) while the error handler ran: what is still ours is read
            # again; the rest goes to its new owner from the committed offset.
            self._rewind(parts, timedelta(0))
            return False
        if action.retry:
            self._rewind(parts, action.delay)
            if action.stop_reason is not None:
                outcomes.halt(action.stop_reason)
            return False
        return True

    async def _failed_at(
        self, parts: Parts, passed: list[Record], index: int, exc: BaseException
    ) -> None:
        """``BatchListenerFailedError``: the records before ``index`` are finished; the
        failed one is retried or recovered; the ones after it come again."""
        outcomes = self.handling.outcomes
        failed = passed[index]
        failed_tp = TopicPartition(failed.topic, failed.partition)
        cut: dict[TopicPartition, int] = {}  # Per partition, the first record not finished.
        for record in passed[index:]:
            cut.setdefault(TopicPartition(record.topic, record.partition), record.offset)
        action = await outcomes.decide(failed, exc)
        if not action.retry:
            cut[failed_tp] = failed.offset + 1  # Recovered: finished as well.
        self._finish(parts, cut)
        for state, records in parts.items():
            offset = cut.get(state.tp)
            if offset is not None and offset <= records[-1].offset:
                delay = action.delay if state.tp == failed_tp else timedelta(0)
                outcomes.rewind(state, offset, delay)
        await outcomes.commit()
        if action.stop_reason is not None:
            outcomes.halt(action.stop_reason)

    def _finish(self, parts: Parts, cut: dict[TopicPartition, int]) -> None:
        """Each partition's records before ``cut`` (all of them when it has no cut) are
        finished."""
        outcomes = self.handling.outcomes
        manual = self.handling.ack_mode.is_manual
        for state, records in parts.items():
            limit = cut.get(state.tp)
            done = records if limit is None else [r for r in records if r.offset < limit]
            if not done:
                continue
            if manual:  # Delivered for acknowledgment: finished by acknowledging them.
                for record in done:
                    outcomes.acknowledged(state, record.offset, state.epoch)
            else:
                outcomes.handled(state, done[-1].offset, len(done))
            self._forget_recovered(state, done[-1].offset)

    @staticmethod
    def _forget_recovered(state: PartitionState, last: int) -> None:
        if state.recovered:
            state.recovered = {offset for offset in state.recovered if offset > last}

    @staticmethod
    def _state_of(parts: Parts, record: Record) -> PartitionState | None:
        for state in parts:
            if state.tp.partition == record.partition and state.tp.topic == record.topic:
                return state
        return None

    def _rewind(self, parts: Parts, delay: timedelta) -> None:
        for state, records in parts.items():
            self.handling.outcomes.rewind(state, records[0].offset, delay)


def _tp(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _failed_record(exc: BatchListenerFailedError, passed: list[Record]) -> int | None:
    """The index in ``passed`` of the record a ``BatchListenerFailedError`` names."""
    if exc.index is not None:
        return exc.index if 0 <= exc.index < len(passed) else None
    for index, record in enumerate(passed):
        if record is exc.record:
            return index
    named = exc.record
    for index, record in enumerate(passed):
        if (
            getattr(named, "topic", None) == record.topic
            and getattr(named, "partition", None) == record.partition
            and getattr(named, "offset", None) == record.offset
        ):
            return index
    return None
