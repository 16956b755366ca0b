"""One consumer of a listener container and its poll loop.

The loop works per ``getmany`` batch. Records of a partition are handled strictly in order;
a failed record makes its partition seek back (and, for a back-off, pause) while the other
partitions go on. Offsets are committed per the ack mode, and before partitions are revoked.

Every batch belongs to a *generation*: a revocation starts a new one. Work of an older
generation (a handler that outlived a revocation) may finish, but it no longer books
offsets, seeks or commits, because its partitions may belong to another consumer by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)

from kafkaboot.errorhandling.handler import ErrorAction, FailedRecord, decide
from kafkaboot.errors import BatchListenerFailedError, KafkaBootError, KafkaSendError
from kafkaboot.listener.acks import AckMode, Acknowledgment, OffsetTracker
from kafkaboot.listener.rebalance import (
    ConsumerSeekAware,
    SeekCallback,
    SeekRequest,
    apply_seeks,
    call_maybe_async,
    initial_seek_requests,
)
from kafkaboot.listener.reply import CORRELATION_ID_HEADER, REPLY_TOPIC_HEADER
from kafkaboot.listener.transactions import (
    PartitionRevokedError,
    TransactionalProducers,
    in_transaction,
)

if TYPE_CHECKING:
    from kafkaboot.listener.container import ListenerContainer

__all__ = ["ConsumerWorker"]

log = logging.getLogger("kafkaboot.listener")
Record: TypeAlias = ConsumerRecord[bytes, bytes]
_COMMIT_ATTEMPTS = 3
_MAX_IDLE_POLL_S = 0.5  # How soon a stop, pause or runtime seek is noticed while idle.
_LOOP_ERROR_BACKOFF_S = 1.0


class _RebalanceBridge(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands aiokafka's rebalance callbacks to the worker."""

    def __init__(self, worker: ConsumerWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._worker.partitions_assigned(set(assigned))


class ConsumerWorker:
    """Owns one ``AIOKafkaConsumer`` and the task that polls it."""

    def __init__(
        self, container: ListenerContainer, index: int, consumer: AIOKafkaConsumer
    ) -> None:
        self.container = container
        self.index = index
        self.consumer = consumer
        self.tracker = OffsetTracker()
        self.assigned: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.last_poll: float | None = None
        self._settings = container.settings
        self._ack_mode = container.settings.ack_mode
        self._commits = container.settings.commits
        self._attempts: dict[tuple[TopicPartition, int], int] = {}
        self._recovered: set[tuple[str, int, int]] = set()
        """Undecodable records of a batch already recovered, so batch retries skip them."""
        self._paused_until: dict[TopicPartition, float] = {}
        self._user_paused: set[TopicPartition] = set()
        self._seeks: list[SeekRequest] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._generation = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._commit_lock = asyncio.Lock()
        self._last_commit = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._pending_commit: asyncio.Future[None] | None = None
        self._txn: TransactionalProducers | None = None
        """Transactional containers: a transactional producer per assigned partition."""

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        endpoint = self.container.endpoint
        if endpoint.partitions:
            mine = self.container.partitions_for(self.index)
            self.consumer.assign([TopicPartition(p.topic, p.partition) for p in mine])
        elif endpoint.topic_pattern:
            self.consumer.subscribe(pattern=endpoint.topic_pattern, listener=_RebalanceBridge(self))
        else:
            self.consumer.subscribe(list(endpoint.topics), listener=_RebalanceBridge(self))
        if self._settings.transactional and self._settings.group_id is not None:
            template = self.container.template
            self._txn = TransactionalProducers(
                template,
                self._settings.transaction_id_prefix or "",
                self._settings.group_id,
                timeout=template.delivery_timeout,
            )
        await self.consumer.start()
        if endpoint.partitions:
            self.assigned = set(self.consumer.assignment())
            await self._initial_manual_positions()
            self._apply_pauses(self.assigned)
        self._task = asyncio.create_task(self._run(), name=f"kafkaboot:{self.name}")

    @property
    def name(self) -> str:
        return f"{self.container.listener_id}-{self.index}"

    @property
    def alive(self) -> bool:
        """Whether the poll loop is running (false after a stop or a fatal loop error)."""
        return self._task is not None and not self._task.done()

    async def stop(self, timeout: float) -> None:
        """Stop fetching, let the record in hand finish, commit, leave the group; each
        step is bounded by ``timeout`` so a dead broker cannot hang the stop."""
        self._stopping = True  # The batch in hand stops after its current record.
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                log.warning(
                    "listener %s: a record was still being handled after %.1fs; cancelling "
                    "it (it stays uncommitted and will be delivered again)",
                    self.name,
                    timeout,
                )
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        try:
            if self._pending_commit is not None:
                await asyncio.wait_for(asyncio.shield(self._pending_commit), timeout)
            await asyncio.wait_for(self._commit(), timeout)
        except TimeoutError:
            log.warning(
                "listener %s: the final commit did not finish within %.1fs (broker away?); "
                "records handled since the last commit will be delivered again",
                self.name,
                timeout,
            )
        except Exception as exc:
            log.warning("listener %s: the final commit failed: %r", self.name, exc)
        if self._txn is not None:
            await self._txn.close()
        try:
            await asyncio.wait_for(self.consumer.stop(), timeout=max(timeout, 5.0))
        except TimeoutError:
            log.warning("listener %s: its consumer did not close in time; abandoning it", self.name)

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        poll_ms = int(min(self._settings.poll_timeout, _MAX_IDLE_POLL_S) * 1000)
        consumer = self.consumer
        while not self._stopping:
            if self._seeks:
                await self._apply_runtime_seeks()
            if self._paused_until:
                self._resume_due()
            try:
                batches = await consumer.getmany(timeout_ms=poll_ms)
            except ConsumerStoppedError:
                return
            except Exception as exc:
                self.container.record_error(exc)
                log.error("listener %s: poll failed: %r; retrying in 1s", self.name, exc)
                await asyncio.sleep(_LOOP_ERROR_BACKOFF_S)
                continue
            self.last_poll = time.time()
            if batches:
                generation = self._generation
                self._idle.clear()
                try:
                    if self._settings.batch:
                        await self._process_batch(batches, generation)
                    else:
                        await self._process(batches, generation)
                except Exception as exc:
                    # A bug or a broken error handler: do not die, and do not skip records.
                    await self._recover_from_loop_error(batches, generation, exc)
                finally:
                    self._idle.set()
            if self._commits and self.tracker.has_pending and self._commit_due():
                await self._commit()

    async def _recover_from_loop_error(
        self, batches: dict[TopicPartition, list[Record]], generation: int, exc: Exception
    ) -> None:
        self.container.record_error(exc)
        log.exception("listener %s: unexpected error while handling a batch", self.name)
        if generation != self._generation:
            return
        await self._commit()
        owned = [tp for tp in batches if tp in self.assigned]
        if owned:
            # Whatever was not committed is read again: duplicates rather than loss.
            with contextlib.suppress(Exception):
                await self.consumer.seek_to_committed(*owned)
            self.tracker.forget(set(owned))
        await asyncio.sleep(_LOOP_ERROR_BACKOFF_S)

    def _commit_due(self) -> bool:
        mode = self._ack_mode
        if mode in (AckMode.TIME, AckMode.COUNT, AckMode.COUNT_TIME):
            timed = time.monotonic() - self._last_commit >= self._settings.ack_time
            counted = self.tracker.uncommitted >= self._settings.ack_count
            if mode is AckMode.TIME:
                return timed
            if mode is AckMode.COUNT:
                return counted
            return timed or counted
        return True

    async def _process(self, batches: dict[TopicPartition, list[Record]], generation: int) -> None:
        container = self.container
        fast = (
            container.invoker.is_coroutine
            and container.filter is None
            and container.send_to is None
            and self._txn is None
            and not self._ack_mode.is_manual
            and self._ack_mode is not AckMode.RECORD
            and container.not_before is None
        )
        for tp, records in batches.items():
            if tp not in self.assigned:
                continue
            if fast:
                await self._process_fast(tp, records, generation)
            else:
                for record in records:
                    if generation != self._generation or self._stopping:
                        return
                    if not await self._handle(tp, record, generation):
                        break  # Rewound: the rest of its records come again.
            if generation != self._generation or self._stopping:
                return

    async def _process_fast(
        self, tp: TopicPartition, records: list[Record], generation: int
    ) -> None:
        """The common case (async handler, automatic commits per poll) with nothing per
        record but the call: offsets are booked once per partition run."""
        call = self.container.invoker.call
        consumer = self.consumer
        handled = 0
        last = -1
        try:
            for record in records:
                if generation != self._generation or self._stopping:
                    break
                try:
                    await call(record, None, consumer)
                except Exception as exc:
                    if generation != self._generation:
                        return
                    if handled:
                        self._book(tp, last, handled)
                        handled = 0
                    if not await self._failed(tp, record, exc, generation):
                        return  # Rewound: the rest of this partition's records come again.
                    continue
                if self._attempts:
                    self._attempts.pop((tp, record.offset), None)
                handled += 1
                last = record.offset
        finally:
            if handled and generation == self._generation:
                self._book(tp, last, handled)

    def _book(self, tp: TopicPartition, last: int, count: int) -> None:
        self.tracker.done_many(tp, last, count)
        self.positions[tp] = last + 1

    async def _invoke(self, argument: Any, ack: Acknowledgment | None) -> Any:
        invoker = self.container.invoker
        if invoker.is_async:
            result = invoker.call(argument, ack, self.consumer)
        else:
            result = await asyncio.to_thread(invoker.call, argument, ack, self.consumer)
        if inspect.isawaitable(result):  # Also a sync wrapper around a coroutine function.
            result = await result
        return result

    async def _send_result(self, record: Record, result: Any) -> None:
        """``send_to``: the handler's return value goes to the reply topic, with the
        incoming key; delivery is confirmed before the record counts as handled."""
        if result is None:
            return
        topic = self.container.send_to
        headers: list[tuple[str, bytes]] = []
        if not topic:
            found = dict(record.headers)
            reply_topic = found.get(REPLY_TOPIC_HEADER)
            if reply_topic is None:
                raise KafkaBootError(
                    f"listener {self.container.listener_id} replies with @send_to() but record "
                    f"{record.topic}-{record.partition}@{record.offset} has no "
                    f"{REPLY_TOPIC_HEADER} header; name a topic: @send_to('topic')"
                )
            topic = reply_topic.decode()
            if CORRELATION_ID_HEADER in found:
                headers.append((CORRELATION_ID_HEADER, found[CORRELATION_ID_HEADER]))
        template = self.container.template
        if inspect.isasyncgen(result):
            values = [value async for value in result]
        elif isinstance(result, list | tuple | set | frozenset) or inspect.isgenerator(result):
            values = list(result)
        else:
            values = [result]
        futures = [
            await template.send(topic, value, key=record.key, headers=headers or None)
            for value in values
        ]
        await asyncio.gather(*futures)

    async def _handle(self, tp: TopicPartition, record: Record, generation: int) -> bool:
        """Handle one record; ``False`` when its partition was rewound to retry it."""
        container = self.container
        if container.not_before is not None:
            try:
                due = container.not_before(record)
            except Exception:  # A malformed due-time header: the record is due.
                due = None
            if due is not None and due > time.time():
                # A retry-topic record that is not due yet: its partition waits, polling goes on.
                self._rewind(tp, record.offset, timedelta(seconds=due - time.time()))
                return False
        if self._txn is not None:
            return await self._handle_in_transaction(tp, record, generation, self._txn)
        manual = self._ack_mode.is_manual
        if container.filter is not None and not container.filter(record):
            if manual:  # Through the outstanding queue, so it cannot jump unacked records.
                self.tracker.delivered(tp, record.offset)
                self.tracker.acknowledged(tp, record.offset)
            else:
                self.tracker.done(tp, record.offset)
            return True
        ack = self._acknowledgment(tp, record.offset) if manual else None
        try:
            result = await self._invoke(record, ack)
            if container.send_to is not None:
                await self._send_result(record, result)
        except Exception as exc:
            if generation != self._generation:
                return False
            return await self._failed(tp, record, exc, generation)
        if generation != self._generation:
            return False
        if self._attempts:
            self._attempts.pop((tp, record.offset), None)
        self.positions[tp] = record.offset + 1
        if ack is None:
            self.tracker.done(tp, record.offset)
            if self._ack_mode is AckMode.RECORD:
                await self._commit()
            return True
        if ack.nacked:
            self._rewind(tp, record.offset, ack.nack_sleep)
            if self.tracker.has_pending:
                await self._commit({tp})
            return False
        if ack.acknowledged and self._ack_mode is AckMode.MANUAL_IMMEDIATE:
            await self._commit()
        return True

    async def _handle_in_transaction(
        self, tp: TopicPartition, record: Record, generation: int, txn: TransactionalProducers
    ) -> bool:
        """Consume-process-produce exactly once: the handler's sends and the record's offset
        commit in one transaction, or neither does."""
        container = self.container
        offsets = {tp: record.offset + 1}
        work: Callable[[], Awaitable[Any]] | None = None
        if container.filter is None or container.filter(record):

            async def work() -> None:
                result = await self._invoke(record, None)
                if container.send_to is not None:
                    await self._send_result(record, result)

        if not await self._transact(tp, record, generation, txn, work, offsets):
            return False
        if self._attempts:
            self._attempts.pop((tp, record.offset), None)
        self.committed[tp] = self.positions[tp] = record.offset + 1
        return True

    async def _transact(
        self,
        tp: TopicPartition,
        record: Record,
        generation: int,
        txn: TransactionalProducers,
        work: Callable[[], Awaitable[Any]] | None,
        offsets: dict[TopicPartition, int],
        batch: tuple[Record, ...] = (),
    ) -> bool:
        """Run ``work`` in the partition's transaction; on failure, let the error handler
        decide. ``False`` when the partition was rewound (retry, fencing, revocation);
        ``record`` is the first record the transaction covers, ``batch`` all of them (a
        recovery must deal with every record the offsets move past)."""
        group_id = self._settings.group_id or ""

        def current() -> bool:
            return generation == self._generation

        try:
            producer = await txn.for_partition(tp)
            await in_transaction(producer, work, offsets, group_id, txn.timeout, current)
            return True
        except PartitionRevokedError:
            return False
        except Exception as exc:
            if await self._producer_lost(tp, txn, exc) or not current():
                return False
            if isinstance(exc, KafkaError | KafkaSendError | TimeoutError):
                # A send was refused or lost: renew the producer so its sequence numbers
                # start clean (the transaction is already aborted).
                await txn.close([tp])
            # In a transaction a batch commits or aborts as a whole: no partial commit.
            error = exc.failure if isinstance(exc, BatchListenerFailedError) else exc
            action = await self._decide(record, error, batch)
            if not current():
                return False
            if action.stop_reason is not None:
                self._halt(tp, record.offset, action.stop_reason)
                return False
            if action.retry:
                self._rewind(tp, record.offset, action.delay)
                return False
        try:  # Recovered: move past the record(s) in a transaction of their own.
            producer = await txn.for_partition(tp)
            await in_transaction(producer, None, offsets, group_id, txn.timeout, current)
        except PartitionRevokedError:
            return False
        except Exception as exc:
            if not await self._producer_lost(tp, txn, exc):
                self._rewind(tp, record.offset, timedelta(seconds=1))
            return False
        return True

    async def _producer_lost(
        self, tp: TopicPartition, txn: TransactionalProducers, error: BaseException
    ) -> bool:
        """A fenced or broken producer: close it and read the partition again from its
        committed offset (the fencer may own it now). ``True`` if that was the case."""
        producer = txn.get(tp)
        if producer is None or not txn.is_fatal(error, producer):
            return False
        log.warning(
            "listener %s: the transactional producer of %s-%d cannot go on (%r); reopening "
            "it and reading the partition again from its committed offset",
            self.name,
            tp.topic,
            tp.partition,
            error,
        )
        await txn.close([tp])
        with contextlib.suppress(Exception):
            await self.consumer.seek_to_committed(tp)
        self.tracker.forget({tp})
        return True

    async def _process_batch(
        self, batches: dict[TopicPartition, list[Record]], generation: int
    ) -> None:
        owned = {tp: rs for tp, rs in batches.items() if tp in self.assigned and rs}
        if not owned:
            return
        if self._txn is None:
            await self._batch_part(owned, generation)
            return
        # One transaction per partition: each partition has its own transactional producer.
        for tp in sorted(owned):
            if generation != self._generation or self._stopping:
                return
            await self._batch_part({tp: owned[tp]}, generation)

    async def _batch_part(self, owned: dict[TopicPartition, list[Record]], generation: int) -> None:
        container = self.container
        records = [r for rs in owned.values() for r in rs]
        if container.filter is not None:
            records = [r for r in records if container.filter(r)]
        decode = container.invoker.decode_one
        values: list[Any] = []
        passed: list[Record] = []  # The records behind ``values``, index for index.
        index = 0
        while index < len(records):
            index, failed = self._decode_run(records, index, decode, values, passed)
            if failed is not None:
                record, exc = failed
                action = await self._decide(record, exc)
                if generation != self._generation:
                    return
                if not action.retry:
                    self._recovered.add((record.topic, record.partition, record.offset))
                if action.stop_reason is not None:
                    self._halt_batch(owned, record, action.stop_reason)
                    return
                if action.retry:
                    self._rewind_batch(owned, action.delay)
                    return
        # Keyed on the lowest partition, so retries of the same batch are counted together.
        first = owned[min(owned)][0]
        manual = self._ack_mode.is_manual
        ack = self._batch_acknowledgment(owned) if manual else None
        if self._txn is not None:
            [tp] = owned
            offsets = {tp: owned[tp][-1].offset + 1}

            async def work() -> None:
                result = await self._invoke(values, None)
                if container.send_to is not None:
                    await self._send_result(first, result)

            batch = tuple(passed) or (first,)
            if not await self._transact(tp, first, generation, self._txn, work, offsets, batch):
                return
            self._attempts.pop((tp, first.offset), None)
            self.committed.update(offsets)
            self.positions[tp] = offsets[tp]
            return
        try:
            result = await self._invoke(values, ack)
            if container.send_to is not None:
                await self._send_result(first, result)
        except BatchListenerFailedError as exc:
            if generation != self._generation:
                return
            at = _failed_record(exc, passed)
            if at is not None:
                await self._batch_failed_at(owned, passed, at, exc.failure)
                return
            log.warning(
                "listener %s: BatchListenerFailedError names no record of this batch (%s); "
                "treating the whole batch as failed",
                self.name,
                exc,
            )
            if not await self._whole_batch_failed(owned, passed, exc.failure):
                return
            handled_by_listener = False
        except Exception as exc:
            if generation != self._generation:
                return
            if not await self._whole_batch_failed(owned, passed, exc):
                return
            handled_by_listener = False
        else:
            if generation != self._generation:
                return
            self._attempts.pop((TopicPartition(first.topic, first.partition), first.offset), None)
            if ack is not None and ack.nacked:
                self._rewind_batch(owned, ack.nack_sleep)
                return
            handled_by_listener = True
        if manual and handled_by_listener:  # The listener acknowledges (or not) itself.
            for tp, rs in owned.items():
                self.positions[tp] = rs[-1].offset + 1
        else:  # Handled, or recovered (which counts as acknowledged).
            self._settle(owned, {})
        if self._ack_mode in (AckMode.RECORD, AckMode.MANUAL_IMMEDIATE):
            await self._commit()

    def _decode_run(
        self,
        records: list[Record],
        start: int,
        decode: Callable[[Record], Any] | None,
        values: list[Any],
        passed: list[Record],
    ) -> tuple[int, tuple[Record, Exception] | None]:
        """Decode ``records[start:]`` until one fails: where to go on, and the failure.

        The cyclic garbage collector is paused meanwhile. Decoding a batch allocates many
        objects that stay alive together, which triggers collection after collection over
        them (measured: a 500-record batch listener ran ~30 % slower than a single-record
        one); they hold no cycles, so reference counting frees them anyway. The pause
        covers only this synchronous loop, never an ``await``.
        """
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            for index in range(start, len(records)):
                record = records[index]
                if (
                    self._recovered
                    and (record.topic, record.partition, record.offset) in self._recovered
                ):
                    continue  # Undecodable and recovered already, on an earlier try.
                try:
                    values.append(decode(record) if decode is not None else record)
                except Exception as exc:
                    return index + 1, (record, exc)
                passed.append(record)
            return len(records), None
        finally:
            if paused:
                gc.enable()

    async def _whole_batch_failed(
        self, owned: dict[TopicPartition, list[Record]], passed: list[Record], exc: BaseException
    ) -> bool:
        """Retry the whole batch, or once retries are over, recover its records one by one.
        ``True`` when the batch counts as handled."""
        first = owned[min(owned)][0]
        batch = tuple(passed) or (first,)
        generation = self._generation
        action = await self._decide(first, exc, batch)
        if generation != self._generation:
            return False
        if action.stop_reason is not None:
            self._halt_batch(owned, first, action.stop_reason)
            return False
        if action.retry:
            self._rewind_batch(owned, action.delay)
            return False
        return True

    async def _batch_failed_at(
        self,
        owned: dict[TopicPartition, list[Record]],
        passed: list[Record],
        index: int,
        exc: BaseException,
    ) -> None:
        """``BatchListenerFailedError``: the records before ``index`` are done; the failed
        one is retried or recovered; the ones after it come again."""
        failed = passed[index]
        failed_tp = TopicPartition(failed.topic, failed.partition)
        cut: dict[TopicPartition, int] = {}  # Per partition, the first record not done.
        for record in passed[index:]:
            cut.setdefault(TopicPartition(record.topic, record.partition), record.offset)
        generation = self._generation
        action = await self._decide(failed, exc)
        if generation != self._generation:
            return
        if action.stop_reason is None and not action.retry:
            cut[failed_tp] = failed.offset + 1  # Recovered: done as well.
        self._settle(owned, cut)
        for tp, offset in cut.items():
            if offset <= owned[tp][-1].offset:
                delay = action.delay if tp == failed_tp else timedelta(0)
                self._rewind(tp, offset, delay)
        if self._commits and self.tracker.has_pending:
            await self._commit()
        if action.stop_reason is not None:
            self._halt(failed_tp, failed.offset, action.stop_reason)

    def _settle(
        self, owned: dict[TopicPartition, list[Record]], cut: dict[TopicPartition, int]
    ) -> None:
        """Mark each partition's records before ``cut`` (all of them when it has no cut)
        as handled."""
        manual = self._ack_mode.is_manual
        for tp, records in owned.items():
            limit = cut.get(tp)
            done = records if limit is None else [r for r in records if r.offset < limit]
            if not done or tp not in self.assigned:
                continue
            if manual:
                for record in done:
                    self.tracker.acknowledged(tp, record.offset)
            else:
                self._book(tp, done[-1].offset, len(done))
            self.positions[tp] = done[-1].offset + 1
            if self._recovered:
                self._recovered -= {
                    key
                    for key in self._recovered
                    if key[:2] == (tp.topic, tp.partition) and key[2] <= done[-1].offset
                }

    # -- failures, acks, rewinds ----------------------------------------------------------

    async def _decide(
        self, record: Record, exc: BaseException, batch: tuple[Record, ...] = ()
    ) -> ErrorAction:
        tp = TopicPartition(record.topic, record.partition)
        attempt = self._attempts.get((tp, record.offset), 0) + 1
        self._attempts[(tp, record.offset)] = attempt
        self.container.record_error(exc)
        failure = FailedRecord(
            record, exc, attempt, self.container.listener_id, self._settings.group_id, batch
        )
        action = await decide(self.container.error_handler, failure)
        if not action.retry:
            self._attempts.pop((tp, record.offset), None)
        return action

    async def _failed(
        self, tp: TopicPartition, record: Record, exc: BaseException, generation: int
    ) -> bool:
        action = await self._decide(record, exc)
        if generation != self._generation:
            return False
        if action.stop_reason is not None:
            if self._commits and self.tracker.has_pending:
                await self._commit({tp})  # Records before the failed one are done.
            self._halt(tp, record.offset, action.stop_reason)
            return False
        if action.retry:
            self._rewind(tp, record.offset, action.delay)
            if self._commits and self.tracker.has_pending:
                await self._commit({tp})  # Records before the failed one are done.
            return False
        if self._ack_mode.is_manual:
            self.tracker.acknowledged(tp, record.offset)  # Recovered counts as handled.
        else:
            self.tracker.done(tp, record.offset)
        self.positions[tp] = record.offset + 1
        return True

    def _rewind(self, tp: TopicPartition, offset: int, delay: timedelta) -> None:
        if tp not in self.assigned:
            return  # Revoked meanwhile: the new owner reads from the committed offset.
        self.tracker.rewind(tp, offset, retry=True)
        self.consumer.seek(tp, offset)
        self.positions[tp] = offset
        if delay > timedelta(0):
            self._paused_until[tp] = time.monotonic() + delay.total_seconds()
            self.consumer.pause(tp)

    def _rewind_batch(self, owned: dict[TopicPartition, list[Record]], delay: timedelta) -> None:
        for tp, records in owned.items():
            self._rewind(tp, records[0].offset, delay)

    def _halt(self, tp: TopicPartition, offset: int, reason: str) -> None:
        """The error handler wants the container stopped: leave the record uncommitted,
        stop handling at once, and have the container stop (it awaits this task)."""
        self._rewind(tp, offset, timedelta(0))
        self._stopping = True
        self.container.fail(reason)

    def _halt_batch(
        self, owned: dict[TopicPartition, list[Record]], record: Record, reason: str
    ) -> None:
        self._rewind_batch(owned, timedelta(0))
        self._halt(TopicPartition(record.topic, record.partition), record.offset, reason)

    def _resume_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, until in self._paused_until.items() if until <= now]
        for tp in due:
            del self._paused_until[tp]
            if tp in self.assigned and tp not in self._user_paused and not self.container.paused:
                self.consumer.resume(tp)

    def _acknowledgment(self, tp: TopicPartition, offset: int) -> Acknowledgment:
        self.tracker.delivered(tp, offset)
        return Acknowledgment(functools.partial(self._on_loop, self._acknowledged, tp, offset))

    def _batch_acknowledgment(self, owned: dict[TopicPartition, list[Record]]) -> Acknowledgment:
        for tp, records in owned.items():
            for record in records:
                self.tracker.delivered(tp, record.offset)
        return Acknowledgment(functools.partial(self._on_loop, self._acknowledge_batch, owned))

    def _on_loop(self, function: Callable[..., None], *args: Any) -> None:
        # A handler may acknowledge later, from another task or a worker thread.
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(function, *args)
        else:
            function(*args)

    def _acknowledged(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.assigned:
            return  # Revoked meanwhile: the new owner gets the record again.
        self.tracker.acknowledged(tp, offset)
        if self._ack_mode is AckMode.MANUAL_IMMEDIATE and self._idle.is_set():
            self._commit_soon()

    def _acknowledge_batch(self, owned: dict[TopicPartition, list[Record]]) -> None:
        for tp, records in owned.items():
            if tp in self.assigned:
                for record in records:
                    self.tracker.acknowledged(tp, record.offset)
        if self._ack_mode is AckMode.MANUAL_IMMEDIATE and self._idle.is_set():
            self._commit_soon()

    def _commit_soon(self) -> None:
        if self._pending_commit is None or self._pending_commit.done():
            self._pending_commit = asyncio.ensure_future(self._commit())

    # -- commits ------------------------------------------------------------------------

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        if not self._commits:
            return
        async with self._commit_lock:
            offsets = self.tracker.take(partitions)
            owned = self.consumer.assignment()
            foreign = {tp for tp in offsets if tp not in owned}
            if foreign:  # Never commit for partitions another consumer may own now.
                for tp in foreign:
                    del offsets[tp]
            if not offsets:
                return
            for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                try:
                    await self.consumer.commit(offsets)
                except CommitFailedError as exc:
                    # The group moved on: the partitions belong to someone else now, who
                    # reads the uncommitted records again. aiokafka rejoins the group.
                    log.warning(
                        "listener %s: commit of %s failed because the group rebalanced (%s); "
                        "those records will be delivered again to the new owner",
                        self.name,
                        _describe(offsets),
                        exc,
                    )
                    await self._lost(set(offsets))
                    return
                except IllegalStateError as exc:
                    log.warning(
                        "listener %s: cannot commit %s now (%s); those records will be "
                        "delivered again",
                        self.name,
                        _describe(offsets),
                        exc,
                    )
                    return
                except KafkaError as exc:
                    if exc.retriable and attempt < _COMMIT_ATTEMPTS:
                        await asyncio.sleep(0.2 * attempt)
                        continue
                    self.container.record_error(exc)
                    log.error(
                        "listener %s: commit of %s failed: %r; will retry at the next commit",
                        self.name,
                        _describe(offsets),
                        exc,
                    )
                    self.tracker.restore(offsets)
                    return
                self.committed.update(offsets)
                self._last_commit = time.monotonic()
                return

    # -- rebalances and seeks -------------------------------------------------------------

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return  # The first join of a group "revokes" nothing; not worth a callback.
        self._generation += 1  # The batch in hand stops after its current record.
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=self._settings.shutdown_timeout)
        except TimeoutError:
            log.warning(
                "listener %s: a record was still being handled when partitions were "
                "revoked; it will be delivered again to the new owner",
                self.name,
            )
        try:
            await asyncio.wait_for(self._commit(revoked), timeout=self._settings.shutdown_timeout)
        except TimeoutError:
            log.warning("listener %s: commit before revocation timed out", self.name)
        self._forget(revoked)
        self.assigned -= revoked
        if self._txn is not None:
            await self._txn.close(revoked)
        listener = self.container.rebalance_listener
        if listener is not None and hasattr(listener, "on_partitions_revoked"):
            await self._call_listener(listener.on_partitions_revoked, revoked, self.consumer)

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)
        self._apply_pauses(assigned)
        container = self.container
        if container.initial_seek is not None:
            targets = set(assigned)
            if container.initial_seek.once:
                targets -= container.seeked
                container.seeked |= targets
            requests = initial_seek_requests(container.initial_seek, targets)
            try:
                for tp in await apply_seeks(self.consumer, requests, targets):
                    self.tracker.rewind(tp, 0)
            except (KafkaError, ValueError) as exc:
                container.record_error(exc)
                log.error("listener %s: the configured seek failed: %r", self.name, exc)
        listener = self.container.rebalance_listener
        if listener is None:
            return
        if isinstance(listener, ConsumerSeekAware) or _takes_seek(listener):
            positions = {tp: await self.consumer.position(tp) for tp in assigned}
            seek = SeekCallback()
            await self._call_listener(listener.on_partitions_assigned, positions, seek)
            for tp in await apply_seeks(self.consumer, seek.requests, assigned):
                self.tracker.rewind(tp, 0)
        elif hasattr(listener, "on_partitions_assigned"):
            await self._call_listener(listener.on_partitions_assigned, assigned, self.consumer)

    def _apply_pauses(self, assigned: set[TopicPartition]) -> None:
        paused = assigned if self.container.paused else assigned & self._user_paused
        if paused:
            self.consumer.pause(*paused)

    async def _lost(self, lost: set[TopicPartition]) -> None:
        self._forget(lost)
        listener = self.container.rebalance_listener
        if listener is not None and hasattr(listener, "on_partitions_lost"):
            await self._call_listener(listener.on_partitions_lost, lost, self.consumer)

    def _forget(self, partitions: set[TopicPartition]) -> None:
        self.tracker.forget(partitions)
        for tp in partitions:
            self._paused_until.pop(tp, None)
            self.positions.pop(tp, None)
        if self._attempts:
            self._attempts = {k: v for k, v in self._attempts.items() if k[0] not in partitions}
        if self._recovered:
            gone = {(tp.topic, tp.partition) for tp in partitions}
            self._recovered = {key for key in self._recovered if key[:2] not in gone}

    async def _call_listener(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            await call_maybe_async(callback, *args)
        except Exception as exc:
            self.container.record_error(exc)
            log.exception("listener %s: rebalance listener %r failed", self.name, callback)

    def request_seek(self, request: SeekRequest) -> None:
        self._seeks.append(request)

    async def _apply_runtime_seeks(self) -> None:
        requests, self._seeks = self._seeks, []
        try:
            moved = await apply_seeks(self.consumer, requests, self.assigned)
        except (KafkaError, ValueError) as exc:
            self.container.record_error(exc)
            log.error("listener %s: seek failed: %r", self.name, exc)
            return
        for tp in moved:
            self.tracker.rewind(tp, 0)
            self.positions.pop(tp, None)

    async def _initial_manual_positions(self) -> None:
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
        await apply_seeks(self.consumer, seek.requests, self.assigned)

    # -- pause and resume -------------------------------------------------------------------

    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        targets = self.assigned if partitions is None else set(partitions) & self.assigned
        if partitions is not None:
            self._user_paused |= set(partitions)
        if targets:
            self.consumer.pause(*targets)

    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        if partitions is None:
            targets = self.assigned - self._user_paused - set(self._paused_until)
        else:
            self._user_paused -= set(partitions)
            targets = (set(partitions) & self.assigned) - set(self._paused_until)
            if self.container.paused:
                targets = set()
        if targets:
            self.consumer.resume(*targets)


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


def _takes_seek(listener: Any) -> bool:
    method = getattr(listener, "on_partitions_assigned", None)
    if method is None:
        return False
    return "seek" in inspect.signature(method).parameters


def _describe(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(
        f"{tp.topic}-{tp.partition}@{offset}" for tp, offset in sorted(offsets.items())
    )
