"""Holding back the cyclic garbage collector while a batch listener's batch is alive.

Decoding a 500-record batch makes a few thousand container objects (models, their
dicts and lists) that all stay alive until the handler is done with them. Each allocation
counts towards a young-generation collection, so collection after collection would walk
them, find them all alive and promote them, to be walked again in the older generations
(measured: 14 % of a batch listener's CPU time went to ``gc_collect_main``). They hold no
cycles: once the batch is dropped, reference counting frees them and the allocation count
falls back to where it was. So the collector is held back from decoding until the batch
is dropped, and resumed then, when there is nothing left for it to walk.

The hold is process-wide, so it is bounded in time: a handler that awaits for long (or an
error handler that backs off) gets the collector back after ``limit`` seconds. It is never
taken when the collector is off already (the application's choice, or another listener's
hold, which ends it).
"""

from __future__ import annotations

import asyncio
import gc
from types import TracebackType

__all__ = ["CollectorHold"]

_LIMIT_S = 0.1


class CollectorHold:
    """``with hold:`` around one batch, from its decoding to its last reference."""

    __slots__ = ("_held", "_limit", "_timer")

    def __init__(self, limit: float = _LIMIT_S) -> None:
        self._limit = limit
        self._held = False
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> CollectorHold:
        if gc.isenabled():
            gc.disable()
            self._held = True
            self._timer = asyncio.get_running_loop().call_later(self._limit, self._release)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            gc.enable()
