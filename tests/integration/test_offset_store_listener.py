"""Listeners with an offset store, on the real broker and a real database (SQLite, and the
session's PostgreSQL server): results and offsets commit together, partitions start from
the stored offsets, a failure rolls both back, a save behind the store is refused."""

from pathlib import Path

import pytest
from aiokafka import TopicPartition
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kafkaboot import ConsumerRecord
from kafkaboot.offset_store import SqlOffsetStore

from .kafka_helpers import (
    committed,
    create_topic,
    produce,
    registry_for,
    unique,
    wait_for,
    wait_for_committed,
)

pytestmark = pytest.mark.asyncio


class Event(BaseModel):
    id: int


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    return request.getfixturevalue("postgres_url")


async def _prepare(url: str) -> None:
    async with SqlOffsetStore(url) as store, store.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE events (id INTEGER NOT NULL, topic VARCHAR(255), "
                "part INTEGER, off BIGINT, PRIMARY KEY (part, off))"
            )
        )


async def _rows(url: str) -> list[tuple[int, int, int]]:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        result = await connection.execute(text("SELECT id, part, off FROM events ORDER BY id"))
        return [tuple(row) for row in result]


async def _stored(url: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    async with SqlOffsetStore(url) as store:
        found = await store.load(group, {TopicPartition(topic, p) for p in range(partitions)})
    return {tp.partition: offset for tp, offset in found.items()}


async def _insert(session: AsyncSession, records: list[ConsumerRecord[str, str]]) -> None:
    await session.execute(
        text("INSERT INTO events (id, topic, part, off) VALUES (:id, :topic, :part, :off)"),
        [
            {
                "id": Event.model_validate_json(r.value).id,
                "topic": r.topic,
                "part": r.partition,
                "off": r.offset,
            }
            for r in records
        ],
    )


async def test_a_batch_listener_stores_results_and_offsets_together(kafka_bootstrap, database_url):
    await _prepare(database_url)
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("stored")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(40)], partitions=2)
    registry = registry_for(kafka_bootstrap)
    handled = []

    @registry.listener(topic, group_id=group, batch=True, offset_store=database_url)
    async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
        await _insert(session, records)
        handled.extend(records)

    async with registry:
        await wait_for(lambda: len(handled) == 40, message="40 events")
    assert [row[0] for row in await _rows(database_url)] == list(range(40))
    assert await _stored(database_url, group, topic, 2) == {0: 20, 1: 20}
    # Kafka's committed offsets follow, for lag monitoring.
    assert await committed(kafka_bootstrap, group, topic, 2) == {0: 20, 1: 20}


async def test_partitions_start_from_the_stored_offsets_not_the_committed_ones(
    kafka_bootstrap, database_url
):
    await _prepare(database_url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("resume")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(10)])
    async with SqlOffsetStore(database_url) as store:
        await store.advance(group, {TopicPartition(topic, 0): 6})  # Kafka has nothing.
    registry = registry_for(kafka_bootstrap)
    handled: list[int] = []

    @registry.listener(topic, group_id=group, offset_store=database_url)
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])
        handled.append(record.offset)

    async with registry:
        await wait_for(lambda: len(handled) == 4, message="the records after the stored offset")
    assert handled == [6, 7, 8, 9]  # In order: anything before 6 would have come first.
    assert await _stored(database_url, group, topic, 1) == {0: 10}


async def test_a_failed_batch_rolls_back_results_and_offsets_and_is_retried(
    kafka_bootstrap, database_url
):
    await _prepare(database_url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("rollback")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(10)])
    registry = registry_for(
        kafka_bootstrap,
        listener={"error-handler": {"backoff": {"initial": "0ms", "max-attempts": 3}}},
    )
    attempts = []

    @registry.listener(topic, group_id=group, batch=True, offset_store=database_url)
    async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
        await _insert(session, records)  # Written, then rolled back on the first attempt.
        attempts.append([r.offset for r in records])
        if len(attempts) == 1:
            raise RuntimeError("the database said no")

    async with registry:
        await wait_for(lambda: sum(len(a) for a in attempts[1:]) >= 10, message="the batch retried")
    assert [row[0] for row in await _rows(database_url)] == list(range(10))
    assert await _stored(database_url, group, topic, 1) == {0: 10}


