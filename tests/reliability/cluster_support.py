"""Looking at a running cluster from a scenario: who leads a partition, whether every
replica is back in sync, and what a topic holds."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def _describe(bootstrap: str, topic: str) -> list[dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return described["partitions"]


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    for described in await _describe(bootstrap, topic):
        if described["partition"] == partition:
            return described["leader"]
    raise AssertionError(f"{topic} has no partition {partition}")


async def wait_in_sync(bootstrap: str, topic: str, replicas: int, timeout: float = 90) -> None:
    """Until every partition of ``topic`` has ``replicas`` replicas in sync and a leader,
    so that the next fault starts from a healthy cluster."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            partitions = await _describe(bootstrap, topic)
            last = [(p["partition"], p["leader"], p["isr"]) for p in partitions]
            if all(len(p["isr"]) == replicas and p["leader"] >= 0 for p in partitions):
                return
        except Exception as exc:  # The cluster may be between leaders: ask again.
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic} not fully in sync after {timeout} s: {last}")


@dataclass(frozen=True)
class Stored:
    key: str
    sequence: int
    partition: int
    offset: int


async def read_topic(
    bootstrap: str, topic: str, isolation: str = "read_uncommitted"
) -> list[Stored]:
    """Every record of ``topic`` from its start to its end now, as the central consumer's
    messages (key and sequence from the JSON value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
    )
    await consumer.start()
    try:
        described = await _describe(bootstrap, topic)
        partitions = [TopicPartition(topic, p["partition"]) for p in described]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        stored: list[Stored] = []
        deadline = time.monotonic() + 120
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "reading the topic back took over 120 s"
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    value = json.loads(record.value)
                    stored.append(
                        Stored(value["customer_id"], value["sequence"], tp.partition, record.offset)
                    )
        return stored
    finally:
        await consumer.stop()
