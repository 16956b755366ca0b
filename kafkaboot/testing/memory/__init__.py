"""An in-memory Kafka for tests (issue 18, in progress): so far the cluster's storage
(:mod:`kafkaboot.testing.memory.cluster`) and its consumer groups
(:mod:`kafkaboot.testing.memory.groups`); the consumer, producer and admin clients that
will let kafkaboot's listeners and template run on it come next, through
:mod:`kafkaboot.clients`."""

from kafkaboot.testing.memory.cluster import (
    MEMORY_SCHEME,
    InMemoryKafka,
    StoredRecord,
    TopicExistsError,
    UnknownTopicError,
    cluster_for,
)
from kafkaboot.testing.memory.groups import ConsumerGroup

__all__ = [
    "MEMORY_SCHEME",
    "ConsumerGroup",
    "InMemoryKafka",
    "StoredRecord",
    "TopicExistsError",
    "UnknownTopicError",
    "cluster_for",
]
