"""What the metrics count, and the interceptors that count it.

The interceptors count into plain Python objects (one event loop, no locks): a timer is a
list of bucket counts and a sum, updated with a ``bisect`` per record, which costs a fraction
of a ``prometheus_client`` histogram's ``observe``, and nothing here imports
prometheus-client. :mod:`kafkaboot.observability.export` turns the counts into metric
families when Prometheus scrapes.
"""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

from kafkaboot.interceptors import (
    BatchInterceptor,
    ListenerInfo,
    ProducerInterceptor,
    Record,
    RecordInterceptor,
)

if TYPE_CHECKING:
    from kafkaboot.errorhandling.handler import Recovery
    from kafkaboot.listener.events import ContainerEvent
    from kafkaboot.records import ProducerRecord, SendResult

__all__ = [
    "BUCKETS",
    "BatchListenerMetrics",
    "Counts",
    "ListenerMetrics",
    "ListenerSeries",
    "Series",
    "TemplateMetrics",
    "Timer",
]

BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds (seconds) of the timers' buckets; +Inf is added."""
_MAX_PENDING_SENDS = 100_000
"""Send start times kept for their acknowledgement; past this, the oldest are dropped (sends
whose caller cancelled them are never acknowledged)."""

_clock = time.perf_counter
_BOUNDS = (*BUCKETS, float("inf"))
_started: contextvars.ContextVar[float] = contextvars.ContextVar("kafkaboot_handling_started")
"""Concurrent consumers (lanes): when the record in this task was intercepted."""


