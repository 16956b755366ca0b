"""The SQL offset store on SQLite (a file) and on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from sqlalchemy import text

from kafkaboot.offset_store import OffsetStoreError, OffsetStoreFenced, SqlOffsetStore, StoredRange

GROUP = "central"
TP0 = TopicPartition("events", 0)
TP1 = TopicPartition("events", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[SqlOffsetStore]:
    async with SqlOffsetStore(store_url) as started:
        async with started.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE results (id INTEGER PRIMARY KEY)"))
        yield started


async def _results(store: SqlOffsetStore) -> list[int]:
    async with store.engine.connect() as connection:
        return list(
            (await connection.execute(text("SELECT id FROM results ORDER BY id"))).scalars()
        )


@pytest.mark.asyncio
async def test_nothing_is_stored_for_a_new_group(store: SqlOffsetStore) -> None:
    assert await store.load(GROUP, {TP0, TP1}) == {}


@pytest.mark.asyncio
async def test_results_and_offsets_commit_together(store: SqlOffsetStore) -> None:
    async with store.transaction() as session:
        await session.execute(text("INSERT INTO results (id) VALUES (1), (2)"))
        await store.save(session, GROUP, {TP0: StoredRange(0, 2), TP1: StoredRange(5, 9)})

    assert await store.load(GROUP, {TP0, TP1}) == {TP0: 2, TP1: 9}
    assert await store.load("another-group", {TP0}) == {}
    assert await store.load(GROUP, {TP1}) == {TP1: 9}
    assert await _results(store) == [1, 2]


@pytest.mark.asyncio
async def test_a_failed_transaction_keeps_neither_results_nor_offsets(
    store: SqlOffsetStore,
) -> None:
    async def failing_handler() -> None:
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (1)"))
            await store.save(session, GROUP, {TP0: StoredRange(0, 1)})
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await failing_handler()

    assert await store.load(GROUP, {TP0}) == {}
    assert await _results(store) == []


@pytest.mark.asyncio
async def test_a_save_behind_the_stored_offset_is_fenced(store: SqlOffsetStore) -> None:
    async with store.transaction() as session:
        await store.save(session, GROUP, {TP0: StoredRange(0, 10)})

    async def zombie() -> None:
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (7)"))
            await store.save(session, GROUP, {TP1: StoredRange(0, 3), TP0: StoredRange(5, 12)})

    with pytest.raises(OffsetStoreFenced) as fenced:
        await zombie()

    assert fenced.value.stored == {TP0: 10}
    assert await store.load(GROUP, {TP0, TP1}) == {TP0: 10}
    assert await _results(store) == []


@pytest.mark.asyncio
async def test_a_save_may_start_past_the_stored_offset(store: SqlOffsetStore) -> None:
    """Records finished without the handler's transaction (filtered, dead-lettered, or
    transaction markers) leave gaps."""
    async with store.transaction() as session:
        await store.save(session, GROUP, {TP0: StoredRange(0, 10)})
    async with store.transaction() as session:
        await store.save(session, GROUP, {TP0: StoredRange(14, 20)})

    assert await store.load(GROUP, {TP0}) == {TP0: 20}


@pytest.mark.asyncio
async def test_advance_only_moves_forward(store: SqlOffsetStore) -> None:
    await store.advance(GROUP, {TP0: 5})
    await store.advance(GROUP, {TP0: 3, TP1: 1})
    assert await store.load(GROUP, {TP0, TP1}) == {TP0: 5, TP1: 1}
    await store.advance(GROUP, {TP0: 8})
    assert await store.load(GROUP, {TP0}) == {TP0: 8}


@pytest.mark.asyncio
async def test_of_two_concurrent_saves_of_the_same_records_one_is_fenced(
    store: SqlOffsetStore,
) -> None:
    """Two consumers that both believe they own a partition (a zombie after a rebalance):
    the second transaction waits for the first and is then refused, whichever database."""
    first_saved = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (1)"))
            await store.save(session, GROUP, {TP0: StoredRange(0, 5)})
            first_saved.set()
            await release_first.wait()

    async def second() -> None:
        await first_saved.wait()
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (2)"))
            await store.save(session, GROUP, {TP0: StoredRange(0, 5)})

    first_task = asyncio.create_task(first())
    second_task = asyncio.create_task(second())
    await first_saved.wait()
    # The second transaction cannot get past the first one's uncommitted save.
    done, _ = await asyncio.wait({second_task}, timeout=0.5)
    assert not done
    release_first.set()
    await first_task
    with pytest.raises(OffsetStoreFenced):
        await second_task

    assert await store.load(GROUP, {TP0}) == {TP0: 5}
    assert await _results(store) == [1]


@pytest.mark.asyncio
async def test_the_table_survives_a_restart(store_url: str) -> None:
    async with SqlOffsetStore(store_url) as store, store.transaction() as session:
        await store.save(session, GROUP, {TP0: StoredRange(0, 42)})
    async with SqlOffsetStore(store_url) as store:
        assert await store.load(GROUP, {TP0}) == {TP0: 42}


def test_a_url_without_a_scheme_names_the_fix() -> None:
    with pytest.raises(OffsetStoreError, match=r"sqlite\+aiosqlite:///central.db"):
        SqlOffsetStore("central.db")


def test_plain_urls_get_the_asyncio_drivers() -> None:
    assert SqlOffsetStore("sqlite:///x.db").url == "sqlite+aiosqlite:///x.db"
    assert SqlOffsetStore("postgresql://u:p@h/db").url == "postgresql+asyncpg://u:p@h/db"
    assert "p@" not in repr(SqlOffsetStore("postgresql://u:p@h/db"))


@pytest.mark.asyncio
async def test_other_databases_are_refused_with_the_reason() -> None:
    store = SqlOffsetStore("mysql+aiomysql://u@127.0.0.1/db")
    with pytest.raises(OffsetStoreError, match=r"SQLite and PostgreSQL|not installed"):
        await store.start()


@pytest.mark.asyncio
async def test_an_unreachable_database_fails_start_with_the_url(tmp_path: Path) -> None:
    store = SqlOffsetStore(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(OffsetStoreError, match="missing-dir does not exist; create it"):
        await store.start()


@pytest.mark.asyncio
async def test_a_handlers_own_commit_does_not_end_the_transaction(store: SqlOffsetStore) -> None:
    """The results commit with the offsets, whatever the handler's session calls."""

    async def handler_that_commits() -> None:
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (1)"))
            await session.commit()
            raise RuntimeError("failed after its own commit")

    with pytest.raises(RuntimeError, match="after its own commit"):
        await handler_that_commits()
    assert await _results(store) == []

    async with store.transaction() as session:
        await session.execute(text("INSERT INTO results (id) VALUES (2)"))
        await session.commit()
        await store.save(session, GROUP, {TP0: StoredRange(0, 1)})
    assert await _results(store) == [2]
    assert await store.load(GROUP, {TP0}) == {TP0: 1}


