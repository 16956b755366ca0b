"""Scenario 5: a 3-node cluster, the topic at replication factor 3 with
min.insync.replicas=2, producers with acks=all and idempotence. The partition leader is
killed (SIGKILL) under load from several producer instances, then every broker is
restarted in turn. Every acknowledged send is handled by the central consumer, the topic
holds no duplicate (idempotence), and per-key order holds."""

import asyncio
import signal
import time
from collections import Counter

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafkaboot.testing import KafkaCluster

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup, handled_by
from .cluster_support import read_topic, wait_in_sync
from .conftest import Row
from .ledger import Ledger, longest_stall, read_journal
from .load import Load

PARTITIONS = 15


async def create_replicated_topic(cluster: KafkaCluster) -> str:
    topic = unique("replicated-events")
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=PARTITIONS,
                    replication_factor=3,
                    topic_configs={"min.insync.replicas": "2"},
                )
            ]
        )
    finally:
        await admin.close()
    await wait_in_sync(cluster, topic)
    return topic


@pytest.mark.slow
@pytest.mark.asyncio
async def test_leader_kills_and_a_rolling_restart_lose_and_duplicate_nothing(
    kafka_cluster, tmp_path, size, report
):
    bootstrap = kafka_cluster.bootstrap_servers
    kills = size.pick(1, 3)
    topic, ledger = await create_replicated_topic(kafka_cluster), Ledger()
    consumer = CentralConsumer(
        bootstrap, topic, unique("central"), tmp_path / "journal", tmp_path / "consumer.log"
    )
    loads = [
        Load(bootstrap, topic, ledger, keys=10, rate=size.pick(100, 300), prefix=f"site{n}")
        for n in range(3)
    ]
    try:
        consumer.start()
        await consumer.ready(timeout=90)
        for load in loads:
            await load.start(partitions=PARTITIONS)
        await handled_by(consumer.journal, consumer.pid, timeout=60)
        faults_from = time.time()
        for _ in range(kills):
            leader = await asyncio.to_thread(kafka_cluster.leader_of, topic, 0)
            await asyncio.to_thread(kafka_cluster.kill_node, leader)
            await loads[0].acknowledged_more(100, timeout=60)  # Going on without it.
            await asyncio.to_thread(kafka_cluster.start_node, leader)
            await asyncio.to_thread(kafka_cluster.wait_ready, 120, brokers=3)
            await wait_in_sync(kafka_cluster, topic)
        # A rolling restart (of one node in the CI-sized run).
        for node in kafka_cluster.nodes[: size.pick(1, 3)]:
            await asyncio.to_thread(kafka_cluster.stop_node, node.node_id)
            await loads[0].acknowledged_more(100, timeout=60)
            await asyncio.to_thread(kafka_cluster.start_node, node.node_id)
            await asyncio.to_thread(kafka_cluster.wait_ready, 120, brokers=3)
            await wait_in_sync(kafka_cluster, topic)
        await loads[0].acknowledged_more(100, timeout=60)
        load_stopped = time.time()
        for load in loads:
            await load.stop()
        await all_handled(ledger, consumer.journal, timeout=90)
        assert consumer.terminate() in (0, -signal.SIGTERM)
        stored = await read_topic(bootstrap, topic, PARTITIONS)
    finally:
        cleanup([consumer])
        for load in loads:
            await load.template.stop()
    handlings = read_journal(consumer.journal)
    verdict = ledger.verdict(handlings)
    report.append(
        Row(
            "5. 3 brokers: leader SIGKILL, rolling restart",
            f"{kills} leader SIGKILLs, {size.pick(1, 3)} broker restarts",
            verdict,
            longest_stall(handlings, faults_from, load_stopped),
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.out_of_order == 0
    in_topic = Counter((s.key, s.sequence) for s in stored)
    assert [m for m, n in in_topic.items() if n > 1] == [], "duplicates in the topic"
    assert ledger.acknowledged <= in_topic.keys()
    # Per key, the topic holds the sequence numbers in order (one partition per key).
    by_key: dict[str, list[int]] = {}
    for s in sorted(stored, key=lambda s: (s.partition, s.offset)):
        by_key.setdefault(s.key, []).append(s.sequence)
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
