"""Availability: how the producer's metadata refreshes and the template's own questions open
and close the gate that refuses sends while no broker answers (no broker needed)."""

import asyncio

import pytest
from aiokafka.client import ConnectionGroup
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataResponse_v0

from kafkaboot.availability import Availability, ask_brokers
from kafkaboot.errors import SendOutcomeUnknownError

pytestmark = pytest.mark.asyncio


class Brokers:
    """Stands in for ``ask_brokers``: answers or not, and counts questions."""

    def __init__(self, answering):
        self.answering = answering
        self.asked = 0

    async def fetch(self):
        self.asked += 1
        if not self.answering:
            raise KafkaConnectionError("Unable to get cluster metadata over all known brokers")


def _answered(cluster):
    cluster.update_metadata(MetadataResponse_v0([(1, "127.0.0.1", 9092)], []))


async def _settled(availability):
    if availability.probing is not None:
        await availability.probing


async def test_a_failed_refresh_makes_it_ask_and_no_answer_refuses_sends():
    brokers, cluster = Brokers(answering=False), ClusterMetadata()
    availability = Availability(5.0, "k1:9092,k2:9092")
    availability.start(brokers.fetch, cluster)
    assert availability.unreachable_since is None

    cluster.failed_update(None)  # As aiokafka's client does when no broker answered it.
    await _settled(availability)

    assert brokers.asked == 1
    assert availability.unreachable_since is not None
    error = availability.refused("events", "k")
    assert not isinstance(error, SendOutcomeUnknownError)
    assert error.retriable
    assert "no broker of k1:9092,k2:9092" in str(error)
    assert "nothing was written" in str(error)
    await availability.stop()


async def test_a_failed_refresh_while_refusing_asks_nothing_more():
    # The template's question makes aiokafka refresh (its connects failed); if that failed
    # refresh asked again, the two would chase each other without pause.
    brokers, cluster = Brokers(answering=False), ClusterMetadata()
    availability = Availability(5.0, "k1:9092")
    availability.start(brokers.fetch, cluster)
    assert not await availability.ask(5.0)
    for _ in range(3):
        cluster.failed_update(None)
        await _settled(availability)
    assert brokers.asked == 1
    await availability.stop()


async def test_a_successful_refresh_accepts_sends_again():
    brokers, cluster = Brokers(answering=False), ClusterMetadata()
    availability = Availability(5.0, "k1:9092")
    availability.start(brokers.fetch, cluster)
    assert not await availability.ask(5.0)

    _answered(cluster)

    assert availability.unreachable_since is None
    await availability.stop()


async def test_a_readiness_timeout_is_no_verdict_but_a_question_with_the_full_timeout():
    class Slow(Brokers):
        async def fetch(self):
            self.asked += 1
            await asyncio.sleep(0.2)

    brokers, cluster = Slow(answering=True), ClusterMetadata()
    availability = Availability(5.0, "k1:9092")
    availability.start(brokers.fetch, cluster)

    assert not await availability.ask(0.05)  # Shorter than the broker takes.
    assert availability.unreachable_since is None
    await _settled(availability)
    assert brokers.asked == 2
    assert availability.unreachable_since is None
    await availability.stop()


async def test_after_stop_refreshes_are_ignored():
    brokers, cluster = Brokers(answering=False), ClusterMetadata()
    availability = Availability(5.0, "k1:9092")
    availability.start(brokers.fetch, cluster)
    await availability.stop()
    cluster.failed_update(None)
    assert availability.probing is None
    assert brokers.asked == 0


async def test_every_refresh_is_passed_on():
    # The partition breakers learn of refreshes here: aiokafka's request_update breaks
    # with a second watcher (it reads `is_done` of a concurrent Future while one is pending).
    brokers, cluster = Brokers(answering=True), ClusterMetadata()
    refreshes = []
    availability = Availability(5.0, "k1:9092")
    availability.start(brokers.fetch, cluster, lambda: refreshes.append(1))
    _answered(cluster)
    cluster.failed_update(None)
    await _settled(availability)
    _answered(cluster)
    assert len(refreshes) == 3
    await availability.stop()
    _answered(cluster)
    assert len(refreshes) == 3


class Client:
    """aiokafka's client as ask_brokers uses it: broker 1 refuses, 2 hangs (a produce
    request ahead of the question, say), 3 answers unless ``silent``."""

    def __init__(self, silent=False):
        self.cluster = ClusterMetadata()
        self.cluster.update_metadata(
            MetadataResponse_v0([(n, "127.0.0.1", 9090 + n) for n in (1, 2, 3)], [])
        )
        self.silent = silent
        self.groups = set()

    async def send(self, node, request, *, group):
        self.groups.add(group)
        if node == 1 or (node == 3 and self.silent):
            raise KafkaConnectionError(f"connection to {node} refused")
        if node == 2:
            await asyncio.Event().wait()
        return "answer"


async def test_one_broker_answering_is_enough_however_long_the_others_take():
    client = Client()
    await asyncio.wait_for(ask_brokers(client), 1)
    assert client.groups == {ConnectionGroup.COORDINATION}  # Not behind produce requests.


async def test_no_broker_answering_is_an_error():
    client = Client(silent=True)
    client.cluster.update_metadata(
        MetadataResponse_v0([(1, "127.0.0.1", 9091), (3, "127.0.0.1", 9093)], [])
    )
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(ask_brokers(client), 1)


async def test_an_answer_to_an_older_question_does_not_overturn_a_newer_verdict():
    """A slow question that fails after a newer one got through (a readiness check) must
    not close the gate again: the newer answer is the fresher truth."""
    release = asyncio.Event()
    calls = 0

    async def fetch():
        nonlocal calls
        calls += 1
        if calls == 1:  # The old question: fails, but only after the new one answered.
            await release.wait()
            raise KafkaConnectionError("Unable to get cluster metadata over all known brokers")

    availability = Availability(5.0, "k1:9092")
    availability.start(fetch, ClusterMetadata())
    old = asyncio.create_task(availability.ask(5.0))
    await asyncio.sleep(0)
    assert await availability.ask(1.5)  # The newer question: answered.
    release.set()
    assert not await old
    assert availability.unreachable_since is None, "the older failure closed the gate"
    await availability.stop()
