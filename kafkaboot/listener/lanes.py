"""Concurrency inside a partition: records of different keys handled at once, each key's
records one at a time and in offset order (``ordering="key"``), or every record on its own
(``ordering="none"``).

Every record the poll loop takes goes into a lane (one per partition and key, or one per
record) and counts as *in flight* until its lane is done with it. The poll loop takes only
as many records as ``max_in_flight`` leaves room for, so memory stays bounded; when there is
no room it pauses its partitions and keeps polling, so a slow lane never makes the consumer
miss ``max.poll.interval.ms``.

Commits stay at-least-once because a record is registered with its partition's state as
open the moment it is taken (:meth:`PartitionState.delivered`) and finished only when its
lane is done with it (handled, acknowledged in the manual modes, or recovered): the
committed offset never passes an unfinished record, whatever order the lanes finish in.

A failing record is retried in its lane after the error handler's back-off; only the
records of its own key wait behind it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import TypeAlias

from aiokafka import TopicPartition

from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.handling import Handling, HeldAcknowledgment
from kafkaboot.listener.inflight import InFlight
from kafkaboot.listener.partition import PartitionState, Record
from kafkaboot.listener.settings import Ordering

__all__ = ["LaneDispatcher", "LaneStatus"]

log = logging.getLogger("kafkaboot.listener")
_INTERNAL_ERROR_BACKOFF_S = 1.0
_STUCK_AFTER_S = 10.0
"""A lane whose record has been in the handler this long shows in the status as stuck..."""
_CANCEL_WAIT_S = 1.0
"""How long a revocation or stop waits for cancelled handlers to end."""
_STUCK_SHOWN = 20
"""...and so does one whose record failed; at most this many, the oldest first."""

_Item: TypeAlias = tuple[PartitionState, Record, int]
"""A record in a lane: its partition's state, the record, the epoch it was taken in."""


@dataclasses.dataclass(frozen=True, slots=True)
class LaneStatus:
    """A lane that is not moving: its record failed, or has been handled for a while."""

    topic: str
    partition: int
    key: str | None
    """The record's key as text (bytes that are not UTF-8 escaped); ``None``: no key."""
    offset: int
    attempts: int
    """Failed deliveries of the record so far."""
    since: float
    """Epoch seconds since when the record has been in the lane's hands."""
    queued: int
    """Records of the same key waiting behind it."""


class _Lane:
    """The records of one key of one partition (or one record), in offset order."""

    __slots__ = ("backing_off", "key", "queue", "since", "state", "task", "tp")

    def __init__(self, key: Hashable, state: PartitionState) -> None:
        self.key = key
        self.tp = state.tp
        self.state = state
        self.queue: deque[_Item] = deque()
        self.task: asyncio.Task[None] | None = None
        self.since = 0.0
        """Epoch seconds when the record at the head of the queue was started."""
        self.backing_off = False
        """Waiting out a back-off, a nack's sleep or a retry topic's due time: a revocation
        need not wait for it."""


