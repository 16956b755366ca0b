"""kafkaboot: Spring-for-Apache-Kafka-style messaging for Python services, on aiokafka."""

from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.errors import (
    BrokerError,
    ConfigProblem,
    ConfigurationError,
    KafkaBootError,
    SerializationError,
)

__all__ = [
    "BrokerError",
    "ConfigProblem",
    "ConfigurationError",
    "KafkaBootError",
    "KafkaBootSettings",
    "SerializationError",
    "load_settings",
]

__version__ = "0.1.0"