class Timer:
    """A histogram: observations per bucket (not cumulative) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(_BOUNDS)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # A scan from the smallest bound: most handlers take less than the first one, and
        # one comparison is cheaper than a bisect.
        index = 0
        while seconds > _BOUNDS[index]:
            index += 1
        self.counts[index] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as Prometheus wants them."""
        running, out = 0, []
        for bound, count in zip(_BOUNDS, self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class _TopicStats:
    """One listener's numbers for one topic."""

    __slots__ = (
        "batched",
        "dead_lettered",
        "failures",
        "filtered",
        "recovered",
        "retried",
        "success",
    )

    def __init__(self) -> None:
        self.success = Timer()
        self.failures: dict[str, Timer] = {}
        self.batched = 0
        """Batch listeners: records in successful batches (the timer counts batches)."""
        self.filtered = 0
        self.retried = 0
        self.recovered = 0
        self.dead_lettered = 0

    @property
    def handled(self) -> int:
        """Records whose handler returned: a record listener's successes, or the records
        of a batch listener's successful batches."""
        return self.batched or self.success.count

    def failure(self, exception: BaseException) -> Timer:
        name = type(exception).__name__
        timer = self.failures.get(name)
        if timer is None:
            timer = self.failures[name] = Timer()
        return timer


class ListenerSeries:
    """Everything counted for one listener id (across its consumers and restarts)."""

    __slots__ = ("batch_in_flight", "group", "listener", "topics")

    def __init__(self, listener: str, group: str) -> None:
        self.listener = listener
        self.group = group
        self.topics: dict[str, _TopicStats] = {}
        self.batch_in_flight = 0
        """Batch listeners: records of the batches in the handler now."""

    def topic(self, topic: str) -> _TopicStats:
        stats = self.topics.get(topic)
        if stats is None:
            stats = self.topics[topic] = _TopicStats()
        return stats

    def count_recovery(self, topic: str, recovery: Recovery | None) -> None:
        stats = self.topic(topic)
        if recovery is not None and recovery.kind == "retry-topic":
            stats.retried += 1  # A non-blocking retry: delivered again from the retry topic.
            return
        stats.recovered += 1
        if recovery is not None and recovery.kind == "dead-letter":
            stats.dead_lettered += 1


class Series:
    """The listener series of one application, by listener id, and its container events."""

    def __init__(self) -> None:
        self.listeners: dict[str, ListenerSeries] = {}
        self.events: dict[tuple[str, str], int] = {}
        """(listener id, event name) → how many were published."""

    def count_event(self, event: ContainerEvent) -> None:
        key = (event.listener_id, event.name)
        self.events[key] = self.events.get(key, 0) + 1

    def of(self, listener_id: str, group_id: str | None) -> ListenerSeries:
        series = self.listeners.get(listener_id)
        if series is None:
            series = self.listeners[listener_id] = ListenerSeries(listener_id, group_id or "")
        return series


class ListenerMetrics(RecordInterceptor):
    """The record interceptor behind ``kafkaboot_listener_*``: registered once, it gives
    each listener consumer an observer bound to that listener's series."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def for_listener(self, listener: ListenerInfo) -> RecordInterceptor:
        series = self._series.of(listener.listener_id, listener.group_id)
        if listener.concurrent:
            return _ConcurrentRecordObserver(series)
        return _RecordObserver(series)


class _RecordObserver(RecordInterceptor):
    """One consumer's timers and counters, from its record hooks; one record in hand at a
    time, so its start is an attribute. Everything per record is inline: this runs for
    every record of every listener."""

    def __init__(self, series: ListenerSeries) -> None:
        self._series = series
        self._start = 0.0
        self._topic = ""
        self._timer = Timer()  # Replaced on the first record: the timer of its topic.

    def intercept(self, record: Record, consumer: Any) -> Record:
        self._start = _clock()
        return record

    def success(self, record: Record, consumer: Any, _bounds: tuple[float, ...] = _BOUNDS) -> None:
        elapsed = _clock() - self._start
        topic = record.topic
        if topic == self._topic:
            timer = self._timer
        else:
            timer = self._timer = self._series.topic(topic).success
            self._topic = topic
        index = 0
        while elapsed > _bounds[index]:
            index += 1
        timer.counts[index] += 1
        timer.total += elapsed

    def failure(self, record: Record, exception: BaseException, consumer: Any) -> None:
        self._series.topic(record.topic).failure(exception).observe(_clock() - self._start)

    def filtered(self, record: Record, consumer: Any) -> None:
        self._series.topic(record.topic).filtered += 1

    def retrying(self, record: Record, exception: BaseException, attempt: int) -> None:
        self._series.topic(record.topic).retried += 1

    def recovered(
        self, record: Record, exception: BaseException, recovery: Recovery | None
    ) -> None:
        self._series.count_recovery(record.topic, recovery)


class _ConcurrentRecordObserver(_RecordObserver):
    """Records handled concurrently (lanes): each start in its lane task's context."""

    def intercept(self, record: Record, consumer: Any) -> Record:
        _started.set(_clock())
        return record

    def success(self, record: Record, consumer: Any, _bounds: tuple[float, ...] = _BOUNDS) -> None:
        self._series.topic(record.topic).success.observe(_clock() - _started.get(_clock()))

    def failure(self, record: Record, exception: BaseException, consumer: Any) -> None:
        elapsed = _clock() - _started.get(_clock())
        self._series.topic(record.topic).failure(exception).observe(elapsed)


class BatchListenerMetrics(BatchInterceptor):
    """The batch interceptor behind ``kafkaboot_listener_*`` for batch listeners: the timer
    times each batch (labelled with its first record's topic); the counters count records."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def for_listener(self, listener: ListenerInfo) -> BatchInterceptor:
        return _BatchObserver(self._series.of(listener.listener_id, listener.group_id))


class _BatchObserver(BatchInterceptor):
    def __init__(self, series: ListenerSeries) -> None:
        self._series = series
        self._start = 0.0

    def intercept(self, records: list[Record], consumer: Any) -> list[Record]:
        self._start = _clock()
        self._series.batch_in_flight += len(records)
        return records

    def success(self, records: list[Record], consumer: Any) -> None:
        elapsed = _clock() - self._start
        series = self._series
        series.batch_in_flight -= len(records)
        if records:
            series.topic(records[0].topic).success.observe(elapsed)
        for topic, count in _per_topic(records).items():
            series.topic(topic).batched += count

    def failure(self, records: list[Record], exception: BaseException, consumer: Any) -> None:
        elapsed = _clock() - self._start
        self._series.batch_in_flight -= len(records)
        if records:
            self._series.topic(records[0].topic).failure(exception).observe(elapsed)

    def retrying(self, record: Record, exception: BaseException, attempt: int) -> None:
        self._series.topic(record.topic).retried += 1

    def recovered(
        self, record: Record, exception: BaseException, recovery: Recovery | None
    ) -> None:
        self._series.count_recovery(record.topic, recovery)


def _per_topic(records: list[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.topic] = counts.get(record.topic, 0) + 1
    return counts


class _SendStats:
    __slots__ = ("bytes", "failed", "failures", "sent", "success")

    def __init__(self) -> None:
        self.success = Timer()
        self.failures: dict[str, Timer] = {}
        self.sent = 0
        self.bytes = 0
        self.failed: dict[str, int] = {}


class TemplateMetrics(ProducerInterceptor):
    """The producer interceptor behind ``kafkaboot_template_*``: each send timed from the
    call to its outcome."""

    def __init__(self) -> None:
        self.topics: dict[str, _SendStats] = {}
        self._pending: dict[int, float] = {}

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        pending = self._pending
        pending[id(record)] = _clock()
        if len(pending) > _MAX_PENDING_SENDS:
            del pending[next(iter(pending))]
        return record

    def on_acknowledgement(
        self, record: ProducerRecord, result: SendResult | None, error: Exception | None
    ) -> None:
        started = self._pending.pop(id(record), None)
        stats = self.topics.get(record.topic)
        if stats is None:
            stats = self.topics[record.topic] = _SendStats()
        if error is None and result is not None:
            stats.sent += 1
            if result.serialized_size > 0:
                stats.bytes += result.serialized_size
            if started is not None:
                stats.success.observe(_clock() - started)
            return
        name = type(error).__name__
        stats.failed[name] = stats.failed.get(name, 0) + 1
        if started is not None:
            timer = stats.failures.get(name)
            if timer is None:
                timer = stats.failures[name] = Timer()
            timer.observe(_clock() - started)


class Counts:
    """What an application counts: its listeners (by listener id and topic) and its
    template's sends. Needs no extra; Prometheus (``kafkaboot[metrics]``) and the status
    page read it."""

    def __init__(self) -> None:
        self.series = Series()
        self.template = TemplateMetrics()

    def install(self, listeners: Any, template: Any) -> Counts:
        """Count ``listeners``' (a registry's) records and events, first among their
        interceptors (so the timers include the others), and ``template``'s sends."""
        listeners.on_event(self.series.count_event)
        listeners.add_interceptor(BatchListenerMetrics(self.series), first=True)
        listeners.add_interceptor(ListenerMetrics(self.series), first=True)
        template.add_interceptor(self.template)
        return self
