"""The in-memory cluster's storage keeps Kafka's rules: offsets, key partitioning, unknown
topics, commits per group, and one cluster per name in the process."""

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from kafkaboot.testing.memory import (
    InMemoryKafka,
    TopicExistsError,
    UnknownTopicError,
    cluster_for,
)


@pytest.fixture
def kafka():
    with InMemoryKafka() as cluster:
        yield cluster


def test_offsets_start_at_zero_per_partition_and_never_repeat(kafka):
    kafka.create_topic("t", partitions=2)
    placed = [kafka.append("t", None, b"v%d" % i, partition=i % 2) for i in range(5)]
    assert [(r.partition, r.offset) for r in placed] == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert kafka.end_offset(TopicPartition("t", 0)) == 3
    assert [r.value for r in kafka.read(TopicPartition("t", 0), 1)] == [b"v2", b"v4"]
    assert kafka.read(TopicPartition("t", 0), 0, max_records=1)[0].value == b"v0"


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_a_key_lands_where_a_java_client_would_put_it(key, partitions):
    with InMemoryKafka(default_partitions=partitions) as kafka:
        expected = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
        assert kafka.partition_for("t", key) == expected
        assert kafka.append("t", key, b"v").partition == expected


def test_an_unknown_topic_is_an_error_without_auto_creation():
    with InMemoryKafka(auto_create_topics=False) as kafka:
        with pytest.raises(UnknownTopicError, match="topic 'nope' does not exist"):
            kafka.append("nope", None, b"v")
        kafka.create_topic("there", partitions=3)
        assert kafka.partitions("there") == 3
        with pytest.raises(TopicExistsError):
            kafka.create_topic("there")
        with pytest.raises(ValueError, match="partitions 0-2, not 3"):
            kafka.append("there", None, b"v", partition=3)


def test_a_record_keeps_its_timestamp_and_headers_and_is_found_by_time(kafka):
    kafka.append("t", b"k", b"a", timestamp_ms=1_000, headers=[("trace", b"1")])
    kafka.append("t", b"k", b"b", timestamp_ms=2_000)
    first, second = kafka.read(TopicPartition("t", 0), 0)
    assert second.value == b"b"
    assert (first.timestamp, first.headers) == (1_000, (("trace", b"1"),))
    assert kafka.offset_for_time(TopicPartition("t", 0), 1_500).offset == 1
    assert kafka.offset_for_time(TopicPartition("t", 0), 3_000) is None


def test_commits_belong_to_their_group_and_are_not_checked_against_the_log(kafka):
    tp = TopicPartition("t", 0)
    kafka.append("t", None, b"v")
    kafka.commit("billing", {tp: 1})
    assert kafka.committed("billing") == {tp: 1}
    assert kafka.committed("other") == {}
    kafka.commit("billing", {tp: 2})  # Past the end: Kafka takes it too.
    with pytest.raises(ValueError, match="offsets are 0 or more"):
        kafka.commit("billing", {tp: -1})


def test_the_bootstrap_string_finds_the_cluster_until_it_is_closed():
    kafka = InMemoryKafka("named")
    assert kafka.bootstrap_servers == "memory://named"
    assert cluster_for("memory://named") is kafka
    with pytest.raises(ValueError, match="exists already"):
        InMemoryKafka("named")
    kafka.close()
    with pytest.raises(LookupError, match="no in-memory Kafka named 'named' in this process"):
        cluster_for("memory://named")
