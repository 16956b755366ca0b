"""An in-memory consumer's life in its group, on a task of its own as aiokafka's group
coordinator runs: join, give up the partitions when the group rebalances (the revocation
callback first, while the old generation still takes commits), take the new assignment
(positions from the committed offsets or ``auto_offset_reset``, then the assignment
callback), commit automatically when asked to, and leave the group when the consumer has
not polled within ``max_poll_interval_ms`` — everything a rebalance listener sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from kafkaboot.testing.memory.groups import ConsumerGroup

__all__ = ["Membership"]

log = logging.getLogger("kafkaboot.testing.memory")


class Membership:
    """One consumer's membership of ``group``, driven by :meth:`run` on its own task.

    Args:
        group: the group.
        client_id: names the member (``<client_id>-<uuid>``, as Kafka names members).
        revoke: gives up the consumer's partitions (runs its revocation callback).
        assign: takes a new assignment (positions, then its assignment callback).
        auto_commit: commits the consumed positions (``None``: auto-commit is off).
        auto_commit_interval: seconds between automatic commits.
        max_poll_interval: seconds without a poll after which the member leaves.
        rebalance_timeout: seconds the group waits for the member to rejoin.
        idle_time: seconds since the consumer last polled.
        changed: a future settled at the next change in the cluster.
        forget: drops a future of ``changed`` no longer waited for.
    """

    def __init__(
        self,
        group: ConsumerGroup,
        client_id: str,
        *,
        revoke: Callable[[], Awaitable[None]],
        assign: Callable[[frozenset[TopicPartition]], Awaitable[None]],
        auto_commit: Callable[[], Awaitable[None]] | None,
        auto_commit_interval: float,
        max_poll_interval: float,
        rebalance_timeout: float,
        idle_time: Callable[[], float],
        changed: Callable[[], asyncio.Future[None]],
        forget: Callable[[asyncio.Future[None]], None],
    ) -> None:
        self.group = group
        self.member_id = f"{client_id}-{uuid.uuid4()}"
        self.generation = -1
        self._revoke, self._assign = revoke, assign
        self._auto_commit = auto_commit
        self._auto_commit_interval = auto_commit_interval
        self._max_poll_interval = max_poll_interval
        self._rebalance_timeout = rebalance_timeout
        self._idle_time = idle_time
        self._changed, self._forget = changed, forget
        self._topics: tuple[str, ...] = ()
        self._pattern: Any = None
        self._closing = False
        self._woken: asyncio.Future[None] | None = None

    @property
    def joined(self) -> bool:
        """A member of a generation (what a known coordinator means to readiness)."""
        return self.group.is_member(self.member_id) and self.generation >= 0

    def subscribe(self, topics: tuple[str, ...], pattern: Any) -> None:
        self._topics, self._pattern = topics, pattern
        if self.group.is_member(self.member_id):
            self._join()

    def _join(self) -> None:
        self.group.join(
            self.member_id,
            self._topics,
            self._pattern,
            rebalance_timeout=self._rebalance_timeout,
        )

    async def commit_allowed(self) -> None:
        """Raises CommitFailedError unless this member's generation is the group's."""
        self.group.check_commit(self.member_id, self.generation)

    async def run(self) -> None:
        """Take part in the group until :meth:`close`."""
        await self._revoke()  # aiokafka calls the revocation callback on the first join too.
        self._join()
        next_commit = time.monotonic() + self._auto_commit_interval
        while not self._closing:
            group, me = self.group, self.member_id
            if not group.is_member(me):  # Dropped (no poll in time): back in on the next poll.
                if self._idle_time() < self._max_poll_interval:
                    await self._give_up()
                    self._join()
                    continue
            elif group.needs_rejoin(me):
                await self._give_up()
                group.rejoin(me)
                continue
            elif not group.rebalancing and group.generation != self.generation:
                self.generation = group.generation
                await self._assign(group.assignment(me))
                continue
            elif self._idle_time() > self._max_poll_interval:
                log.warning(
                    "member %s of group %r has not polled for %.1fs (max_poll_interval_ms): "
                    "it leaves the group",
                    me,
                    group.group_id,
                    self._max_poll_interval,
                )
                await self._give_up()
                group.leave(me)
                continue
            now = time.monotonic()
            wait = min(self._max_poll_interval / 4, 1.0)
            if self._auto_commit is not None:
                if now >= next_commit:
                    await self._commit_quietly()
                    next_commit = now + self._auto_commit_interval
                wait = min(wait, next_commit - now)
            await self._wait(wait)

    async def _give_up(self) -> None:
        if self._auto_commit is not None:
            await self._commit_quietly()
        await self._revoke()

    async def _commit_quietly(self) -> None:
        if self._auto_commit is None:
            return
        try:
            await self._auto_commit()
        except (KafkaError, ConsumerStoppedError) as exc:  # CommitFailed, IllegalState...
            log.warning("auto-commit of member %s failed: %r", self.member_id, exc)

    async def _wait(self, timeout: float) -> None:
        waiter = self._woken = self._changed()
        try:
            await asyncio.wait([waiter], timeout=max(timeout, 0.0))
        finally:
            waiter.cancel()
            self._forget(waiter)

    async def close(self, task: asyncio.Task[None] | None) -> None:
        """Stop taking part once the step in hand (a callback, say) is over, as aiokafka
        lets its coordinator finish; commit once more when auto-committing; leave the group
        (no revocation callback: aiokafka calls none on close)."""
        self._closing = True
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._auto_commit is not None and self.joined:
            await self._commit_quietly()
        self.group.leave(self.member_id)
