"""The central consumer without a database: counts every site's events in memory, at least
once, handling different sites concurrently (``ordering="key"``). The benchmarks of
fan-in, latency and footprint and the fault scenarios of per-key ordering run it; the
central consumer that keeps what it receives is ``sample_consumer_service``.

Run: ``kafkaboot run sample_counting_consumer --config sample_counting_consumer/application.yml``
"""

from sample_counting_consumer.listeners import app, stats

__all__ = ["app", "stats"]
