"""Fixtures shared by the integration and reliability suites."""

import shutil
import tempfile
from pathlib import Path

import pytest

from kafkaboot.testing import KafkaCluster


@pytest.fixture(scope="session")
def _disposable_cluster():
    data_dir = Path(tempfile.mkdtemp(prefix="kafkaboot-disposable-"))
    try:
        with KafkaCluster(data_dir, nodes=1) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def disposable_broker(_disposable_cluster):
    """A one-node cluster of the session's own that a test may stop, kill and restart (the
    shared ``kafka_bootstrap`` broker must never go away); it is running when a test
    starts. One cold start per session instead of one per outage test."""
    if not _disposable_cluster.node(1).is_running():
        _disposable_cluster.start_node(1)
        _disposable_cluster.wait_ready(60)
    return _disposable_cluster


def pytest_collection_modifyitems(items):
    """A test on the disposable broker needs Kafka like one on ``kafka_bootstrap``: it
    gets the ``kafka`` marker too, so ``make test-unit`` (``-m "not kafka"``) starts none."""
    for item in items:
        if "disposable_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