async def test_a_save_the_store_is_past_is_refused_and_reading_skips_to_the_stored_offset(
    kafka_bootstrap, database_url
):
    """Another consumer (the partition's owner in the store's eyes) stores records 0-4
    after this one was positioned at 0: this one's batch rolls back, and it goes on from 5
    without writing 0-4 a second time."""
    await _prepare(database_url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("fenced")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(10)])
    tp = TopicPartition(topic, 0)

    class OtherOwner:
        """Runs after the stored-offset seek (there was none, so the position is 0)."""

        async def on_partitions_assigned(self, assigned, consumer) -> None:
            async with SqlOffsetStore(database_url) as store:
                async with store.engine.begin() as connection:
                    await connection.execute(
                        text("INSERT INTO events (id, topic, part, off) VALUES (-1, 'x', 9, 9)")
                    )
                await store.advance(group, {tp: 5})

        def on_partitions_revoked(self, revoked, consumer) -> None:
            pass

    registry = registry_for(kafka_bootstrap)
    handled: list[list[int]] = []

    @registry.listener(
        topic,
        group_id=group,
        batch=True,
        offset_store=database_url,
        rebalance_listener=OtherOwner(),
    )
    async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
        await _insert(session, records)
        handled.append([r.offset for r in records])

    async with registry:
        await wait_for(lambda: len(handled) == 2, message="the batch refused, then the next")
    assert handled[0][0] == 0  # Positioned at 0, and refused when it saved...
    assert handled[1] == [5, 6, 7, 8, 9]  # ...then read again from the stored offset.
    assert [row[0] for row in await _rows(database_url)] == [-1, 5, 6, 7, 8, 9]
    assert await _stored(database_url, group, topic, 1) == {0: 10}


async def test_filtered_records_move_the_stored_offset_at_the_commit(kafka_bootstrap, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("filtered")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(6)])
    registry = registry_for(kafka_bootstrap)
    handled: list[int] = []

    @registry.listener(
        topic, group_id=group, offset_store=url, filter=lambda record: record.offset < 3
    )
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])
        handled.append(record.offset)

    async with registry:
        await wait_for(lambda: len(handled) == 3, message="the three kept records")
        # The filtered records may come in a later poll: until Kafka's commit passes them.
        await wait_for_committed(kafka_bootstrap, group, topic, {0: 6})
    # The store moved to 6 before Kafka's commit, so a restart does not read the filtered
    # records again.
    assert handled == [0, 1, 2]
    assert await _stored(url, group, topic, 1) == {0: 6}


async def test_a_record_listener_skips_records_the_store_is_past(kafka_bootstrap, tmp_path):
    """The record-at-a-time variant of the refusal: offset 0 is refused, 1-4 are known to
    be stored without another transaction, 5-9 are stored."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("fenced-records")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(10)])
    tp = TopicPartition(topic, 0)

    class OtherOwner:
        async def on_partitions_assigned(self, assigned, consumer) -> None:
            async with SqlOffsetStore(url) as store:
                await store.advance(group, {tp: 5})

    registry = registry_for(kafka_bootstrap)
    handled: list[int] = []

    @registry.listener(topic, group_id=group, offset_store=url, rebalance_listener=OtherOwner())
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])
        handled.append(record.offset)

    async with registry:
        await wait_for(lambda: handled[-1:] == [9], message="the records up to offset 9")
    assert handled == [0, 5, 6, 7, 8, 9]
    assert [row[0] for row in await _rows(url)] == [5, 6, 7, 8, 9]
    assert await _stored(url, group, topic, 1) == {0: 10}


async def test_a_failed_record_rolls_back_and_is_stored_once_on_its_retry(
    kafka_bootstrap, tmp_path
):
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("record-rollback")
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(3)])
    registry = registry_for(
        kafka_bootstrap,
        listener={"error-handler": {"backoff": {"initial": "0ms", "max-attempts": 3}}},
    )
    attempts: list[int] = []

    @registry.listener(topic, group_id=group, offset_store=url)
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])
        attempts.append(record.offset)
        if attempts.count(1) == 1 and record.offset == 1:
            raise RuntimeError("the first try of offset 1 fails after its insert")

    async with registry:
        await wait_for(lambda: attempts[-1:] == [2], message="offset 2 handled")
    assert attempts == [0, 1, 1, 2]
    assert [row[0] for row in await _rows(url)] == [0, 1, 2]
    assert await _stored(url, group, topic, 1) == {0: 3}


async def test_a_recovered_record_moves_the_stored_offset_at_the_commit(kafka_bootstrap, tmp_path):
    """The last record cannot be decoded: it is recovered (logged) without a transaction,
    and the store moves past it with Kafka's commit, so a restart does not read it again."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("recovered")
    await produce(kafka_bootstrap, topic, [b'{"id": 0}', b"{not json"])
    registry = registry_for(kafka_bootstrap)
    handled: list[int] = []

    @registry.listener(topic, group_id=group, offset_store=url)
    async def store_event(event: Event, session: AsyncSession) -> None:
        await session.execute(
            text("INSERT INTO events (id, topic, part, off) VALUES (:id, 't', 0, :id)"),
            {"id": event.id},
        )
        handled.append(event.id)

    async with registry:
        await wait_for(lambda: handled == [0], message="the good record")
        await wait_for_committed(kafka_bootstrap, group, topic, {0: 2})
    assert await _stored(url, group, topic, 1) == {0: 2}
