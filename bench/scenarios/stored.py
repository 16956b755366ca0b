"""Stored: a pre-filled topic kept in a database through a batch listener with an offset
store (each poll's events inserted, and the partitions' next offsets saved, in one
transaction), against a raw aiokafka + SQLAlchemy loop doing the same transaction per
poll. SQLite (a file, WAL) and PostgreSQL (a server started for the run, when its binaries
are installed)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bench.harness import Measured, Row, repeat
from bench.workload import PARTITIONS, Event, fill, payload, registry_for
from kafkaboot import ConsumerRecord
from kafkaboot.offset_store import SqlOffsetStore

metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("part", Integer, primary_key=True),
    Column("off", BigInteger, primary_key=True),
    Column("event_id", String(32), nullable=False),
    Column("site", String(32), nullable=False),
    Column("amount", Float, nullable=False),
    Column("note", String(255), nullable=False),
)
offsets = Table(
    "raw_offsets",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
Run = Callable[[str, str, int, str], Awaitable[float]]


def _rows(records: list[Any]) -> list[dict[str, Any]]:
    decode = Event.__pydantic_validator__.validate_json
    rows = []
    for r in records:
        e = decode(r.value) if isinstance(r.value, bytes) else r.value
        rows.append(
            {
                "part": r.partition,
                "off": r.offset,
                "event_id": e.event_id,
                "site": e.site,
                "amount": e.amount,
                "note": e.note,
            }
        )
    return rows


async def _reset(url: str) -> None:
    """Empty tables for a run (the store's kafka_offsets too)."""
    async with SqlOffsetStore(url) as store, store.engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
        await connection.run_sync(metadata.create_all)
        await connection.execute(text("DELETE FROM kafka_offsets"))


async def _count(url: str) -> int:
    async with SqlOffsetStore(url) as store, store.engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM events"))).scalar_one())


async def raw(bootstrap: str, topic: str, records: int, url: str) -> float:
    """By hand: per poll, one transaction that inserts the poll's events and upserts each
    partition's next offset; then a Kafka commit. The engine is set up as the store's is
    (SQLite: WAL, BEGIN IMMEDIATE), so the database does the same work."""
    await _reset(url)
    async with SqlOffsetStore(url) as store:
        engine, dialect = store.engine, store.dialect
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        group = f"raw-{uuid.uuid4().hex[:6]}"
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=500,
        )
        await consumer.start()
        try:
            done, started = 0, 0.0
            while done < records:
                batches = await consumer.getmany(timeout_ms=1000)
                if not batches:
                    continue
                started = started or time.perf_counter()
                polled = [r for rs in batches.values() for r in rs]
                async with AsyncSession(engine) as session, session.begin():
                    await session.execute(insert(events), _rows(polled))
                    for tp, rs in batches.items():
                        statement = upsert(offsets).values(
                            group_id=group,
                            topic=tp.topic,
                            partition=tp.partition,
                            next_offset=rs[-1].offset + 1,
                        )
                        await session.execute(
                            statement.on_conflict_do_update(
                                index_elements=[
                                    offsets.c.group_id,
                                    offsets.c.topic,
                                    offsets.c.partition,
                                ],
                                set_={"next_offset": statement.excluded.next_offset},
                            )
                        )
                await consumer.commit()
                done += len(polled)
            return done / (time.perf_counter() - started)
        finally:
            await consumer.stop()


async def stored(bootstrap: str, topic: str, records: int, url: str) -> float:
    """kafkaboot: a batch listener with an offset store, inserting each batch through its
    session."""
    await _reset(url)
    registry = registry_for(bootstrap)
    clock = {"count": 0, "started": 0.0}
    done = asyncio.Event()

    @registry.listener(
        topic, group_id=f"kb-stored-{uuid.uuid4().hex[:6]}", batch=True, offset_store=url
    )
    async def store_events(
        polled: list[ConsumerRecord[bytes, Event]], session: AsyncSession
    ) -> None:
        clock["started"] = clock["started"] or time.perf_counter()
        await session.execute(insert(events), _rows(polled))
        clock["count"] += len(polled)
        if clock["count"] >= records:
            done.set()

    async with registry:
        await asyncio.wait_for(done.wait(), timeout=900)
        ended = time.perf_counter()
    if await _count(url) != records:
        raise AssertionError(f"stored {await _count(url)} events, not {records}")
    return records / (ended - clock["started"])


@contextlib.contextmanager
def _databases() -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of each database of the run: a SQLite file, and a PostgreSQL server
    when its binaries are here."""
    from kafkaboot.testing.postgres import PostgresServer, PostgresUnavailable

    with tempfile.TemporaryDirectory() as folder:
        found = [("SQLite", f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")]
        try:
            server: PostgresServer | None = PostgresServer()
        except PostgresUnavailable:
            server = None
        if server is None:
            yield found
            return
        with server:
            yield [*found, ("PostgreSQL", server.create_database())]


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    topic = loop.run_until_complete(fill(bootstrap, records, prefix="stored"))
    rows = []
    with _databases() as databases:
        for name, url in databases:

            def measure(variant: Run, url: str = url) -> Callable[[], float]:
                return lambda: loop.run_until_complete(variant(bootstrap, topic, records, url))

            raws, ours = repeat(runs, measure(raw), measure(stored))
            rows.append(
                Row(
                    f"stored: batch listener with an offset store ({name})",
                    "records/s",
                    Measured(ours),
                    raw=Measured(raws),
                    target=">= 0.9x raw",
                    note=(
                        f"{records:,} events of {len(payload(0))} B over {PARTITIONS} "
                        "partitions, each poll's events and offsets in one transaction; raw: "
                        "aiokafka + SQLAlchemy doing the same transaction per poll"
                    ),
                )
            )
    return rows
