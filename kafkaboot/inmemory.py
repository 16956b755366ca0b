"""What marks an in-memory Kafka (``kafkaboot.testing.InMemoryKafka``) to the rest of
kafkaboot: its ``memory://<name>`` bootstrap servers, and its clients' base class.

A leaf module, so that the client factory (``clients.py``) and the in-memory clients
(``kafkaboot.testing.memory``) can both know it without knowing each other.
"""

from __future__ import annotations

__all__ = ["MEMORY_SCHEME", "InMemoryClient", "in_memory"]

MEMORY_SCHEME = "memory://"
"""``bootstrap-servers`` of an in-memory Kafka start with it."""


class InMemoryClient:
    """Marks the clients of an in-memory Kafka: they have no connections, so the template
    watches no broker metadata for them."""


def in_memory(bootstrap_servers: object) -> bool:
    """Whether ``bootstrap_servers`` (a string or a list of them) names an in-memory Kafka."""
    if isinstance(bootstrap_servers, str):
        return bootstrap_servers.startswith(MEMORY_SCHEME)
    if isinstance(bootstrap_servers, list | tuple):
        return any(str(server).startswith(MEMORY_SCHEME) for server in bootstrap_servers)
    return False
