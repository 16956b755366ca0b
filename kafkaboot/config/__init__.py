"""Configuration: ``application.yml`` read into validated settings models.

See :func:`load_settings` for where values come from and in which order.
"""

from kafkaboot.config.kafka import (
    AdminProperties,
    ConsumerProperties,
    KafkaProperties,
    ListenerProperties,
    ProducerProperties,
    SecurityProperties,
    TemplateProperties,
    TopicDeclaration,
)
from kafkaboot.config.loader import find_config_file, load_settings
from kafkaboot.config.settings import KafkaBootSettings, ServerProperties
from kafkaboot.config.types import DataSize, Duration, parse_data_size, parse_duration, to_ms

__all__ = [
    "AdminProperties",
    "ConsumerProperties",
    "DataSize",
    "Duration",
    "KafkaBootSettings",
    "KafkaProperties",
    "ListenerProperties",
    "ProducerProperties",
    "SecurityProperties",
    "ServerProperties",
    "TemplateProperties",
    "TopicDeclaration",
    "find_config_file",
    "load_settings",
    "parse_data_size",
    "parse_duration",
    "to_ms",
]
