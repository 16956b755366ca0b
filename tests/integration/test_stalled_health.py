"""Health that sees consumption: a partition stuck behind one record is reported stalled
by readiness (503, naming listener, partition, lag and since when) and by /actuator/health,
and is ready again once the record finishes."""

import asyncio

import pytest

from kafkaboot import ListenerEndpoint
from kafkaboot.application import KafkaBootApplication

from .kafka_helpers import create_topic, produce, unique, wait_for

pytestmark = pytest.mark.asyncio


async def test_a_stuck_partition_is_stalled_until_it_moves(kafka_bootstrap, caplog):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    application = KafkaBootApplication(
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
            },
            "management": {"health": {"kafka": {"stalled-after": "2s"}}},
        },
        startup_deadline=30,
    )
    release = asyncio.Event()
    handled = []

    async def on_value(value: bytes) -> None:
        if value == b"stuck":
            await release.wait()
        handled.append(value)

    application.registry.register(
        ListenerEndpoint(
            handler=on_value, topics=(topic,), group_id=unique("g"), id="slow", concurrency=2
        )
    )
    await produce(kafka_bootstrap, topic, [b"ok"] * 4, partitions=2)
    async with application:
        await wait_for(lambda: len(handled) == 4, message="the first records")

        async def ready():
            return (await application.readiness())[0]

        await wait_for_async(ready, True)
        await produce(kafka_bootstrap, topic, [b"stuck", b"behind", b"it"])  # Partition 0.
        await wait_for_async(ready, False, timeout=30)
        _, details = await application.readiness()
        [stall] = details["stalled"]
        assert (stall["listener"], stall["topic"], stall["partition"]) == ("slow", topic, 0)
        assert stall["lag"] == 3
        assert stall["stalled_for_s"] >= 2
        assert stall["paused"] is False
        assert "since" in stall
        await wait_for(lambda: f"{topic}-0 is stalled: lag 3" in caplog.text)
        component = application.health.kafka_component()
        assert component["status"] == "STALLED"
        assert component["details"]["stalled"][0]["partition"] == 0
        release.set()
        await wait_for_async(ready, True, timeout=30)
        assert application.health.kafka_component() == {"status": "UP"}
    assert handled[4:] == [b"stuck", b"behind", b"it"]


async def wait_for_async(check, expected, timeout=20):
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await check()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value}, not {expected}"
        await asyncio.sleep(0.2)
