"""Ack modes and commits, checked against the offsets the broker has."""

import asyncio
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot import Acknowledgment, ConsumerRecord

from .kafka_helpers import committed, create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("ack_mode", ["record", "batch", "time", "count", "count_time"])
async def test_automatic_ack_modes_commit_everything_handled(kafka_bootstrap, ack_mode):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(20)], partitions=2)
    registry = registry_for(kafka_bootstrap)
    group = unique(ack_mode)
    seen = []

    @registry.listener(topic, group_id=group, ack_mode=ack_mode, ack_count=3)
    async def on_value(value: int) -> None:
        seen.append(value)

    async with registry:
        await wait_for(lambda: len(seen) == 20, message="20 records")
    assert await committed(kafka_bootstrap, group, topic, 2) == {0: 10, 1: 10}


async def test_record_mode_commits_before_the_next_record(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    registry = registry_for(kafka_bootstrap)
    committed_at_handling = []

    @registry.listener(topic, group_id=unique("record"), ack_mode="record")
    async def on_value(record: ConsumerRecord, consumer: AIOKafkaConsumer) -> None:
        committed_at_handling.append(await consumer.committed(TopicPartition(topic, 0)))

    async with registry:
        await wait_for(lambda: len(committed_at_handling) == 3, message="three records")
    assert committed_at_handling == [None, 1, 2]


async def test_time_mode_waits_for_ack_time(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    registry = registry_for(kafka_bootstrap)
    group, seen = unique("time"), []

    @registry.listener(topic, group_id=group, ack_mode="time", ack_time=timedelta(minutes=5))
    async def on_value(value: str) -> None:
        seen.append(value)

    async with registry:
        await wait_for(lambda: len(seen) == 2, message="two records")
        await asyncio.sleep(1.0)
        assert await committed(kafka_bootstrap, group, topic) == {0: None}
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}  # Stop commits.


async def test_count_mode_commits_after_ack_count_records(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    registry = registry_for(kafka_bootstrap)
    group, seen = unique("count"), []

    @registry.listener(topic, group_id=group, ack_mode="count", ack_count=3)
    async def on_value(value: str) -> None:
        seen.append(value)

    async with registry:
        await produce(kafka_bootstrap, topic, [b"a", b"b"])
        await wait_for(lambda: len(seen) == 2, message="two records")
        await asyncio.sleep(1.0)
        assert await committed(kafka_bootstrap, group, topic) == {0: None}
        await produce(kafka_bootstrap, topic, [b"c"])
        await wait_for(lambda: len(seen) == 3, message="the third record")
        await asyncio.sleep(1.0)
        assert await committed(kafka_bootstrap, group, topic) == {0: 3}


async def test_manual_ack_commits_only_acknowledged_records(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"0", b"1", b"2", b"3"])
    registry = registry_for(kafka_bootstrap)
    group, seen = unique("manual"), []

    @registry.listener(topic, group_id=group, ack_mode="manual")
    async def on_value(value: int, ack: Acknowledgment) -> None:
        seen.append(value)
        if value != 2:
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: len(seen) == 4, message="four records")
        await asyncio.sleep(0.5)
    # 2 was never acknowledged: nothing past it may be committed.
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}


async def test_manual_ack_never_called_is_redelivered_after_restart(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    group = unique("redeliver")
    first, second = [], []

    registry = registry_for(kafka_bootstrap)

    @registry.listener(topic, group_id=group, ack_mode="manual")
    async def forgetful(value: str, ack: Acknowledgment) -> None:
        first.append(value)

    async with registry:
        await wait_for(lambda: len(first) == 2, message="first delivery")

    registry = registry_for(kafka_bootstrap)

    @registry.listener(topic, group_id=group, ack_mode="manual_immediate")
    async def careful(value: str, ack: Acknowledgment) -> None:
        second.append(value)
        ack.acknowledge()

    async with registry:
        await wait_for(lambda: len(second) == 2, message="redelivery")
    assert second == ["a", "b"]
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}


