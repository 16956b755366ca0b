"""Scenario 11 (readiness): with `kafkaboot run --workers 3`, every worker process turns
ready once it polls, whatever it is assigned — the sample's 1-partition `test-topic`
listener leaves two of the three without a partition of it."""

import asyncio
import signal
import time

import httpx
import pytest

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup
from .conftest import Row
from .ledger import Ledger, read_journal
from .load import Load

WORKERS = 3


async def readiness_answers(port: int, count: int) -> list[int]:
    """``count`` readiness answers, each on a new connection (the kernel spreads new
    connections over the workers; one kept-alive connection would ask one worker)."""
    statuses = []
    for _ in range(count):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=3) as http:
            statuses.append((await http.get("/actuator/health/readiness")).status_code)
    return statuses


@pytest.mark.slow
@pytest.mark.asyncio
async def test_every_worker_turns_ready_whatever_it_is_assigned(kafka_bootstrap, tmp_path, report):
    topic, ledger = unique("workers-events"), Ledger()
    consumer = CentralConsumer(
        kafka_bootstrap,
        topic,
        unique("central"),
        tmp_path / "journal",
        tmp_path / "consumer.log",
        extra=("--workers", str(WORKERS)),
    )
    load = Load(kafka_bootstrap, topic, ledger, keys=30, rate=200)
    try:
        consumer.start()
        await consumer.ready(timeout=90)
        await load.start()
        # Every worker handles events of its share of the 15 partitions...
        deadline = time.monotonic() + 60
        while len({h.pid for h in read_journal(consumer.journal)}) < WORKERS:
            assert time.monotonic() < deadline, "not every worker got partitions"
            await asyncio.sleep(0.2)
        # ...and every one of them answers ready, though only one holds test-topic.
        deadline = time.monotonic() + 30
        while (statuses := await readiness_answers(consumer.port, 30)) != [200] * 30:
            assert time.monotonic() < deadline, f"some worker stays not ready: {statuses}"
        await load.stop()
        await all_handled(ledger, consumer.journal, timeout=60)
        assert consumer.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([consumer])
        await load.template.stop()
    verdict = ledger.verdict(read_journal(consumer.journal))
    report.append(
        Row(
            "11. Readiness with --workers 3",
            "2 of 3 workers hold no partition of test-topic; 30 readiness answers, all 200",
            verdict,
            None,
        )
    )
    verdict.assert_nothing_lost()
