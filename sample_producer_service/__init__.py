"""Sample producer service: one instance per customer site, publishing over HTTP.

Run: ``kafkaboot run sample_producer_service --config sample_producer_service/application.yml``
"""

from sample_producer_service.endpoints import app

__all__ = ["app"]
