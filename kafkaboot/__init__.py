"""kafkaboot: Spring-for-Apache-Kafka-style messaging for Python services, on aiokafka."""

from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.errorhandling import DefaultErrorHandler, ErrorAction, ErrorHandler, FailedRecord
from kafkaboot.errors import (
    BrokerError,
    ConfigProblem,
    ConfigurationError,
    KafkaBootError,
    SerializationError,
)
from kafkaboot.listener import (
    AckMode,
    Acknowledgment,
    ConsumerRecord,
    ConsumerSeekAware,
    Header,
    Headers,
    Key,
    ListenerContainer,
    ListenerEndpoint,
    ListenerRegistry,
    Offset,
    Partition,
    RebalanceListener,
    SeekCallback,
    Timestamp,
    Topic,
    TopicPartition,
    TopicPartitionOffset,
    kafka_listener,
)

__all__ = [
    "AckMode",
    "Acknowledgment",
    "BrokerError",
    "ConfigProblem",
    "ConfigurationError",
    "ConsumerRecord",
    "ConsumerSeekAware",
    "DefaultErrorHandler",
    "ErrorAction",
    "ErrorHandler",
    "FailedRecord",
    "Header",
    "Headers",
    "KafkaBootError",
    "KafkaBootSettings",
    "Key",
    "ListenerContainer",
    "ListenerEndpoint",
    "ListenerRegistry",
    "Offset",
    "Partition",
    "RebalanceListener",
    "SeekCallback",
    "SerializationError",
    "Timestamp",
    "Topic",
    "TopicPartition",
    "TopicPartitionOffset",
    "kafka_listener",
    "load_settings",
]

__version__ = "0.1.0"
