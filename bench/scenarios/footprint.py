"""What the counting central consumer (``sample_counting_consumer``) costs to run: its peak
resident memory while it drains many records (it must stay bounded: its statistics keep
fixed-size windows, and the listener takes only ``max_in_flight`` records at a time), and
how long ``kafkaboot run`` takes from the process's spawn until
``/actuator/health/readiness`` answers 200 (imports, connecting to the broker, joining the
consumer groups, a first poll)."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.harness import Measured, Row
from bench.services import get_json, memory_mb, process_cpu, service, wait_ready
from bench.workload import new_topic
from kafkaboot.testing import free_ports

PARTITIONS = 15
CUSTOMERS = 100
_READY_POLL_S = 0.02


async def _fill(bootstrap: str, records: int) -> str:
    """A fresh topic with ``records`` events of the sample's envelope, keyed by customer,
    from one raw producer (the fill is not what is measured here)."""
    from sample_producer_service.models import Message

    topic = await new_topic(bootstrap, "footprint", PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for n in range(records):
            customer = f"rss-c{n % CUSTOMERS}"
            message = Message(customer_id=customer, sequence=n // CUSTOMERS, payload={"n": n})
            value = message.model_dump_json().encode()
            pending.append(await producer.send(topic, value, key=customer.encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return topic


async def _peak_rss(bootstrap: str, records: int) -> dict[str, float]:
    topic = await _fill(bootstrap, records)
    (port,) = free_ports(1)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": topic,
        "CENTRAL_GROUP": f"bench-footprint-{uuid.uuid4().hex[:8]}",
    }
    with service("sample_counting_consumer", port, env) as consumer:
        await wait_ready(port, consumer)
        at_ready = memory_mb(consumer.pid, "VmRSS")
        started = time.monotonic()
        seen: dict[str, Any] = {}
        early_peak = float("nan")
        while time.monotonic() - started < 900:
            seen = await get_json(port, "/stats")
            if math.isnan(early_peak) and seen["unique"] >= records // 5:
                early_peak = memory_mb(consumer.pid, "VmHWM")
            if seen["unique"] >= records:
                break
            await asyncio.sleep(0.5)
        peak = memory_mb(consumer.pid, "VmHWM")
        after = memory_mb(consumer.pid, "VmRSS")
    return {
        "peak": peak,
        # The peak once a fifth was drained: bounded memory stops growing with the records.
        "peak_at_fifth": early_peak,
        "at_ready": at_ready,
        "after": after,
        "unique": seen.get("unique", 0),
        "seconds": time.monotonic() - started,
    }


async def _start_to_ready(bootstrap: str) -> tuple[float, float]:
    """Seconds from spawning ``kafkaboot run`` to readiness, and the CPU seconds the
    process used until then."""
    (port,) = free_ports(1)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": f"bench-ready-{uuid.uuid4().hex[:8]}",
        "CENTRAL_GROUP": f"bench-ready-{uuid.uuid4().hex[:8]}",
    }
    spawned = time.monotonic()
    with service("sample_counting_consumer", port, env) as consumer:
        await wait_ready(port, consumer, interval=_READY_POLL_S)
        seconds = time.monotonic() - spawned
        cpu = process_cpu(consumer.pid)
    return seconds, cpu


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    rss = loop.run_until_complete(_peak_rss(bootstrap, records))
    ready = [loop.run_until_complete(_start_to_ready(bootstrap)) for _ in range(runs)]
    return [
        Row(
            f"footprint: central consumer peak RSS draining {records:,} records",
            "MB",
            Measured([rss["peak"]]),
            higher_is_better=False,
            target="bounded",
            note=f"one worker, VmHWM from /proc; {rss['at_ready']:.0f} MB when ready, peak "
            f"{rss['peak_at_fifth']:.0f} MB once a fifth was drained, {rss['after']:.0f} MB "
            f"after the drain; {rss['unique']:,} of {records:,} records handled (by id) in "
            f"{rss['seconds']:.0f} s",
            extra=rss,
        ),
        Row(
            "footprint: kafkaboot run, spawn to ready",
            "s",
            Measured([s for s, _ in ready]),
            higher_is_better=False,
            note="sample_counting_consumer, one worker: process spawn until "
            "/actuator/health/readiness answers 200 (both listeners in their groups and "
            f"polled); it used {statistics.median(c for _, c in ready):.2f} s of CPU until "
            f"then (median of {len(ready)} runs)",
            extra={"cpu_seconds": [c for _, c in ready]},
        ),
    ]