async def test_manual_immediate_commits_on_acknowledge(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    registry = registry_for(kafka_bootstrap)
    commits_seen = []

    @registry.listener(topic, group_id=unique("immediate"), ack_mode="manual_immediate")
    async def on_value(value: str, ack: Acknowledgment, consumer: AIOKafkaConsumer) -> None:
        commits_seen.append(await consumer.committed(TopicPartition(topic, 0)))
        ack.acknowledge()

    async with registry:
        await wait_for(lambda: len(commits_seen) == 2, message="two records")
    assert commits_seen == [None, 1]


async def test_nack_redelivers_the_record_after_the_sleep(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"0", b"1", b"2", b"3"])
    registry = registry_for(kafka_bootstrap)
    group, seen, nacked = unique("nack"), [], []

    @registry.listener(topic, group_id=group, ack_mode="manual")
    async def on_value(value: int, ack: Acknowledgment) -> None:
        seen.append(value)
        if value == 2 and not nacked:
            nacked.append(asyncio.get_running_loop().time())
            ack.nack(0.5)
        else:
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: seen.count(3) == 1, message="the rest after the nack")
    assert seen == [0, 1, 2, 2, 3]
    assert await committed(kafka_bootstrap, group, topic) == {0: 4}


async def test_batch_listener_with_manual_ack(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    await produce(kafka_bootstrap, topic, [b'{"n": %d}' % i for i in range(10)], partitions=2)
    registry = registry_for(kafka_bootstrap)
    group, batches = unique("batch"), []

    @registry.listener(topic, group_id=group, batch=True, ack_mode="manual")
    async def on_batch(items: list[dict], ack: Acknowledgment) -> None:
        batches.append([item["n"] for item in items])
        ack.acknowledge()

    async with registry:
        await wait_for(lambda: sum(map(len, batches)) == 10, message="ten records in batches")
    assert sorted(n for batch in batches for n in batch) == list(range(10))
    assert await committed(kafka_bootstrap, group, topic, 2) == {0: 5, 1: 5}


async def test_batch_of_records_skips_undecodable_ones(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b'{"n": 1}', b"oops", b'{"n": 3}'])
    registry = registry_for(kafka_bootstrap)
    group, seen = unique("batch-poison"), []

    @registry.listener(topic, group_id=group, batch=True)
    async def on_batch(records: list[ConsumerRecord[str, dict]]) -> None:
        seen.extend(r.value["n"] for r in records)

    async with registry:
        await wait_for(lambda: len(seen) == 2, message="two good records")
    assert seen == [1, 3]
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}


async def test_filtered_record_does_not_commit_past_an_unacknowledged_one(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"keep-a", b"drop", b"keep-b"])
    registry = registry_for(kafka_bootstrap)
    group, seen = unique("manual-filter"), []

    @registry.listener(
        topic, group_id=group, ack_mode="manual", filter=lambda r: r.value != b"drop"
    )
    async def on_value(value: str, ack: Acknowledgment) -> None:
        seen.append(value)
        if value == "keep-b":
            ack.acknowledge()  # keep-a is never acknowledged.

    async with registry:
        await wait_for(lambda: len(seen) == 2, message="two kept records")
        await asyncio.sleep(0.7)
    assert await committed(kafka_bootstrap, group, topic) == {0: None}


async def test_batch_acknowledged_later_commits_and_unacknowledged_batch_does_not(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    registry = registry_for(kafka_bootstrap)
    group, acks = unique("batch-later"), []

    @registry.listener(topic, group_id=group, batch=True, ack_mode="manual")
    async def on_batch(values: list[str], ack: Acknowledgment) -> None:
        acks.append((values, ack))

    async with registry:
        await produce(kafka_bootstrap, topic, [b"a", b"b"])
        await wait_for(lambda: acks, message="the first batch")
        await produce(kafka_bootstrap, topic, [b"c"])
        await wait_for(lambda: len(acks) == 2, message="the second batch")
        acks[1][1].acknowledge()  # Later, outside the handler; the first batch stays open.
        await asyncio.sleep(1.0)
        assert await committed(kafka_bootstrap, group, topic) == {0: None}
        acks[0][1].acknowledge()
        await asyncio.sleep(1.0)
        assert await committed(kafka_bootstrap, group, topic) == {0: 3}
