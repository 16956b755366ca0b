"""Listeners of the central consumer: every site's events go into the ``events`` table,
their offsets stored in the same transaction (exactly once); GET /stats reads the table."""

import asyncio
import logging
import os
import time
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kafkaboot import (
    ConsumerRecord,
    KafkaBootSettings,
    RebalanceListener,
    Topic,
    kafka_listener,
)
from kafkaboot.config.types import parse_duration
from kafkaboot.offset_store import OffsetStoreError, SqlOffsetStore
from sample_consumer_service.events import read_sequences, read_stats, store_batch
from sample_producer_service.models import Message

log = logging.getLogger("sample_consumer_service")
BATCH_HOLD_MS = int(os.environ.get("CENTRAL_BATCH_HOLD_MS", "0"))
"""Time each batch keeps its transaction open after writing its rows (milliseconds), as a
handler that calls another service before committing would; 0 (the default) for none."""
BATCH_GATE = os.environ.get("CENTRAL_BATCH_GATE")
"""A file's path, for the fault tests (a :class:`~kafkaboot.testing.FaultGate`): while that
file exists, each batch keeps its transaction open after writing its rows, and adds this
process's id to the file, so that a SIGKILL sent then lands inside a transaction."""
SITE_HEADER = "instance-id"
"""The header naming the site (producer instance) an event came from."""


class Journal:
    """With ``EVENTS_JOURNAL=path``: one line per stored event (customer, sequence,
    partition, offset, pid, epoch seconds), written straight to the kernel inside the
    batch's transaction, after its rows. A line whose event is not in the table belongs to
    a batch that rolled back (a crash in the middle of it): the fault tests count by it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    def write(self, records: list[ConsumerRecord[str, Message]]) -> None:
        now = time.time()
        lines = "".join(
            f"{r.value.customer_id} {r.value.sequence} {r.partition} {r.offset} {self._pid}"
            f" {now:.3f}\n"
            for r in records
        )
        os.write(self._fd, lines.encode())


_journal_path = os.environ.get("EVENTS_JOURNAL")
journal = Journal(_journal_path) if _journal_path else None


class LoggingRebalance(RebalanceListener):
    """Logs every rebalance; named in application.yml (kafka.listeners.central-events)."""

    def on_partitions_assigned(self, partitions: set[Any], consumer: Any) -> None:
        log.info("assigned %d partition(s): %s", len(partitions), sorted(partitions))

    def on_partitions_revoked(self, partitions: set[Any], consumer: Any) -> None:
        log.info("revoked %d partition(s): %s", len(partitions), sorted(partitions))


# Its events and offsets go into one database (DATABASE_URL; SQLite by default) in one
# transaction per batch, so each is stored exactly once through crashes and rebalances.
# A listener with an offset store handles each partition in order (docs/offset-store.md
# says why not per key). Its rebalance logging comes from application.yml.
@kafka_listener(
    "${EVENTS_TOPIC:events}",  # Resolved from the environment when the listener registers.
    id="central-events",
    group_id="${CENTRAL_GROUP:central-consumer}",
    batch=True,
    offset_store="${DATABASE_URL:sqlite+aiosqlite:///central.db}",
)
async def store_events(records: list[ConsumerRecord[str, Message]], session: AsyncSession) -> None:
    """One poll's events into the ``events`` table. kafkaboot opened ``session``'s
    transaction, saves the offsets in it after this returns, then commits: the rows and
    the offsets are kept together or not at all."""
    stored = await store_batch(session, records, SITE_HEADER)
    if journal is not None:
        journal.write(stored)
    if BATCH_GATE is not None:
        from kafkaboot.testing import FaultGate  # Only the fault tests need it.

        await FaultGate(BATCH_GATE).hold()
    if BATCH_HOLD_MS:
        await asyncio.sleep(BATCH_HOLD_MS / 1000)


@kafka_listener("test-topic", group_id="ai-row-data")
async def listen(message: str, topic: Annotated[str, Topic]) -> None:
    """Mirrors the Spring original: log the message and where it came from."""
    log.info("received %r from %s", message, topic)


app = FastAPI(title="sample central consumer")


def _engine(request: Request) -> AsyncEngine:
    """The events listener's offset store's engine: the database the events are in."""
    container = request.app.state.kafkaboot.registry.get("central-events")
    store = container.offset_store.store if container.offset_store is not None else None
    if not isinstance(store, SqlOffsetStore):
        raise HTTPException(500, "the events listener has no SQL offset store")
    try:
        return store.engine
    except OffsetStoreError:
        raise HTTPException(503, "the database is not open yet: the service is starting") from None


@app.get("/stats")
async def get_stats(request: Request) -> dict[str, Any]:
    """What the ``events`` table holds: counts per site, duplicates (a customer's sequence
    number stored twice: a site sent it again), gaps, the latest event per site, the
    latency of the latest events, and the sites silent for longer than
    ``central.site-silent-after``. With ``--workers N`` every process answers the same."""
    silent_after = _silent_after(request.app.state.kafkaboot.settings)
    async with _engine(request).connect() as connection:
        return {"pid": os.getpid(), **await read_stats(connection, silent_after)}


def _silent_after(settings: KafkaBootSettings) -> float:
    central = (settings.model_extra or {}).get("central") or {}
    return parse_duration(central.get("site-silent-after", "5m")).total_seconds()


@app.get("/stats/sequences")
async def get_sequences(request: Request) -> dict[str, Any]:
    """Per customer, the sequence numbers stored: the contiguous prefix and those above it."""
    async with _engine(request).connect() as connection:
        return {"pid": os.getpid(), "customers": await read_sequences(connection)}


@app.get("/events/assignment")
async def events_assignment(request: Request) -> dict[str, Any]:
    """This process's share of the events topic: its partitions, and whether each of its
    consumers is a settled member of the group (to know when a rebalance is over)."""
    container = request.app.state.kafkaboot.registry.get("central-events")
    return {
        "pid": os.getpid(),
        "partitions": len(container.assignment),
        "in_group": bool(container.workers) and all(w.in_group for w in container.workers),
    }
