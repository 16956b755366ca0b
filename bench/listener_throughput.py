"""Consume throughput: a kafkaboot listener against a raw aiokafka ``getmany`` loop.

Both read the same pre-filled topic (JSON records of ~200 bytes over 6 partitions), decode
each value into the same pydantic model and commit once per poll; kafkaboot runs a
single-record listener with the default ack mode (batch). Runs alternate, and the table
shows the median of the repetitions and the ratio kafkaboot / raw.

Usage: python -m bench.listener_throughput [--records N] [--repeat N] [--bootstrap HOST:PORT]
Without --bootstrap (or $KAFKA_BOOTSTRAP_SERVERS) it starts a local broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

from bench import harness
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


def payload(i: int) -> bytes:
    event = Event(
        event_id=f"{i:012d}",
        site=f"site-{i % 300:03d}",
        kind="measurement",
        amount=i * 0.5,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        tags=["alpha", "beta", "gamma"],
        note="reading from sensor 7 within limits",
    )
    return event.model_dump_json().encode()


async def fill(bootstrap: str, records: int) -> str:
    topic = f"bench-consume-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
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


async def raw(bootstrap: str, topic: str, records: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    count = 0
    started = None
    try:
        while count < records:
            batches = await consumer.getmany(timeout_ms=1000)
            if started is None and batches:
                started = time.perf_counter()
            for partition_records in batches.values():
                for record in partition_records:
                    Event.model_validate_json(record.value)
                    count += 1
            if batches:
                await consumer.commit()
        return count / (time.perf_counter() - (started or 0.0))
    finally:
        await consumer.stop()


async def kafkaboot_listener(bootstrap: str, topic: str, records: int) -> float:
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {"bootstrap-servers": bootstrap, "consumer": {"auto-offset-reset": "earliest"}}
        },
    )
    registry = ListenerRegistry(settings, environ={})
    done = asyncio.Event()
    count = 0
    started: float | None = None

    @registry.listener(topic, group_id=f"kb-{uuid.uuid4().hex[:6]}")
    async def on_event(event: Event) -> None:
        nonlocal count, started
        if started is None:
            started = time.perf_counter()
        count += 1
        if count == records:
            done.set()

    async with registry:
        await asyncio.wait_for(done.wait(), timeout=600)
        return count / (time.perf_counter() - (started or 0.0))


async def main(bootstrap: str, records: int, repeat: int) -> None:
    topic = await fill(bootstrap, records)
    raw_rates, kb_rates = [], []
    for _ in range(repeat):
        raw_rates.append(await raw(bootstrap, topic, records))
        kb_rates.append(await kafkaboot_listener(bootstrap, topic, records))
    harness.print_table(
        f"consume {records:,} JSON records (~{len(payload(0))} B) over {PARTITIONS} "
        f"partitions, median of {repeat}",
        [
            ("raw aiokafka getmany + pydantic", raw_rates),
            ("kafkaboot listener (pydantic)", kb_rates),
        ],
        "kafkaboot / raw",
    )


if __name__ == "__main__":
    harness.run(main, __doc__.splitlines()[0])
