"""Scenario 12 (memory): the central consumer's resident memory levels off over a long run
instead of growing with every record (its /stats once kept every latency and sequence
number)."""

import asyncio
import signal
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from sample_producer_service.models import Message

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, cleanup, journal_lines
from .conftest import Row
from .ledger import Ledger, read_journal

KEYS = 50


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def produce(bootstrap: str, topic: str, ledger: Ledger, start: int, count: int) -> None:
    """``count`` messages spread over KEYS keys, as fast as the producer goes."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        futures = []
        for n in range(start, start + count):
            key, sequence = f"site-{n % KEYS}", n // KEYS
            ledger.sent.add((key, sequence))
            value = Message(customer_id=key, sequence=sequence).model_dump_json().encode()
            futures.append((key, sequence, await producer.send(topic, value, key=key.encode())))
        for key, sequence, future in futures:
            await future
            ledger.acknowledged.add((key, sequence))
    finally:
        await producer.stop()


async def handled(journal: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while journal_lines(journal) < count:
        assert time.monotonic() < deadline, f"{journal_lines(journal)} of {count} handled"
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_central_consumer_memory_levels_off(kafka_bootstrap, tmp_path, size, report):
    total = size.pick(200_000, 1_000_000)
    warm_up = total // 4
    topic, ledger = unique("memory-events"), Ledger()
    consumer = CentralConsumer(
        kafka_bootstrap, topic, unique("central"), tmp_path / "journal", tmp_path / "consumer.log"
    )
    try:
        consumer.start()
        await consumer.ready()
        await produce(kafka_bootstrap, topic, ledger, 0, warm_up)
        await handled(consumer.journal, warm_up, timeout=120)
        after_warm_up = resident_mb(consumer.pid)
        await produce(kafka_bootstrap, topic, ledger, warm_up, total - warm_up)
        await handled(consumer.journal, total, timeout=size.pick(120, 900))
        at_end = resident_mb(consumer.pid)
        assert consumer.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([consumer])
    verdict = ledger.verdict(read_journal(consumer.journal))
    growth = at_end - after_warm_up
    report.append(
        Row(
            "12. Memory over a long run",
            f"none; resident memory {after_warm_up:.0f} MB after {warm_up:,} records,"
            f" {at_end:.0f} MB after {total:,}",
            verdict,
            None,
        )
    )
    verdict.assert_nothing_lost()
    # Three times the records after the warm-up. The unbounded /stats grew about 12 MB over
    # 150,000 records (measured with tracemalloc); bounded state grows by allocator noise.
    assert growth < 6, f"resident memory grew {growth:.1f} MB over {total - warm_up:,} records"
