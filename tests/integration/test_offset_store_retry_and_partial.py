"""The offset store with retry topics, a batch whose save the store refuses for only some
of its partitions, and records another consumer stored first into a keyed table; on the
real broker and a real database (SQLite, and the session's PostgreSQL server). Each test
counts every record by id in the results table and reads ``kafka_offsets`` whole, so a
record stored twice or lost, or a row in the wrong group, fails it."""

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kafkaboot import (
    ConsumerRecord,
    DefaultErrorHandler,
    FailedRecord,
    FixedBackOff,
    ListenerRegistry,
    load_settings,
    retryable_topic,
)
from kafkaboot.offset_store import SqlOffsetStore
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    return request.getfixturevalue("postgres_url")


async def _prepare(url: str, keyed: bool = False) -> None:
    """The results table: one row per delivery a transaction kept, so a record stored twice
    shows as its id twice; ``keyed``: a second row for a record fails its insert instead."""
    key = ", PRIMARY KEY (topic, part, off)" if keyed else ""
    async with SqlOffsetStore(url) as store, store.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE events (id INTEGER NOT NULL, topic VARCHAR(255) NOT NULL, "
                f"part INTEGER NOT NULL, off BIGINT NOT NULL{key})"
            )
        )


async def _insert(session: AsyncSession, records: list[ConsumerRecord[str, str]]) -> None:
    await session.execute(
        text("INSERT INTO events (id, topic, part, off) VALUES (:id, :topic, :part, :off)"),
        [
            {"id": int(r.value), "topic": r.topic, "part": r.partition, "off": r.offset}
            for r in records
        ],
    )


async def _events(url: str) -> list[tuple[int, str, int, int]]:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        result = await connection.execute(
            text("SELECT id, topic, part, off FROM events ORDER BY id, topic")
        )
        return [tuple(row) for row in result]


async def _offset_rows(url: str) -> dict[tuple[str, str, int], int]:
    """Every row of ``kafka_offsets``: (group, topic, partition) -> next offset."""
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        result = await connection.execute(
            text('SELECT group_id, topic, "partition", next_offset FROM kafka_offsets')
        )
        return {(group, topic, partition): offset for group, topic, partition, offset in result}


async def _wait_for_offset_rows(
    url: str, expected: dict[tuple[str, str, int], int], timeout: float = 20.0
) -> None:
    """Poll ``kafka_offsets`` until it holds exactly ``expected``; the assertion names what
    it held instead."""
    deadline = time.monotonic() + timeout
    while True:
        found = await _offset_rows(url)
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"kafka_offsets held {found}, not {expected}, within {timeout}s")
        await asyncio.sleep(0.1)


class OtherOwner:
    """A rebalance listener that plays another consumer which stored partition 1 of
    ``topic`` up to offset 3 first (its rows and its offset): it runs after the
    stored-offset seek (there was none, so every position is 0) and before the first
    batch's transaction begins. Record ids are ``partitions * offset + partition``."""

    def __init__(self, url: str, group: str, topic: str, partitions: int) -> None:
        self.url, self.group, self.topic, self.partitions = url, group, topic, partitions

    async def on_partitions_assigned(self, assigned, consumer) -> None:
        async with SqlOffsetStore(self.url) as store:
            async with store.engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO events (id, topic, part, off) VALUES (:id, :topic, 1, :off)"),
                    [
                        {"id": self.partitions * off + 1, "topic": self.topic, "off": off}
                        for off in range(3)
                    ],
                )
            await store.advance(self.group, {TopicPartition(self.topic, 1): 3})

    def on_partitions_revoked(self, revoked, consumer) -> None:
        pass


async def test_retry_topics_keep_their_offsets_in_the_store_under_their_own_group(
    kafka_bootstrap, database_url
):
    """Record 2 fails once on the main topic after its insert: its transaction rolls back,
    it is forwarded to ``<topic>-retry-0``, whose listener (group ``<group>-retry-0``,
    inheriting the main listener's store) stores it there. Every id is in the results
    table once; ``kafka_offsets`` has one row per group and topic, at the end offsets."""
    await _prepare(database_url)
    topic = await create_topic(kafka_bootstrap, partitions=1)
    retry_topic = f"{topic}-retry-0"
    group = unique("stored-retry")
    kafka = {
        "bootstrap-servers": kafka_bootstrap,
        "consumer": {"auto-offset-reset": "earliest"},
        # From configuration, applied before the retry endpoints are derived from the main one.
        "listeners": {"events": {"offset-store": {"url": database_url}}},
    }
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    template = KafkaTemplate(settings)
    await template.start()
    registry = ListenerRegistry(settings, environ={}, template=template)
    handled: list[tuple[str, int]] = []

    # A back-off, so the retry listener usually polls the record before it is due and
    # holds it (without a transaction) until then.
    @retryable_topic(attempts=2, backoff=FixedBackOff(0.5))
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])
        handled.append((record.topic, int(record.value)))
        if record.topic == topic and record.value == "2":
            raise RuntimeError("the first try of id 2 fails after its insert")

    registry.listener(topic, group_id=group, id="events")(store_event)
    assert sorted(c.listener_id for c in registry) == ["events", "events-retry-0"]
    try:
        await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(5)])
        async with registry:
            await wait_for(lambda: (retry_topic, 2) in handled, message="id 2 on the retry topic")
            await _wait_for_offset_rows(
                database_url, {(group, topic, 0): 5, (f"{group}-retry-0", retry_topic, 0): 1}
            )
    finally:
        await template.stop()
    assert [i for t, i in handled if t == topic] == [0, 1, 2, 3, 4]
    assert [i for t, i in handled if t == retry_topic] == [2]
    # Id 2's first insert rolled back with its failure; its retry's insert is the one kept.
    assert await _events(database_url) == [
        (0, topic, 0, 0),
        (1, topic, 0, 1),
        (2, retry_topic, 0, 0),
        (3, topic, 0, 3),
        (4, topic, 0, 4),
    ]


