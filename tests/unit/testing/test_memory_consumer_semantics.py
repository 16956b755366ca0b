"""The in-memory consumer where a review found it apart from aiokafka on a real broker:
each test here failed before its fix."""

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, OffsetOutOfRangeError

from kafkaboot.testing.memory import InMemoryKafka, NotSupportedInMemory
from kafkaboot.testing.memory.consumer import MemoryConsumer
from kafkaboot.testing.memory.membership import Membership
from kafkaboot.testing.memory.producer import MemoryProducer

pytestmark = pytest.mark.asyncio
T0 = TopicPartition("t", 0)


@pytest.fixture
def kafka():
    with InMemoryKafka() as cluster:
        yield cluster


def member(kafka, **options):
    options = {"group_id": "g", "enable_auto_commit": False} | options
    return MemoryConsumer(bootstrap_servers=kafka.bootstrap_servers, **options)


async def until(condition, timeout=2.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


async def test_a_member_without_auto_commit_waits_quietly(kafka, monkeypatch):
    waits = []
    real_wait = Membership._wait

    async def counted(self, timeout):
        waits.append(timeout)
        await real_wait(self, timeout)

    monkeypatch.setattr(Membership, "_wait", counted)
    consumer = member(kafka, auto_commit_interval_ms=1)
    consumer.subscribe(["t"])
    await consumer.start()
    await asyncio.sleep(0.1)
    await consumer.stop()
    assert len(waits) < 20  # It used to spin: a wait of 0 on every turn of the loop.
    assert len(kafka._waiters) < 5


async def test_a_stop_commits_what_was_consumed_and_leaves_with_auto_commit(kafka):
    for value in (b"a", b"b", b"c"):
        kafka.append("t", None, value)
    consumer = member(kafka, enable_auto_commit=True, auto_offset_reset="earliest")
    consumer.subscribe(["t"])
    await consumer.start()
    await until(lambda: consumer.assignment() == {T0})
    assert len((await consumer.getmany(timeout_ms=100))[T0]) == 3
    await consumer.stop()
    assert kafka.committed("g") == {T0: 3}
    assert kafka.group("g").members == []


async def test_a_commit_past_the_log_end_is_taken_and_a_fetch_there_resets(kafka):
    kafka.append("t", None, b"a")
    kafka.commit("g", {T0: 5})  # Kafka does not check a committed offset against the log.
    consumer = member(kafka, auto_offset_reset="earliest")
    consumer.assign([T0])
    await consumer.start()
    assert [r.value for r in (await consumer.getmany(timeout_ms=100))[T0]] == [b"a"]
    consumer.seek(T0, 9)  # Out of range: reset as auto_offset_reset says.
    kafka.append("t", None, b"b")
    assert [r.offset for r in (await consumer.getmany(timeout_ms=100))[T0]] == [0, 1]
    await consumer.stop()
    strict = member(kafka, auto_offset_reset="none", group_id=None)
    strict.assign([T0])
    await strict.start()
    strict.seek(T0, 9)
    with pytest.raises(OffsetOutOfRangeError):
        await strict.getmany(timeout_ms=10)
    await strict.stop()


async def test_offsets_sent_to_a_transaction_past_the_end_do_not_leave_it_open(kafka):
    producer = MemoryProducer(bootstrap_servers=kafka.bootstrap_servers, transactional_id="x")
    await producer.start()
    await producer.begin_transaction()
    await producer.send("out", b"v")
    await producer.send_offsets_to_transaction({T0: 7}, "g")
    await producer.commit_transaction()
    assert kafka.committed("g") == {T0: 7}
    assert kafka.stable_offset(TopicPartition("out", 0)) == 2  # Record and marker.
    await producer.stop()


async def test_subscribing_creates_the_topic_so_a_latest_member_misses_nothing(kafka):
    consumer = member(kafka)  # auto_offset_reset="latest", aiokafka's default.
    consumer.subscribe(["fresh"])
    await consumer.start()
    await until(lambda: consumer.assignment() == {TopicPartition("fresh", 0)})
    kafka.append("fresh", None, b"first")
    records = await consumer.getmany(timeout_ms=100)
    assert [r.value for r in records[TopicPartition("fresh", 0)]] == [b"first"]
    await consumer.stop()


async def test_header_values_may_be_none_as_in_aiokafka(kafka):
    producer = MemoryProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    await (await producer.send("t", b"v", headers=[("empty", None), ("h", b"1")]))
    assert kafka.read(T0, 0)[0].headers == (("empty", None), ("h", b"1"))
    await producer.stop()


async def test_a_member_given_no_partitions_commits_nothing_without_error(kafka):
    first, second = member(kafka), member(kafka)
    for consumer in (first, second):
        consumer.subscribe(["t"])
        await consumer.start()
    await until(lambda: len(first.assignment()) + len(second.assignment()) == 1)
    idle = first if not first.assignment() else second
    await idle.commit()  # aiokafka commits the (empty) consumed positions: nothing.
    for consumer in (first, second):
        await consumer.stop()


async def test_a_group_less_commit_is_refused_while_the_group_has_members(kafka):
    active = member(kafka)
    active.subscribe(["t"])
    await active.start()
    await until(lambda: active.assignment() == {T0})
    outsider = member(kafka)
    outsider.assign([T0])
    await outsider.start()
    with pytest.raises(CommitFailedError):
        await outsider.commit({T0: 0})
    await active.stop()
    await outsider.commit({T0: 0})  # The group is empty now: Kafka takes it.
    await outsider.stop()


async def test_options_it_cannot_honour_are_refused_by_name(kafka):
    with pytest.raises(NotSupportedInMemory, match="partition assignment strategy"):
        member(kafka, partition_assignment_strategy=(RangePartitionAssignor,))
    with pytest.raises(NotSupportedInMemory, match="static membership"):
        member(kafka, group_instance_id="pod-1")


class _Stuck(ConsumerRebalanceListener):
    def __init__(self):
        self.release = asyncio.Event()

    async def on_partitions_revoked(self, revoked):
        if revoked:
            await self.release.wait()

    async def on_partitions_assigned(self, assigned):
        pass


async def test_a_member_stuck_in_its_revocation_is_dropped_after_the_rebalance_timeout(kafka):
    kafka.create_topic("t", partitions=2)
    stuck, listener = member(kafka, rebalance_timeout_ms=50), _Stuck()
    stuck.subscribe(["t"], listener=listener)
    await stuck.start()
    await until(lambda: len(stuck.assignment()) == 2)
    other = member(kafka, rebalance_timeout_ms=50)
    other.subscribe(["t"])
    await other.start()
    await until(lambda: len(other.assignment()) == 2)  # Not 300 s (max_poll_interval).
    listener.release.set()
    await other.stop()
    await stuck.stop()
