"""What the in-memory Kafka refuses to pretend."""

from __future__ import annotations

__all__ = ["NotSupportedInMemory"]


class NotSupportedInMemory(NotImplementedError):
    """A behaviour the in-memory Kafka cannot reproduce honestly (a broker failure, a
    secured connection, a client method it does not model): the test needs the real broker
    (the ``kafka_bootstrap`` fixture)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is not supported in memory; run this test on the real broker "
            "(the kafka_bootstrap fixture) instead of memory_kafka"
        )
