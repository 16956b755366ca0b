"""One consumer of a listener container and its poll loop.

The loop fetches, tells each partition's state where the fetched records start, and hands
them to the listener's dispatch style; every outcome goes through
:class:`~kafkaboot.listener.outcomes.Outcomes`, and what may be committed is decided by the
partition states alone. A stop (like a revocation, see
:mod:`kafkaboot.listener.assignment`) lets the record in hand finish within the shutdown
timeout, commits what is finished, and only then closes the partitions' states: work that
outlives its partitions cannot move offsets any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ConsumerStoppedError

from kafkaboot import clients
from kafkaboot.interceptors import ListenerInfo, listener_hooks
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.assignment import PartitionAssignment
from kafkaboot.listener.batch import BatchDispatcher
from kafkaboot.listener.commit_soon import CommitSoon
from kafkaboot.listener.coordinator import knows_coordinator
from kafkaboot.listener.dispatch import RecordDispatcher
from kafkaboot.listener.fetched import fetched_runs
from kafkaboot.listener.handling import Handling
from kafkaboot.listener.intake import Intake
from kafkaboot.listener.lanes import LaneDispatcher
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionBook, Record
from kafkaboot.listener.poll_errors import PollBackOff, describe, is_auth_failure, is_fatal
from kafkaboot.listener.rebalance import SeekRequest
from kafkaboot.listener.settings import Listener
from kafkaboot.listener.transactions import TransactionalDispatcher, TransactionalProducers

__all__ = ["ConsumerWorker"]

log = logging.getLogger("kafkaboot.listener")
_MAX_IDLE_POLL_S = 0.5  # How soon a stop, pause or runtime seek is noticed while idle.
_LOOP_ERROR_BACKOFF = timedelta(seconds=1)
_LANE_COMMIT_INTERVAL_S = 0.1
"""With lanes, records finish all the time: commit what is finished at most this often."""


class ConsumerWorker:
    """Owns one ``AIOKafkaConsumer`` and the task that polls it."""

    def __init__(self, container: Listener, index: int, consumer: AIOKafkaConsumer) -> None:
        self.container = container
        self.index = index
        self.consumer = consumer
        self.book = PartitionBook()
        self.last_poll: float | None = None
        """Epoch seconds of the latest completed poll (shown in the listener status)."""
        self.polled_at: float | None = None
        """The same on the monotonic clock, for comparisons a clock step must not upset."""
        self.records_at: float | None = None
        """``time.monotonic()`` of the latest poll that brought records (idle events)."""
        self._settings = settings = container.settings
        self.outcomes = Outcomes(
            consumer,
            self.book,
            container.attempts,
            container.error_handler,
            settings,
            container.listener_id,
            record_error=container.record_error,
            halt=self._halt,
            on_lost=self._on_lost,
            store=container.offset_store,
        )
        self.commit_soon = CommitSoon(
            self.outcomes, self.name, container.record_error, lambda: self._stopping
        )
        """Immediate acknowledgments, and the record ack mode with lanes, commit now."""
        record_hooks, batch_hooks, error_hooks = listener_hooks(
            container.interceptors,
            ListenerInfo(
                container.listener_id,
                settings.group_id,
                settings.batch,
                settings.concurrent,
                threaded=not container.invoker.is_async,
            ),
        )
        self.outcomes.observer = error_hooks
        self._handling = Handling(
            container.invoker,
            consumer,
            self.outcomes,
            container.listener_id,
            settings.ack_mode,
            filter=container.filter,
            send_to=container.send_to,
            not_before=container.not_before,
            template=container.template,
            after_late_ack=self._after_late_ack,
            interceptor=record_hooks,
            batch_interceptor=batch_hooks,
        )
        self._records: RecordDispatcher | TransactionalDispatcher = RecordDispatcher(self._handling)
        self.lanes: LaneDispatcher | None = None
        self.intake: Intake | None = None
        if settings.concurrent and container.in_flight is not None:
            self.lanes = LaneDispatcher(
                self._handling, settings.ordering, container.in_flight, self.commit_soon
            )
            self.intake = Intake(container.in_flight, consumer, self.outcomes)
        self._batches = BatchDispatcher(self._handling) if settings.batch else None
        self._txn: TransactionalProducers | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_requested = asyncio.Event()
        """Set with ``_stopping``: cuts a back-off between failed polls short."""
        self._poll_backoff = PollBackOff()
        self._idle = asyncio.Event()
        self._idle.set()
        self.assignment = PartitionAssignment(
            container, index, consumer, self.book, self.outcomes, self._idle
        )
        if self.lanes is not None:
            self.assignment.drain = self.lanes.drain

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._handling.loop = asyncio.get_running_loop()
        self._handling.loop_thread = threading.get_ident()
        endpoint = self.container.endpoint
        if endpoint.partitions:
            mine = self.container.partitions_for(self.index)
            self.consumer.assign([TopicPartition(p.topic, p.partition) for p in mine])
        elif endpoint.topic_pattern:
            self.consumer.subscribe(pattern=endpoint.topic_pattern, listener=self.assignment)
        else:
            self.consumer.subscribe(list(endpoint.topics), listener=self.assignment)
        transactions = None
        settings = self._settings
        if settings.transactional and settings.group_id is not None:
            template = self.container.template
            self._txn = TransactionalProducers(
                template,
                settings.transaction_id_prefix or "",
                settings.group_id,
                timeout=template.delivery_timeout,
            )
            self.assignment.transactions = self._txn
            transactions = TransactionalDispatcher(self._handling, self._txn, settings.group_id)
            self._records = transactions
        if settings.batch and transactions is not None:
            self._batches = BatchDispatcher(self._handling, transactions)
        await self.consumer.start()
        if endpoint.partitions or settings.group_id is None:
            self.assignment.joined_at = time.monotonic()  # No group join to wait for.
        if endpoint.partitions:
            for tp in self.consumer.assignment():
                self.book.assign(tp)
            await self.assignment.initial_manual_positions()
            self.assignment.apply_pauses(self.book.partitions)
        self._task = asyncio.create_task(self._run(), name=f"kafkaboot:{self.name}")

    @property
    def name(self) -> str:
        return f"{self.container.listener_id}-{self.index}"

    @property
    def alive(self) -> bool:
        """Whether the poll loop is running (false after a stop or a fatal loop error)."""
        return self._task is not None and not self._task.done()

    @property
    def in_group(self) -> bool:
        """Whether the consumer is a settled member of its group: the group's coordinator
        is reachable (aiokafka forgets it within a heartbeat of losing it) and the latest
        join has completed, whatever it assigned. Always true without a group."""
        if self._settings.group_id is None:
            return True
        return knows_coordinator(self.consumer) and self.assignment.joined_at is not None

    @property
    def polled_in_group(self) -> bool:
        """Whether a poll completed since the consumer (last) joined its group: it is doing
        its work, with partitions or without."""
        joined, polled = self.assignment.joined_at, self.polled_at
        return self.in_group and joined is not None and polled is not None and polled >= joined

    @property
    def busy(self) -> bool:
        """Whether the poll loop is handing out the records of a poll (a record listener
        with ordering ``partition``: one record is in its handler)."""
        return not self._idle.is_set()

    @property
    def assigned(self) -> set[TopicPartition]:
        return self.book.partitions

    @property
    def committed(self) -> dict[TopicPartition, int]:
        """Offsets committed by this consumer (or found at assignment), per partition."""
        return {s.tp: s.committed for s in self.book if s.committed is not None}

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """Per partition, the first record not finished yet (where a restart would read)."""
        return {s.tp: p for s in self.book if (p := s.resume_offset) is not None}

    async def stop(self, timeout: float) -> None:
        """Stop fetching, let the record in hand finish, commit, leave the group; each
        step is bounded by ``timeout`` so a dead broker cannot hang the stop."""
        deadline = time.monotonic() + timeout
        self._stop_now()
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
        if self.lanes is not None:
            await self.lanes.drain(None, max(0.0, deadline - time.monotonic()))
        try:
            await self.commit_soon.settled(timeout)
            await asyncio.wait_for(self.outcomes.commit(), timeout)
        except TimeoutError:
            log.warning(
                "listener %s: the final commit did not finish within %.1fs (broker away?); "
                "records handled since the last commit will be delivered again",
                self.name,
                timeout,
            )
        except Exception as exc:
            log.warning("listener %s: the final commit failed: %r", self.name, exc)
        self.book.remove(self.book.partitions)
        if self._txn is not None:
            await self._txn.close()
        try:
            await asyncio.wait_for(self.consumer.stop(), timeout=max(timeout, 5.0))
        except TimeoutError:
            log.warning("listener %s: its consumer did not close in time; abandoning it", self.name)

    def _halt(self, reason: str) -> None:
        """The error handler wants the container stopped: stop handling at once (records
        not finished stay uncommitted) and have the container stop (it awaits this task)."""
        self._stop_now()
        self.container.fail(reason)

    def _stop_now(self) -> None:
        self._stopping = True
        self._stop_requested.set()
        for state in self.book:
            state.closing = True  # Handling stops after the record in hand.
        clients.wake_poll(self.consumer)

    # -- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        poll_ms = int(min(self._settings.poll_timeout, _MAX_IDLE_POLL_S) * 1000)
        consumer = self.consumer
        outcomes = self.outcomes
        commits = self._settings.commits
        lanes, intake = self.lanes, self.intake
        commit_every = 0.0 if lanes is None else _LANE_COMMIT_INTERVAL_S
        room: int | None = None
        while not self._stopping:
            if self.assignment.seeks:
                await self.assignment.apply_runtime_seeks()
            outcomes.resume_due(hold_all=self.container.paused)
            if intake is not None:
                room = await intake.room(poll_ms / 1000, held=lambda: self.container.paused)
            try:
                if intake is None:
                    # Not past a back-off's end: its partition resumes at the loop's top.
                    batches = await consumer.getmany(timeout_ms=outcomes.poll_ms(poll_ms))
                elif room == 0:
                    # Partitions are paused; poll anyway, so that the group keeps us.
                    batches = await consumer.getmany(timeout_ms=0)
                else:
                    batches = await intake.take(room or 1, poll_ms)
            except ConsumerStoppedError:
                return
            except Exception as exc:
                if not await self._poll_failed(exc):
                    return
                continue
            if self._poll_backoff.failures:
                self._poll_backoff.succeeded()
            self.last_poll, self.polled_at = time.time(), time.monotonic()
            if batches:
                self.records_at = self.polled_at
                self._idle.clear()
                try:
                    await self._dispatch(batches, hold=room == 0)
                finally:
                    self._idle.set()
            if (
                commits
                and outcomes.commit_due()
                and time.monotonic() - outcomes.last_commit >= commit_every
                and self.book.has_pending
            ):
                await outcomes.commit()
            if self._settings.idle_between_polls > 0 and not self._stopping:
                await self._idle_between_polls()

    async def _idle_between_polls(self) -> None:
        """Spring's ``idle-between-polls``: wait before the next poll, but never so long that
        the group takes the partitions away (5 s short of ``max.poll.interval.ms``)."""
        max_poll_interval = self._settings.consumer_kwargs.get("max_poll_interval_ms", 300_000)
        since_poll = time.monotonic() - (self.polled_at or time.monotonic())
        wait = min(self._settings.idle_between_polls, max_poll_interval / 1000 - since_poll - 5)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), wait)

    async def _poll_failed(self, error: Exception) -> bool:
        """A poll raised: stop the container on a fatal error (``False``), else wait with a
        growing back-off and read again from each partition's first unfinished record.
        An authentication or authorization failure is retried after the listener's
        ``auth-exception-retry-interval`` when one is set."""
        self.container.record_error(error)
        reason = describe(error, group_id=self._settings.group_id)
        retry_auth = self._settings.auth_exception_retry_interval
        if is_fatal(error) and not (retry_auth is not None and is_auth_failure(error)):
            self._halt(f"consumer {self.name} cannot poll: {reason}")
            return False
        delay = self._poll_backoff.failed()
        if retry_auth is not None and is_auth_failure(error):
            delay = retry_auth  # Spring's auth-exception-retry-interval: retry, do not stop.
        log.warning(
            "listener %s: poll failed (%d in a row): %s; polling again in %.1fs",
            self.name,
            self._poll_backoff.failures,
            reason,
            delay,
        )
        # An error raised while aiokafka decoded a fetched batch drops the records of other
        # partitions it had taken already: read each partition again from where it was.
        for state in self.book:
            if state.position is not None and state.open:
                self.consumer.seek(state.tp, state.position)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), delay)
        return not self._stopping

    async def _dispatch(
        self, batches: dict[TopicPartition, list[Record]], *, hold: bool = False
    ) -> None:
        """Hand the polled records to the listener; with ``hold`` (no room in the lanes)
        only put them back to be read again."""
        parts = fetched_runs(self.book, self.consumer, batches, hold=hold, name=self.name)
        if not parts:
            return
        try:
            if self.lanes is not None:
                for state, records in parts.items():
                    self.lanes.dispatch(state, records)
            elif self._batches is not None:
                await self._batches.dispatch(parts)
            else:
                dispatch = self._records.dispatch
                for state, records in parts.items():
                    if not state.closing:
                        await dispatch(state, records)
        except Exception as exc:
            # A bug, or a broken part of kafkaboot: do not die, and do not skip records.
            self.container.record_error(exc)
            log.exception(
                "listener %s: unexpected error while handling records; reading them again in %.0fs",
                self.name,
                _LOOP_ERROR_BACKOFF.total_seconds(),
            )
            for state in parts:
                self.outcomes.rewind_unfinished(state, _LOOP_ERROR_BACKOFF)

    def _after_late_ack(self) -> None:
        """An acknowledgment that came after its handler returned: commit it now in the
        immediate mode (when no handler is running; otherwise the loop commits soon)."""
        if self._settings.ack_mode is AckMode.MANUAL_IMMEDIATE and self._idle.is_set():
            self.commit_soon()

    async def _on_lost(self, lost: set[TopicPartition]) -> None:
        await self.assignment.lost(lost)

    def request_seek(self, request: SeekRequest) -> None:
        self.assignment.seeks.append(request)
        clients.wake_poll(self.consumer)

    # -- pause and resume -------------------------------------------------------------------

    def pause(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        assigned = self.book.partitions
        targets = assigned if partitions is None else set(partitions) & assigned
        if partitions is not None:
            self.outcomes.held |= set(partitions)
        if targets:
            self.consumer.pause(*targets)

    def resume(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        held = self.outcomes.held
        backing_off = {s.tp for s in self.book if s.paused_until is not None}
        if partitions is None:
            targets = self.book.partitions - held - backing_off
        else:
            held -= set(partitions)
            targets = (set(partitions) & self.book.partitions) - backing_off
            if self.container.paused:
                targets = set()
        if targets:
            self.consumer.resume(*targets)
