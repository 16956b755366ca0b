"""Listeners: ``@kafka_listener``, endpoints, containers and the registry."""

from aiokafka import ConsumerRecord, TopicPartition

from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.binding import Header, Headers, Key, Offset, Partition, Timestamp, Topic
from kafkaboot.listener.container import ContainerState, ContainerStatus, ListenerContainer
from kafkaboot.listener.decorator import kafka_listener, send_to
from kafkaboot.listener.endpoint import ListenerEndpoint, TopicPartitionOffset
from kafkaboot.listener.rebalance import ConsumerSeekAware, RebalanceListener, SeekCallback
from kafkaboot.listener.registry import ListenerRegistry

__all__ = [
    "AckMode",
    "Acknowledgment",
    "ConsumerRecord",
    "ConsumerSeekAware",
    "ContainerState",
    "ContainerStatus",
    "Header",
    "Headers",
    "Key",
    "ListenerContainer",
    "ListenerEndpoint",
    "ListenerRegistry",
    "Offset",
    "Partition",
    "RebalanceListener",
    "SeekCallback",
    "Timestamp",
    "Topic",
    "TopicPartition",
    "TopicPartitionOffset",
    "kafka_listener",
    "send_to",
]
