"""Produce one record and read it back with plain aiokafka: is the broker really there?

Run: python docs/snippets/round_trip.py "$(kafkaboot broker start)"
"""

import asyncio
import sys
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def round_trip(bootstrap_servers: str) -> tuple[str, bytes]:
    topic = f"round-trip-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello, kafka", key=b"greeting")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id="round-trip",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
    finally:
        await consumer.stop()
    return topic, record.value


if __name__ == "__main__":
    topic, value = asyncio.run(round_trip(sys.argv[1]))
    print(f"round trip OK: {value.decode()!r} via topic {topic}")
