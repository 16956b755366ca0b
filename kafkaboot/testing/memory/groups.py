"""Consumer groups of the in-memory Kafka: members, generations and who holds which
partition, as Kafka's group coordinator decides it with aiokafka's default assignor.

A member joining or leaving starts a new generation: every member's assignment is worked
out afresh (the eager protocol aiokafka speaks: each member gives up all its partitions,
then takes its new share). Each member learns of the new generation on its own next poll;
a commit made under an older generation is refused, as Kafka refuses it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

__all__ = ["ConsumerGroup"]


@dataclasses.dataclass(slots=True)
class _Member:
    topics: frozenset[str]
    pattern: re.Pattern[str] | None
    assignment: frozenset[TopicPartition] = frozenset()

    def wants(self, topic: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(topic) is not None
        return topic in self.topics


class ConsumerGroup:
    """One consumer group: its members, its generation and their assignments.

    Args:
        group_id: the group's id.
        topics: the cluster's topics now (pattern subscriptions are matched against them).
        partitions: how many partitions a topic has.
    """

    def __init__(
        self,
        group_id: str,
        topics: Callable[[], Iterable[str]],
        partitions: Callable[[str], int],
    ) -> None:
        self.group_id = group_id
        self.generation = 0
        self._topics = topics
        self._partitions = partitions
        self._members: dict[str, _Member] = {}

    @property
    def members(self) -> list[str]:
        return sorted(self._members)

    def join(
        self,
        member_id: str,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
    ) -> int:
        """``member_id`` joins (or changes its subscription): a new generation, returned."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        self._members[member_id] = _Member(frozenset(topics), compiled)
        return self.rebalance()

    def leave(self, member_id: str) -> None:
        """``member_id`` leaves the group; the others share its partitions."""
        if self._members.pop(member_id, None) is not None:
            self.rebalance()

    def rebalance(self) -> int:
        """Start a new generation and assign every subscribed partition to one member."""
        self.generation += 1
        shares: dict[str, set[TopicPartition]] = {m: set() for m in self._members}
        self._round_robin(shares)
        for member_id, member in self._members.items():
            member.assignment = frozenset(shares[member_id])
        return self.generation

    def _round_robin(self, shares: dict[str, set[TopicPartition]]) -> None:
        """aiokafka's default ``RoundRobinPartitionAssignor``: every partition of every
        subscribed topic, in (topic, partition) order, to the members in id order, taking
        turns and skipping members not subscribed to the topic."""
        ordered = sorted(self._members)
        if not ordered:
            return
        wanted = sorted(
            topic
            for topic in set(self._topics())
            if any(m.wants(topic) for m in self._members.values())
        )
        turn = 0
        for topic in wanted:
            for partition in range(self._partitions(topic)):
                for _ in range(len(ordered)):
                    member_id = ordered[turn % len(ordered)]
                    turn += 1
                    if self._members[member_id].wants(topic):
                        shares[member_id].add(TopicPartition(topic, partition))
                        break

    def assignment(self, member_id: str) -> frozenset[TopicPartition]:
        """The partitions ``member_id`` holds in the current generation (none: not a
        member)."""
        member = self._members.get(member_id)
        return member.assignment if member is not None else frozenset()

    def check_commit(self, member_id: str, generation: int) -> None:
        """A member may commit only in the current generation, and only while a member.

        Raises:
            CommitFailedError: the group rebalanced since (or the member left), as Kafka
                refuses such a commit; the partitions may belong to another member now.
        """
        if member_id not in self._members or generation != self.generation:
            raise CommitFailedError(
                f"commit refused for group {self.group_id!r}: generation {generation} of "
                f"member {member_id!r} is not the group's current one ({self.generation}); "
                "the group rebalanced and its partitions may have another owner now"
            )
