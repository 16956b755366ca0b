"""The in-memory producer's fencing follows aiokafka's transaction manager: a producer fenced
since it started begins its next transaction locally, learns of the fence from the failed
futures of that transaction's sends, and then refuses to begin or end a transaction."""

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalOperation, ProducerFenced

from kafkaboot.testing.memory import InMemoryKafka
from kafkaboot.testing.memory.consumer import MemoryConsumer
from kafkaboot.testing.memory.producer import MemoryProducer

pytestmark = pytest.mark.asyncio

T0 = TopicPartition("t", 0)


@pytest.fixture
def kafka():
    with InMemoryKafka() as cluster:
        cluster.create_topic("t", 1)
        yield cluster


async def _producer(kafka, transactional_id="tx"):
    producer = MemoryProducer(
        bootstrap_servers=kafka.bootstrap_servers, transactional_id=transactional_id
    )
    await producer.start()
    return producer


async def test_a_fenced_producer_begins_locally_and_its_sends_futures_fail(kafka):
    zombie = await _producer(kafka)
    successor = await _producer(kafka)
    await zombie.begin_transaction()  # Local, as aiokafka's: no error yet.
    first = await zombie.send("t", b"zombie-1")
    second = await zombie.send("t", b"zombie-2")  # Queued before the broker's answer.
    assert not zombie._txn_manager.is_fatal_error()
    for delivery in (first, second):
        with pytest.raises(ProducerFenced):
            await delivery
    assert zombie._txn_manager.is_fatal_error()
    with pytest.raises(IllegalOperation, match="not in transaction"):
        await zombie.send("t", b"after the answer")
    for end in (zombie.commit_transaction, zombie.abort_transaction, zombie.begin_transaction):
        with pytest.raises(AssertionError, match="FATAL_ERROR"):
            await end()

    async with successor.transaction():  # The zombie's transaction did not disturb it.
        await successor.send("t", b"successor")
    reader = MemoryConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    reader.assign([T0])
    await reader.start()
    assert [r.value for r in (await reader.getmany(timeout_ms=10))[T0]] == [b"successor"]
    for client in (reader, zombie, successor):
        await client.stop()


async def test_a_fence_during_a_transaction_fails_its_later_sends(kafka):
    zombie = await _producer(kafka)
    await zombie.begin_transaction()
    await (await zombie.send("t", b"before"))
    successor = await _producer(kafka)  # Aborts the zombie's open transaction.
    with pytest.raises(ProducerFenced):
        await (await zombie.send("t", b"after"))
    assert kafka.end_offset(T0) == 2  # "before" and the abort marker; "after" never written.
    await asyncio.gather(zombie.stop(), successor.stop())


async def test_a_fenced_producer_ends_a_transaction_that_sent_nothing_locally(kafka):
    zombie = await _producer(kafka)
    successor = await _producer(kafka)
    await zombie.begin_transaction()
    await zombie.commit_transaction()  # aiokafka sends no EndTxn for an empty transaction.
    await zombie.begin_transaction()
    with pytest.raises(ProducerFenced):  # Offsets reach the broker: it refuses them.
        await zombie.send_offsets_to_transaction({T0: 0}, "g")
    assert kafka.committed("g") == {}
    await asyncio.gather(zombie.stop(), successor.stop())
