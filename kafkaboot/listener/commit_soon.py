"""Commits asked for between polls: an immediate acknowledgment, or a record finished in a
lane, wants its offset committed now rather than after the next poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kafkaboot.listener.outcomes import Outcomes

__all__ = ["CommitSoon"]

log = logging.getLogger("kafkaboot.listener")


class CommitSoon:
    """Commits what is finished on a task of its own: now, or right after the commit under
    way (asks that come meanwhile share one more commit instead of queueing one each)."""

    def __init__(
        self,
        outcomes: Outcomes,
        name: str,
        record_error: Callable[[BaseException], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._outcomes = outcomes
        self._name = name
        self._record_error = record_error
        self._stopping = stopping
        self._pending: asyncio.Future[None] | None = None
        self._again = False

    def __call__(self) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self._commit_while_asked())
        else:
            self._again = True

    async def settled(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the commit under way, if any.

        Raises:
            TimeoutError: it did not finish in time.
        """
        if self._pending is not None:
            await asyncio.wait_for(asyncio.shield(self._pending), timeout)

    async def _commit_while_asked(self) -> None:
        self._again = True
        while self._again and not self._stopping():
            self._again = False
            try:
                await self._outcomes.commit()
            except Exception as exc:  # The poll loop's next commit tries again.
                self._record_error(exc)
                log.warning("listener %s: commit failed: %r", self._name, exc)
                return
