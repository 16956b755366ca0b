"""Testing support: a real Apache Kafka broker launched from Maven jars, and pytest fixtures.

The pytest plugin (:mod:`kafkaboot.testing.plugin`) is registered through the ``pytest11``
entry point, so ``kafka_bootstrap`` and ``kafka_cluster`` are available in any project that
installs kafkaboot. :func:`start_secured_cluster` starts a broker with secured listeners
(generated certificates and stores, SASL users) and a token server for OAUTHBEARER.
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
from kafkaboot.testing.secured import SecuredCluster, start_secured_cluster
from kafkaboot.testing.services import start_service
from kafkaboot.testing.token_server import TokenServer

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerNode",
    "KafkaCluster",
    "PartitionInfo",
    "SecuredCluster",
    "TokenServer",
    "cache_dir",
    "free_port_range",
    "free_ports",
    "kafka_classpath",
    "kafka_version",
    "process_alive",
    "start_secured_cluster",
    "start_service",
]
