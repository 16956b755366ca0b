"""Container events against the real broker: started and stopped, idle and no longer idle,
a partition idle, a consumer that stops polling, each counted in the metrics."""

import asyncio

import pytest

from kafkaboot import ListenerEndpoint
from kafkaboot.listener.events import (
    ContainerEvent,
    ContainerStarted,
    ContainerStopped,
    ListenerIdle,
    ListenerNoLongerIdle,
    NonResponsiveConsumer,
    PartitionIdle,
)
from kafkaboot.observability.prometheus import Metrics
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


async def test_idle_events_come_and_go_with_records(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    registry = registry_for(
        kafka_bootstrap,
        listener={"idle-event-interval": "1s", "idle-partition-event-interval": "1500ms"},
    )
    metrics = Metrics(registry, KafkaTemplate(registry.settings))
    events: list[ContainerEvent] = []
    registry.on_event(events.append)
    idle_seen = asyncio.Event()

    @registry.event_listener(ListenerIdle)
    async def on_idle(event: ListenerIdle) -> None:  # An async callback runs as a task.
        idle_seen.set()

    handled = []

    async def on_value(value: bytes) -> None:
        handled.append(value)

    registry.register(
        ListenerEndpoint(handler=on_value, topics=(topic,), group_id=unique("g"), id="quiet")
    )
    async with registry:
        await asyncio.wait_for(idle_seen.wait(), 30)
        idle = [e for e in events if isinstance(e, ListenerIdle)]
        assert idle[0].listener_id == "quiet"
        assert idle[0].idle_for >= 1.0
        await produce(kafka_bootstrap, topic, [b"wake up"])
        await wait_for(lambda: any(isinstance(e, ListenerNoLongerIdle) for e in events))
        # Partition 1 never gets a record: it is reported idle on its own.
        await wait_for(
            lambda: any(isinstance(e, PartitionIdle) and e.partition == 1 for e in events)
        )
    assert isinstance(events[0], ContainerStarted)
    assert isinstance(events[-1], ContainerStopped)
    assert handled == [b"wake up"]
    text = metrics.exposition().decode()
    assert 'kafkaboot_listener_events_total{event="listener_idle",listener="quiet"}' in text
    assert 'kafkaboot_listener_events_total{event="container_started",listener="quiet"} 1.0' in text


async def test_a_consumer_that_stops_polling_is_reported(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    registry = registry_for(
        kafka_bootstrap, listener={"poll-timeout": "500ms", "monitor-interval": "1s"}
    )
    reported: list[NonResponsiveConsumer] = []
    registry.on_event(reported.append, NonResponsiveConsumer)
    release = asyncio.Event()

    async def stuck(value: bytes) -> None:
        await release.wait()  # The poll loop waits for the handler: no poll meanwhile.

    registry.register(
        ListenerEndpoint(handler=stuck, topics=(topic,), group_id=unique("g"), id="stuck")
    )
    await produce(kafka_bootstrap, topic, [b"x"])
    async with registry:
        await wait_for(lambda: reported, timeout=30, message="a NonResponsiveConsumer event")
        release.set()
    event = reported[0]
    assert event.listener_id == "stuck"
    assert event.consumer == "stuck-0"
    assert event.since_poll >= 1.5  # 3 x poll-timeout
