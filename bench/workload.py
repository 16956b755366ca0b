"""The records every scenario works with: a ~200 B JSON event envelope, and topics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

from kafkaboot import ListenerRegistry, load_settings

PARTITIONS = 6


class Event(BaseModel):
    event_id: str
    site: str
    kind: str
    amount: float
    created_at: datetime
    tags: list[str]
    note: str


def event(i: int, note: str = "reading from sensor 7 within limits") -> dict[str, object]:
    return {
        "event_id": f"{i:012d}",
        "site": f"site-{i % 300:03d}",
        "kind": "measurement",
        "amount": i * 0.5,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "tags": ["alpha", "beta", "gamma"],
        "note": note,
    }


def payload(i: int, note: str = "reading from sensor 7 within limits") -> bytes:
    return Event.model_validate(event(i, note)).model_dump_json().encode()


LARGE_NOTE = "reading from sensor 7 within limits; " * 22
"""Makes the envelope about 1 KB."""


async def new_topic(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> str:
    topic = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def fill(bootstrap: str, records: int, prefix: str = "consume") -> str:
    """A fresh topic holding ``records`` events spread over the partitions."""
    topic = await new_topic(bootstrap, prefix)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        values = [payload(i) for i in range(records)]
        for start in range(0, records, 10_000):
            futures = [await producer.send(topic, v) for v in values[start : start + 10_000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic


def registry_for(bootstrap: str) -> ListenerRegistry:
    """A listener registry on ``bootstrap`` whose new groups read from the beginning."""
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {"bootstrap-servers": bootstrap, "consumer": {"auto-offset-reset": "earliest"}}
        },
    )
    return ListenerRegistry(settings, environ={})
