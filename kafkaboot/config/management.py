"""``management.*``: what a service tells its operators (Spring Boot's actuator section).

Spring Boot has many ``management`` keys (endpoint exposure, tags, distributions) that a
Spring file may carry; kafkaboot reads the ones it knows and keeps the others, so such a
file runs unchanged.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ConfigDict, field_validator

from kafkaboot.config.section import Section
from kafkaboot.config.types import Duration

__all__ = [
    "HealthProperties",
    "KafkaHealthProperties",
    "ManagementProperties",
    "MetricsProperties",
    "TracingProperties",
]


class _SpringSection(Section):
    """A section that keeps keys kafkaboot does not know (Spring Boot's others)."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True)


class MetricsProperties(_SpringSection):
    """``management.metrics.*``."""

    enabled: bool = True
    """Count listeners and the template and serve ``GET /actuator/prometheus`` (when
    prometheus-client, ``kafkaboot[metrics]``, is installed)."""


class TracingProperties(_SpringSection):
    """``management.tracing.*`` (Spring Boot's name)."""

    enabled: bool = True
    """Open spans for sends and handled records and propagate trace context in record
    headers, when opentelemetry-api (``kafkaboot[otel]``) is installed and a tracer provider
    is set before the application starts."""


class KafkaHealthProperties(_SpringSection):
    """``management.health.kafka.*``."""

    stalled_after: Duration = timedelta(seconds=60)
    """A partition with lag whose committed offset has not moved for this long is stalled:
    readiness answers 503 and names it (a paused one is listed, not failed)."""

    @field_validator("stalled_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than 0 (e.g. 60s)")
        return value


class HealthProperties(_SpringSection):
    """``management.health.*``."""

    kafka: KafkaHealthProperties = KafkaHealthProperties()


class ManagementProperties(_SpringSection):
    """``management.*``."""

    metrics: MetricsProperties = MetricsProperties()
    tracing: TracingProperties = TracingProperties()
    health: HealthProperties = HealthProperties()
