"""The ``events`` table is created by the first batch that needs it: two processes whose
first batches come at once (``--workers 2`` on a fresh database) must not fail one of
them on PostgreSQL, where two concurrent ``CREATE TABLE`` of one name make the second fail
once the first commits."""

import asyncio

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from sample_consumer_service.events import events, store_batch
from sample_producer_service.models import Message


def _records(partition: int, count: int) -> list[ConsumerRecord]:
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
            [("instance-id", b"site-1")],
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
