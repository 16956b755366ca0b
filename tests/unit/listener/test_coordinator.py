"""kafkaboot reads aiokafka's private group coordinator in one place; these pin the names it
reads to aiokafka's real classes, so an upgrade that renames them fails here."""

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.group_coordinator import GroupCoordinator

from kafkaboot.listener.coordinator import group_coordinator, knows_coordinator


@pytest.mark.asyncio
async def test_a_consumer_not_started_has_no_coordinator():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="g")
    assert hasattr(consumer, "_coordinator")
    assert group_coordinator(consumer) is None
    assert not knows_coordinator(consumer)
    await consumer.stop()


def test_aiokafka_group_coordinator_keeps_the_coordinator_id_and_commits():
    assert "coordinator_id" in GroupCoordinator.__init__.__code__.co_names
    assert callable(GroupCoordinator.commit_offsets)
