"""Consumer groups of the in-memory Kafka: assignments as aiokafka's default assignor makes
them, a new generation on every join and leave, stale commits refused."""

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


def test_every_join_and_leave_is_a_new_generation_and_the_others_take_the_share():
    group = _group()
    assert group.join("m1", ["a"]) == 1
    assert len(group.assignment("m1")) == 3
    assert group.join("m2", ["a"]) == 2
    assert {len(group.assignment(m)) for m in ("m1", "m2")} == {1, 2}
    group.leave("m1")
    assert group.generation == 3
    assert group.assignment("m2") == {TopicPartition("a", p) for p in range(3)}
    assert group.assignment("m1") == frozenset()


def test_a_pattern_subscription_takes_every_matching_topic():
    group = _group()
    group.join("m1", pattern="a|b")
    assert {tp.topic for tp in group.assignment("m1")} == {"a", "b"}


def test_a_commit_from_an_older_generation_or_a_former_member_is_refused():
    group = _group()
    first = group.join("m1", ["a"])
    group.check_commit("m1", first)
    group.join("m2", ["a"])
    with pytest.raises(CommitFailedError, match="generation 1 of member 'm1'"):
        group.check_commit("m1", first)
    group.leave("m2")
    with pytest.raises(CommitFailedError):
        group.check_commit("m2", group.generation)
