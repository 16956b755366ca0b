"""How many records a listener container has taken and not finished, against its
``max_in_flight``: the poll loop takes only what there is room for."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["InFlight"]


class InFlight:
    """Records a container's consumers took and did not finish, against ``max_in_flight``
    (shared by the container's consumers, which all run on one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.low_water = max(1, limit // 4)
        """Room worth a poll: waiting for this much takes records in useful amounts instead
        of one at a time as lanes finish."""
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def room(self) -> int:
        return self.limit - self.count

    def take(self, count: int) -> None:
        self.count += count

    def release(self, count: int = 1) -> None:
        self.count -= count
        if self._waiters and self.limit - self.count >= self.low_water:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_for_room(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for ``low_water`` room; the room there is then."""
        if self.room < self.low_water:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout)
        return max(self.room, 0)
