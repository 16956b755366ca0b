"""The offset store on SQLAlchemy 2 (asyncio): SQLite through aiosqlite as the embedded
default, PostgreSQL through asyncpg for production, chosen by URL.

Offsets live in one table, ``kafka_offsets(group_id, topic, partition, next_offset)``,
created on start. A save is an upsert whose update only applies while the stored offset has
not passed the range's first offset; in PostgreSQL the row lock serializes concurrent saves
and the condition is evaluated on the latest committed row, and SQLite transactions here
begin with ``BEGIN IMMEDIATE`` (one writer at a time, waiting up to ``busy_timeout``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition

from kafkaboot.config.secrets import masked_url
from kafkaboot.offset_store.store import OffsetStoreError, OffsetStoreFenced, StoredRange

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

__all__ = ["SqlOffsetStore", "async_url"]

TABLE = "kafka_offsets"
_OUTER = "kafkaboot_offset_store_transaction"
"""Where a session keeps the store's transaction it was given (``session.info``)."""
_SUPPORTED = ("sqlite", "postgresql")
_CREATE_LOCK = 0x6B62_6F66  # "kbof": the advisory lock that serializes creating the table.


class SqlOffsetStore:
    """Offsets in a SQL database reached by a SQLAlchemy URL.

    Args:
        url: ``sqlite+aiosqlite:///central.db`` or
            ``postgresql+asyncpg://user:password@host/db``; a plain ``sqlite://`` or
            ``postgresql://`` URL gets the asyncio driver.
        busy_timeout: SQLite: how long a transaction waits for another writer (seconds).
        engine_options: passed on to ``create_async_engine`` (pool size, echo...).

    Raises:
        OffsetStoreError: SQLAlchemy or the URL's driver is not installed, or the URL names
            a database other than SQLite or PostgreSQL.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 30.0,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = async_url(url)
        self.busy_timeout = busy_timeout
        self.engine_options = dict(engine_options or {})
        self._engine: AsyncEngine | None = None
        self._table = _offsets_table()

    def __repr__(self) -> str:
        return f"SqlOffsetStore({masked_url(self.url)!r})"

    @property
    def engine(self) -> AsyncEngine:
        """The engine the store's sessions use (started)."""
        if self._engine is None:
            raise OffsetStoreError(f"{self!r} is not started; call start() first")
        return self._engine

    @property
    def session_type(self) -> type:
        from sqlalchemy.ext.asyncio import AsyncSession

        return AsyncSession

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def start(self) -> None:
        if self._engine is not None:
            raise OffsetStoreError(f"{self!r} is already started")
        from sqlalchemy.ext.asyncio import create_async_engine

        options = dict(self.engine_options)
        _check_sqlite_directory(self.url)
        if self.url.startswith("sqlite"):
            options.setdefault("connect_args", {}).setdefault("timeout", self.busy_timeout)
        try:
            engine = create_async_engine(self.url, **options)
        except ImportError as exc:
            raise OffsetStoreError(
                f"the offset store {masked_url(self.url)} needs a driver that is not installed "
                f"({exc}); install kafkaboot[sql]"
            ) from exc
        except Exception as exc:  # ArgumentError, a synchronous driver: the URL is wrong.
            raise OffsetStoreError(
                f"the offset store URL {masked_url(self.url)} cannot be used: {exc}; write e.g. "
                "sqlite+aiosqlite:///central.db or postgresql+asyncpg://user@host/db"
            ) from exc
        if engine.dialect.name not in _SUPPORTED:
            await engine.dispose()
            raise OffsetStoreError(
                f"the offset store supports SQLite and PostgreSQL, not {engine.dialect.name} "
                f"({masked_url(self.url)})"
            )
        if engine.dialect.name == "sqlite":
            _take_over_sqlite_transactions(engine)
        try:
            async with engine.begin() as connection:
                await self._create_table(connection)
        except Exception as exc:
            await engine.dispose()
            raise OffsetStoreError(
                f"cannot open the offset store {masked_url(self.url)}: {exc}"
            ) from exc
        self._engine = engine

    async def _create_table(self, connection: AsyncConnection) -> None:
        if connection.dialect.name == "postgresql":
            # Stores starting at once (``--workers N`` on a fresh database): the second waits
            # for the first's commit, then finds the table; two CREATE TABLE at once fail one.
            from sqlalchemy import func, select

            await connection.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))
        await connection.run_sync(self._table.metadata.create_all)

    async def stop(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> SqlOffsetStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def load(
        self, group_id: str, partitions: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        from sqlalchemy import select

        table = self._table
        topics = {tp.topic for tp in partitions}
        query = select(table.c.topic, table.c.partition, table.c.next_offset).where(
            table.c.group_id == group_id, table.c.topic.in_(topics)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        found = {TopicPartition(topic, partition): offset for topic, partition, offset in rows}
        return {tp: offset for tp, offset in found.items() if tp in partitions}

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The transaction belongs to the store, not to the session it yields: a handler's
        ``session.commit()`` only flushes (its results still commit with the offsets), and
        a ``session.rollback()`` ends it, which ``save`` then refuses."""
        from sqlalchemy.ext.asyncio import AsyncSession

        async with self.engine.connect() as connection:
            await connection.execution_options(kafkaboot_writes=True)
            async with connection.begin() as outer:
                session = AsyncSession(
                    bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False
                )
                session.info[_OUTER] = outer
                try:
                    yield session
                finally:
                    await session.close()

    async def save(
        self, session: AsyncSession, group_id: str, ranges: Mapping[TopicPartition, StoredRange]
    ) -> None:
        outer = session.info.get(_OUTER)
        if outer is not None and not outer.is_active:
            raise OffsetStoreError(
                "the handler rolled back the offset store's transaction, so its results are "
                "gone and the offsets are not saved; raise an exception to roll back instead"
            )
        table = self._table
        insert = _insert_for(self.dialect)
        fenced: dict[TopicPartition, int] = {}
        for tp, stored in sorted(ranges.items()):
            statement = insert(table).values(
                group_id=group_id,
                topic=tp.topic,
                partition=tp.partition,
                next_offset=stored.next_offset,
            )
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.group_id, table.c.topic, table.c.partition],
                set_={"next_offset": statement.excluded.next_offset},
                where=table.c.next_offset <= stored.first,
            ).returning(table.c.next_offset)
            if (await session.execute(statement)).first() is None:
                fenced[tp] = await self._stored(session, group_id, tp)
        if fenced:
            raise OffsetStoreFenced(group_id, fenced)

    async def advance(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        table = self._table
        insert = _insert_for(self.dialect)
        async with self.transaction() as session:
            for tp, offset in sorted(offsets.items()):
                statement = insert(table).values(
                    group_id=group_id, topic=tp.topic, partition=tp.partition, next_offset=offset
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[table.c.group_id, table.c.topic, table.c.partition],
                        set_={"next_offset": statement.excluded.next_offset},
                        where=table.c.next_offset < statement.excluded.next_offset,
                    )
                )

    async def _stored(self, session: AsyncSession, group_id: str, tp: TopicPartition) -> int:
        from sqlalchemy import select

        table = self._table
        query = select(table.c.next_offset).where(
            table.c.group_id == group_id,
            table.c.topic == tp.topic,
            table.c.partition == tp.partition,
        )
        return int((await session.execute(query)).scalar_one())


def _offsets_table() -> Any:
    """The table, on a metadata of its own (users' models have theirs)."""
    try:
        from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table
    except ImportError as exc:
        raise OffsetStoreError(
            "the SQL offset store needs SQLAlchemy; install kafkaboot[sql]"
        ) from exc
    return Table(
        TABLE,
        MetaData(),
        Column("group_id", String(255), primary_key=True),
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("next_offset", BigInteger, nullable=False),
    )


def _insert_for(dialect: str) -> Any:
    """The dialect's ``insert`` (the one with ``on_conflict_do_update``)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    """SQLite's write transactions begin with ``BEGIN IMMEDIATE`` (sqlite3 would begin
    lazily, at the first write, and let two transactions read the same stored offset
    before either writes); reads begin with a plain ``BEGIN``, and WAL lets them run
    beside the writer (an assignment's ``load``, a stats query)."""
    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (below).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def begin(connection: Any) -> None:
        writes = connection.get_execution_options().get("kafkaboot_writes", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _check_sqlite_directory(url: str) -> None:
    """A SQLite file in a directory that does not exist: said before connecting (SQLite
    only says "unable to open database file")."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent
    if not directory.is_dir():
        raise OffsetStoreError(
            f"cannot open the offset store {url}: the directory {directory} does not exist; "
            "create it, or point the URL at an existing one"
        )


def async_url(url: str) -> str:
    """``url`` with the asyncio driver where it names none (``sqlite://``,
    ``postgresql://``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise OffsetStoreError(
            f"offset store URL {url!r} has no scheme; write e.g. sqlite+aiosqlite:///central.db "
            "or postgresql+asyncpg://user:password@host/db"
        )
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return url
