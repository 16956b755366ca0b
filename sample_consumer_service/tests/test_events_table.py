"""The ``events`` table is created by the first batch that needs it: two processes whose
first batches come at once (``--workers 2`` on a fresh database) must not fail one of
them on PostgreSQL, where two concurrent ``CREATE TABLE`` of one name make the second fail
once the first commits."""

import asyncio

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from kafkaboot.offset_store import SqlOffsetStore
from sample_consumer_service.events import (
    SITE_LENGTH,
    events,
    read_sequences,
    read_stats,
    store_batch,
)
from sample_producer_service.models import Message


def _records(partition: int, count: int, site: bytes = b"site-1") -> list[ConsumerRecord]:
    return [
        ConsumerRecord(
            "events",
            partition,
            offset,
            0,
            0,
            b"c",
            Message(customer_id="c", sequence=offset),
            None,
            0,
            0,
            [("instance-id", site)],
        )
        for offset in range(count)
    ]


async def _waiting_for_a_lock(engine, timeout: float = 20) -> None:
    """Until some other session of this database waits for a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as probe:
        async with asyncio.timeout(timeout):
            while not (await probe.execute(query)).scalar():
                await asyncio.sleep(0.02)
                await probe.rollback()


@pytest.mark.asyncio
async def test_two_first_batches_at_once_both_store_on_postgresql(postgres_url):
    first, second = create_async_engine(postgres_url), create_async_engine(postgres_url)
    try:
        async with AsyncSession(first) as one, AsyncSession(second) as two:
            await one.begin()
            await store_batch(one, _records(0, 3), "instance-id")  # Creates it, uncommitted.
            later = asyncio.create_task(_in_transaction(two, _records(1, 2)))
            await _waiting_for_a_lock(first)
            await one.commit()
            await later  # Stored too, without an error.
        async with first.connect() as connection:
            count = await connection.execute(select(func.count()).select_from(events))
            assert count.scalar() == 5
    finally:
        await first.dispose()
        await second.dispose()


async def _in_transaction(session: AsyncSession, records: list[ConsumerRecord]) -> None:
    async with session.begin():
        await store_batch(session, records, "instance-id")


@pytest.mark.asyncio
async def test_a_rolled_back_first_batch_does_not_stop_the_next_from_creating_the_table(tmp_path):
    """The batch that created the table can roll back (a refused save, a failure after its
    insert): the table goes with it, and the next batch must create it again. Through the
    offset store's own transactions, as the listener runs them."""
    async with SqlOffsetStore(f"sqlite+aiosqlite:///{tmp_path / 'central.db'}") as store:
        with pytest.raises(RuntimeError):
            await _fail_after_storing(store, _records(0, 3))
        async with store.transaction() as session:
            await store_batch(session, _records(0, 3), "instance-id")
        async with store.engine.connect() as connection:
            count = await connection.execute(select(func.count()).select_from(events))
            assert count.scalar() == 3


async def _fail_after_storing(store: SqlOffsetStore, records: list[ConsumerRecord]) -> None:
    async with store.transaction() as session:
        await store_batch(session, records, "instance-id")
        raise RuntimeError("the batch fails after its insert")


@pytest.mark.asyncio
async def test_a_site_label_postgresql_could_not_store_is_escaped_and_cut(postgres_url):
    """The label only names the site in /stats: a NUL (which PostgreSQL refuses in text)
    or a label over the column's length must not fail the batch of valid events."""
    label = b"site-\x00-" + b"\xff" * 100  # 4 characters per escaped byte: over 255.
    async with SqlOffsetStore(postgres_url) as store:
        async with store.transaction() as session:
            await store_batch(session, _records(0, 2, site=label), "instance-id")
        async with store.engine.connect() as connection:
            [(site,)] = (await connection.execute(select(events.c.site).distinct())).all()
    assert site.startswith("site-\\x00-\\xff")
    assert len(site) == SITE_LENGTH


@pytest.mark.asyncio
@pytest.mark.parametrize("read", [read_stats, read_sequences], ids=["stats", "sequences"])
async def test_an_answer_reads_one_snapshot_on_postgresql(postgres_url, read):
    """Each of its queries sees the same rows, so ``stored - unique`` never counts rows
    another transaction committed between two of them."""
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            await (read(connection, 300.0) if read is read_stats else read(connection))
            level = await connection.execute(
                text("SELECT current_setting('transaction_isolation')")
            )
            assert level.scalar() == "repeatable read"
    finally:
        await engine.dispose()
