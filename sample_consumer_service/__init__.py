"""Sample central consumer: keeps every site's events in a database (SQLite by default,
PostgreSQL with ``DATABASE_URL``), each exactly once, and answers statistics from it.

Run: ``kafkaboot run sample_consumer_service --config sample_consumer_service/application.yml``
"""

from sample_consumer_service.listeners import app

__all__ = ["app"]
