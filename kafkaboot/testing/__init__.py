"""Testing support: a real Apache Kafka broker launched from Maven jars, and pytest fixtures.

The pytest plugin (:mod:`kafkaboot.testing.plugin`) is registered through the ``pytest11``
entry point, so ``kafka_bootstrap`` and ``kafka_cluster`` are available in any project that
installs kafkaboot.
"""

from kafkaboot.testing.broker import BrokerNode, KafkaCluster, free_ports
from kafkaboot.testing.distribution import (
    DEFAULT_KAFKA_VERSION,
    cache_dir,
    kafka_classpath,
    kafka_version,
)
from kafkaboot.testing.services import start_service

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerNode",
    "KafkaCluster",
    "cache_dir",
    "free_ports",
    "kafka_classpath",
    "kafka_version",
    "start_service",
]
