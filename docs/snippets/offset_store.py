"""A batch listener that keeps events in a database, its offsets stored with them (the
offset store guide's example, run by the tests)."""

import asyncio
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kafkaboot import ConsumerRecord, ListenerRegistry, kafka_listener, load_settings
from kafkaboot.offset_store import SqlOffsetStore

CREATE_EVENTS = (
    "CREATE TABLE IF NOT EXISTS events"
    " (payload TEXT, part INTEGER, off BIGINT, PRIMARY KEY (part, off))"
)


@kafka_listener("${EVENTS_TOPIC:events}", id="events", group_id="central", batch=True)
async def store_events(records: list[ConsumerRecord[str, str]], session: AsyncSession) -> None:
    await session.execute(
        text("INSERT INTO events (payload, part, off) VALUES (:payload, :part, :off)"),
        [{"payload": r.value, "part": r.partition, "off": r.offset} for r in records],
    )
    # No commit here: kafkaboot saves the offsets in this transaction, then commits it.


async def run(bootstrap_servers: str, database_url: str, expected: int) -> list[str]:
    async with SqlOffsetStore(database_url) as store, store.engine.begin() as connection:
        await connection.execute(text(CREATE_EVENTS))
    settings = load_settings(
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap_servers,
                "consumer": {"auto-offset-reset": "earliest"},
                # What application.yml says under kafka.listeners.events.offset-store.url.
                "listeners": {"events": {"offset-store": {"url": database_url}}},
            }
        }
    )
    registry = ListenerRegistry(settings)
    registry.scan(sys.modules[__name__])
    async with registry, SqlOffsetStore(database_url) as store:
        while True:
            async with store.engine.connect() as connection:
                query = text("SELECT payload FROM events ORDER BY part, off")
                payloads = list((await connection.execute(query)).scalars())
            if len(payloads) >= expected:
                return payloads
            await asyncio.sleep(0.05)
