"""The one place kafkaboot makes its Kafka clients.

Listener containers, the template, the replying template, the admin and the dead-letter
replay get their consumers, producers and admin clients here, so that what stands behind
``bootstrap-servers`` is chosen in one module (and a test patches one name): aiokafka's
clients, or for ``memory://<name>`` those of the in-memory Kafka
(``kafkaboot.testing.memory``), imported only then.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from kafkaboot.inmemory import InMemoryClient, in_memory

__all__ = ["admin", "consumer", "has_connections", "producer", "wake_poll"]


def has_connections(client: object) -> bool:
    """False for an in-memory Kafka's client: no broker metadata, connections or batches."""
    return not isinstance(client, InMemoryClient)


def wake_poll(consumer: object) -> None:
    """End ``consumer``'s poll in progress now where the client can (the in-memory one), so
    a stop or a seek need not wait for the poll's timeout; aiokafka's cannot."""
    if isinstance(consumer, InMemoryClient):
        consumer.wakeup()  # type: ignore[attr-defined]


def consumer(*topics: str, **kwargs: Any) -> AIOKafkaConsumer:
    """A consumer (subscribed to ``topics`` when given) with aiokafka's keyword arguments."""
    if in_memory(kwargs.get("bootstrap_servers")):
        from kafkaboot.testing.memory.consumer import MemoryConsumer

        return MemoryConsumer(*topics, **kwargs)
    return AIOKafkaConsumer(*topics, **kwargs)


def producer(**kwargs: Any) -> AIOKafkaProducer:
    """A producer with aiokafka's keyword arguments."""
    if in_memory(kwargs.get("bootstrap_servers")):
        from kafkaboot.testing.memory.producer import MemoryProducer

        return MemoryProducer(**kwargs)
    return AIOKafkaProducer(**kwargs)


def admin(**kwargs: Any) -> AIOKafkaAdminClient:
    """An admin client with aiokafka's keyword arguments."""
    if in_memory(kwargs.get("bootstrap_servers")):
        from kafkaboot.testing.memory.admin import MemoryAdmin

        return MemoryAdmin(**kwargs)
    return AIOKafkaAdminClient(**kwargs)
