"""Parity: ack modes, manual acknowledgment and nack, seeks and a rebalance between two
members behave the same on the in-memory Kafka and on the real broker."""

import asyncio

import pytest
from aiokafka import TopicPartition

from kafkaboot import Acknowledgment, ConsumerRecord, RebalanceListener, load_settings
from kafkaboot.template import KafkaTemplate, ProducerRecord
from kafkaboot.testing import (
    committed_offsets,
    create_topic,
    unique_name,
    wait_for_assignment,
)
from tests.integration.kafka_helpers import produce, registry_for, wait_for

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("ack_mode", ["record", "batch", "count"])
async def test_automatic_ack_modes_commit_everything_handled(bootstrap, ack_mode):
    topic = await create_topic(bootstrap, partitions=2)
    await produce(bootstrap, topic, [b"%d" % i for i in range(20)], partitions=2)
    registry, group, seen = registry_for(bootstrap), unique_name(ack_mode), []

    @registry.listener(topic, group_id=group, ack_mode=ack_mode, ack_count=3)
    async def on_value(value: int) -> None:
        seen.append(value)

    async with registry:
        await wait_for(lambda: len(seen) == 20, timeout=20, message="20 records")
    assert sorted(seen) == list(range(20))
    assert await committed_offsets(bootstrap, group) == {
        TopicPartition(topic, 0): 10,
        TopicPartition(topic, 1): 10,
    }


async def test_manual_ack_commits_only_up_to_the_first_unacknowledged_record(bootstrap):
    topic = await create_topic(bootstrap)
    await produce(bootstrap, topic, [b"a", b"b", b"c", b"d"])
    registry, group, seen = registry_for(bootstrap), unique_name("manual"), []

    @registry.listener(topic, group_id=group, ack_mode="manual_immediate")
    async def on_value(value: str, ack: Acknowledgment) -> None:
        seen.append(value)
        if value != "c":  # c is never acknowledged: nothing after it may be committed.
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: len(seen) == 4, timeout=20, message="four records")
        await wait_for_assignment(registry, timeout=20)
    assert await committed_offsets(bootstrap, group) == {TopicPartition(topic, 0): 2}


async def test_a_nack_redelivers_the_record_and_the_rest_follow(bootstrap):
    topic = await create_topic(bootstrap)
    await produce(bootstrap, topic, [b"0", b"1", b"2", b"3"])
    registry, group, seen = registry_for(bootstrap), unique_name("nack"), []

    @registry.listener(topic, group_id=group, ack_mode="manual")
    async def on_value(value: int, ack: Acknowledgment) -> None:
        seen.append(value)
        if value == 2 and seen.count(2) == 1:
            ack.nack(0.05)
        else:
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: 3 in seen, timeout=20, message="the rest after the nack")
    assert seen == [0, 1, 2, 2, 3]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(topic, 0): 4}


async def test_seek_to_a_timestamp_replays_from_the_first_record_at_or_after_it(bootstrap):
    topic = await create_topic(bootstrap)
    base = 1_700_000_000_000
    stamps = [base + i * 1_000 for i in range(5)]
    await produce(bootstrap, topic, [b"%d" % i for i in range(5)], timestamps=stamps)
    registry, seen = registry_for(bootstrap), []

    @registry.listener(topic, group_id=unique_name("seek"), id="seeker")
    async def on_value(value: int) -> None:
        seen.append(value)

    async with registry:
        await wait_for(lambda: len(seen) == 5, timeout=20, message="first pass")
        registry.get("seeker").seek_to_timestamp(stamps[3] - 500, TopicPartition(topic, 0))
        await wait_for(lambda: len(seen) == 7, timeout=20, message="after the seek")
    assert seen == [0, 1, 2, 3, 4, 3, 4]


class _Journal(RebalanceListener):
    """What one member's rebalance listener heard."""

    def __init__(self, name: str, heard: list[tuple[str, str, list[int]]]) -> None:
        self.name, self.heard = name, heard

    def on_partitions_revoked(self, partitions, consumer) -> None:
        self.heard.append((self.name, "revoked", sorted(p.partition for p in partitions)))

    def on_partitions_assigned(self, partitions, consumer) -> None:
        self.heard.append((self.name, "assigned", sorted(p.partition for p in partitions)))


async def test_a_second_member_takes_half_the_partitions_and_nothing_is_lost(bootstrap):
    topic = await create_topic(bootstrap, partitions=4)
    group, heard, seen = unique_name("rebalance"), [], []

    def member(name):
        registry = registry_for(bootstrap)

        @registry.listener(topic, group_id=group, rebalance_listener=_Journal(name, heard))
        async def on_value(value: int) -> None:
            seen.append(value)

        return registry

    first, second = member("first"), member("second")
    async with first:
        await wait_for_assignment(first, partitions=4, timeout=30)
        await produce(bootstrap, topic, [b"%d" % i for i in range(8)], partitions=4)
        await wait_for(lambda: len(seen) == 8, timeout=20, message="the first 8")
        async with second:
            await wait_for_assignment(first, partitions=2, timeout=30)
            await wait_for_assignment(second, partitions=2, timeout=30)
            first_held = first.containers[0].assignment
            assert first_held.isdisjoint(second.containers[0].assignment)
            await produce(bootstrap, topic, [b"%d" % i for i in range(8, 16)], partitions=4)
            await wait_for(lambda: len(seen) >= 16, timeout=20, message="the next 8")
            await asyncio.sleep(0)
    assert sorted(set(seen)) == list(range(16))
    assert ("first", "revoked", [0, 1, 2, 3]) in heard
    assert [h for h in heard if h[0] == "second" and h[1] == "assigned" and h[2]] != []
    assert await committed_offsets(bootstrap, group) == {
        TopicPartition(topic, p): 4 for p in range(4)
    }


async def test_ten_thousand_records_are_handled_once_each_in_order_per_partition(bootstrap):
    topic = await create_topic(bootstrap, partitions=4)
    registry, group, seen = registry_for(bootstrap), unique_name("bulk"), {}
    template = KafkaTemplate(
        load_settings(environ={}, overrides={"kafka": {"bootstrap-servers": bootstrap}})
    )

    @registry.listener(topic, group_id=group)
    async def on_value(record: ConsumerRecord) -> None:
        seen.setdefault(record.partition, []).append(int(record.value))

    async with registry, template:
        await wait_for_assignment(registry, timeout=20)
        await template.send_batch(
            [ProducerRecord(topic, b"%d" % n, key=b"k%d" % (n % 40)) for n in range(10_000)]
        )
        await wait_for(lambda: sum(map(len, seen.values())) >= 10_000, timeout=30, message="all")
    assert sorted(n for values in seen.values() for n in values) == list(range(10_000))
    assert all(values == sorted(values) for values in seen.values())  # Per-partition order.
    offsets = await committed_offsets(bootstrap, group)
    assert sum(offsets.values()) == 10_000
