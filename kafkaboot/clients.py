"""The one place kafkaboot makes its Kafka clients.

Listener containers, the template, the replying template, the admin and the dead-letter
replay get their consumers, producers and admin clients here, so that what stands behind
``bootstrap-servers`` is chosen in one module (and a test patches one name).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["admin", "consumer", "producer"]


def consumer(*topics: str, **kwargs: Any) -> AIOKafkaConsumer:
    """A consumer (subscribed to ``topics`` when given) with aiokafka's keyword arguments."""
    return AIOKafkaConsumer(*topics, **kwargs)


def producer(**kwargs: Any) -> AIOKafkaProducer:
    """A producer with aiokafka's keyword arguments."""
    return AIOKafkaProducer(**kwargs)


def admin(**kwargs: Any) -> AIOKafkaAdminClient:
    """An admin client with aiokafka's keyword arguments."""
    return AIOKafkaAdminClient(**kwargs)
