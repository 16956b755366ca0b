"""kafka.listeners.<id> on a real broker: seeks, a YAML-named rebalance listener, manual acks."""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot import Acknowledgment, ConsumerRecord, ListenerRegistry, load_settings

from .kafka_helpers import committed, create_topic, produce, unique, wait_for
from .services.probes import RecordingRebalance

pytestmark = pytest.mark.asyncio


def registry_with(bootstrap, listeners):
    kafka = {
        "bootstrap-servers": bootstrap,
        "consumer": {"auto-offset-reset": "earliest"},
        "listeners": listeners,
    }
    return ListenerRegistry(load_settings(environ={}, overrides={"kafka": kafka}), environ={})


async def commit_at(bootstrap, group, topic, offset):
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )  # Else stop() commits its own position over the one given.
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): offset})
    finally:
        await consumer.stop()


async def test_seek_modes_from_yaml(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    now_ms = int(time.time() * 1000)
    old = now_ms - 3 * 3600 * 1000  # Offsets 0-4: three hours ago; 5-9: now.
    stamps = [old] * 5 + [now_ms] * 5
    await produce(kafka_bootstrap, topic, [str(n).encode() for n in range(10)], timestamps=stamps)
    names = ("begin", "begin-once", "end", "time", "ago", "offs", "comm")
    groups = {name: unique(name) for name in names}
    for name in ("begin", "begin-once", "comm"):
        await commit_at(kafka_bootstrap, groups[name], topic, 8)
    middle = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((old + now_ms) / 2000))
    registry = registry_with(
        kafka_bootstrap,
        {
            "begin": {"seek": {"to": "beginning"}},
            "begin-once": {"seek": {"to": "beginning", "once": True}},
            "end": {"seek": {"to": "end"}},
            "time": {"seek": {"to": "timestamp", "timestamp": middle}},
            "ago": {"seek": {"to": "timestamp", "ago": "1h"}},
            "offs": {"seek": {"to": "offset", "offsets": {0: 7}}},
            "comm": {"seek": {"to": "committed"}},
        },
    )
    seen = {name: [] for name in groups}

    def collector(name):
        async def on_value(value: str) -> None:
            seen[name].append(int(value))

        return on_value

    for name, group in groups.items():
        registry.listener(topic, group_id=group, id=name)(collector(name))
    registry.check_overrides()
    async with registry:
        await wait_for(lambda: len(seen["begin-once"]) == 10, message="beginning")
        await asyncio.sleep(1.0)  # Every group has its assignment before the 11th record.
        await produce(kafka_bootstrap, topic, [b"10"])
        await wait_for(lambda: all(s and s[-1] == 10 for s in seen.values()), message="record 10")
    assert seen["begin"] == [8, 9, 10]  # The group has a committed offset: no seek.
    assert seen["begin-once"] == list(range(11))  # Despite the committed offset 8.
    assert seen["end"] == [10]
    assert seen["time"] == [5, 6, 7, 8, 9, 10]
    assert seen["ago"] == [5, 6, 7, 8, 9, 10]
    assert seen["offs"] == [7, 8, 9, 10]
    assert seen["comm"] == [8, 9, 10]


@pytest.mark.slow
async def test_a_yaml_named_rebalance_listener_hears_a_second_instance_join(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("g")
    RecordingRebalance.events.clear()
    listeners = {
        "probe": {"rebalance-listener": "tests.integration.services.probes:RecordingRebalance"}
    }

    def instance():
        r = registry_with(kafka_bootstrap, listeners)

        @r.listener(topic, group_id=group, id="probe")
        async def on_value(value: str) -> None:
            pass

        return r

    first, second = instance(), instance()
    async with first:
        await wait_for(lambda: ("assigned", 2) in RecordingRebalance.events, message="first")
        async with second:
            await wait_for(
                lambda: RecordingRebalance.events.count(("assigned", 1)) >= 2,
                timeout=60,
                message="both instances with one partition each",
            )
    assert ("revoked", 2) in RecordingRebalance.events


async def test_manual_ack_from_yaml_commits_only_acknowledged_records(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [str(n).encode() for n in range(6)])
    group = unique("g")
    registry = registry_with(kafka_bootstrap, {"acker": {"ack-mode": "manual"}})
    handled = []

    @registry.listener(topic, group_id=group, id="acker")
    async def on_record(record: ConsumerRecord[str, str], ack: Acknowledgment) -> None:
        handled.append(record.offset)
        if record.offset < 3:  # Records 3, 4, 5 are never acknowledged.
            ack.acknowledge()

    assert registry.get("acker").settings.ack_mode.value == "manual"
    async with registry:
        await wait_for(lambda: len(handled) == 6, message="all six")
        await asyncio.sleep(0.5)
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}
