"""Concurrency, rebalances, seeks, pause/resume, auto-startup and graceful stop."""

import asyncio
import time
from collections import defaultdict

import pytest
from aiokafka import TopicPartition

from kafkaboot import (
    ConsumerRecord,
    ConsumerSeekAware,
    RebalanceListener,
    TopicPartitionOffset,
)
from kafkaboot.errors import KafkaBootError

from .kafka_helpers import committed, create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


async def test_concurrency_three_over_six_partitions_keeps_partition_order(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=6)
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(600)], partitions=6)
    registry = registry_for(kafka_bootstrap)
    by_partition = defaultdict(list)

    @registry.listener(topic, group_id=unique("concurrent"), concurrency=3)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        by_partition[record.partition].append(record.offset)

    async with registry:
        await wait_for(lambda: sum(map(len, by_partition.values())) == 600, message="600")
        container = registry.containers[0]
        assert [len(worker.assigned) for worker in container.workers] == [2, 2, 2]
    for offsets in by_partition.values():
        assert offsets == sorted(offsets) == list(range(100))


class Recorder(RebalanceListener):
    def __init__(self):
        self.events = []

    def on_partitions_revoked(self, partitions, consumer):
        self.events.append(("revoked", sorted(tp.partition for tp in partitions)))

    async def on_partitions_assigned(self, partitions, consumer):
        self.events.append(("assigned", sorted(tp.partition for tp in partitions)))


async def test_second_instance_joining_mid_stream_loses_nothing(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=4)
    group = unique("join")
    handled = []

    async def handle(value: int) -> None:
        handled.append(value)
        await asyncio.sleep(0.002)

    first, second = registry_for(kafka_bootstrap), registry_for(kafka_bootstrap)
    recorder = Recorder()
    first.listener(topic, group_id=group, id="first", rebalance_listener=recorder)(handle)
    second.listener(topic, group_id=group, id="second")(handle)

    async with first:
        await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(400)], partitions=4)
        await wait_for(lambda: len(handled) >= 100, message="the first hundred")
        async with second:
            await produce(
                kafka_bootstrap, topic, [b"%d" % i for i in range(400, 800)], partitions=4
            )
            await wait_for(lambda: set(handled) >= set(range(800)), message="all 800")
            assert first.get("first").assignment
            assert second.get("second").assignment
    assert set(handled) == set(range(800))
    # Offsets were committed on revocation, so the new owner started where we stopped.
    assert len(handled) - len(set(handled)) == 0
    assert ("revoked", [0, 1, 2, 3]) in recorder.events
    assert recorder.events[0] == ("assigned", [0, 1, 2, 3])


class FromBeginning(ConsumerSeekAware):
    def on_partitions_assigned(self, assignments, seek):
        seek.seek_to_beginning(*assignments)


async def test_seek_aware_listener_rereads_from_the_beginning(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    group = unique("seek")
    seen = []

    registry = registry_for(kafka_bootstrap)
    registry.listener(topic, group_id=group)(_collect(seen))
    async with registry:
        await wait_for(lambda: len(seen) == 2, message="first read")
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}

    registry = registry_for(kafka_bootstrap)
    registry.listener(topic, group_id=group, rebalance_listener=FromBeginning())(_collect(seen))
    async with registry:
        await wait_for(lambda: len(seen) == 4, message="second read from the beginning")
    assert seen == ["a", "b", "a", "b"]


def _collect(into):
    async def collect(value: str) -> None:
        into.append(value)

    return collect


