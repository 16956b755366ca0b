"""Health: whether a service can do its work (readiness), and whether it does it: a
partition with lag whose committed offset does not move is stalled.

The checks read the containers' own state (no broker round trip per request); the stall
watch takes a lag snapshot every few seconds, so "since when" does not depend on how often
anyone asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.stalls import Stall, Stalls
from kafkaboot.template import KafkaTemplate

__all__ = ["Checked", "Health"]


class Checked(Protocol):
    """What the checks need of an application (a ``KafkaBootApplication``)."""

    settings: KafkaBootSettings
    started: bool

    @property
    def registry(self) -> ListenerRegistry: ...

    @property
    def template(self) -> KafkaTemplate: ...


log = logging.getLogger("kafkaboot.health")
_WATCH_EVERY_S = 5.0


class Health:
    """One application's health checks.

    Args:
        application: the application whose listeners and template are checked.
    """

    def __init__(self, application: Checked) -> None:
        self._application = application
        self.lag = LagProbe()
        """Lag per listener and partition (shared with the metrics)."""
        after = application.settings.management.health.kafka.stalled_after.total_seconds()
        self._stalls = Stalls(after)
        self.stalled: list[Stall] = []
        """The partitions stalled at the latest check."""
        self._reported: set[tuple[str, str, int]] = set()
        self._every = min(_WATCH_EVERY_S, after / 4)
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._run(), name="kafkaboot:health")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.lag.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                self.check_stalls()
            except Exception:  # A bug here must not end the watch.
                log.exception("checking for stalled partitions failed")

    def check_stalls(self) -> list[Stall]:
        """Take a lag snapshot now; the stalled partitions. A WARNING names each partition
        when it becomes stalled (whoever asked first)."""
        self.stalled = self._stalls.update(self.lag.snapshot(self._application.registry))
        now = {(s.listener, s.topic, s.partition): s for s in self.stalled}
        for key, stall in now.items():
            if key not in self._reported:
                log.warning(
                    "listener %s: %s-%d is stalled: lag %d, committed offset %d has not "
                    "moved since %s%s",
                    stall.listener,
                    stall.topic,
                    stall.partition,
                    stall.lag_records,
                    stall.committed,
                    stall.describe()["since"],
                    " (paused)" if stall.paused else "",
                )
        self._reported = set(now)
        return self.stalled

    def kafka_component(self) -> dict[str, Any]:
        """``/actuator/health``'s ``kafka`` component: ``STALLED`` with the partitions, or
        ``UP``."""
        stalled = self.check_stalls() if self._application.started else []
        if not stalled:
            return {"status": "UP"}
        return {"status": "STALLED", "details": {"stalled": [s.describe() for s in stalled]}}

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service can do its work: started, a broker answering, and every
        consumer of every auto-started listener in its group and polling.

        A consumer counts once it has joined its group and completed a poll since, whatever
        it was assigned: with more consumers (or replicas) than partitions some hold none,
        and that is a steady state, not a fault. A consumer still joining, or whose group
        coordinator cannot be reached, does not count. A stalled partition (lag, and a
        committed offset that has not moved for ``stalled-after``) makes the service not
        ready, unless it is paused on purpose; either way it is listed.
        """
        app = self._application
        reachable = app.started and await app.template.broker_reachable(timeout=1.5)
        details: dict[str, Any] = {
            "started": app.started,
            "broker_reachable": reachable,
            "listeners": {},
        }
        ready = reachable
        limit = app.settings.kafka.consumer.max_poll_interval.total_seconds()
        now = time.monotonic()
        for container in app.registry:
            if not container.settings.auto_startup:
                continue
            # From the container's own state: no broker round trip in a health check.
            workers = container.workers
            fresh = bool(workers) and all(
                w.polled_at is not None and now - w.polled_at < limit for w in workers
            )
            in_group = sum(1 for w in workers if w.alive and w.polled_in_group)
            state = container.state.value
            if container.failure is not None or (
                container.is_running and not all(w.alive for w in workers)
            ):
                state = "failed"
            ok = state == "running" and bool(workers) and in_group == len(workers) and fresh
            listener: dict[str, Any] = {
                "state": state,
                "partitions": len(container.assignment),
                "consumers": len(workers),
                "consumers_in_group": in_group,
                "recent_poll": fresh,
            }
            if container.failure is not None:
                listener["failure"] = container.failure
            details["listeners"][container.listener_id] = listener
            ready = ready and ok
        stalled = self.check_stalls()
        if stalled:
            details["stalled"] = [stall.describe() for stall in stalled]
            ready = ready and all(stall.paused for stall in stalled)
        return ready, details
