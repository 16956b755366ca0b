"""A central consumer that keeps every event in a database, its offsets stored with them
(an offset store): the exactly-once scenario's service.

Environment: EVENTS_TOPIC, EVENTS_GROUP, DATABASE_URL (the ``events`` table exists
already: the scenario creates it). With TRANSACTIONS=path and HOLD_MS=n, each batch
appends "<pid> <batch>" to ``path`` once its rows are written, then holds its transaction
open for n ms before the offsets are saved and it commits. With GATE=path too (a FaultGate),
while the file at ``path`` exists a batch holds its transaction open after its line,
having added its pid to that file: a scenario that SIGKILLs the process once its pid is
there kills it in the middle of a batch, whatever the machine's load.

WITHOUT_STORE=1 is the control: the same rows in the same kind of transaction, but
the offsets only committed to Kafka (what a listener does without an offset store)."""

import asyncio
import itertools
import os
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from kafkaboot import ConsumerRecord, kafka_listener
from kafkaboot.testing import FaultGate
from sample_producer_service.models import Message

events = Table(
    "events",
    MetaData(),
    # Not keyed by (partition, offset): the control must be able to store a record twice.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("part", Integer, nullable=False),
    Column("off", BigInteger, nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("batch", Integer, nullable=False),
)
HOLD_S = int(os.environ.get("HOLD_MS", "0")) / 1000
_TRANSACTIONS = os.environ.get("TRANSACTIONS")
_GATE = os.environ.get("GATE")
_batches = itertools.count(1)


async def _write(session: Any, records: list[ConsumerRecord[str, Message]]) -> None:
    pid, batch = os.getpid(), next(_batches)
    rows = [
        {
            "part": r.partition,
            "off": r.offset,
            "customer_id": r.value.customer_id,
            "sequence": r.value.sequence,
            "pid": pid,
            "batch": batch,
        }
        for r in records
    ]
    await session.execute(insert(events), rows)
    if _TRANSACTIONS is not None:
        fd = os.open(_TRANSACTIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{pid} {batch}\n".encode())
        finally:
            os.close(fd)
        if _GATE is not None:
            await FaultGate(_GATE).hold()
        await asyncio.sleep(HOLD_S)


if os.environ.get("WITHOUT_STORE") == "1":
    _engine = create_async_engine(os.environ["DATABASE_URL"])

    @kafka_listener("${EVENTS_TOPIC}", id="stored-events", group_id="${EVENTS_GROUP}", batch=True)
    async def store_events_without_store(records: list[ConsumerRecord[str, Message]]) -> None:
        async with _engine.begin() as connection:
            await _write(connection, records)

else:

    @kafka_listener(
        "${EVENTS_TOPIC}",
        id="stored-events",
        group_id="${EVENTS_GROUP}",
        batch=True,
        offset_store="${DATABASE_URL}",
    )
    async def store_events(
        records: list[ConsumerRecord[str, Message]], session: AsyncSession
    ) -> None:
        await _write(session, records)
