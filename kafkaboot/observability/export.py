"""Metric families for a scrape: what the interceptors counted, and what is read from the
containers at that moment (their states, in-flight records and lag)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.metrics import Series, TemplateMetrics

__all__ = ["KafkaBootCollector"]


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
        for series in list(self._series.listeners.values()):
            who = [series.listener, series.group]
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
        events = CounterMetricFamily(
            "kafkaboot_listener_events",
            "Container events published (container_started, listener_idle, "
            "non_responsive_consumer, ...)",
            labels=["listener", "event"],
        )
        for (listener, event), count in list(self._series.events.items()):
            events.add_metric([listener, event], float(count))
        yield events

    def _container_families(self, containers: list[Any]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "kafkaboot_listener_state",
            "1 for the listener container's current state (stopped, starting, running, "
            "paused, stopping, failed)",
            labels=["listener", "state"],
        )
        in_flight = GaugeMetricFamily(
            "kafkaboot_listener_records_in_flight",
            "Records handed to the handler and not finished",
            labels=["listener", "group"],
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
            in_flight.add_metric(
                [container.listener_id, container.settings.group_id or ""],
                float(self._in_flight(container)),
            )
            consumers.add_metric([container.listener_id, "all"], float(len(workers)))
            consumers.add_metric(
                [container.listener_id, "assigned"],
                float(sum(1 for w in workers if w.assigned)),
            )
        yield state
        yield in_flight
        yield consumers

    def _in_flight(self, container: Any) -> int:
        """With lanes, what they hold; a batch listener, the records of the batches in its
        handler; else one record per consumer inside its handler."""
        if container.in_flight is not None:
            return int(container.in_flight.count)
        if container.settings.batch:
            series = self._series.listeners.get(container.listener_id)
            return 0 if series is None else max(0, series.batch_in_flight)
        return sum(1 for worker in container.workers if worker.busy)

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
