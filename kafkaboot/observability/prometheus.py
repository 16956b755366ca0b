"""An application's Prometheus metrics: the interceptors that count, the registry that
``GET /actuator/prometheus`` serves (``kafkaboot[metrics]``: prometheus-client)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.registry import CollectorRegistry

from kafkaboot.observability.export import KafkaBootCollector
from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.metrics import Counts
from kafkaboot.observability.workers import worker_exposition

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Exports what a registry's listeners and a template do, in Prometheus's format.

    Args:
        listeners: the listener registry.
        template: the template.
        lag: the lag probe (default: a new one).
        counts: what is counted (default: new counts, installed on ``listeners`` and
            ``template``).

    ``registry`` holds kafkaboot's families; the scrape also shows prometheus-client's
    default registry (process metrics and the service's own).
    """

    def __init__(
        self,
        listeners: Any,
        template: Any,
        lag: LagProbe | None = None,
        counts: Counts | None = None,
    ) -> None:
        self.counts = counts or Counts().install(listeners, template)
        self.lag = lag or LagProbe()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            KafkaBootCollector(
                self.counts.series, self.counts.template, lambda: list(listeners), self.lag
            )
        )
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
