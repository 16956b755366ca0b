"""The ``events`` table the central consumer keeps every site's events in, and what
GET /stats reads from it: counts per site, duplicates, gaps, latest per site, latency."""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    desc,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kafkaboot import ConsumerRecord
from sample_producer_service.models import Message

__all__ = ["LATENCY_ROWS", "events", "read_sequences", "read_stats", "store_batch"]

log = logging.getLogger("sample_consumer_service")

SITE_LENGTH = 255
"""Characters of a site's label kept (the ``instance-id`` header, escaped)."""
metadata = MetaData()
events = Table(
    "events",
    metadata,
    # Where the record was in Kafka: one row per record, so a record stored twice (which
    # the offset store rules out) would fail its batch rather than hide as a second row.
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("site", String(SITE_LENGTH), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    # Epoch seconds: when the site's service accepted the event (the message's timestamp),
    # and when its batch was written.
    Column("produced_at", Float, nullable=False),
    Column("stored_at", Float, nullable=False),
    # A producer that resends a message (after a timeout) makes a second record of the
    # same customer and sequence: found as a duplicate through this index.
    Index("events_by_customer", "customer_id", "sequence"),
)
LATENCY_ROWS = 10_000
"""The latency percentiles of /stats cover the latest this many stored events."""

_CREATE_LOCK = 0x6B62_6576  # "kbev": the advisory lock that serializes creating the table.
_created: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines whose database has the table, committed: looked for until a batch finds it."""


async def store_batch(
    session: AsyncSession, records: Sequence[ConsumerRecord[str, Message]], site_header: str
) -> list[ConsumerRecord[str, Message]]:
    """Insert ``records`` in the listener's open transaction (creating the table there on
    first use): the offset store saves their offsets in the same one. A tombstone (a record
    without a value) is no event: skipped, with a warning. The records stored."""
    events_only = []
    for record in records:
        if record.value is None:
            log.warning(
                "skipped a tombstone at %s-%d@%d: a record without a value is no event",
                record.topic,
                record.partition,
                record.offset,
            )
        else:
            events_only.append(record)
    if not events_only:
        return events_only
    connection = await session.connection()
    if connection.sync_engine not in _created:
        if await _has_table(connection):
            # Found, so committed: a table this transaction creates could still roll back.
            _created.add(connection.sync_engine)
        else:
            if connection.dialect.name == "postgresql":
                # Two processes' first batches at once: the second waits here for the
                # first's commit, then finds the table (two CREATE TABLE at once fail one).
                await connection.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK)))
            await connection.run_sync(metadata.create_all, checkfirst=True)
    stored_at = time.time()
    await session.execute(
        insert(events),
        [
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "site": _site(record, site_header),
                "customer_id": record.value.customer_id,
                "sequence": record.value.sequence,
                "payload": json.dumps(record.value.payload),
                "produced_at": record.value.timestamp.timestamp(),
                "stored_at": stored_at,
            }
            for record in events_only
        ],
    )
    return events_only


def _site(record: ConsumerRecord[str, Message], header: str) -> str:
    """The ``instance-id`` header labels the statistics only: bytes that are not UTF-8,
    a NUL or too long a label are escaped or cut rather than costing a valid event."""
    for key, value in record.headers:
        if key == header and isinstance(value, bytes):
            # PostgreSQL stores no NUL in text, and the column holds SITE_LENGTH characters.
            label = value.decode(errors="backslashreplace").replace("\x00", "\\x00")
            return label[:SITE_LENGTH]
    return "unknown"


async def _one_snapshot(connection: AsyncConnection) -> None:
    """Every query of one answer sees the same rows: PostgreSQL's default isolation takes a
    snapshot per statement, so ``stored`` and ``unique`` could count different rows (SQLite
    reads in one transaction see one snapshot already)."""
    if connection.dialect.name == "postgresql" and not connection.in_transaction():
        await connection.execution_options(isolation_level="REPEATABLE READ")


async def _has_table(connection: AsyncConnection) -> bool:
    return await connection.run_sync(lambda sync: sync.dialect.has_table(sync, events.name))


async def read_stats(
    connection: AsyncConnection, silent_after: float, now: float | None = None
) -> dict[str, Any]:
    """Everything GET /stats answers, read from the table (all zeros before it exists)."""
    now = time.time() if now is None else now
    await _one_snapshot(connection)
    if not await _has_table(connection):
        sites: list[Any] = []
        customers: list[Any] = []
        latencies: list[float] = []
    else:
        sites = list(
            await connection.execute(
                select(
                    events.c.site,
                    func.count(),
                    func.max(events.c.stored_at),
                    func.min(events.c.stored_at),
                ).group_by(events.c.site)
            )
        )
        customers = list(
            await connection.execute(
                select(
                    events.c.customer_id,
                    func.count(),
                    func.count(events.c.sequence.distinct()),
                    func.max(events.c.sequence),
                ).group_by(events.c.customer_id)
            )
        )
        latest = (
            select((events.c.stored_at - events.c.produced_at) * 1000)
            .order_by(desc(events.c.stored_at))
            .limit(LATENCY_ROWS)
        )
        latencies = [float(value) for (value,) in await connection.execute(latest)]
    stored = sum(count for _, count, _, _ in sites)
    unique = sum(distinct for _, _, distinct, _ in customers)
    last_seen = {site: latest for site, _, latest, _ in sites}
    return {
        "stored": stored,
        "received": stored,  # One row per record: what the consumer received, once each.
        "unique": unique,
        "customers": len(customers),
        "per_instance": {site: count for site, count, _, _ in sorted(sites)},
        "duplicates": stored - unique,
        "gaps": sum(top + 1 - distinct for _, _, distinct, top in customers),
        "latest": dict(sorted(last_seen.items())),
        "latency_ms": _percentiles(latencies),
        "first_at": min((first for *_, first in sites), default=None),
        "last_at": max(last_seen.values(), default=None),
        "silent_after_s": silent_after,
        "silent_sites": {
            site: round(now - seen, 1)
            for site, seen in sorted(last_seen.items())
            if now - seen > silent_after
        },
    }


async def read_sequences(connection: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Per customer, the sequence numbers stored: the contiguous prefix (all below it are
    there), those above it, and those stored more than once (``repeated``: a site sent
    them again). Only a customer with a gap has its numbers read one by one."""
    await _one_snapshot(connection)
    if not await _has_table(connection):
        return {}
    repeated: dict[str, list[int]] = {}
    twice = (
        select(events.c.customer_id, events.c.sequence)
        .group_by(events.c.customer_id, events.c.sequence)
        .having(func.count() > 1)
        .order_by(events.c.customer_id, events.c.sequence)
    )
    for customer, sequence in await connection.execute(twice):
        repeated.setdefault(customer, []).append(sequence)
    found: dict[str, dict[str, Any]] = {}
    summary = select(
        events.c.customer_id,
        func.count(events.c.sequence.distinct()),
        func.min(events.c.sequence),
        func.max(events.c.sequence),
    ).group_by(events.c.customer_id)
    for customer, distinct, lowest, highest in await connection.execute(summary):
        if lowest == 0 and distinct == highest + 1:
            found[customer] = {
                "contiguous": distinct,
                "above": [],
                "repeated": repeated.get(customer, []),
            }
            continue
        numbers = select(events.c.sequence).where(events.c.customer_id == customer).distinct()
        seen = sorted(n for (n,) in await connection.execute(numbers))
        contiguous = 0
        while contiguous < len(seen) and seen[contiguous] == contiguous:
            contiguous += 1
        found[customer] = {
            "contiguous": contiguous,
            "above": seen[contiguous:],
            "repeated": repeated.get(customer, []),
        }
    return found


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "p50": at(0.50),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": round(ordered[-1], 1),
        "count": len(ordered),
    }
