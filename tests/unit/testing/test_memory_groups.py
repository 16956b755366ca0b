"""Consumer groups of the in-memory Kafka: assignments as aiokafka's default assignor makes
them, a new generation once every member has rejoined after a join or leave, commits of
the old generation taken until then and refused after."""

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from aiokafka.errors import CommitFailedError
from hypothesis import given
from hypothesis import strategies as st

from kafkaboot.testing.memory.groups import ConsumerGroup

TOPICS = {"a": 3, "b": 2, "c": 1}


def _group():
    return ConsumerGroup("g", topics=lambda: TOPICS, partitions=TOPICS.__getitem__)


def _rejoin_all(group):
    """What each member's own task does on its next step: give up its partitions."""
    for member in group.members:
        if group.needs_rejoin(member):
            group.rejoin(member)


class _Cluster:
    def partitions_for_topic(self, topic):
        return set(range(TOPICS[topic])) if topic in TOPICS else None


@given(
    st.dictionaries(
        st.text("xyz", min_size=1, max_size=3),
        st.sets(st.sampled_from(sorted(TOPICS)), min_size=1),
        min_size=1,
        max_size=5,
    )
)
def test_assignments_are_those_of_aiokafkas_round_robin_assignor(subscriptions):
    group = _group()
    for member, topics in subscriptions.items():
        group.join(member, topics)
        _rejoin_all(group)
    members = {
        m: ConsumerProtocolMemberMetadata(0, sorted(t), b"") for m, t in subscriptions.items()
    }
    expected = RoundRobinPartitionAssignor.assign(_Cluster(), members)
    for member in subscriptions:
        wanted = {
            TopicPartition(topic, p)
            for topic, partitions in expected[member].assignment
            for p in partitions
        }
        assert group.assignment(member) == wanted


def test_a_join_waits_for_every_member_to_give_up_its_partitions_first():
    group = _group()
    group.join("m1", ["a"])
    assert (group.generation, len(group.assignment("m1"))) == (1, 3)
    group.join("m2", ["a"])
    # Eager protocol: nobody holds anything new until m1 has rejoined.
    assert (group.rebalancing, group.needs_rejoin("m1"), group.needs_rejoin("m2")) == (
        True,
        True,
        False,
    )
    assert (group.generation, group.assignment("m2")) == (1, frozenset())
    group.rejoin("m1")
    assert (group.rebalancing, group.generation) == (False, 2)
    assert {len(group.assignment(m)) for m in ("m1", "m2")} == {1, 2}
    group.leave("m1")
    _rejoin_all(group)
    assert group.generation == 3
    assert group.assignment("m2") == {TopicPartition("a", p) for p in range(3)}
    assert group.assignment("m1") == frozenset()


def test_a_new_topic_matching_a_pattern_rebalances_the_group():
    topics = {"a": 1}
    group = ConsumerGroup("g", topics=lambda: topics, partitions=topics.__getitem__)
    group.join("m1", pattern="a|b")
    assert group.assignment("m1") == {TopicPartition("a", 0)}
    topics["c"] = 1
    group.metadata_changed()
    assert not group.rebalancing  # c does not match.
    topics["b"] = 2
    group.metadata_changed()
    _rejoin_all(group)
    assert {tp.topic for tp in group.assignment("m1")} == {"a", "b"}


def test_commits_of_the_old_generation_count_until_the_rebalance_completes():
    group = _group()
    group.join("m1", ["a"])
    first = group.generation
    group.join("m2", ["a"])
    group.check_commit("m1", first)  # From its revocation callback: still valid.
    group.rejoin("m1")
    with pytest.raises(CommitFailedError, match="generation 1 of member 'm1'"):
        group.check_commit("m1", first)
    group.leave("m2")
    with pytest.raises(CommitFailedError):
        group.check_commit("m2", group.generation)


@pytest.mark.asyncio
async def test_a_member_that_does_not_rejoin_in_time_is_dropped():
    group = _group()
    group.join("slow", ["a"], rebalance_timeout=0.01)
    group.join("quick", ["a"], rebalance_timeout=0.01)
    assert group.rebalancing
    while group.rebalancing:
        await asyncio.sleep(0.005)
    assert group.members == ["quick"]
    assert len(group.assignment("quick")) == 3


def test_a_pattern_matches_from_the_topics_start_as_aiokafkas_does():
    topics = {"orders": 1, "orders-dlt": 1, "my-orders": 1}
    group = ConsumerGroup("g", topics=lambda: topics, partitions=topics.__getitem__)
    group.join("m1", pattern="orders")
    assert {tp.topic for tp in group.assignment("m1")} == {"orders", "orders-dlt"}


def test_more_partitions_rebalance_the_group():
    topics = {"a": 1}
    group = ConsumerGroup("g", topics=lambda: topics, partitions=topics.__getitem__)
    group.join("m1", ["a"])
    topics["a"] = 3
    group.metadata_changed()
    assert group.needs_rejoin("m1")
    group.rejoin("m1")
    assert len(group.assignment("m1")) == 3


def test_every_member_rejoins_even_one_holding_nothing_and_a_resubscription_too():
    group = _group()
    group.join("m1", ["c"])  # One partition: m1 holds it.
    group.join("m2", ["c"])
    _rejoin_all(group)
    empty = next(m for m in ("m1", "m2") if not group.assignment(m))
    group.join("m3", ["a"])
    assert group.needs_rejoin(empty)
    _rejoin_all(group)
    group.join("m3", ["b"])  # Its subscription changed: it gives up what it holds.
    assert group.needs_rejoin("m3")
