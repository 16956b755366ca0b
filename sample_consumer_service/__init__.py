"""Sample central consumer: takes in every site's events and keeps statistics.

Run: ``kafkaboot run sample_consumer_service --config sample_consumer_service/application.yml``
"""

from sample_consumer_service.listeners import app, stats

__all__ = ["app", "stats"]
