"""Partition health: the per-partition breaker opens on a stuck batch or an unreachable
leader, lets one trial through when nothing of the partition is left in aiokafka, and
closes on a confirmed send or a leader that answers again (aiokafka's own metadata,
accumulator and partitioner; no broker needed)."""

import time

import pytest
import pytest_asyncio
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.structs import TopicPartition

from kafkaboot.errors import PartitionUnavailableError, SendOutcomeUnknownError
from kafkaboot.partition_health import PartitionHealth

pytestmark = pytest.mark.asyncio

TOPIC = "events"
TIMEOUT = 5.0


def _metadata(cluster, leaders):
    """``leaders[p]`` leads partition p of TOPIC (-1: no leader) on brokers 1-3."""
    brokers = [(n, "127.0.0.1", 9090 + n) for n in (1, 2, 3)]
    partitions = [(0, p, leader, [1, 2, 3], [1, 2, 3]) for p, leader in enumerate(leaders)]
    cluster.update_metadata(MetadataResponse_v0(brokers, [(0, TOPIC, partitions)]))


class Brokers:
    """Stands in for aiokafka's ``client.ready``: the brokers in ``down`` refuse."""

    def __init__(self):
        self.down = set()
        self.asked = []

    async def ready(self, node):
        self.asked.append(node)
        if node in self.down:
            raise KafkaConnectionError(f"connection to {node} refused")
        return True


@pytest_asyncio.fixture
async def parts():
    cluster = ClusterMetadata()
    _metadata(cluster, [1, 2, 3])
    accumulator = MessageAccumulator(cluster, 16384, 0, 30)
    brokers = Brokers()
    health = PartitionHealth(TIMEOUT)
    health.start(cluster, DefaultPartitioner(), accumulator, brokers.ready)
    yield health, cluster, accumulator, brokers
    await health.stop()


async def _queue(accumulator, partition):
    """A record queued in aiokafka for ``partition``: its delivery future."""
    return await accumulator.add_message(TopicPartition(TOPIC, partition), b"k", b"v", 1)


def _sent(accumulator):
    """aiokafka's sender takes every queued batch (now in flight); the batches by partition."""
    drained, _ = accumulator.drain_by_nodes(ignore_nodes=set())
    return {tp: batch for batches in drained.values() for tp, batch in batches.items()}


def _stuck(health):
    """A sweep as if the unavailable timeout had passed since the batches were made."""
    health.sweep(time.monotonic() + TIMEOUT + 1, stuck_after=TIMEOUT)


async def test_a_batch_unconfirmed_for_the_timeout_opens_its_partition_only(parts):
    health, _, accumulator, _ = parts
    await _queue(accumulator, 0)
    health.sweep(time.monotonic(), stuck_after=TIMEOUT)
    assert health.open == {}  # Not stuck yet.
    assert TOPIC not in health.topics

    _stuck(health)

    assert set(health.open) == {TopicPartition(TOPIC, 0)}
    assert TOPIC in health.topics
    assert health.admit(TOPIC, 1, None, "k") == 1
    with pytest.raises(PartitionUnavailableError) as refused:
        health.admit(TOPIC, 0, None, "k")
    error = refused.value
    assert not isinstance(error, SendOutcomeUnknownError)
    assert error.retriable
    assert (error.topic, error.partition, error.leader) == (TOPIC, 0, 1)
    assert "partition 0" in str(error)
    assert "leader broker 1" in str(error)
    assert "nothing was written" in str(error)


async def test_an_unconfirmed_batch_in_flight_counts_too(parts):
    health, _, accumulator, _ = parts
    await _queue(accumulator, 2)
    _sent(accumulator)  # Sent to the broker, never answered.
    _stuck(health)
    assert set(health.open) == {TopicPartition(TOPIC, 2)}


async def test_a_confirmed_send_closes_the_breaker(parts):
    health, _, accumulator, _ = parts
    delivery = await _queue(accumulator, 0)
    batches = _sent(accumulator)
    _stuck(health)
    assert TopicPartition(TOPIC, 0) in health.open

    batches[TopicPartition(TOPIC, 0)].done(base_offset=7)  # The broker wrote it after all.
    health.delivered(delivery)

    assert health.open == {}
    assert health.topics == set()
    assert health.admit(TOPIC, 0, None, "k") == 0


async def test_a_failed_send_does_not_close_the_breaker(parts):
    health, _, accumulator, _ = parts
    delivery = await _queue(accumulator, 0)
    batches = _sent(accumulator)
    _stuck(health)
    batches[TopicPartition(TOPIC, 0)].failure(KafkaConnectionError("gone"))
    health.delivered(delivery)
    assert TopicPartition(TOPIC, 0) in health.open


