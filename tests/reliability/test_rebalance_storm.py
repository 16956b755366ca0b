"""Scenario 3: a rebalance storm — three central consumer instances joining and leaving
every few seconds under continuous production. Nothing acknowledged is lost, no commit
error escapes, per-key order holds, and duplicates stay within the records in flight."""

import asyncio
import random
import re
import signal
import time

import pytest

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup, handled_by
from .conftest import Row
from .ledger import Ledger, longest_stall, read_journal
from .load import Load

MAX_POLL_RECORDS = 500  # The sample's kafka.consumer.max-poll-records.


@pytest.mark.slow
@pytest.mark.asyncio
async def test_instances_joining_and_leaving_under_load_lose_nothing(
    kafka_bootstrap, tmp_path, size, report
):
    rng = random.Random(3)
    changes = size.pick(6, 30)
    topic, group, ledger = unique("storm-events"), unique("central"), Ledger()
    consumers = [
        CentralConsumer(
            kafka_bootstrap, topic, group, tmp_path / "journal", tmp_path / f"consumer{index}.log"
        )
        for index in range(3)
    ]
    load = Load(kafka_bootstrap, topic, ledger, keys=30, rate=size.pick(300, 1000))
    running = [consumers[0]]
    try:
        consumers[0].start()
        await handled_by_anyone_soon(consumers[0], load)
        faults_from = time.time()
        for _ in range(changes):
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            idle = [c for c in consumers if c not in running]
            if idle and (len(running) == 1 or rng.random() < 0.5):
                joining = rng.choice(idle)
                joining.start()
                running.append(joining)
                # The rebalance is over when the newcomer handles its first record.
                await handled_by(joining.journal, joining.pid, timeout=60)
            else:
                leaving = rng.choice(running)
                assert leaving.terminate() in (0, -signal.SIGTERM), leaving.output()[-3000:]
                running.remove(leaving)
            # Records sent from now on are handled again.
            await load.acknowledged_more(20, timeout=30)
            await asyncio.wait_for(progress(running, ledger), timeout=60)
        load_stopped = time.time()
        await load.stop()
        await all_handled(ledger, consumers[0].journal, timeout=90)
        for consumer in running:
            assert consumer.terminate() in (0, -signal.SIGTERM), consumer.output()[-3000:]
    finally:
        cleanup(consumers)
        await load.template.stop()
    handlings = read_journal(consumers[0].journal)
    verdict = ledger.verdict(handlings)
    report.append(
        Row(
            "3. Rebalance storm (3 instances, ordering=key)",
            f"{changes} joins/leaves",
            verdict,
            longest_stall(handlings, faults_from, load_stopped),
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.out_of_order == 0
    assert verdict.duplicates <= changes * MAX_POLL_RECORDS
    logs = "\n".join(c.output() for c in consumers)
    assert logs.count("assigned ") >= changes  # Every change was a rebalance.
    # No commit error escapes, and kafkaboot itself reports nothing wrong. (aiokafka's own
    # ERROR lines about a partition's leader being elected, right after the topic was
    # created, are retried by aiokafka and are not the framework's to hide.)
    escaped = [
        line
        for line in logs.splitlines()
        if re.search(
            r"Traceback| ERROR kafkaboot|(ERROR|WARNING) .*[Cc]ommit.*(failed|[Ee]rror)", line
        )
        and "because the group rebalanced" not in line
    ]
    assert not escaped, "\n".join(escaped[:20])


async def handled_by_anyone_soon(consumer: CentralConsumer, load: Load) -> None:
    await consumer.ready()  # It has created the topic.
    await load.start()
    await handled_by(consumer.journal, consumer.pid, timeout=60)


async def progress(running: list[CentralConsumer], ledger: Ledger) -> None:
    """Until a message acknowledged after this call starts is handled by a running one."""
    journal = running[0].journal
    pending = set(ledger.acknowledged)
    pids = {c.pid for c in running}
    while True:
        handled = {h.id for h in read_journal(journal) if h.pid in pids}
        fresh = ledger.acknowledged - pending
        if fresh and fresh & handled:
            return
        await asyncio.sleep(0.1)
