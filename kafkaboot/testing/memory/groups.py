"""Consumer groups of the in-memory Kafka: members, generations and who holds which
partition, as Kafka's group coordinator decides it with aiokafka's default assignor.

A member joining or leaving, or a new topic a pattern subscription matches, starts a
rebalance under the eager protocol aiokafka speaks: every member gives up all its
partitions and rejoins; only when all have rejoined does the group move to its next
generation and hand out the new assignments. Until then the old generation stands, so a
member may still commit what it handled (as a Java or aiokafka member does from its
revocation callback); a commit made under an older generation is refused, as Kafka
refuses it. A member that does not rejoin within its rebalance timeout is dropped.
"""

from __future__ import annotations

import asyncio
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
    rebalance_timeout: float
    assignment: frozenset[TopicPartition] = frozenset()
    rejoined: bool = True
    """Gave up its partitions for the rebalance under way (or there is none)."""

    def wants(self, topic: str) -> bool:
        if self.pattern is not None:  # From the topic's start, as aiokafka's ``match``.
            return self.pattern.match(topic) is not None
        return topic in self.topics


class ConsumerGroup:
    """One consumer group: its members, its generation and their assignments.

    Args:
        group_id: the group's id.
        topics: the cluster's topics now (pattern subscriptions are matched against them).
        partitions: how many partitions a topic has.
        changed: told of every step, so that members waiting for one wake up.
    """

    def __init__(
        self,
        group_id: str,
        topics: Callable[[], Iterable[str]],
        partitions: Callable[[str], int],
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.group_id = group_id
        self.generation = 0
        self.rebalancing = False
        self._topics = topics
        self._partitions = partitions
        self._changed = changed
        self._members: dict[str, _Member] = {}
        self._subscribed: frozenset[tuple[str, int]] = frozenset()
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def members(self) -> list[str]:
        return sorted(self._members)

    @property
    def state(self) -> str:
        """Kafka's name for the group's state."""
        if not self._members:
            return "Empty"
        return "PreparingRebalance" if self.rebalancing else "Stable"

    def join(
        self,
        member_id: str,
        topics: Iterable[str] = (),
        pattern: str | re.Pattern[str] | None = None,
        *,
        rebalance_timeout: float = 300.0,
    ) -> None:
        """``member_id`` joins (or changes its subscription): a rebalance starts."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        known = member_id in self._members
        self._members[member_id] = _Member(frozenset(topics), compiled, rebalance_timeout)
        # A new member has nothing to give up; one that changes its subscription does.
        self._start_rebalance(but=None if known else member_id)

    def leave(self, member_id: str) -> None:
        """``member_id`` leaves the group; the others share its partitions."""
        if self._members.pop(member_id, None) is not None:
            if self._members:
                self._start_rebalance()
            else:
                self._complete()

    def metadata_changed(self) -> None:
        """Topics or partitions changed: rebalance if what the members subscribe to did."""
        if self._members and self._wanted() != self._subscribed:
            self._start_rebalance()

    def needs_rejoin(self, member_id: str) -> bool:
        """Whether ``member_id`` must give up its partitions and rejoin now."""
        member = self._members.get(member_id)
        return member is not None and self.rebalancing and not member.rejoined

    def rejoin(self, member_id: str) -> None:
        """``member_id`` has given up its partitions; the rebalance completes when the last
        member has."""
        member = self._members.get(member_id)
        if member is None:
            return
        member.rejoined = True
        member.assignment = frozenset()
        if all(m.rejoined for m in self._members.values()):
            self._complete()

    def is_member(self, member_id: str) -> bool:
        return member_id in self._members

    def assignment(self, member_id: str) -> frozenset[TopicPartition]:
        """The partitions ``member_id`` holds in the current generation (none: not a
        member, or a rebalance is under way)."""
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

    # -- the rebalance --------------------------------------------------------------------

    def _start_rebalance(self, but: str | None = None) -> None:
        for member_id, member in self._members.items():
            if member_id != but:  # Every member rejoins, holding partitions or not.
                member.rejoined = False
        self.rebalancing = True
        if all(m.rejoined for m in self._members.values()):
            self._complete()
            return
        self._arm_deadline()
        self._changed()

    def _arm_deadline(self) -> None:
        """Drop the members that have not rejoined within the longest rebalance timeout,
        as Kafka's coordinator does."""
        if self._deadline is not None:
            self._deadline.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # Driven by hand (a unit test): members rejoin or leave explicitly.
        timeout = max(m.rebalance_timeout for m in self._members.values())
        self._deadline = loop.call_later(timeout, self._drop_stragglers)

    def _drop_stragglers(self) -> None:
        self._deadline = None
        if not self.rebalancing:
            return
        for member_id in [m for m, member in self._members.items() if not member.rejoined]:
            del self._members[member_id]
        self._complete()

    def _complete(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.generation += 1
        self.rebalancing = False
        shares: dict[str, set[TopicPartition]] = {m: set() for m in self._members}
        self._subscribed = self._wanted()
        self._round_robin(shares)
        for member_id, member in self._members.items():
            member.assignment = frozenset(shares[member_id])
            member.rejoined = True
        self._changed()

    def _wanted(self) -> frozenset[tuple[str, int]]:
        """The subscribed topics and their partition counts: a change in either rebalances."""
        return frozenset(
            (topic, self._partitions(topic))
            for topic in set(self._topics())
            if any(m.wants(topic) for m in self._members.values())
        )

    def _round_robin(self, shares: dict[str, set[TopicPartition]]) -> None:
        """aiokafka's default ``RoundRobinPartitionAssignor``: every partition of every
        subscribed topic, in (topic, partition) order, to the members in id order, taking
        turns and skipping members not subscribed to the topic."""
        ordered = sorted(self._members)
        if not ordered:
            return
        turn = 0
        for topic, partitions in sorted(self._subscribed):
            for partition in range(partitions):
                for _ in range(len(ordered)):
                    member_id = ordered[turn % len(ordered)]
                    turn += 1
                    if self._members[member_id].wants(topic):
                        shares[member_id].add(TopicPartition(topic, partition))
                        break
