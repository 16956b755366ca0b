"""Send throughput: ``KafkaTemplate.send`` against a raw ``AIOKafkaProducer.send`` loop.

Both send the same JSON records (~200 bytes) to a fresh 6-partition topic with the same
producer settings (acks=all, idempotence, linger 5 ms), queue every record first and await
all deliveries at the end. The template also serializes a dict per record, as services do;
the raw loop sends pre-encoded bytes, so the ratio includes serialization.

Usage: python -m bench.send_throughput [--records N] [--repeat N] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import harness
from kafkaboot import load_settings
from kafkaboot.template import KafkaTemplate

PARTITIONS = 6


def event(i: int) -> dict[str, object]:
    return {
        "event_id": f"{i:012d}",
        "site": f"site-{i % 300:03d}",
        "kind": "measurement",
        "amount": i * 0.5,
        "created_at": "2026-01-01T00:00:00Z",
        "tags": ["alpha", "beta", "gamma"],
        "note": "reading from sensor 7 within limits",
    }


async def new_topic(bootstrap: str) -> str:
    topic = f"bench-send-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    return topic


async def raw(bootstrap: str, records: int) -> float:
    topic = await new_topic(bootstrap)
    values = [json.dumps(event(i), separators=(",", ":")).encode() for i in range(records)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, v, key=str(i % 300).encode()) for i, v in enumerate(values)
        ]
        await asyncio.gather(*futures)
        return records / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def template(bootstrap: str, records: int) -> float:
    topic = await new_topic(bootstrap)
    values = [event(i) for i in range(records)]
    settings = load_settings(
        environ={},
        overrides={"kafka": {"bootstrap-servers": bootstrap, "producer": {"linger": "5ms"}}},
    )
    async with KafkaTemplate(settings) as kafka:
        started = time.perf_counter()
        futures = [await kafka.send(topic, v, key=str(i % 300)) for i, v in enumerate(values)]
        await asyncio.gather(*futures)
        return records / (time.perf_counter() - started)


async def main(bootstrap: str, records: int, repeat: int) -> None:
    raw_rates, template_rates = [], []
    for _ in range(repeat):
        raw_rates.append(await raw(bootstrap, records))
        template_rates.append(await template(bootstrap, records))
    harness.print_table(
        f"send {records:,} JSON records (~{len(json.dumps(event(0)))} B) to {PARTITIONS} "
        f"partitions, acks=all, median of {repeat}",
        [
            ("raw AIOKafkaProducer.send (bytes)", raw_rates),
            ("KafkaTemplate.send (dict -> JSON)", template_rates),
        ],
        "KafkaTemplate / raw",
    )


if __name__ == "__main__":
    harness.run(main, __doc__.splitlines()[0])
