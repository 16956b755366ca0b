"""Looking at a running cluster from a scenario: whether every replica is back in sync,
and what a topic holds."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot.testing import KafkaCluster


async def wait_in_sync(cluster: KafkaCluster, topic: str, timeout: float = 90) -> None:
    """Until every partition of ``topic`` has all its replicas in sync and a leader, so
    that the next fault starts from a healthy cluster."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = [p for p in await asyncio.to_thread(cluster.partitions) if p.topic == topic]
            last = [(p.partition, p.leader, p.isr) for p in found]
            if found and all(p.leader is not None and len(p.isr) == len(p.replicas) for p in found):
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
    bootstrap: str, topic: str, partitions: int, isolation: str = "read_uncommitted"
) -> list[Stored]:
    """Every record of ``topic`` from its start to its end now, as the central consumer's
    messages (key and sequence from the JSON value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        stored: list[Stored] = []
        deadline = time.monotonic() + 120
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
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