class LaneDispatcher:
    """One consumer's lanes: takes each poll's records and hands them to their lanes.

    Args:
        handling: how to call the handler and report outcomes.
        ordering: ``KEY`` or ``NONE``.
        in_flight: the container's in-flight count.
        commit_soon: asks the consumer for a commit now (record and immediate ack modes).
    """

    def __init__(
        self,
        handling: Handling,
        ordering: Ordering,
        in_flight: InFlight,
        commit_soon: Callable[[], None],
    ) -> None:
        if ordering is Ordering.PARTITION:
            raise ValueError("lanes are for ordering 'key' or 'none'")
        self.handling = handling
        self.ordering = ordering
        self.in_flight = in_flight
        self._commit_soon = commit_soon
        self._lanes: dict[Hashable, _Lane] = {}
        mode = handling.ack_mode
        self._manual = mode.is_manual
        self._commit_each = mode in (AckMode.RECORD, AckMode.MANUAL_IMMEDIATE)
        self._fast = handling.plain
        """Nothing per record but the call (and an acknowledgment in the manual modes)."""
        self._plain = self._fast and not self._manual

    # -- intake -------------------------------------------------------------------------------

    def dispatch(self, state: PartitionState, records: list[Record]) -> None:
        """Hand ``records`` (of one partition, in offset order) to their lanes; each is
        open in ``state`` until its lane is done with it."""
        epoch = state.epoch
        lanes = self._lanes
        by_key = self.ordering is Ordering.KEY
        tp = state.tp
        self.in_flight.take(len(records))
        for record in records:
            state.delivered(record.offset)
            key: Hashable = (tp, record.key) if by_key else (tp, record.offset)
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = _Lane(key, state)
            lane.queue.append((state, record, epoch))
            if lane.task is None or lane.task.done():
                task = lane.task = asyncio.create_task(self._run(lane))
                task.add_done_callback(functools.partial(self._ended, lane))

    @property
    def active(self) -> int:
        """Lanes with records."""
        return len(self._lanes)

    # -- a lane -------------------------------------------------------------------------------

    async def _run(self, lane: _Lane) -> None:
        """Handle the lane's records one after the other, then end (a new record starts the
        lane again)."""
        queue = lane.queue
        release = self.in_flight.release
        fast = self._fast
        attempts = self.handling.outcomes.attempts
        while queue:
            state, record, epoch = queue[0]
            if state.open and not state.closing and state.epoch == epoch:
                lane.since = time.time()
                if fast and not attempts.of(lane.tp):
                    await self._first(lane, state, record, epoch)
                else:
                    await self._handle(lane, state, record, epoch)
            # Else taken back (a rewind or seek since) or its partition is going away:
            # it stays unfinished, and is read again by whoever owns the partition.
            queue.popleft()
            release()

    def _ended(self, lane: _Lane, task: asyncio.Task[None]) -> None:
        """A lane's task ended, however (also cancelled before it ever ran): what is still
        queued is given up (unfinished, so read again by whoever owns the partition), and
        an idle lane is forgotten. Not if a newer task took the lane over meanwhile."""
        if lane.task is not task:
            return
        queue = lane.queue
        if queue:
            self.in_flight.release(len(queue))
            queue.clear()
        lane.task = None
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]

    async def _handle(self, lane: _Lane, state: PartitionState, record: Record, epoch: int) -> None:
        """One record, until it is finished, recovered, or its partition goes away; a retry
        waits in the lane (other keys go on)."""
        handling = self.handling
        outcomes = handling.outcomes
        offset = record.offset
        tp = state.tp
        while True:
            wait = max(outcomes.attempts.remaining(tp, offset), handling.not_due(record))
            if wait > 0:
                lane.backing_off = True
                try:
                    await asyncio.sleep(wait)
                finally:
                    lane.backing_off = False
                if not state.open or state.closing or state.epoch != epoch:
                    return
            try:
                if self._plain:
                    if await self._plain_attempt(state, record, epoch):
                        return
                elif await self._attempt(lane, state, record, epoch):
                    return
            except Exception as bug:  # In kafkaboot: keep the record, try again later.
                self._internal_error(state, record, bug)
            if not state.open or state.closing or state.epoch != epoch:
                return

    def _internal_error(self, state: PartitionState, record: Record, bug: Exception) -> None:
        handling = self.handling
        handling.outcomes.record_error(bug)
        log.error(
            "listener %s: unexpected error while handling %s-%d@%d; trying again in %.0fs",
            handling.listener_id,
            record.topic,
            record.partition,
            record.offset,
            _INTERNAL_ERROR_BACKOFF_S,
            exc_info=bug,
        )
        handling.outcomes.attempts.wait_until(state.tp, record.offset, _INTERNAL_ERROR_BACKOFF_S)

    async def _first(self, lane: _Lane, state: PartitionState, record: Record, epoch: int) -> None:
        """The common case's first delivery (an async handler with nothing else per record,
        nothing failing in the partition): the call, and its outcome; a failure or a nack
        goes on in ``_handle``, after the error handler's decision."""
        handling = self.handling
        offset = record.offset
        ack = HeldAcknowledgment(handling, state, offset) if self._manual else None
        try:
            await handling.invoker.call(record, ack, handling.consumer)
        except Exception as exc:
            if ack is not None:
                ack.handler_returned()
            try:
                if await self._failed(state, record, epoch, exc):
                    return
            except Exception as bug:  # In kafkaboot: keep the record, try again later.
                self._internal_error(state, record, bug)
        else:
            if ack is None:
                self._finished(state, offset, epoch)
                return
            ack.handler_returned()
            if not ack.nacked:
                self._returned_acknowledged(ack)
                return
            handling.outcomes.attempts.wait_until(state.tp, offset, ack.nack_sleep.total_seconds())
        if state.open and not state.closing and state.epoch == epoch:
            await self._handle(lane, state, record, epoch)

    async def _plain_attempt(self, state: PartitionState, record: Record, epoch: int) -> bool:
        """The common case: an async handler, automatic acks, nothing else per record."""
        handling = self.handling
        try:
            await handling.invoker.call(record, None, handling.consumer)
        except Exception as exc:
            return await self._failed(state, record, epoch, exc)
        attempts = handling.outcomes.attempts
        failures = attempts.of(state.tp)
        if failures and record.offset in failures:
            attempts.done(state.tp, record.offset)  # Succeeded after failing.
        self._finished(state, record.offset, epoch)
        return True

    async def _attempt(
        self, lane: _Lane, state: PartitionState, record: Record, epoch: int
    ) -> bool:
        """One delivery of ``record``; ``True`` once it needs no other."""
        handling = self.handling
        offset = record.offset
        ack: HeldAcknowledgment | None = None
        try:
            kept = handling.keep(record)
            if kept is None:
                self._finished(state, offset, epoch)  # Filtered out: finished.
                return True
            if self._manual:
                ack = HeldAcknowledgment(handling, state, offset)
            await handling.run(kept, ack)
        except Exception as exc:
            if ack is not None:
                ack.handler_returned()
            return await self._failed(state, record, epoch, exc)
        handling.outcomes.attempts.done(state.tp, offset)
        if ack is None:
            self._finished(state, offset, epoch)
            return True
        ack.handler_returned()
        if ack.nacked:
            # Delivered again after the sleep, in this lane: its key's later records wait.
            handling.outcomes.attempts.wait_until(state.tp, offset, ack.nack_sleep.total_seconds())
            return False
        self._returned_acknowledged(ack)
        return True

    def _returned_acknowledged(self, ack: HeldAcknowledgment) -> None:
        """The handler returned: an acknowledgment it gave counts now."""
        if ack.acknowledged:
            ack.apply(self.handling.outcomes)
            if self._commit_each:
                self._commit_soon()

    async def _failed(
        self, state: PartitionState, record: Record, epoch: int, error: Exception
    ) -> bool:
        """Ask the error handler; ``True`` when the record needs no other delivery
        (recovered, or the container stops and leaves it uncommitted)."""
        outcomes = self.handling.outcomes
        # The poll loop goes on meanwhile, so no max.poll.interval deadline applies.
        action = await outcomes.decide(record, error, bounded=False)
        if not state.open or state.epoch != epoch:
            return True  # Revoked or taken back meanwhile: whoever reads it again retries.
        if action.stop_reason is not None:
            outcomes.halt(action.stop_reason)
            return True
        if action.retry:
            seconds = action.delay.total_seconds()
            if seconds > 0:
                outcomes.attempts.wait_until(state.tp, record.offset, seconds)
            return False
        self._finished(state, record.offset, epoch)  # Recovered.
        return True

    def _finished(self, state: PartitionState, offset: int, epoch: int) -> None:
        self.handling.outcomes.acknowledged(state, offset, epoch)
        if self._commit_each:
            self._commit_soon()

    # -- revocation and stop ------------------------------------------------------------------

    async def drain(self, partitions: Iterable[TopicPartition] | None, timeout: float) -> None:
        """Let the records in hand of ``partitions`` (all when ``None``) finish within
        ``timeout``, then give up on the rest: their partitions' states are closing, so no
        lane starts another of their records, and records not finished stay uncommitted."""
        wanted = None if partitions is None else set(partitions)
        lanes = [
            lane
            for lane in self._lanes.values()
            if lane.task is not None and (wanted is None or lane.tp in wanted)
        ]
        if not lanes:
            return
        waiting = {lane.task for lane in lanes if lane.backing_off and lane.task is not None}
        for task in waiting:
            task.cancel()  # Only waiting out a back-off: nothing in hand to finish.
        tasks = {lane.task for lane in lanes if lane.task is not None}
        _, pending = await asyncio.wait(tasks, timeout=timeout) if timeout > 0 else (set(), tasks)
        if pending - waiting:
            log.warning(
                "listener %s: %d record(s) were still being handled %.1fs after their "
                "partitions were revoked or lost, or the listener stopped; cancelled, they "
                "will be delivered again",
                self.handling.listener_id,
                len(pending - waiting),
                timeout,
            )
        for task in pending:
            task.cancel()
        if pending:
            _, stubborn = await asyncio.wait(pending, timeout=_CANCEL_WAIT_S)
            if stubborn:
                log.warning(
                    "listener %s: %d handler(s) did not stop when cancelled; going on without "
                    "them (their records stay uncommitted)",
                    self.handling.listener_id,
                    len(stubborn),
                )

    # -- status -------------------------------------------------------------------------------

    def stuck(self) -> list[LaneStatus]:
        """Lanes whose record failed, or has been handled for more than 10 s."""
        now = time.time()
        attempts = self.handling.outcomes.attempts
        found = []
        for lane in tuple(self._lanes.values()):
            if not lane.queue or lane.task is None:
                continue
            _, record, _ = lane.queue[0]
            failures = attempts.of(lane.tp)
            count = failures[record.offset][0] if failures and record.offset in failures else 0
            if count == 0 and now - lane.since < _STUCK_AFTER_S:
                continue
            found.append(
                LaneStatus(
                    lane.tp.topic,
                    lane.tp.partition,
                    None if record.key is None else record.key.decode(errors="backslashreplace"),
                    record.offset,
                    count,
                    lane.since,
                    len(lane.queue) - 1,
                )
            )
        found.sort(key=lambda status: status.since)
        return found[:_STUCK_SHOWN]