async def test_half_open_lets_one_send_through_once_nothing_is_left_in_aiokafka(parts):
    health, _, accumulator, _ = parts
    tp = TopicPartition(TOPIC, 0)
    delivery = await _queue(accumulator, 0)
    batches = _sent(accumulator)
    health.opened(tp, "unconfirmed", 1, now=time.monotonic() - TIMEOUT - 1)  # Wait is over.
    health.sweep(time.monotonic(), stuck_after=TIMEOUT)
    with pytest.raises(PartitionUnavailableError):
        health.admit(TOPIC, 0, None, "k")  # Its batch is still retried by aiokafka.

    batches[tp].failure(KafkaConnectionError("gone"))
    health.delivered(delivery)
    health.sweep(time.monotonic(), stuck_after=TIMEOUT)

    assert health.admit(TOPIC, 0, None, "trial") == 0  # Half-open: one goes through.
    with pytest.raises(PartitionUnavailableError):
        health.admit(TOPIC, 0, None, "next")  # The others wait for the trial.
    trial = await _queue(accumulator, 0)
    _sent(accumulator)[tp].done(base_offset=8)
    health.delivered(trial)
    assert health.open == {}


async def test_an_unreachable_leader_opens_its_partitions_and_closes_them_when_it_answers(parts):
    health, _, _, brokers = parts
    brokers.down = {2}
    await health.probe()

    assert set(health.open) == {TopicPartition(TOPIC, 1)}
    with pytest.raises(PartitionUnavailableError) as refused:
        health.admit(TOPIC, 1, None, "k")
    assert "its leader, broker 2, does not answer" in str(refused.value)
    assert refused.value.leader == 2
    assert health.admit(TOPIC, 2, None, "k") == 2

    brokers.down = set()
    await health.probe()
    assert health.open == {}


async def test_an_unreachable_leader_gets_no_trial_send(parts):
    health, _, _, _ = parts
    health.opened(TopicPartition(TOPIC, 1), "unreachable", 2, now=time.monotonic() - 60)
    with pytest.raises(PartitionUnavailableError):
        health.admit(TOPIC, 1, None, "k")


async def test_a_new_leader_that_answers_closes_the_breaker(parts):
    health, cluster, _, brokers = parts
    brokers.down = {2}
    await health.probe()
    assert TopicPartition(TOPIC, 1) in health.open

    _metadata(cluster, [1, 3, 3])  # The controller moved partition 1 to broker 3.
    await health.probe()
    assert health.open == {}


async def test_a_partition_without_a_leader_is_refused(parts):
    health, cluster, _, _ = parts
    _metadata(cluster, [1, 2, -1])
    await health.probe()
    with pytest.raises(PartitionUnavailableError) as refused:
        health.admit(TOPIC, 2, None, "k")
    assert "it has no leader" in str(refused.value)


async def test_a_stuck_partition_whose_leader_answers_stays_open(parts):
    # Too few in-sync replicas: the leader answers, but the partition takes no writes.
    health, _, accumulator, _ = parts
    await _queue(accumulator, 0)
    _stuck(health)
    await health.probe()
    assert TopicPartition(TOPIC, 0) in health.open


async def test_keyed_sends_go_where_the_producer_would_send_them(parts):
    health, _, _, _ = parts
    health.opened(TopicPartition(TOPIC, 2), "unreachable", 3, time.monotonic())
    partitioner = DefaultPartitioner()
    keys = [f"site-{n}".encode() for n in range(30)]
    for key in keys:
        where = partitioner(key, [0, 1, 2], [0, 1, 2])
        if where == 2:
            with pytest.raises(PartitionUnavailableError):
                health.admit(TOPIC, None, key, key)
        else:
            assert health.admit(TOPIC, None, key, key) == where
    assert {partitioner(k, [0, 1, 2], [0, 1, 2]) for k in keys} == {0, 1, 2}


async def test_sends_without_a_key_avoid_open_partitions(parts):
    health, _, _, _ = parts
    health.opened(TopicPartition(TOPIC, 0), "unreachable", 1, time.monotonic())
    health.opened(TopicPartition(TOPIC, 1), "unreachable", 2, time.monotonic())
    assert {health.admit(TOPIC, None, None, None) for _ in range(30)} == {2}


async def test_without_metadata_for_the_topic_the_producer_chooses_as_always(parts):
    health, _, _, _ = parts
    health.opened(TopicPartition("elsewhere", 0), "unreachable", 1, time.monotonic())
    assert health.admit("elsewhere", None, b"k", "k") is None
