"""Transactional KafkaTemplates: ids per process slot, and concurrent blocks on one template."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafkaboot import clients, load_settings
from kafkaboot.errors import KafkaSendError
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, read_all, unique

pytestmark = pytest.mark.asyncio


def settings_for(bootstrap, **producer):
    return load_settings(
        environ={}, overrides={"kafka": {"bootstrap-servers": bootstrap, "producer": producer}}
    )


def worker_template(monkeypatch, settings, worker):
    """A template built as in worker ``worker`` of `kafkaboot run --workers N` on this host."""
    monkeypatch.setenv("KAFKABOOT_WORKER_INDEX", str(worker))
    return KafkaTemplate(settings)


async def test_worker_processes_of_one_service_do_not_fence_each_other(
    kafka_bootstrap, monkeypatch
):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(kafka_bootstrap, **{"transaction-id-prefix": unique("tx-")})
    first = worker_template(monkeypatch, settings, 0)
    second = worker_template(monkeypatch, settings, 1)
    both_open = asyncio.Barrier(2)

    async def transactions(template, name):
        for round_ in range(3):
            async with template.transaction():
                await template.send(topic, f"{name}-{round_}")
                await both_open.wait()  # Each round, both transactions are open at once.

    async with first, second:
        await asyncio.wait_for(
            asyncio.gather(transactions(first, "a"), transactions(second, "b")), 60
        )
    records = await read_all(kafka_bootstrap, topic, 6, "read_committed")
    assert sorted(r.value.decode() for r in records) == [
        "a-0",
        "a-1",
        "a-2",
        "b-0",
        "b-1",
        "b-2",
    ]


async def test_a_restarted_worker_still_fences_its_predecessor(kafka_bootstrap, monkeypatch):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(kafka_bootstrap, **{"transaction-id-prefix": unique("tx-")})
    zombie = worker_template(monkeypatch, settings, 3)
    restarted = worker_template(monkeypatch, settings, 3)
    async with zombie, restarted:  # Same host, same worker slot: same transactional id.
        with pytest.raises(KafkaSendError, match="fences this one"):
            async with zombie.transaction():
                await zombie.send(topic, "zombie")
        async with restarted.transaction():
            await restarted.send(topic, "restarted")
    records = await read_all(kafka_bootstrap, topic, 1, "read_committed", wait=3)
    assert [r.value for r in records] == [b"restarted"]


class ObservedLock(asyncio.Lock):
    """Tells when a caller has to queue behind the transaction in progress."""

    def __init__(self):
        super().__init__()
        self.queued = asyncio.Event()

    async def acquire(self):
        if self.locked():
            self.queued.set()
        return await super().acquire()


async def test_a_transaction_queued_behind_a_failing_one_succeeds_and_no_producer_leaks(
    kafka_bootstrap, monkeypatch
):
    topic = unique("small")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "200"})])
    await admin.close()
    created = []

    class TrackedProducer(AIOKafkaProducer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            created.append(self)

    # Every producer the template makes, renewals too, comes from kafkaboot.clients.
    monkeypatch.setattr(clients, "AIOKafkaProducer", TrackedProducer)
    settings = settings_for(
        kafka_bootstrap, **{"transaction-id-prefix": unique("tx-"), "delivery-timeout": "10s"}
    )
    template = KafkaTemplate(settings)
    template._transaction_lock = lock = ObservedLock()

    async def failing():
        async with template.transaction():
            await template.send(topic, "x" * 1000)  # The broker refuses it: a renewal follows.
            await lock.queued.wait()

    async def queued():
        async with template.transaction():
            await template.send(topic, "queued")

    async with template:
        outcomes = await asyncio.wait_for(
            asyncio.gather(failing(), queued(), return_exceptions=True), 60
        )
        assert isinstance(outcomes[0], KafkaSendError)
        assert outcomes[1] is None, f"the queued transaction failed: {outcomes[1]!r}"
        current = template._producer
        replaced = [p for p in created if p is not current]
        assert replaced, "the failing transaction did not renew the producer"
        assert [p._closed for p in replaced] == [True] * len(replaced), "a producer leaked"
    records = await read_all(kafka_bootstrap, topic, 1, "read_committed", wait=3)
    assert [r.value for r in records] == [b"queued"]
