"""Scenario 1: the central consumer killed with SIGKILL at random moments under continuous
production, with its own ordering (key: customers handled concurrently) and with one record
of a partition at a time. Nothing acknowledged to a producer is lost, each customer's
messages are first handled in order; duplicates come only from the uncommitted tails
(counted and reported)."""

import asyncio
import random
import signal
import time

import pytest

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup, handled_by
from .conftest import Row
from .ledger import Ledger, longest_stall, read_journal
from .load import Load


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("ordering", ["key", "partition"])
async def test_sigkill_of_the_central_consumer_under_load_loses_nothing(
    kafka_bootstrap, tmp_path, size, report, ordering
):
    rng = random.Random(13)
    kills = size.pick(3, 5)
    topic, ledger = unique("crash-events"), Ledger()
    consumer = CentralConsumer(
        kafka_bootstrap,
        topic,
        unique("central"),
        tmp_path / "journal",
        tmp_path / "consumer.log",
        # The sample's own choice is key; kafka.listeners.<id>.ordering overrides it.
        env={"KAFKA_LISTENERS_CENTRAL_EVENTS_ORDERING": ordering},
    )
    load = Load(kafka_bootstrap, topic, ledger, keys=20, rate=size.pick(300, 1000))
    try:
        consumer.start()  # Creates the topic (kafka.topics in its application.yml).
        await consumer.ready()
        await load.start()
        faults_from = time.time()
        for _ in range(kills):
            # A random moment: somewhere in the next 0.5-2.5 s of steady consumption.
            await handled_by(consumer.journal, consumer.pid, timeout=60)
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            consumer.kill()
            consumer.start()
            await handled_by(consumer.journal, consumer.pid, timeout=60)
        await load.acknowledged_more(200, timeout=30)
        load_stopped = time.time()
        await load.stop()
        await all_handled(ledger, consumer.journal, timeout=60)
        assert consumer.terminate() in (0, -signal.SIGTERM)  # uvicorn re-raises it when done.
    finally:
        cleanup([consumer])
        await load.template.stop()
    handlings = read_journal(consumer.journal)
    verdict = ledger.verdict(handlings)
    report.append(
        Row(
            f"1. SIGKILL of the central consumer (ordering={ordering})",
            f"{kills} SIGKILLs",
            verdict,
            longest_stall(handlings, faults_from, load_stopped),
        )
    )
    assert f"(ack mode manual, ordering {ordering}" in consumer.output()
    verdict.assert_nothing_lost()
    assert verdict.out_of_order == 0
