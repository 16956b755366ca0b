"""Readiness of real instances against a real broker: more instances of a group than
partitions of one of its topics."""

import asyncio
import time

import pytest

from kafkaboot import load_settings
from kafkaboot.application import KafkaBootApplication

from .kafka_helpers import create_topic, unique

pytestmark = pytest.mark.asyncio


def _instance(bootstrap, narrow, wide, group):
    """One replica of a service: a listener on a 1-partition topic and one on a 2-partition
    topic, each in its own consumer group shared by every replica."""
    settings = load_settings(
        environ={},
        overrides={"kafka": {"bootstrap-servers": bootstrap, "admin": {"auto-create": False}}},
    )
    application = KafkaBootApplication(settings=settings, startup_deadline=30)

    async def handle(value: bytes) -> None:
        pass

    application.registry.listener(narrow, group_id=f"{group}-narrow", id="narrow")(handle)
    application.registry.listener(wide, group_id=f"{group}-wide", id="wide")(handle)
    return application


async def _wait_ready(applications, timeout):
    deadline = time.monotonic() + timeout
    while True:
        results = [await a.readiness() for a in applications]
        if all(ready for ready, _ in results):
            return [details for _, details in results]
        assert time.monotonic() < deadline, f"not every instance turned ready: {results}"
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_every_instance_turns_ready_whether_or_not_it_holds_a_partition(kafka_bootstrap):
    """Two instances of a group, a topic with one partition: one of them is assigned nothing
    on that listener, and it is ready all the same (issue 13, scenario 11)."""
    narrow = await create_topic(kafka_bootstrap, partitions=1, prefix="narrow")
    wide = await create_topic(kafka_bootstrap, partitions=2, prefix="wide")
    group = unique("replicas")
    first = _instance(kafka_bootstrap, narrow, wide, group)
    second = _instance(kafka_bootstrap, narrow, wide, group)
    async with first, second:
        details = await _wait_ready([first, second], timeout=45)
    narrow_partitions = sorted(d["listeners"]["narrow"]["partitions"] for d in details)
    assert narrow_partitions == [0, 1]
    assert [d["listeners"]["wide"]["partitions"] for d in details] == [1, 1]
    for found in details:
        assert found["listeners"]["narrow"]["consumers_in_group"] == 1
