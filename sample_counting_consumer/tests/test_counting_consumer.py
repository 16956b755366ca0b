"""The central consumer's own tests: events published by sites are counted per customer,
once each, and their offsets committed — on the real broker (``kafka_bootstrap``) and in
memory (``memory_kafka``) with the same test. Per-test topic and group come from the
environment, as the listener's ``${EVENTS_TOPIC:events}`` placeholder reads them."""

import asyncio
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from kafkaboot.testing import committed_offsets, create_topic, unique_name
from sample_producer_service.models import Message

CONFIG = str(Path(__file__).parents[1] / "application.yml")


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bootstrap(request):
    if request.param == "memory":
        return request.getfixturevalue("memory_kafka").bootstrap_servers
    return request.getfixturevalue("kafka_bootstrap")


@pytest.mark.asyncio
async def test_each_sites_events_are_counted_once_and_committed(bootstrap, kafkaboot_app):
    topic, group, customer = unique_name("events"), unique_name("central"), unique_name("c")
    await create_topic(bootstrap, topic, partitions=3)
    service = await kafkaboot_app(
        "sample_counting_consumer.listeners",
        bootstrap=bootstrap,
        config=CONFIG,
        env={"EVENTS_TOPIC": topic, "CENTRAL_GROUP": group},
    )
    for sequence in range(5):
        message = Message(customer_id=customer, sequence=sequence, payload="x")
        await service.template.send_and_wait(
            topic, message, key=customer, headers={"instance-id": "site-1"}
        )

    async def counted() -> dict:
        while True:
            seen = (await service.client.get("/stats/sequences")).json()["customers"]
            if seen.get(customer, {}).get("contiguous") == 5:
                return seen[customer]
            await asyncio.sleep(0.02)

    assert await asyncio.wait_for(counted(), 20) == {"contiguous": 5, "above": []}
    await service.stop()  # Commits what was acknowledged.
    offsets = await committed_offsets(bootstrap, group)
    assert sum(offsets.values()) == 5
    assert {tp.topic for tp in offsets} == {topic}
    assert all(isinstance(tp, TopicPartition) for tp in offsets)
