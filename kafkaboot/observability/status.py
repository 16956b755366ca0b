"""The status page at ``/actuator/kafka``: listeners, their partitions with lag in records
and seconds, throughput and errors over the last minutes, stalled partitions.

:class:`StatusBoard` samples the counts every few seconds (so the page shows rates over
the last minutes without Prometheus) and builds the JSON the page polls; the page itself is
one self-contained HTML file (``status_page.html``: no CDN, no external assets).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from importlib import resources
from typing import Any, Protocol

from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.health import Health
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.observability.metrics import Counts

__all__ = ["Shown", "StatusBoard", "page"]


class Shown(Protocol):
    """What the status page needs of an application (a ``KafkaBootApplication``)."""

    settings: KafkaBootSettings
    counts: Counts | None
    health: Health

    @property
    def registry(self) -> ListenerRegistry: ...


log = logging.getLogger("kafkaboot.observability")
SAMPLE_EVERY_S = 5.0
_SAMPLES = 61
"""Five minutes of samples (rates between 60 pairs)."""


def page() -> str:
    """The status page's HTML."""
    return resources.files("kafkaboot.observability").joinpath("status_page.html").read_text()


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


class StatusBoard:
    """What the status page shows, for one application."""

    def __init__(self, application: Shown) -> None:
        self._application = application
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}
        """Listener id → (epoch seconds, records handled, failures) samples."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self.sample()
            self._task = asyncio.create_task(self._run(), name="kafkaboot:status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY_S)
            try:
                self.sample()
            except Exception:  # A bug here must not end the sampling.
                log.exception("sampling the listener counts failed")

    def sample(self, now: float | None = None) -> None:
        """Note each listener's totals now."""
        counts = self._application.counts
        if counts is None:
            return
        now = time.time() if now is None else now
        for listener_id in list(counts.series.listeners):
            totals = self._totals(listener_id)
            if totals is not None:
                samples = self._samples.setdefault(listener_id, deque(maxlen=_SAMPLES))
                samples.append((now, *totals))

    def _totals(self, listener_id: str) -> tuple[int, int] | None:
        """A listener's records handled and failures so far (``None``: not counted)."""
        counts = self._application.counts
        series = None if counts is None else counts.series.listeners.get(listener_id)
        if series is None:
            return None
        handled = failed = 0
        for stats in list(series.topics.values()):
            handled += stats.handled
            failed += sum(timer.count for timer in stats.failures.values())
        return handled, failed

    def _rates(self, listener_id: str, now: float) -> tuple[list[float], list[float]]:
        """Records handled and failures per second between samples, and from the latest
        sample to ``now`` (the page shows the current rate, not one up to 5 s old)."""
        samples = list(self._samples.get(listener_id, ()))
        live = self._totals(listener_id)
        if samples and live is not None and now - samples[-1][0] >= 1.0:
            samples.append((now, *live))
        handled, failed = [], []
        for (t0, h0, f0), (t1, h1, f1) in itertools.pairwise(samples):
            span = max(t1 - t0, 1e-9)
            handled.append(round(max(0, h1 - h0) / span, 2))
            failed.append(round(max(0, f1 - f0) / span, 2))
        return handled, failed

    def snapshot(self) -> dict[str, Any]:
        """The page's data: every listener, its partitions, its recent rates."""
        application = self._application
        health = application.health
        lags = health.lag.snapshot(application.registry)
        stalled = {(s.listener, s.topic, s.partition): s for s in health.check_stalls()}
        by_listener: dict[str, list[dict[str, Any]]] = {}
        for lag in lags:
            stall = stalled.get((lag.listener, lag.topic, lag.partition))
            by_listener.setdefault(lag.listener, []).append(
                {
                    "topic": lag.topic,
                    "partition": lag.partition,
                    "lag": _number(lag.lag_records),
                    "lag_seconds": _number(round(lag.lag_seconds, 1)),
                    "committed": _number(lag.committed),
                    "end": _number(lag.end_offset),
                    "paused": lag.paused,
                    "stalled_since": stall.describe()["since"] if stall else None,
                }
            )
        listeners = []
        now = time.time()
        for container in application.registry:
            handled, failed = self._rates(container.listener_id, now)
            partitions = sorted(
                by_listener.get(container.listener_id, []),
                key=lambda p: (p["topic"], p["partition"]),
            )
            listeners.append(
                {
                    "id": container.listener_id,
                    "state": "failed" if container.failure is not None else container.state.value,
                    "group": container.settings.group_id,
                    "topics": list(container.endpoint.topics)
                    or [container.endpoint.topic_pattern or ""],
                    "consumers": len(container.workers),
                    "failure": container.failure,
                    "last_error": container.last_error,
                    "handled_per_s": handled,
                    "errors_per_s": failed,
                    "partitions": partitions,
                }
            )
        return {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sample_every_s": SAMPLE_EVERY_S,
            "metrics": application.counts is not None,
            "stalled_after_s": (
                application.settings.management.health.kafka.stalled_after.total_seconds()
            ),
            "listeners": listeners,
        }
