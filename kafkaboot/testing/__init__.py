"""Testing support: a real Apache Kafka broker launched from Maven jars, an in-memory Kafka
(:class:`InMemoryKafka`), pytest fixtures, and helpers that create topics, read back what a
test produced and wait for its listeners (:mod:`kafkaboot.testing.topics`,
:mod:`kafkaboot.testing.reading`, :mod:`kafkaboot.testing.waiting`); each helper takes
either broker's bootstrap servers first.

The pytest plugin (:mod:`kafkaboot.testing.plugin`) is registered through the ``pytest11``
entry point, so ``kafka_bootstrap``, ``kafka_cluster`` and ``memory_kafka`` are available in
any project that installs kafkaboot. :func:`start_secured_cluster` starts a broker with
secured listeners (generated certificates and stores, SASL users) and a token server for
OAUTHBEARER.
"""

from kafkaboot.testing.broker import KafkaCluster
from kafkaboot.testing.distribution import (
    DEFAULT_KAFKA_VERSION,
    cache_dir,
    kafka_classpath,
    kafka_version,
)
from kafkaboot.testing.gate import FaultGate
from kafkaboot.testing.memory import InMemoryKafka, NotSupportedInMemory
from kafkaboot.testing.metadata import PartitionInfo
from kafkaboot.testing.node import BrokerNode, free_port_range, free_ports, process_alive
from kafkaboot.testing.reading import (
    WaitTimeout,
    commit_offsets,
    committed_offsets,
    describe_record,
    get_records,
    get_single_record,
)
from kafkaboot.testing.secured import SecuredCluster, start_secured_cluster
from kafkaboot.testing.services import start_service
from kafkaboot.testing.token_server import TokenServer
from kafkaboot.testing.topics import create_topic, unique_name
from kafkaboot.testing.waiting import send_and_wait_handled, wait_for_assignment

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "BrokerNode",
    "FaultGate",
    "InMemoryKafka",
    "KafkaCluster",
    "NotSupportedInMemory",
    "PartitionInfo",
    "SecuredCluster",
    "TokenServer",
    "WaitTimeout",
    "cache_dir",
    "commit_offsets",
    "committed_offsets",
    "create_topic",
    "describe_record",
    "free_port_range",
    "free_ports",
    "get_records",
    "get_single_record",
    "kafka_classpath",
    "kafka_version",
    "process_alive",
    "send_and_wait_handled",
    "start_secured_cluster",
    "start_service",
    "unique_name",
    "wait_for_assignment",
]
