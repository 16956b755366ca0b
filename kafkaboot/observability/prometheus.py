"""An application's Prometheus metrics: the interceptors that count, the registry that
``GET /actuator/prometheus`` serves (``kafkaboot[metrics]``: prometheus-client)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.registry import CollectorRegistry

from kafkaboot.observability.export import KafkaBootCollector
from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.metrics import (
    BatchListenerMetrics,
    ListenerMetrics,
    Series,
    TemplateMetrics,
)
from kafkaboot.observability.workers import worker_exposition

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counts what a registry's listeners and a template do, and exports it.

    The listener interceptors go first in the registry (they time what later interceptors
    do too), the producer interceptor last in the template. ``registry`` holds kafkaboot's
    families; the scrape also shows prometheus-client's default registry (process metrics
    and the service's own).
    """

    def __init__(self, listeners: Any, template: Any) -> None:
        series = Series()
        self.template = TemplateMetrics()
        self.lag = LagProbe()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            KafkaBootCollector(series, self.template, lambda: list(listeners), self.lag)
        )
        listeners.add_interceptor(BatchListenerMetrics(series), first=True)
        listeners.add_interceptor(ListenerMetrics(series), first=True)
        template.add_interceptor(self.template)
        self.workers = worker_exposition(self.exposition)
        """Under ``kafkaboot run --workers N``: this worker's part in the one scrape."""

    def exposition(self) -> bytes:
        """This process's metrics in the text exposition format: kafkaboot's families, then
        the default registry's."""
        return generate_latest(self.registry) + generate_latest(REGISTRY)

    async def scrape(self) -> bytes:
        """What ``GET /actuator/prometheus`` answers: this process's metrics, or every
        worker's under ``--workers N`` (each sample labelled ``worker``)."""
        if self.workers is None:
            return self.exposition()
        return await self.workers.exposition()

    async def start(self) -> None:
        if self.workers is not None:
            await self.workers.start()

    async def close(self) -> None:
        if self.workers is not None:
            await self.workers.stop()
        await self.lag.close()
