"""One suite, two brokers: every parity test runs on the in-memory Kafka (``[memory]``) and
on the real broker (``[kafka]``), with the same code and the same assertions. Only the
``bootstrap`` fixture differs; ``-k memory`` runs the in-memory half alone."""

import pytest


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bootstrap(request):
    """``memory://<name>`` of a fresh in-memory Kafka, or the real broker's addresses."""
    if request.param == "memory":
        return request.getfixturevalue("memory_kafka").bootstrap_servers
    return request.getfixturevalue("kafka_bootstrap")
