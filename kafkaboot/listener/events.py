"""Container events, like Spring's ``ListenerContainerIdleEvent`` and friends: a listener
started, stopped or failed; no records for a while (the listener, or one partition); a
consumer that has not polled for too long.

Callbacks are registered with ``registry.on_event(callback, *kinds)`` (or the decorator
``@registry.event_listener(*kinds)``); a callback may be sync or ``async`` and runs on the
event loop, so it must be quick. One that raises is logged and the others still run. The
idle and non-responsive checks run in one monitor task per registry, every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = [
    "ContainerEvent",
    "ContainerEvents",
    "ContainerFailed",
    "ContainerStarted",
    "ContainerStopped",
    "ListenerIdle",
    "ListenerNoLongerIdle",
    "NonResponsiveConsumer",
    "PartitionIdle",
]

log = logging.getLogger("kafkaboot.listener")
_CHECK_EVERY_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerEvent:
    """Something that happened to a listener container."""

    listener_id: str
    at: float = dataclasses.field(default_factory=time.time, kw_only=True)
    """Epoch seconds."""

    @property
    def name(self) -> str:
        """The event's name in metrics and logs: ``listener_idle``, ``container_started``..."""
        return _snake(type(self).__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerStarted(ContainerEvent):
    """Its consumers started (Spring's ``ConsumerStartedEvent``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerStopped(ContainerEvent):
    """It stopped (Spring's ``ContainerStoppedEvent``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerFailed(ContainerEvent):
    """Its error handler stopped it, or a consumer could not go on; it stops next."""

    reason: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ListenerIdle(ContainerEvent):
    """No records for ``kafka.listener.idle-event-interval`` (Spring's
    ``ListenerContainerIdleEvent``); published again each interval while it lasts."""

    idle_for: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class ListenerNoLongerIdle(ContainerEvent):
    """Records came again after a ``ListenerIdle``."""

    idle_for: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionIdle(ContainerEvent):
    """No records from one partition for ``kafka.listener.idle-partition-event-interval``
    (Spring's ``ListenerContainerPartitionIdleEvent``)."""

    topic: str = ""
    partition: int = -1
    idle_for: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class NonResponsiveConsumer(ContainerEvent):
    """A consumer has not polled for ``no-poll-threshold`` x ``poll-timeout`` (Spring's
    ``NonResponsiveConsumerEvent``): a handler stuck, or the loop blocked."""

    consumer: str = ""
    since_poll: float = 0.0


_E = TypeVar("_E", bound=ContainerEvent)
Callback = Callable[[Any], Any]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class ContainerEvents:
    """A registry's event callbacks, and the monitor that finds idle and non-responsive
    listeners.

    Args:
        containers: the registry's containers now.
    """

    def __init__(self, containers: Callable[[], Iterable[Any]]) -> None:
        self._containers = containers
        self._callbacks: list[tuple[tuple[type[ContainerEvent], ...], Callback]] = []
        self._monitor: asyncio.Task[None] | None = None
        self._idle_since: dict[str, float] = {}
        """Listener id → when its latest idle streak began (while a ListenerIdle holds)."""
        self._announced: dict[tuple[str, Any], float] = {}
        """What was published and when, so an event repeats once per interval."""
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- callbacks ----------------------------------------------------------------------------

    def on_event(self, callback: Callback, *kinds: type[ContainerEvent]) -> None:
        """Call ``callback(event)`` for events of ``kinds`` (default: every event)."""
        self._callbacks.append((kinds or (ContainerEvent,), callback))

    def event_listener(self, *kinds: type[_E]) -> Callable[[Callback], Callback]:
        """Decorator form of :meth:`on_event`."""

        def register(callback: Callback) -> Callback:
            self.on_event(callback, *kinds)
            return callback

        return register

    def publish(self, event: ContainerEvent) -> None:
        """Tell every callback that wants ``event``; async ones run as tasks."""
        for kinds, callback in list(self._callbacks):
            if not isinstance(event, kinds):
                continue
            try:
                outcome = callback(event)
                if inspect.isawaitable(outcome):
                    task = asyncio.ensure_future(outcome)
                    self._tasks.add(task)
                    task.add_done_callback(self._async_done)
            except Exception:
                log.exception("event callback %r failed on %r", callback, event)

    def _async_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event callback failed: %r", task.exception(), exc_info=task.exception())

    # -- monitor ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._watch(), name="kafkaboot:events")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(_CHECK_EVERY_S)
            try:
                self.check(time.monotonic())
            except Exception:  # A bug here must not end the monitoring.
                log.exception("checking listeners for idle and non-responsive consumers failed")

    def check(self, now: float) -> None:
        """Publish the idle and non-responsive events due at ``now`` (``time.monotonic()``)."""
        for container in self._containers():
            if not container.is_running:
                self._idle_since.pop(container.listener_id, None)
                continue
            self._check_idle(container, now)
            self._check_partitions(container, now)
            self._check_polls(container, now)

    def _due(self, key: tuple[str, Any], now: float, every: float) -> bool:
        last = self._announced.get(key)
        if last is not None and now - last < every:
            return False
        self._announced[key] = now
        return True

    def _check_idle(self, container: Any, now: float) -> None:
        interval = container.settings.idle_event_interval
        if interval is None:
            return
        listener = container.listener_id
        last = max(
            (w.records_at for w in container.workers if w.records_at is not None),
            default=container.started_at,
        )
        idle_for = now - last
        if idle_for >= interval:
            if listener not in self._idle_since:
                self._idle_since[listener] = last
            if self._due((listener, "idle"), now, interval):
                self.publish(ListenerIdle(listener, idle_for=idle_for))
        elif listener in self._idle_since:
            since = self._idle_since.pop(listener)
            self._announced.pop((listener, "idle"), None)
            self.publish(ListenerNoLongerIdle(listener, idle_for=last - since))

    def _check_partitions(self, container: Any, now: float) -> None:
        interval = container.settings.idle_partition_event_interval
        if interval is None:
            return
        for worker in container.workers:
            for state in list(worker.book):
                last = state.records_at if state.records_at is not None else state.assigned_at
                if now - last >= interval:
                    key = (container.listener_id, state.tp)
                    if self._due(key, now, interval):
                        self.publish(
                            PartitionIdle(
                                container.listener_id,
                                topic=state.tp.topic,
                                partition=state.tp.partition,
                                idle_for=now - last,
                            )
                        )

    def _check_polls(self, container: Any, now: float) -> None:
        settings = container.settings
        limit = settings.no_poll_threshold * settings.poll_timeout
        for worker in container.workers:
            polled = worker.polled_at if worker.polled_at is not None else container.started_at
            if now - polled >= limit:
                key = (container.listener_id, ("poll", worker.index))
                if self._due(key, now, settings.monitor_interval):
                    self.publish(
                        NonResponsiveConsumer(
                            container.listener_id, consumer=worker.name, since_poll=now - polled
                        )
                    )