async def test_runtime_seeks_run_at_the_next_poll(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    base = int(time.time() * 1000) - 60_000
    timestamps = [base + 1000 * i for i in range(5)]
    await produce(kafka_bootstrap, topic, [b"0", b"1", b"2", b"3", b"4"], timestamps=timestamps)
    registry = registry_for(kafka_bootstrap)
    seen = []
    registry.listener(topic, group_id=unique("runtime-seek"), id="seeker")(_collect(seen))
    tp = TopicPartition(topic, 0)
    async with registry:
        container = registry.get("seeker")
        await wait_for(lambda: len(seen) == 5, message="first pass")

        container.seek_to_beginning()
        await wait_for(lambda: len(seen) == 10, message="after seek_to_beginning")

        container.seek_relative(tp, -2)
        await wait_for(lambda: len(seen) == 12, message="after seek_relative(-2)")
        assert seen[-2:] == ["3", "4"]

        container.seek_to_timestamp(timestamps[3] - 500, tp)
        await wait_for(lambda: len(seen) == 14, message="after seek_to_timestamp")
        assert seen[-2:] == ["3", "4"]

        container.seek(tp, 1)
        await wait_for(lambda: len(seen) == 18, message="after seek(1)")
        assert seen[-4:] == ["1", "2", "3", "4"]

        container.seek_to_end()
        await asyncio.sleep(1.0)
        assert len(seen) == 18
        await produce(kafka_bootstrap, topic, [b"5"])
        await wait_for(lambda: seen[-1] == "5", message="a new record after seek_to_end")


async def test_pause_and_resume_without_rebalance(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    registry = registry_for(kafka_bootstrap)
    recorder, seen = Recorder(), []
    registry.listener(topic, group_id=unique("pause"), id="p", rebalance_listener=recorder)(
        _collect(seen)
    )
    async with registry:
        container = registry.get("p")
        await wait_for(lambda: container.assignment, message="assignment")
        container.pause()
        assert container.state.value == "paused"
        await produce(kafka_bootstrap, topic, [b"x", b"y"], partitions=2)
        await asyncio.sleep(1.5)
        assert seen == []
        container.resume()
        await wait_for(lambda: len(seen) == 2, message="records after resume")

        container.pause_partition(TopicPartition(topic, 1))
        await produce(kafka_bootstrap, topic, [b"p0", b"p1"], partitions=2)
        await wait_for(lambda: "p0" in seen, message="the unpaused partition")
        await asyncio.sleep(1.0)
        assert "p1" not in seen
        container.resume_partition(TopicPartition(topic, 1))
        await wait_for(lambda: "p1" in seen, message="the resumed partition")
    assert recorder.events == [("assigned", [0, 1])]  # Never revoked: no rebalance.


async def test_auto_startup_false_starts_on_request(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"late"])
    registry = registry_for(kafka_bootstrap)
    seen = []
    registry.listener(topic, group_id=unique("manual-start"), id="later", auto_startup=False)(
        _collect(seen)
    )
    async with registry:
        container = registry.get("later")
        assert not container.is_running
        await asyncio.sleep(0.5)
        assert seen == []
        await container.start()
        with pytest.raises(KafkaBootError, match="already running"):
            await container.start()
        await wait_for(lambda: seen == ["late"], message="the record once started")


async def test_graceful_stop_commits_only_finished_work(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"0", b"1", b"2", b"3", b"4"])
    registry = registry_for(kafka_bootstrap, listener={"shutdown-timeout": "1s"})
    group, seen, never = unique("stop"), [], asyncio.Event()

    @registry.listener(topic, group_id=group)
    async def on_value(value: int) -> None:
        seen.append(value)
        if value == 3:
            await never.wait()  # Stuck: the stop must give up on it.

    await registry.start()
    await wait_for(lambda: 3 in seen, message="the stuck record")
    started = time.monotonic()
    await registry.stop()
    assert time.monotonic() - started < 5
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}


async def test_manual_assignment_with_initial_offsets(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(10)], partitions=2)
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(
        partitions=[
            TopicPartitionOffset(topic, 0, offset=3),
            TopicPartitionOffset(topic, 1, offset=-2),
        ],
        group_id=unique("assigned"),
        concurrency=2,
    )
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        seen.append((record.partition, record.offset))

    async with registry:
        await wait_for(lambda: len(seen) == 4, message="four records")
        assert len(registry.containers[0].workers) == 2
    assert sorted(seen) == [(0, 3), (0, 4), (1, 3), (1, 4)]


async def test_status_reports_assignment_positions_committed_and_lag(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    registry = registry_for(kafka_bootstrap)
    seen = []
    registry.listener(topic, group_id=unique("status"), id="s")(_collect(seen))
    async with registry:
        await wait_for(lambda: len(seen) == 3, message="three records")
        await asyncio.sleep(0.7)  # A poll after the batch commits it.
        status = await registry.get("s").status()
    assert status.state == "running"
    [partition] = status.partitions
    assert (partition.position, partition.committed, partition.end_offset, partition.lag) == (
        3,
        3,
        3,
        0,
    )
    assert status.last_poll is not None


async def test_missing_topics_fatal_refuses_to_start(kafka_bootstrap):
    registry = registry_for(kafka_bootstrap, listener={"missing-topics-fatal": True})
    missing = unique("missing")
    registry.listener(missing, group_id=unique("g"))(_collect([]))
    with pytest.raises(KafkaBootError, match=f"{missing} do not exist"):
        await registry.start()
    assert not registry.containers[0].is_running


async def test_manual_assignment_from_beginning_end_and_relative(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(9)], partitions=3)
    group = unique("positions")
    seen = []

    async def on_record(record: ConsumerRecord[str, str]) -> None:
        seen.append((record.partition, record.offset))

    registry = registry_for(kafka_bootstrap)
    registry.listener(
        partitions=[
            TopicPartitionOffset(topic, 0, position="beginning"),
            TopicPartitionOffset(topic, 1, position="end"),
            TopicPartitionOffset(topic, 2, offset=1, relative=True),
        ],
        group_id=group,
    )(on_record)
    async with registry:
        await wait_for(lambda: len(seen) == 5, message="partition 0 whole, partition 2 from 1")
        await produce(kafka_bootstrap, topic, [b"late"] * 2, partitions=2)  # to 0 and 1
        await wait_for(lambda: (1, 3) in seen, message="the new record on partition 1")
    assert sorted(seen) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 3), (2, 1), (2, 2)]
