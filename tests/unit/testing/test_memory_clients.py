"""The in-memory Kafka's clients behave as aiokafka's do against a broker: the producer's
send contract, consumer positions, seeks and pauses, groups that rebalance with callbacks
and refuse stale commits, transactions under read_committed, and admin answers in
aiokafka's shapes. Whatever they cannot do honestly, they refuse by name."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalOperation,
    IllegalStateError,
    KafkaConnectionError,
    NoOffsetForPartitionError,
    ProducerFenced,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import DefaultPartitioner

from kafkaboot import clients
from kafkaboot.testing.memory import InMemoryKafka
from kafkaboot.testing.memory.admin import MemoryAdmin
from kafkaboot.testing.memory.consumer import MemoryConsumer
from kafkaboot.testing.memory.errors import NotSupportedInMemory
from kafkaboot.testing.memory.producer import MemoryProducer

T0 = TopicPartition("t", 0)


@pytest.fixture
def kafka():
    with InMemoryKafka() as cluster:
        yield cluster


async def _started(client):
    await client.start()
    return client


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (MemoryConsumer, AIOKafkaConsumer),
        (MemoryProducer, AIOKafkaProducer),
        (MemoryAdmin, AIOKafkaAdminClient),
    ],
)
def test_every_public_method_of_the_aiokafka_client_is_its_own(ours, theirs):
    # An inherited one would reach for aiokafka's connections, which it does not have.
    inherited = [
        name
        for name, value in vars(theirs).items()
        if callable(value) and not name.startswith("_") and getattr(ours, name) is value
    ]
    assert inherited == []
    assert issubclass(ours, theirs)


def test_the_client_factory_picks_them_for_memory_bootstrap_servers(kafka):
    bootstrap = kafka.bootstrap_servers
    assert isinstance(clients.consumer(bootstrap_servers=bootstrap), MemoryConsumer)
    assert isinstance(clients.producer(bootstrap_servers=bootstrap), MemoryProducer)
    assert isinstance(clients.admin(bootstrap_servers=bootstrap), MemoryAdmin)
    assert clients.has_connections(object()) is True


@pytest.mark.asyncio
async def test_a_send_returns_a_future_settled_on_a_later_loop_step(kafka):
    kafka.create_topic("t", partitions=4)
    producer = await _started(MemoryProducer(bootstrap_servers=kafka.bootstrap_servers))
    delivery = await producer.send(
        "t", b"v", key=b"customer-7", timestamp_ms=1_000, headers=[("h", b"1")]
    )
    assert not delivery.done()  # As a broker's answer, never inside send.
    metadata = await delivery
    expected = DefaultPartitioner()(b"customer-7", [0, 1, 2, 3], [0, 1, 2, 3])
    assert (metadata.partition, metadata.offset, metadata.timestamp) == (expected, 0, 1_000)
    [stored] = kafka.read(TopicPartition("t", expected), 0)
    assert stored.headers == (("h", b"1"),)
    await producer.stop()


@pytest.mark.asyncio
async def test_unknown_topics_clients_that_cannot_connect_and_security_are_refused_by_name():
    with InMemoryKafka(auto_create_topics=False) as kafka:
        producer = await _started(MemoryProducer(bootstrap_servers=kafka.bootstrap_servers))
        with pytest.raises(UnknownTopicOrPartitionError, match="topic 'nope' does not exist"):
            await producer.send("nope", b"v")
        await producer.stop()
    with pytest.raises(KafkaConnectionError, match="no in-memory Kafka named 'gone'"):
        await MemoryConsumer(bootstrap_servers="memory://gone").start()
    with pytest.raises(
        NotSupportedInMemory, match="security protocol SSL is not supported in memory"
    ):
        MemoryProducer(bootstrap_servers="memory://x", security_protocol="SSL")


@pytest.mark.asyncio
async def test_positions_start_where_auto_offset_reset_says_and_seeks_move_them(kafka):
    for i in range(3):
        kafka.append("t", None, b"v%d" % i)
    earliest = MemoryConsumer(
        bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    latest = MemoryConsumer(bootstrap_servers=kafka.bootstrap_servers)
    none = MemoryConsumer(bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="none")
    for consumer in (earliest, latest, none):
        consumer.assign([T0])
        await consumer.start()
    assert [r.value for r in (await earliest.getmany(timeout_ms=10))[T0]] == [b"v0", b"v1", b"v2"]
    assert await latest.position(T0) == 3
    assert await latest.getmany(timeout_ms=10) == {}
    with pytest.raises(NoOffsetForPartitionError):
        await none.getmany(timeout_ms=10)
    earliest.seek(T0, 1)
    assert [r.offset for r in (await earliest.getmany(max_records=1))[T0]] == [1]
    with pytest.raises(IllegalStateError, match="No current assignment"):
        earliest.seek(TopicPartition("t", 5), 0)
    for consumer in (earliest, latest, none):
        await consumer.stop()


@pytest.mark.asyncio
async def test_a_waiting_poll_wakes_for_a_new_record_a_resume_and_a_stop(kafka):
    consumer = MemoryConsumer(bootstrap_servers=kafka.bootstrap_servers)
    consumer.assign([T0])
    await consumer.start()
    polling = asyncio.create_task(consumer.getmany(timeout_ms=30_000))
    await asyncio.sleep(0)
    kafka.append("t", None, b"new")
    assert [r.value for r in (await polling)[T0]] == [b"new"]
    consumer.pause(T0)
    kafka.append("t", None, b"held")
    assert await consumer.getmany(timeout_ms=10) == {}
    polling = asyncio.create_task(consumer.getmany(timeout_ms=30_000))
    await asyncio.sleep(0)
    consumer.resume(T0)
    assert [r.value for r in (await polling)[T0]] == [b"held"]
    polling = asyncio.create_task(consumer.getmany(timeout_ms=30_000))
    await asyncio.sleep(0)
    await consumer.stop()
    with pytest.raises(ConsumerStoppedError):
        await polling


class _Recorder(ConsumerRebalanceListener):
    def __init__(self, consumer_ref, events, name):
        self.consumer_ref, self.events, self.name = consumer_ref, events, name

    async def on_partitions_revoked(self, revoked):
        self.events.append(
            (
                self.name,
                "revoked",
                sorted(p.partition for p in revoked),
                asyncio.current_task().get_name(),
            )
        )
        consumer = self.consumer_ref()
        if revoked:  # Commits what it handled, from the callback, as kafkaboot does.
            await consumer.commit({tp: await consumer.position(tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned):
        self.events.append(
            (
                self.name,
                "assigned",
                sorted(p.partition for p in assigned),
                asyncio.current_task().get_name(),
            )
        )


@pytest.mark.asyncio
async def test_a_second_member_rebalances_the_group_with_callbacks_on_each_members_task(kafka):
    kafka.create_topic("t", partitions=4)
    events = []
    members = {}

    def member(name):
        consumer = MemoryConsumer(
            bootstrap_servers=kafka.bootstrap_servers,
            group_id="g",
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        consumer.subscribe(["t"], listener=_Recorder(lambda: members[name], events, name))
        members[name] = consumer
        return consumer

    first = member("first")
    await first.start()
    while first.assignment() != {TopicPartition("t", p) for p in range(4)}:
        await asyncio.sleep(0)
    for i in range(8):
        kafka.append("t", None, b"v", partition=i % 4)
    assert sum(len(b) for b in (await first.getmany(timeout_ms=10)).values()) == 8
    stale_generation = first._membership.generation

    second = member("second")
    await second.start()
    while len(second.assignment()) != 2 or len(first.assignment()) != 2:
        await asyncio.sleep(0)
    assert first.assignment().isdisjoint(second.assignment())
    # The revocation came before the new assignment, and committed under the old generation.
    assert kafka.committed("g") == {TopicPartition("t", p): 2 for p in range(4)}
    first_events = [e for e in events if e[0] == "first"]
    assert [e[1] for e in first_events] == ["revoked", "assigned", "revoked", "assigned"]
    assert {e[3] for e in events if e[0] == "first"} == {first._membership_task.get_name()}
    assert {e[3] for e in events if e[0] == "second"} == {second._membership_task.get_name()}
    # A commit made for the old generation is refused now.
    first._membership.generation = stale_generation
    with pytest.raises(CommitFailedError, match="rebalanced"):
        await first.commit()
    await second.stop()
    await first.stop()
    assert kafka.group("g").members == []


@pytest.mark.asyncio
async def test_read_committed_sees_committed_transactions_only_and_markers_take_offsets(kafka):
    tid = {"transactional_id": "tx-1", "bootstrap_servers": kafka.bootstrap_servers}
    producer = await _started(MemoryProducer(**tid))
    with pytest.raises(IllegalOperation, match="not in transaction"):
        await producer.send("t", b"outside")
    async with producer.transaction():
        await producer.send("t", b"kept")
        await producer.send_offsets_to_transaction({TopicPartition("in", 0): 0}, "g")
    await producer.begin_transaction()
    await producer.send("t", b"dropped")
    await producer.abort_transaction()
    await producer.begin_transaction()
    await producer.send("t", b"open")

    committed = MemoryConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    uncommitted = MemoryConsumer(
        bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    for consumer in (committed, uncommitted):
        consumer.assign([T0])
        await consumer.start()
    assert [r.value for r in (await committed.getmany())[T0]] == [b"kept"]
    assert await committed.end_offsets([T0]) == {T0: 4}  # kept, marker, dropped, marker
    assert await committed.position(T0) == 4  # Stops at the open transaction.
    assert [r.value for r in (await uncommitted.getmany())[T0]] == [b"kept", b"dropped", b"open"]
    assert kafka.committed("g") == {TopicPartition("in", 0): 0}

    successor = await _started(MemoryProducer(**tid))  # Fences the first, aborts its transaction.
    with pytest.raises(ProducerFenced):  # Its future fails, as aiokafka's (the broker refuses).
        await (await producer.send("t", b"zombie"))
    assert producer._txn_manager.is_fatal_error()
    assert await committed.getmany(timeout_ms=10) == {}
    assert await committed.position(T0) == 6
    for client in (committed, uncommitted, producer, successor):
        await client.stop()


@pytest.mark.asyncio
async def test_the_admin_answers_in_aiokafkas_shapes(kafka):
    admin = await _started(MemoryAdmin(bootstrap_servers=kafka.bootstrap_servers))
    response = await admin.create_topics(
        [NewTopic("a", 3, 1), NewTopic("a", 3, 1), NewTopic("b", 1, 3)]
    )
    assert [(name, code) for name, code, _ in response.topic_errors] == [
        ("a", 0),
        ("a", 36),
        ("b", 38),
    ]
    [described] = await admin.describe_topics(["a"])
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert (await admin.describe_topics(["missing"]))[0]["error_code"] == 3
    await admin.create_partitions({"a": NewPartitions(5)})
    assert kafka.partitions("a") == 5
    kafka.commit("g", {TopicPartition("a", 0): 0})
    offsets = await admin.list_consumer_group_offsets("g")
    assert {tp: meta.offset for tp, meta in offsets.items()} == {TopicPartition("a", 0): 0}
    with pytest.raises(NotSupportedInMemory, match="deleting topics is not supported in memory"):
        await admin.delete_topics(["a"])
    await admin.close()
