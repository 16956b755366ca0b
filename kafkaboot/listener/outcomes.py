"""Where the outcomes of handling become rewinds, pauses, recoveries and commits.

Every dispatch style reports here: a run of records handled, a record failed (the error
handler then decides: retry after a back-off, recovered, or stop the container), a partition
to read again. The partition states (:mod:`kafkaboot.listener.partition`) say what may be
committed; this module seeks, pauses and commits accordingly, on the consumer's own task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.util import commit_structure_validate

from kafkaboot.errorhandling.handler import ErrorAction, FailedRecord, decide
from kafkaboot.interceptors import ErrorHandlingHooks
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.attempts import DeliveryAttempts
from kafkaboot.listener.coordinator import group_coordinator
from kafkaboot.listener.partition import PartitionBook, PartitionState, Record
from kafkaboot.listener.settings import ContainerSettings
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.offset_store.store import OffsetStoreUnavailable

__all__ = ["Outcomes"]

log = logging.getLogger("kafkaboot.listener")
_COMMIT_ATTEMPTS = 3
_POLL_MARGIN = 0.2
"""The share of max.poll.interval.ms kept for acting on a decision and polling again..."""
_MAX_POLL_MARGIN_S = 10.0
"""...but never more than this."""
_STORE_RETRY = timedelta(seconds=1)
"""How long records wait before they are read again after their offset store failed."""


class Outcomes:
    """The outcomes of one consumer's records, turned into seeks, pauses and commits.

    Args:
        consumer: the consumer whose partitions these are.
        book: its partition states.
        attempts: failed deliveries, shared by the container's consumers.
        error_handler: decides about failed records.
        settings: the container's options (ack mode, group, commits).
        listener_id: for logs and failed-record reports.
        record_error: shows an error in the container's status.
        halt: stops the container with a reason (the error handler asked for it).
        on_lost: called with partitions found lost when a commit failed.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        book: PartitionBook,
        attempts: DeliveryAttempts,
        error_handler: Any,
        settings: ContainerSettings,
        listener_id: str,
        *,
        record_error: Callable[[BaseException], None],
        halt: Callable[[str], None],
        on_lost: Callable[[set[TopicPartition]], Awaitable[None]],
        store: StoredOffsets | None = None,
    ) -> None:
        self.consumer = consumer
        self.book = book
        self.attempts = attempts
        self.error_handler = error_handler
        self.settings = settings
        self.listener_id = listener_id
        self.record_error = record_error
        self._halt = halt
        self._on_lost = on_lost
        self.store = store
        """An offset store: moved with each commit."""
        self._commit_lock = asyncio.Lock()
        self.last_commit = time.monotonic()
        self.held: set[TopicPartition] = set()
        """Partitions paused by the user or by a paused container: a back-off that ends
        does not resume them."""
        self.observer: ErrorHandlingHooks[Any] | None = None
        """The listener's interceptors, told of each decision (retry or recovery)."""

    # -- handled ----------------------------------------------------------------------------

    def handled(self, state: PartitionState, last_offset: int, count: int) -> None:
        """``count`` records up to ``last_offset`` are finished."""
        state.handled(last_offset)
        self.book.uncommitted += count

    def acknowledged(self, state: PartitionState, offset: int, epoch: int) -> None:
        state.acknowledged(offset, epoch)
        self.book.uncommitted += 1

    # -- failed -----------------------------------------------------------------------------

    async def decide(
        self,
        record: Record,
        error: BaseException,
        batch: tuple[Record, ...] = (),
        *,
        bounded: bool = True,
    ) -> ErrorAction:
        """Ask the error handler about a failed delivery of ``record`` (or of ``batch``).
        ``bounded``: the decision holds up the poll loop, so it must end in time for the
        consumer to stay in its group (not so in a lane, see ``_decision_deadlines``)."""
        if isinstance(error, OffsetStoreUnavailable):
            self.record_error(error)
            log.warning("%s; retrying in %.0f s", error, _STORE_RETRY.total_seconds())
            return ErrorAction.retry_after(_STORE_RETRY)
        tp = TopicPartition(record.topic, record.partition)
        attempt = self.attempts.failed(tp, record.offset)
        self.record_error(error)
        deadline, limit = self._decision_deadlines() if bounded else (None, None)
        failure = FailedRecord(
            record, error, attempt, self.listener_id, self.settings.group_id, batch, deadline
        )
        action = await decide(self.error_handler, failure, limit)
        if not action.retry:
            self.attempts.done(tp, record.offset)
        observer = self.observer
        if observer is not None and action.stop_reason is None:
            if action.retry:
                observer.retrying(record, error, attempt)
            else:
                for each in failure.records:
                    observer.recovered(each, error, action.recovery)
        return action

    def _decision_deadlines(self) -> tuple[float | None, float | None]:
        """By when (``time.monotonic()``) the error handler's recoverer, and the error
        handler itself, must be done: the decision runs on the consumer's task, and aiokafka
        takes the consumer out of its group once it has not polled for
        ``max.poll.interval.ms``; its partitions would then go to another member that fails
        and recovers the record again. What is left of the interval, less a margin to act
        and poll, and ``None`` without a group."""
        if self.settings.group_id is None:
            return None, None
        interval = self.settings.consumer_kwargs.get("max_poll_interval_ms", 300_000) / 1000
        # The very measure aiokafka compares with the interval (0 if it is not there).
        subscription = getattr(self.consumer, "_subscription", None)
        idle = float(getattr(subscription, "fetcher_idle_time", 0.0))
        margin = min(interval * _POLL_MARGIN, _MAX_POLL_MARGIN_S)
        leaves_at = time.monotonic() + interval - idle
        return leaves_at - margin, leaves_at - margin / 2

    async def failed(
        self,
        state: PartitionState,
        record: Record,
        error: BaseException,
        batch: tuple[Record, ...] = (),
    ) -> bool:
        """``record`` failed. ``True`` when the error handler recovered it (the caller books
        it as finished and goes on); ``False`` when its partition was rewound to retry it,
        or the container is stopping."""
        action = await self.decide(record, error, batch)
        return self.act(state, record.offset, action)

    def act(self, state: PartitionState, offset: int, action: ErrorAction) -> bool:
        """Carry out the error handler's decision about the record at ``offset``."""
        if not state.open:
            return False  # Revoked while the error handler ran: the new owner retries it.
        if action.stop_reason is not None:
            self.rewind(state, offset)
            self.halt(action.stop_reason)
            return False
        if action.retry:
            self.rewind(state, offset, action.delay)
            return False
        return True

    def halt(self, reason: str) -> None:
        """The error handler wants the container stopped: records stay uncommitted."""
        self._halt(reason)

    # -- rewinds and pauses -------------------------------------------------------------------

    def rewind(self, state: PartitionState, offset: int, delay: timedelta = timedelta(0)) -> None:
        """Read ``state``'s partition again from ``offset``, after ``delay`` (meanwhile only
        this partition is paused; the consumer keeps polling)."""
        if not state.open:
            return  # Revoked meanwhile: the new owner reads from the committed offset.
        tp = state.tp
        state.rewind(offset)
        self.consumer.seek(tp, offset)
        seconds = delay.total_seconds()
        if seconds > 0:
            self.attempts.wait_until(tp, offset, seconds)
            self.pause_for(state, seconds)

    def rewind_unfinished(self, state: PartitionState, delay: timedelta) -> None:
        """Read the partition again from its first unfinished record (after a failure that
        is not a record's own, e.g. a broken error handler)."""
        offset = state.resume_offset
        if offset is not None:
            self.rewind(state, offset, delay)

    def pause_for(self, state: PartitionState, seconds: float) -> None:
        state.paused_until = time.monotonic() + seconds
        self.consumer.pause(state.tp)

    def resume_due(self, *, hold_all: bool = False) -> None:
        """Resume partitions whose back-off is over (unless the user paused them, or the
        whole container: ``hold_all``)."""
        now = time.monotonic()
        for state in self.book:
            until = state.paused_until
            if until is not None and until <= now:
                state.paused_until = None
                if not hold_all and state.tp not in self.held:
                    self.consumer.resume(state.tp)

    def poll_ms(self, longest: int) -> int:
        """How long a poll may wait: ``longest``, or less when a back-off (a nack's sleep,
        the error handler's) ends sooner."""
        ends = [s.paused_until for s in self.book if s.paused_until is not None]
        if not ends:
            return longest
        return max(0, min(longest, int((min(ends) - time.monotonic()) * 1000) + 1))

    # -- commits ------------------------------------------------------------------------------

    def commit_due(self) -> bool:
        """Whether the ack mode wants a commit after this poll's records."""
        mode = self.settings.ack_mode
        if mode in (AckMode.TIME, AckMode.COUNT, AckMode.COUNT_TIME):
            timed = time.monotonic() - self.last_commit >= self.settings.ack_time
            counted = self.book.uncommitted >= self.settings.ack_count
            if mode is AckMode.TIME:
                return timed
            if mode is AckMode.COUNT:
                return counted
            return timed or counted
        return True

    async def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit what the partition states allow (all partitions, or ``partitions``)."""
        if not self.settings.commits:
            return
        async with self._commit_lock:
            offsets = self.book.offsets_to_commit(partitions)
            if offsets:
                if self.store is not None:
                    await self._advance_store(self.store, offsets)
                await self._commit(offsets, everything=partitions is None)

    async def _advance_store(
        self, store: StoredOffsets, offsets: dict[TopicPartition, int]
    ) -> None:
        """An offset store moves up to what Kafka commits: records finished without the
        handler's transaction (filtered, or sent to a dead-letter topic) are not read
        again after a restart. If it fails they are, and go their way again."""
        try:
            await store.advance(offsets)
        except Exception as exc:
            self.record_error(exc)
            log.error(
                "listener %s: cannot move the stored offsets to %s (%r); records finished "
                "without the handler's transaction may be delivered again after a restart",
                self.listener_id,
                describe(offsets),
                exc,
            )

    async def _commit(self, offsets: dict[TopicPartition, int], *, everything: bool) -> None:
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                await self.consumer.commit(offsets)
            except CommitFailedError as exc:
                # The group moved on: the partitions belong to someone else now, who reads
                # the uncommitted records again. aiokafka rejoins the group.
                log.warning(
                    "listener %s: commit of %s failed because the group rebalanced (%s); "
                    "those records will be delivered again to the new owner",
                    self.listener_id,
                    describe(offsets),
                    exc,
                )
                await self._on_lost(set(offsets))
                return
            except IllegalStateError as exc:
                if await self._commit_while_reassigning(offsets, everything=everything):
                    return
                log.warning(
                    "listener %s: cannot commit %s now (%s); those records will be delivered again",
                    self.listener_id,
                    describe(offsets),
                    exc,
                )
                return
            except KafkaError as exc:
                if exc.retriable and attempt < _COMMIT_ATTEMPTS:
                    await asyncio.sleep(0.2 * attempt)
                    continue
                self.record_error(exc)
                log.error(
                    "listener %s: commit of %s failed: %r; will retry at the next commit",
                    self.listener_id,
                    describe(offsets),
                    exc,
                )
                return
            self.book.committed(offsets, everything=everything)
            self.last_commit = time.monotonic()
            return

    async def _commit_while_reassigning(
        self, offsets: dict[TopicPartition, int], *, everything: bool
    ) -> bool:
        """Commit while aiokafka swaps subscriptions (a pattern listener that found a new
        topic): the consumer refuses, as the new subscription has no assignment yet, but the
        partitions are still ours until the revocation completes and the group's generation
        is still valid, so the coordinator takes the commit. ``True`` if it did."""
        if not all((state := self.book.get(tp)) is not None and state.open for tp in offsets):
            return False
        coordinator = group_coordinator(self.consumer)
        if coordinator is None:
            return False
        try:
            await coordinator.commit_offsets(None, commit_structure_validate(offsets))
        except KafkaError:
            return False
        self.book.committed(offsets, everything=everything)
        self.last_commit = time.monotonic()
        return True


def describe(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(
        f"{tp.topic}-{tp.partition}@{offset}" for tp, offset in sorted(offsets.items())
    )
