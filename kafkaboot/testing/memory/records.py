"""What the in-memory Kafka stores: records as a broker keeps them, transactions and their
state, and the errors its storage raises."""

from __future__ import annotations

import dataclasses
import enum

from aiokafka import TopicPartition

__all__ = [
    "Header",
    "StoredRecord",
    "TopicExistsError",
    "Transaction",
    "TransactionState",
    "UnknownTopicError",
]

Header = tuple[str, bytes | None]


class UnknownTopicError(LookupError):
    """The topic does not exist and the cluster does not create topics on first use."""


class TopicExistsError(ValueError):
    """A topic of that name exists already."""


class TransactionState(enum.Enum):
    OPEN = "open"
    COMMITTED = "committed"
    ABORTED = "aborted"


@dataclasses.dataclass(eq=False, slots=True)
class Transaction:
    """One transaction of a transactional producer: its records are invisible to
    ``read_committed`` consumers while it is open, and for ever once aborted."""

    transactional_id: str
    state: TransactionState = TransactionState.OPEN
    partitions: set[TopicPartition] = dataclasses.field(default_factory=set)
    offsets: dict[str, dict[TopicPartition, int]] = dataclasses.field(default_factory=dict)
    """Consumer offsets sent to the transaction, per group: committed with it."""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as the broker keeps it: where it is, and what was sent."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    """Epoch milliseconds: the producer's, or the append time when it gave none."""
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    transaction: Transaction | None = None
    control: bool = False
    """A transaction's commit or abort marker: it takes an offset, no consumer sees it."""

    def visible(self, read_committed: bool) -> bool:
        """Whether a consumer at that isolation level is handed this record."""
        if self.control:
            return False
        txn = self.transaction
        return not read_committed or txn is None or txn.state is TransactionState.COMMITTED
