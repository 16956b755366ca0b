"""Prometheus metrics of listeners and the template, built on interceptors.

The interceptors count into plain Python objects (one event loop, no locks): a timer is a
list of bucket counts and a sum, updated with a ``bisect`` per record, which costs a fraction
of a ``prometheus_client`` histogram's ``observe``. A collector turns them into metric
families when Prometheus scrapes, together with the lag and the containers' states, which
are read from the containers themselves at that moment.
"""

from __future__ import annotations

import bisect
import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kafkaboot.interceptors import (
    BatchInterceptor,
    ProducerInterceptor,
    Record,
    RecordInterceptor,
)
from kafkaboot.observability.lag import LagProbe

if TYPE_CHECKING:
    from kafkaboot.errorhandling.handler import Recovery
    from kafkaboot.records import ProducerRecord, SendResult

__all__ = [
    "BUCKETS",
    "BatchListenerMetrics",
    "KafkaBootCollector",
    "ListenerMetrics",
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
_started: contextvars.ContextVar[float] = contextvars.ContextVar("kafkaboot_handling_started")
"""When the record in hand (in this task: a partition's loop, or a lane) was intercepted."""


def _elapsed() -> float:
    """Seconds since the record (or batch) in hand was intercepted (0 if it was not)."""
    started = _started.get(None)
    return 0.0 if started is None else _clock() - started


class Timer:
    """A histogram: observations per bucket (not cumulative) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as Prometheus wants them."""
        running, out = 0, []
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class _TopicStats:
    """One listener's numbers for one topic."""

    __slots__ = (
        "dead_lettered",
        "failures",
        "filtered",
        "handled",
        "recovered",
        "retried",
        "success",
    )

    def __init__(self) -> None:
        self.success = Timer()
        self.failures: dict[str, Timer] = {}
        self.handled = 0
        self.filtered = 0
        self.retried = 0
        self.recovered = 0
        self.dead_lettered = 0

    def failure(self, exception: BaseException) -> Timer:
        name = type(exception).__name__
        timer = self.failures.get(name)
        if timer is None:
            timer = self.failures[name] = Timer()
        return timer


class _ListenerSeries:
    """Everything counted for one listener id (across its consumers and restarts)."""

    __slots__ = ("ended", "group", "listener", "started", "topics")

    def __init__(self, listener: str, group: str) -> None:
        self.listener = listener
        self.group = group
        self.topics: dict[str, _TopicStats] = {}
        self.started = 0
        self.ended = 0

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
    """The listener series of one application, by listener id."""

    def __init__(self) -> None:
        self.listeners: dict[str, _ListenerSeries] = {}

    def of(self, listener_id: str, group_id: str | None) -> _ListenerSeries:
        series = self.listeners.get(listener_id)
        if series is None:
            series = self.listeners[listener_id] = _ListenerSeries(listener_id, group_id or "")
        return series


class ListenerMetrics(RecordInterceptor):
    """The record interceptor behind ``kafkaboot_listener_*``: registered once, it gives
    each listener an observer bound to that listener's series (``for_listener``)."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def for_listener(self, listener_id: str, group_id: str | None) -> _RecordObserver:  # type: ignore[override]
        return _RecordObserver(self._series.of(listener_id, group_id))


class _RecordObserver(RecordInterceptor):
    """One listener's timers and counters, from its record hooks."""

    __slots__ = ("_series", "_topics")

    def __init__(self, series: _ListenerSeries) -> None:
        self._series = series
        self._topics = series.topics

    def intercept(self, record: Record, consumer: Any) -> Record:
        _started.set(_clock())
        self._series.started += 1
        return record

    def success(self, record: Record, consumer: Any) -> None:
        elapsed = _elapsed()
        stats = self._topics.get(record.topic) or self._series.topic(record.topic)
        stats.success.observe(elapsed)
        stats.handled += 1

    def failure(self, record: Record, exception: BaseException, consumer: Any) -> None:
        elapsed = _elapsed()
        self._series.topic(record.topic).failure(exception).observe(elapsed)

    def after_record(self, record: Record, consumer: Any) -> None:
        self._series.ended += 1

    def filtered(self, record: Record, consumer: Any) -> None:
        self._series.topic(record.topic).filtered += 1

    def retrying(self, record: Record, exception: BaseException, attempt: int) -> None:
        self._series.topic(record.topic).retried += 1

    def recovered(
        self, record: Record, exception: BaseException, recovery: Recovery | None
    ) -> None:
        self._series.count_recovery(record.topic, recovery)


class BatchListenerMetrics(BatchInterceptor):
    """The batch interceptor behind ``kafkaboot_listener_*`` for batch listeners: the timer
    times each batch (labelled with its first record's topic); the counters count records."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def for_listener(self, listener_id: str, group_id: str | None) -> _BatchObserver:  # type: ignore[override]
        return _BatchObserver(self._series.of(listener_id, group_id))


class _BatchObserver(BatchInterceptor):
    __slots__ = ("_series",)

    def __init__(self, series: _ListenerSeries) -> None:
        self._series = series

    def intercept(self, records: list[Record], consumer: Any) -> list[Record]:
        _started.set(_clock())
        self._series.started += len(records)
        return records

    def success(self, records: list[Record], consumer: Any) -> None:
        elapsed = _elapsed()
        series = self._series
        series.ended += len(records)
        if records:
            series.topic(records[0].topic).success.observe(elapsed)
        for topic, count in _per_topic(records).items():
            series.topic(topic).handled += count

    def failure(self, records: list[Record], exception: BaseException, consumer: Any) -> None:
        elapsed = _elapsed()
        self._series.ended += len(records)
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


class KafkaBootCollector(Collector):
    """Exports an application's metrics when scraped.

    Args:
        series: what the listener interceptors counted.
        template: what the template interceptor counted.
        containers: the listener containers now (their states, in-flight records, lag).
        lag: computes the lag from the containers' consumers.
    """

    def __init__(
        self,
        series: Series,
        template: TemplateMetrics,
        containers: Callable[[], Iterable[Any]],
        lag: LagProbe,
    ) -> None:
        self._series = series
        self._template = template
        self._containers = containers
        self._lag = lag

    def describe(self) -> list[Metric]:
        return []  # Families are made at scrape time; nothing to check at registration.

    def collect(self) -> Iterator[Metric]:
        containers = list(self._containers())
        yield from self._listener_families()
        yield from self._container_families(containers)
        yield from self._lag_families(containers)
        yield from self._template_families()

    def _listener_families(self) -> Iterator[Metric]:
        labels = ["listener", "group", "topic", "result", "exception"]
        timer = HistogramMetricFamily(
            "kafkaboot_listener_seconds",
            "Time in the listener per record (per batch for batch listeners), by result",
            labels=labels,
        )
        names = ("handled", "filtered", "retried", "recovered", "dead_lettered")
        helps = (
            "Records the listener handled (its handler returned)",
            "Records a filter or an interceptor left out",
            "Failed deliveries to be retried (in place or through a retry topic)",
            "Records the error handler gave up on and recovered (logged or dead-lettered)",
            "Records published to a dead-letter topic",
        )
        counters = {
            name: CounterMetricFamily(
                f"kafkaboot_listener_records_{name}",
                text,
                labels=["listener", "group", "topic"],
            )
            for name, text in zip(names, helps, strict=True)
        }
        in_flight = GaugeMetricFamily(
            "kafkaboot_listener_records_in_flight",
            "Records handed to the handler and not finished",
            labels=["listener", "group"],
        )
        for series in list(self._series.listeners.values()):
            who = [series.listener, series.group]
            in_flight.add_metric(who, float(max(0, series.started - series.ended)))
            for topic, stats in list(series.topics.items()):
                success = stats.success
                timer.add_metric([*who, topic, "success", "none"], success.buckets(), success.total)
                for exception, failed in list(stats.failures.items()):
                    timer.add_metric(
                        [*who, topic, "failure", exception], failed.buckets(), failed.total
                    )
                for name in names:
                    counters[name].add_metric([*who, topic], float(getattr(stats, name)))
        yield timer
        yield from counters.values()
        yield in_flight

    def _container_families(self, containers: list[Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "kafkaboot_listener_state",
            "1 for the listener container's current state (stopped, starting, running, "
            "paused, stopping, failed)",
            labels=["listener", "state"],
        )
        consumers = GaugeMetricFamily(
            "kafkaboot_listener_consumers",
            "Consumers of the listener container, and how many of them have partitions",
            labels=["listener", "kind"],
        )
        for container in containers:
            current = "failed" if container.failure is not None else container.state.value
            for name in ("stopped", "starting", "running", "paused", "stopping", "failed"):
                state.add_metric([container.listener_id, name], 1.0 if name == current else 0.0)
            workers = container.workers
            consumers.add_metric([container.listener_id, "all"], float(len(workers)))
            consumers.add_metric(
                [container.listener_id, "assigned"],
                float(sum(1 for w in workers if w.assigned)),
            )
        yield state
        yield consumers

    def _lag_families(self, containers: list[Any]) -> Iterator[Metric]:
        labels = ["listener", "group", "topic", "partition"]
        records = GaugeMetricFamily(
            "kafkaboot_consumer_lag_records",
            "Log end offset minus committed offset (where the consumer resumes before its "
            "first commit), per assigned partition",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "kafkaboot_consumer_lag_seconds",
            "Age of the oldest record not yet handled (0: caught up)",
            labels=labels,
        )
        end = GaugeMetricFamily(
            "kafkaboot_consumer_end_offset", "Log end offset of the partition", labels=labels
        )
        committed = GaugeMetricFamily(
            "kafkaboot_consumer_committed_offset",
            "Committed offset of the partition (or where the consumer resumes)",
            labels=labels,
        )
        for lag in self._lag.snapshot(containers):
            who = [lag.listener, lag.group, lag.topic, str(lag.partition)]
            records.add_metric(who, lag.lag_records)
            seconds.add_metric(who, lag.lag_seconds)
            end.add_metric(who, lag.end_offset)
            committed.add_metric(who, lag.committed)
        yield records
        yield seconds
        yield end
        yield committed

    def _template_families(self) -> Iterator[Metric]:
        timer = HistogramMetricFamily(
            "kafkaboot_template_seconds",
            "Time from the template's send to the broker's acknowledgement (or the failure)",
            labels=["topic", "result", "exception"],
        )
        sent = CounterMetricFamily(
            "kafkaboot_template_records_sent", "Records the broker acknowledged", labels=["topic"]
        )
        failed = CounterMetricFamily(
            "kafkaboot_template_records_failed",
            "Sends that failed (not queued, refused, or not confirmed in time)",
            labels=["topic", "exception"],
        )
        sent_bytes = CounterMetricFamily(
            "kafkaboot_template_sent_bytes",
            "Key and value bytes of the acknowledged records",
            labels=["topic"],
        )
        for topic, stats in list(self._template.topics.items()):
            timer.add_metric(
                [topic, "success", "none"], stats.success.buckets(), stats.success.total
            )
            for exception, failures in list(stats.failures.items()):
                timer.add_metric([topic, "failure", exception], failures.buckets(), failures.total)
            sent.add_metric([topic], float(stats.sent))
            sent_bytes.add_metric([topic], float(stats.bytes))
            for exception, count in list(stats.failed.items()):
                failed.add_metric([topic, exception], float(count))
        yield timer
        yield sent
        yield failed
        yield sent_bytes
