"""Scenario 8: consume-process-produce in transactions while the copier is killed
(SIGKILL) and a broker is killed and restarted: a read_committed reader of the output sees
exactly one copy of each input message."""

import asyncio
import signal
import time
from collections import Counter

import pytest

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, cleanup, service_config
from .cluster_support import read_topic, wait_in_sync
from .conftest import Row
from .ledger import Handling, Ledger, Stopwatch
from .load import Load
from .test_broker_failures import PARTITIONS, create_replicated_topic


async def copies(bootstrap: str, sink: str) -> Counter:
    stored = await read_topic(bootstrap, sink, PARTITIONS, isolation="read_committed")
    return Counter((s.key, s.sequence) for s in stored)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_copier_killed_and_a_broker_restarted_copy_exactly_once(
    kafka_cluster, tmp_path, size, report
):
    bootstrap = kafka_cluster.bootstrap_servers
    kills = size.pick(2, 5)
    source, sink = (
        await create_replicated_topic(kafka_cluster),
        await create_replicated_topic(kafka_cluster),
    )
    ledger, clock = Ledger(), Stopwatch()
    copier = CentralConsumer(
        bootstrap,
        source,
        unique("copier"),
        tmp_path / "journal",
        tmp_path / "copier.log",
        target="tests.reliability.services.copier",
        config=service_config(
            tmp_path / "application.yml",
            bootstrap,
            consumer={
                "isolation-level": "read_committed",
                "session-timeout": "6s",
                "heartbeat-interval": "1s",
            },
            producer={"transaction-id-prefix": f"{unique('copier-')}-"},
        ),
        env={"SOURCE_TOPIC": source, "SINK_TOPIC": sink},
    )
    # A record listener runs one transaction per record (as Spring's does): about 50 copies
    # a second here, so the load stays below that.
    load = Load(bootstrap, source, ledger, keys=20, rate=size.pick(30, 40))
    try:
        copier.start()
        await copier.ready(timeout=90)
        await load.start(partitions=PARTITIONS)
        for kill in range(kills):
            await load.acknowledged_more(100, timeout=60)
            copier.kill()
            clock.fault()
            if kill == 0:  # And a broker, while the copier is down.
                leader = await asyncio.to_thread(kafka_cluster.leader_of, sink, 0)
                await asyncio.to_thread(kafka_cluster.kill_node, leader)
                await load.acknowledged_more(50, timeout=60)
                await asyncio.to_thread(kafka_cluster.start_node, leader)
            copier.start()
            await copier.ready(timeout=90)
            clock.recovered()
        await asyncio.to_thread(kafka_cluster.wait_ready, 120, brokers=3)
        await wait_in_sync(kafka_cluster, sink)
        await load.acknowledged_more(100, timeout=60)
        await load.stop()
        deadline = time.monotonic() + 180
        while not ledger.acknowledged <= (copied := await copies(bootstrap, sink)).keys():
            assert time.monotonic() < deadline, "not every input was copied"
            await asyncio.sleep(1)
        assert copier.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([copier])
        await load.template.stop()
    # Each copy in the sink stands for one handling (a duplicate copy = a duplicate).
    handlings = [Handling(k, s, -1, -1, 0, 0.0) for (k, s), n in copied.items() for _ in range(n)]
    verdict = ledger.verdict(handlings)
    report.append(
        Row(
            "8. Transactions: copier SIGKILLs, a broker SIGKILL",
            f"{kills} copier SIGKILLs, 1 broker SIGKILL",
            verdict,
            clock.longest,
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.duplicates == 0, "a read_committed reader saw a copy twice"
