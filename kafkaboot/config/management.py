"""``management.*``: what a service tells its operators (Spring Boot's actuator section).

Spring Boot has many ``management`` keys (endpoint exposure, tags, distributions) that a
Spring file may carry; kafkaboot reads the ones it knows and keeps the others, so such a
file runs unchanged.
"""

from __future__ import annotations

from pydantic import ConfigDict

from kafkaboot.config.section import Section

__all__ = ["ManagementProperties", "MetricsProperties"]


class _SpringSection(Section):
    """A section that keeps keys kafkaboot does not know (Spring Boot's others)."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True)


class MetricsProperties(_SpringSection):
    """``management.metrics.*``."""

    enabled: bool = True
    """Count listeners and the template and serve ``GET /actuator/prometheus`` (when
    prometheus-client, ``kafkaboot[metrics]``, is installed)."""


class ManagementProperties(_SpringSection):
    """``management.*``."""

    metrics: MetricsProperties = MetricsProperties()
