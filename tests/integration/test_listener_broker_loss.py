"""A listener whose broker dies: stop still returns within its bound."""

import asyncio
import time

import pytest

from kafkaboot.testing import KafkaCluster

from .kafka_helpers import create_topic, produce, registry_for, unique, wait_for


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.asyncio
async def test_stop_is_bounded_when_the_broker_is_gone(tmp_path):
    cluster = KafkaCluster(tmp_path / "kafka", nodes=1)
    await asyncio.to_thread(cluster.start)
    try:
        bootstrap = cluster.bootstrap_servers
        topic = await create_topic(bootstrap)
        await produce(bootstrap, topic, [b"a"])
        registry = registry_for(bootstrap, listener={"shutdown-timeout": "2s"})
        seen = []

        @registry.listener(topic, group_id=unique("gone"))
        async def on_value(value: str) -> None:
            seen.append(value)

        await registry.start()
        await wait_for(lambda: seen == ["a"], message="one record")
        await asyncio.to_thread(cluster.kill_node, 1)
        started = time.monotonic()
        await asyncio.wait_for(registry.stop(), timeout=60)
        assert time.monotonic() - started < 20
    finally:
        await asyncio.to_thread(cluster.stop)