async def test_a_batch_refused_for_one_partition_rolls_back_and_redoes_the_others(
    kafka_bootstrap, database_url
):
    """Three partitions of six records each arrive in one batch. Another consumer stored
    partition 1 up to offset 3 (its rows and its offset) after this one was positioned at
    0: the save is refused for partition 1 only, and the whole transaction rolls back.
    Partition 1's records below 3 count as finished and reading goes on from 3; partitions
    0 and 2 are read again from 0 and stored once."""
    # No key on the results: with one, the other consumer's rows would fail this one's
    # insert before its save is refused (the keyed test below).
    await _prepare(database_url)
    partitions = 3
    topic = await create_topic(kafka_bootstrap, partitions=partitions)
    group = unique("stored-partial")
    # Id i goes to partition i % 3, offset i // 3.
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(18)], partitions=partitions)

    registry = registry_for(kafka_bootstrap)
    batches: list[list[tuple[int, int]]] = []

    @registry.listener(
        topic,
        group_id=group,
        batch=True,
        offset_store=database_url,
        rebalance_listener=OtherOwner(database_url, group, topic, partitions),
    )
    async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
        await _insert(session, records)
        batches.append([(r.partition, r.offset) for r in records])

    everything = {(p, o) for p in range(partitions) for o in range(6)}
    after_refusal = everything - {(1, 0), (1, 1), (1, 2)}
    async with registry:
        await wait_for(
            lambda: {r for batch in batches[1:] for r in batch} == after_refusal,
            message="every record not stored by the other consumer, after the refused batch",
        )
        await _wait_for_offset_rows(database_url, {(group, topic, p): 6 for p in range(3)})
    # The refused batch covered all three partitions from 0 (the premise of this test)...
    assert set(batches[0]) == everything, "the first poll did not bring every partition"
    # ...and afterwards each record came once, partition 1 from the stored offset on.
    later = [r for batch in batches[1:] for r in batch]
    assert sorted(later) == sorted(after_refusal)
    assert await _events(database_url) == [
        (i, topic, i % partitions, i // partitions) for i in range(18)
    ]


async def test_a_refused_batch_into_a_keyed_table_loses_nothing(kafka_bootstrap, tmp_path):
    """The refusal above, with the results keyed by topic, partition and offset (as the
    sample central consumer's are): the other consumer's rows for partition 1, offsets 0-2,
    make this one's insert fail before its save. Partition 0's records and partition 1's
    from 3 on must still be stored."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url, keyed=True)
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("stored-keyed")
    # Id i goes to partition i % 2, offset i // 2.
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(8)], partitions=2)

    registry = registry_for(
        kafka_bootstrap,
        listener={"error-handler": {"backoff": {"initial": "0ms", "max-attempts": 2}}},
    )

    @registry.listener(
        topic,
        group_id=group,
        batch=True,
        offset_store=url,
        rebalance_listener=OtherOwner(url, group, topic, 2),
    )
    async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
        await _insert(session, records)

    async with registry:
        # Reached either way: by storing the records, or by skipping them.
        await _wait_for_offset_rows(url, {(group, topic, 0): 4, (group, topic, 1): 4})
    assert await _events(url) == [(i, topic, i % 2, i // 2) for i in range(8)]


async def test_a_record_listener_refused_by_a_keyed_table_recovers_nothing(
    kafka_bootstrap, tmp_path
):
    """The keyed refusal with a record listener (one transaction per record): the other
    consumer's rows make the inserts of partition 1's offsets 0-2 fail. Those records are
    stored already, so none of them is a failed record: none reaches the recoverer (a
    dead-letter topic would get records that were stored), and each record is stored once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    await _prepare(url, keyed=True)
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("stored-keyed-record")
    # Id i goes to partition i % 2, offset i // 2.
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(8)], partitions=2)
    recovered: list[tuple[int, int]] = []

    def recoverer(failure: FailedRecord) -> None:
        recovered.extend((r.partition, r.offset) for r in failure.records)

    registry = registry_for(
        kafka_bootstrap, error_handler=DefaultErrorHandler(FixedBackOff(0, 2), recoverer)
    )

    @registry.listener(
        topic,
        group_id=group,
        offset_store=url,
        rebalance_listener=OtherOwner(url, group, topic, 2),
    )
    async def store_event(record: ConsumerRecord[str, str], session: AsyncSession) -> None:
        await _insert(session, [record])

    async with registry:
        await _wait_for_offset_rows(url, {(group, topic, 0): 4, (group, topic, 1): 4})
    assert recovered == []
    assert await _events(url) == [(i, topic, i % 2, i // 2) for i in range(8)]
