"""An in-memory Kafka for tests: ``InMemoryKafka().bootstrap_servers`` (``memory://<name>``)
goes wherever a real cluster's addresses would, and kafkaboot's listeners, template, error
handling and web layer run on it unchanged. The fake sits at the client boundary
(:mod:`kafkaboot.clients` hands out :mod:`~kafkaboot.testing.memory.consumer`,
:mod:`~kafkaboot.testing.memory.producer` and :mod:`~kafkaboot.testing.memory.admin`
clients for ``memory://``), over the cluster (:mod:`~kafkaboot.testing.memory.cluster`):
its topics' logs (:mod:`~kafkaboot.testing.memory.topics`) and its consumer groups
(:mod:`~kafkaboot.testing.memory.groups`). What it cannot do honestly raises
:class:`NotSupportedInMemory`."""

from kafkaboot.inmemory import MEMORY_SCHEME
from kafkaboot.testing.memory.cluster import InMemoryKafka, cluster_for
from kafkaboot.testing.memory.errors import NotSupportedInMemory
from kafkaboot.testing.memory.groups import ConsumerGroup
from kafkaboot.testing.memory.records import (
    StoredRecord,
    TopicExistsError,
    Transaction,
    UnknownTopicError,
)

__all__ = [
    "MEMORY_SCHEME",
    "ConsumerGroup",
    "InMemoryKafka",
    "NotSupportedInMemory",
    "StoredRecord",
    "TopicExistsError",
    "Transaction",
    "UnknownTopicError",
    "cluster_for",
]
