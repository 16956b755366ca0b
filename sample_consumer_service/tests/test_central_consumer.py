"""The central consumer's own tests: events published by sites are stored in the
``events`` table once each, their offsets with them, and /stats answers from the table:
on the real broker (``kafka_bootstrap``) and in memory (``memory_kafka``), with SQLite and
(on the real broker) PostgreSQL. Per-test topic, group and database come from the
environment, as the sample's ``${EVENTS_TOPIC:events}`` and ``${DATABASE_URL:...}``
placeholders read them."""

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from kafkaboot.offset_store import SqlOffsetStore
from kafkaboot.testing import commit_offsets, committed_offsets, unique_name
from sample_producer_service.models import Message

CONFIG = str(Path(__file__).parents[1] / "application.yml")
TARGET = "sample_consumer_service.listeners"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("kafka-postgresql", marks=pytest.mark.kafka),
    ]
)
def where(request, tmp_path):
    """(bootstrap servers, database URL)."""
    if request.param == "memory":
        bootstrap = request.getfixturevalue("memory_kafka").bootstrap_servers
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
    if request.param.endswith("postgresql"):
        return bootstrap, request.getfixturevalue("postgres_url")
    return bootstrap, f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"


@pytest.fixture
def in_memory(memory_kafka, kafkaboot_app, tmp_path):
    """Starts the service on the in-memory broker with a topic, group and SQLite database
    of the test's own (``service.topic``, ``service.database``)."""

    async def start():
        topic = unique_name("events")
        env = {
            "EVENTS_TOPIC": topic,
            "CENTRAL_GROUP": unique_name("central"),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'central.db'}",
        }
        bootstrap = memory_kafka.bootstrap_servers
        service = await kafkaboot_app(TARGET, bootstrap=bootstrap, config=CONFIG, env=env)
        service.topic, service.database = topic, env["DATABASE_URL"]
        return service

    return start


async def _publish(service, topic: str, customer: str, sequences: range, site: str) -> None:
    for sequence in sequences:
        message = Message(customer_id=customer, sequence=sequence, payload={"kWh": 3.2})
        await service.template.send_and_wait(
            topic, message, key=customer, headers={"instance-id": site}
        )


async def _stored(service, customer: str, count: int) -> dict:
    """/stats once ``count`` events of ``customer`` are in the table."""

    async def poll() -> dict:
        while True:
            seen = (await service.client.get("/stats/sequences")).json()["customers"]
            if seen.get(customer, {}).get("contiguous") == count:
                return (await service.client.get("/stats")).json()
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), 20)


async def _table(url: str, query: str) -> list[tuple]:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(query))]


@pytest.mark.asyncio
async def test_each_sites_events_are_stored_once_with_their_offsets(where, kafkaboot_app, caplog):
    bootstrap, database = where
    topic, group, customer = unique_name("events"), unique_name("central"), unique_name("c")
    env = {"EVENTS_TOPIC": topic, "CENTRAL_GROUP": group, "DATABASE_URL": database}
    service = await kafkaboot_app(TARGET, bootstrap=bootstrap, config=CONFIG, env=env)
    await _publish(service, topic, customer, range(5), "site-1")
    stats = await _stored(service, customer, 5)
    assert (stats["stored"], stats["unique"], stats["duplicates"], stats["gaps"]) == (5, 5, 0, 0)
    assert stats["per_instance"] == {"site-1": 5}
    assert set(stats["latest"]) == {"site-1"}
    assert stats["latency_ms"]["count"] == 5
    await service.stop()  # Kafka's commit too, for lag monitoring.

    rows = await _table(database, "SELECT customer_id, sequence, payload FROM events")
    assert sorted(rows) == [(customer, n, '{"kWh": 3.2}') for n in range(5)]
    stored = await _table(database, "SELECT group_id, topic, next_offset FROM kafka_offsets")
    assert {(g, t) for g, t, _ in stored} == {(group, topic)}
    assert sum(offset for *_, offset in stored) == 5
    assert sum((await committed_offsets(bootstrap, group)).values()) == 5

    # Kafka's committed offsets back to 0: a restart that went by them would read every
    # event again (and fail on the table's key). Started again on the same database, it
    # goes on from the stored offsets: nothing stored twice, nothing failed.
    await commit_offsets(
        bootstrap, group, dict.fromkeys(await committed_offsets(bootstrap, group), 0)
    )
    assert sum((await committed_offsets(bootstrap, group)).values()) == 0
    again = await kafkaboot_app(TARGET, bootstrap=bootstrap, config=CONFIG, env=env)
    await _publish(again, topic, customer, range(5, 7), "site-2")
    stats = await _stored(again, customer, 7)
    assert (stats["stored"], stats["duplicates"]) == (7, 0)
    assert stats["per_instance"] == {"site-1": 5, "site-2": 2}
    # Not a refused save caught afterwards either: the partitions started where stored.
    assert not [r for r in caplog.records if r.name == "kafkaboot.listener" and r.levelno >= 30]


@pytest.mark.asyncio
async def test_stats_count_a_resent_message_as_a_duplicate_and_a_missing_one_as_a_gap(
    in_memory,
):
    """A site that sends a message again (after a timeout, say) makes a second record:
    stored, since it is a record of its own, and counted as a duplicate by sequence."""
    service, customer = await in_memory(), unique_name("c")
    for sequence in (0, 1, 1, 3):
        await _publish(service, service.topic, customer, range(sequence, sequence + 1), "site-1")

    async def settled() -> dict:
        while (stats := (await service.client.get("/stats")).json())["stored"] < 4:
            await asyncio.sleep(0.02)
        return stats

    stats = await asyncio.wait_for(settled(), 20)
    assert (stats["stored"], stats["unique"], stats["duplicates"], stats["gaps"]) == (4, 3, 1, 1)
    sequences = (await service.client.get("/stats/sequences")).json()["customers"]
    assert sequences[customer] == {"contiguous": 2, "above": [3], "repeated": [1]}


@pytest.mark.asyncio
async def test_stats_before_any_event_are_zero(in_memory):
    service = await in_memory()
    stats = (await service.client.get("/stats")).json()
    assert (stats["stored"], stats["customers"], stats["latency_ms"]) == (0, 0, {})
    assert (await service.client.get("/stats/sequences")).json()["customers"] == {}


@pytest.mark.asyncio
async def test_a_tombstone_is_skipped_with_a_warning_and_the_events_around_it_stored(
    in_memory, caplog
):
    service, customer = await in_memory(), unique_name("c")
    topic = service.topic
    await _publish(service, topic, customer, range(1), "site-1")
    await service.template.send_and_wait(topic, None, key=customer)
    await _publish(service, topic, customer, range(1, 2), "site-1")
    stats = await _stored(service, customer, 2)
    assert (stats["stored"], stats["duplicates"]) == (2, 0)
    # The same key, so the same partition: the tombstone is its second record, and the
    # stored offset is past all three.
    assert re.search(rf"skipped a tombstone at {topic}-\d+@1\b", caplog.text)
    await service.stop()
    stored = await _table(service.database, "SELECT next_offset FROM kafka_offsets")
    assert stored == [(3,)]