@pytest.mark.asyncio
async def test_a_handlers_rollback_is_refused_at_the_save(store: SqlOffsetStore) -> None:
    async def handler_that_rolls_back() -> None:
        async with store.transaction() as session:
            await session.execute(text("INSERT INTO results (id) VALUES (1)"))
            await session.rollback()
            await store.save(session, GROUP, {TP0: StoredRange(0, 1)})

    with pytest.raises(OffsetStoreError, match="rolled back"):
        await handler_that_rolls_back()
    assert await store.load(GROUP, {TP0}) == {}
    assert await _results(store) == []


@pytest.mark.asyncio
async def test_reading_the_offsets_does_not_wait_for_a_writer(store: SqlOffsetStore) -> None:
    """Another consumer's open batch does not hold up an assignment's read."""
    async with store.transaction() as session:
        await store.save(session, GROUP, {TP0: StoredRange(0, 3)})
        assert await asyncio.wait_for(store.load(GROUP, {TP0}), timeout=5) == {}


@pytest.mark.asyncio
async def test_a_stopped_store_opens_no_transaction(store_url: str) -> None:
    store = SqlOffsetStore(store_url)
    await store.start()
    await store.stop()
    with pytest.raises(OffsetStoreError, match="not started"):
        async with store.transaction():
            pass


@pytest.mark.asyncio
async def test_two_stores_starting_at_once_on_postgresql_both_start(postgres_url: str) -> None:
    """``--workers 2`` on a fresh database: both processes create the table at start. The
    second must wait for the first and find it, not fail on a second CREATE TABLE."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine, second = create_async_engine(postgres_url), SqlOffsetStore(postgres_url)
    try:
        async with engine.connect() as connection, connection.begin():
            # The first store's start, caught before its commit.
            await SqlOffsetStore(postgres_url)._create_table(connection)
            starting = asyncio.create_task(second.start())
            await _until_a_session_waits_for_a_lock(engine)
        await asyncio.wait_for(starting, 20)  # Started, without an error.
        assert await second.load("g", {TopicPartition("t", 0)}) == {}
    finally:
        await second.stop()
        await engine.dispose()


async def _until_a_session_waits_for_a_lock(engine, timeout: float = 20) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(timeout):
        while True:
            async with engine.connect() as probe:
                if (await probe.execute(query)).scalar():
                    return
            await asyncio.sleep(0.02)
