"""Testing support: a real Apache Kafka broker launched from Maven jars, and pytest fixtures.

The pytest plugin (:mod:`kafkaboot.testing.plugin`) is registered through the ``pytest11``
entry point, so ``kafka_bootstrap`` and ``kafka_cluster`` are available in any project that
installs kafkaboot.
"""

from kafkaboot.testing.broker import KafkaCluster
from kafkaboot.testing.distribution import (
    DEFAULT_KAFKA_VERSION,
    cache_dir,
    kafka_classpath,
    kafka_version,
)
from kafkaboot.testing.metadata import PartitionInfo
from kafkaboot.testing.node import BrokerNode, free_port_range, free_ports, process_alive
from kafkaboot.testing.services import start_service

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerNode",
    "KafkaCluster",
    "PartitionInfo",
    "cache_dir",
    "free_port_range",
    "free_ports",
    "kafka_classpath",
    "kafka_version",
    "process_alive",
    "start_service",
]
