"""KafkaBootApplication.readiness, over real listener containers and poll loops whose
consumers stand in for aiokafka's: when a consumer counts as doing its work."""

import asyncio
import time
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from dependency_injector import providers

from kafkaboot import load_settings
from kafkaboot.application import KafkaBootApplication
from kafkaboot.listener.registry import ListenerRegistry

pytestmark = pytest.mark.asyncio
TOPIC = "orders"


class GroupConsumer:
    """What a group member's poll loop sees of aiokafka: the coordinator it found (or
    lost), and polls that return nothing."""

    def __init__(self, **kwargs):
        self._coordinator = SimpleNamespace(coordinator_id=1)
        self.listener = None

    def subscribe(self, topics=(), pattern=None, listener=None):
        self.listener = listener

    async def start(self):
        pass

    async def stop(self):
        pass

    async def getmany(self, *partitions, timeout_ms=0):
        await asyncio.sleep(0.01)
        return {}

    def assignment(self):
        return set()

    def pause(self, *partitions):
        pass

    def resume(self, *partitions):
        pass

    def paused(self):
        return set()

    async def commit(self, offsets=None):
        pass


class Template:
    started = True

    async def broker_reachable(self, timeout):
        return True


async def _application(monkeypatch, concurrency=1):
    monkeypatch.setattr("kafkaboot.clients.AIOKafkaConsumer", GroupConsumer)
    settings = load_settings(
        environ={}, overrides={"kafka": {"listener": {"concurrency": concurrency}}}
    )
    registry = ListenerRegistry(settings, environ={})

    async def handle(value: bytes) -> None:
        pass

    registry.listener(TOPIC, group_id="g", id="orders")(handle)
    application = KafkaBootApplication(settings=settings)
    application.container.registry.override(providers.Object(registry))
    application.container.template.override(providers.Object(Template()))
    application.started = True
    await registry.start()
    return application, registry.get("orders")


async def _join(worker, partitions=()):
    """aiokafka completes a join (assigning ``partitions``); then the poll loop polls."""
    await worker.assignment.on_partitions_assigned(set(partitions))
    joined = time.time()
    deadline = time.monotonic() + 5
    while worker.last_poll is None or worker.last_poll <= joined:
        assert time.monotonic() < deadline, "the poll loop did not poll after the join"
        await asyncio.sleep(0.01)


async def test_a_consumer_assigned_no_partition_is_ready_once_it_polls(monkeypatch):
    """More consumers than partitions: the one left without a partition is in its group and
    polling, which is all an instance can do; it must not hold the service out of service."""
    application, container = await _application(monkeypatch, concurrency=2)
    try:
        first, second = container.workers
        await _join(first, {TopicPartition(TOPIC, 0)})
        await _join(second)
        ready, details = await application.readiness()
        assert details["listeners"]["orders"] == {
            "state": "running",
            "partitions": 1,
            "consumers": 2,
            "consumers_in_group": 2,
            "recent_poll": True,
        }
        assert ready
    finally:
        await container.stop()


async def test_an_instance_with_no_partition_at_all_is_ready(monkeypatch):
    application, container = await _application(monkeypatch)
    try:
        [worker] = container.workers
        await _join(worker)
        ready, details = await application.readiness()
        assert details["listeners"]["orders"]["partitions"] == 0
        assert ready
    finally:
        await container.stop()


async def test_a_consumer_still_joining_its_group_is_not_ready(monkeypatch):
    """Polls that return while the first join is under way do not count."""
    application, container = await _application(monkeypatch)
    try:
        [worker] = container.workers
        deadline = time.monotonic() + 5
        while worker.last_poll is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        ready, details = await application.readiness()
        assert not ready
        assert details["listeners"]["orders"]["consumers_in_group"] == 0
    finally:
        await container.stop()


async def test_a_consumer_whose_coordinator_is_unreachable_is_not_ready(monkeypatch):
    application, container = await _application(monkeypatch)
    try:
        [worker] = container.workers
        await _join(worker)
        assert (await application.readiness())[0]
        worker.consumer._coordinator.coordinator_id = None  # As aiokafka marks it dead.
        ready, details = await application.readiness()
        assert not ready
        assert details["listeners"]["orders"]["consumers_in_group"] == 0
    finally:
        await container.stop()


async def test_a_rejoin_is_not_ready_until_it_completes_and_a_poll_follows(monkeypatch):
    application, container = await _application(monkeypatch)
    try:
        [worker] = container.workers
        await _join(worker)
        await worker.assignment.on_partitions_revoked(set())
        assert not (await application.readiness())[0]
        await _join(worker)
        assert (await application.readiness())[0]
    finally:
        await container.stop()
