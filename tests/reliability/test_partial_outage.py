"""Scenario 6: two of three brokers down. A 3-node cluster (every node broker and
controller), the topic at replication factor 3 with min.insync.replicas=2, the sample
producer service (acks=all, idempotence, delivery timeout 30 s) posted to continuously by
key. With two nodes stopped no partition can take writes, yet one broker still answers:
after the unavailable timeout (5 s) and a little more, every new POST answers 503 at once
(not 504 after the delivery timeout), nothing answered 202 is missing from the topic,
nothing answered 503 is in it, and once the nodes are back POSTs answer 202 again without
a restart."""

import asyncio
import contextlib
import itertools
import signal
import time
from collections import defaultdict

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from kafkaboot.testing import free_ports, start_service

from ..integration.test_run import ROOT, wait_ready
from .cluster_support import read_topic
from .conftest import Row
from .ledger import Handling, Ledger
from .test_broker_failures import create_replicated_topic

UNAVAILABLE_TIMEOUT_S = 5.0  # The sample's kafka.template.unavailable-timeout (the default).
NOTICED_WITHIN_S = UNAVAILABLE_TIMEOUT_S + 5.0
PROMPT_S = 1.0
CHECKED_FOR_S = 5.0


def _keys_for_every_partition(partitions: int) -> list[str]:
    """Two customer ids per partition, placed as the producer's partitioner places them."""
    partitioner, every = DefaultPartitioner(), list(range(partitions))
    by_partition: dict[int, list[str]] = defaultdict(list)
    n = 0
    while min((len(by_partition[p]) for p in every), default=0) < 2:
        key = f"site-{n}"
        by_partition[partitioner(key.encode(), every, every)].append(key)
        n += 1
    return [key for p in every for key in by_partition[p][:2]]


class Posts:
    """POST /messages by (customer id, sequence); every answer with its status, when it
    was asked and how long it took."""

    def __init__(self, http: httpx.AsyncClient, ledger: Ledger) -> None:
        self.http = http
        self.ledger = ledger
        self.answers: list[tuple[str, int, int, float, float]] = []
        """(key, sequence, status, started at, seconds taken)"""
        self.sequences: dict[str, int] = defaultdict(int)
        self.errors: dict[tuple[str, int], str] = {}
        """The error of each answer other than 202, by message id."""
        self.pending: dict[tuple[str, int], float] = {}
        """POSTs not answered yet, with when they were made."""

    def unanswered(self, *, before: float) -> int:
        """POSTs made before ``before`` (monotonic) and not answered yet."""
        return sum(1 for started in self.pending.values() if started < before)

    async def post(self, key: str) -> tuple[int, float]:
        sequence = self.sequences[key]
        self.sequences[key] += 1
        self.ledger.sent.add((key, sequence))
        started = time.monotonic()
        self.pending[(key, sequence)] = started
        response = await self.http.post(
            "/messages", json={"customer_id": key, "sequence": sequence}
        )
        took = time.monotonic() - started
        del self.pending[(key, sequence)]
        status = response.status_code
        self.answers.append((key, sequence, status, started, took))
        if status == 202:
            self.ledger.acknowledged.add((key, sequence))
        else:
            self.errors[(key, sequence)] = response.json()["error"]
            self.ledger.failed[str(status)] += 1
        return status, took


async def _lane(posts: Posts, key: str, stop: asyncio.Event) -> None:
    """One customer posting one message after another, pausing a little after a failure."""
    while not stop.is_set():
        status, _ = await posts.post(key)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05 if status == 202 else 1.0)


async def _stop_lanes(lanes: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    for lane in lanes:
        lane.cancel()
    await asyncio.gather(*lanes, return_exceptions=True)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_two_of_three_brokers_down_posts_fail_fast_with_503_and_recover(
    kafka_cluster, tmp_path, report
):
    bootstrap = kafka_cluster.bootstrap_servers
    topic = await create_replicated_topic(kafka_cluster)
    partitions = 15
    keys = _keys_for_every_partition(partitions)
    ledger = Ledger()
    [port] = free_ports(1)
    with (tmp_path / "service.log").open("w") as output:
        service = start_service(
            "sample_producer_service",
            port=port,
            config="sample_producer_service/application.yml",
            env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic},
            cwd=ROOT,
            output=output,
        )
    stop = asyncio.Event()
    lanes: list[asyncio.Task[None]] = []
    down = [node.node_id for node in kafka_cluster.nodes[1:]]
    try:
        await wait_ready(port, service)
        # uvicorn closes a keep-alive connection after 5 s idle, and httpx keeps one for 5 s:
        # a POST sent on a connection just as the service closes it fails with ReadError
        # (the service never read it). Reusing only connections idle under 1 s avoids that.
        limits = httpx.Limits(max_connections=200, keepalive_expiry=1.0)
        async with contextlib.AsyncExitStack() as exits:
            http = await exits.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits)
            )
            posts = Posts(http, ledger)
            lanes = [asyncio.create_task(_lane(posts, key, stop)) for key in keys]
            # On a failure, the lanes end before the client closes their connections.
            exits.push_async_callback(_stop_lanes, lanes, stop)
            deadline = time.monotonic() + 60
            while {k for k, _, s, _, _ in posts.answers if s == 202} != set(keys):
                assert time.monotonic() < deadline, "not every customer got a 202 before"
                await asyncio.sleep(0.1)

            # One node stopped cleanly (its partitions move to the others), then one killed:
            # the controllers lose their quorum, so the partitions it led keep it as their
            # leader (unreachable) and the others keep it in their in-sync replicas (acks=all
            # cannot be met).
            await asyncio.to_thread(kafka_cluster.stop_node, down[0], 20)
            await asyncio.to_thread(kafka_cluster.kill_node, down[1])
            stopped_at = time.monotonic()

            # After the unavailable timeout and a little more, every new POST of every
            # customer (so every partition) answers 503 at once, saying nothing was written.
            await asyncio.sleep(max(0.0, stopped_at + NOTICED_WITHIN_S - time.monotonic()))
            checked_from = time.monotonic()
            slow: list[tuple[str, int, float]] = []
            while time.monotonic() < checked_from + CHECKED_FOR_S:
                for key in keys:  # One after another, as many clients would.
                    status, took = await posts.post(key)
                    if status != 503 or took > PROMPT_S:
                        slow.append((key, status, took))
            during = [a for a in posts.answers if a[3] >= checked_from]
            assert not slow, f"not a prompt 503 while 2 of 3 brokers were down: {slow[:10]}"
            assert len({a[0] for a in during}) == len(keys)
            for key, sequence, *_ in during:
                error = posts.errors.get((key, sequence), "")
                # The partition's own refusal, not "no broker answers": one still does.
                assert f"{topic!r} partition" in error, error
                assert "nothing was written" in error, error

            # The POSTs whose records were handed to the producer before the template knew
            # keep their honest outcome: 504 at the delivery timeout (they may be written).
            # (The customers keep posting meanwhile; a trial send, below, may be among them.)
            checked_to = checked_from + CHECKED_FOR_S
            deadline = time.monotonic() + 45
            while posts.unanswered(before=checked_to):
                assert time.monotonic() < deadline, (
                    f"{posts.unanswered(before=checked_to)} POSTs made before "
                    f"{checked_to - stopped_at:.0f} s into the outage still unanswered"
                )
                await asyncio.sleep(0.2)

            for node in down:
                await asyncio.to_thread(kafka_cluster.start_node, node)
            returned_at = time.monotonic()

            # 202 again for every customer, without a restart of the service.
            deadline = returned_at + 90
            while True:
                accepted = {a[0] for a in posts.answers if a[3] >= returned_at and a[2] == 202}
                if accepted == set(keys):
                    break
                assert time.monotonic() < deadline, (
                    f"still no 202 for {sorted(set(keys) - accepted)} 90 s after the brokers "
                    "returned"
                )
                await asyncio.sleep(0.2)
            first_202 = {}
            for key, _, status, started, took in posts.answers:
                if status == 202 and started >= returned_at and key not in first_202:
                    first_202[key] = started + took - returned_at
            recovery_s = max(first_202.values())
            stop.set()
            await asyncio.wait_for(asyncio.gather(*lanes), 60)  # Every POST answered.
        assert service.poll() is None, "the service exited"
        stored = await read_topic(bootstrap, topic, partitions)
    finally:
        stop.set()
        for lane in lanes:
            lane.cancel()
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    handlings = [Handling(s.key, s.sequence, s.partition, s.offset, 0, 0.0) for s in stored]
    verdict = ledger.verdict(handlings)
    report.append(
        Row(
            "6. Two of three brokers down",
            f"1 broker stopped and 1 killed for {returned_at - stopped_at:.0f} s",
            verdict,
            recovery_s,
        )
    )
    verdict.assert_nothing_lost()
    in_topic = {h.id for h in handlings}
    refused = {(k, q) for k, q, status, _, _ in posts.answers if status == 503}
    assert not refused & in_topic, f"answered 503 but written: {sorted(refused & in_topic)[:10]}"
    statuses = {status for _, _, status, _, _ in posts.answers}
    assert statuses <= {202, 503, 504}, statuses
    # Once the template knew, a 504 is only a half-open trial: when aiokafka holds nothing
    # more of a partition (it drops unsent batches after its request timeout), one send per
    # unavailable timeout goes through to find out, and waits for its outcome like any send.
    partition_of = dict(zip(keys, (i // 2 for i in range(len(keys))), strict=True))
    trials: dict[int, list[float]] = defaultdict(list)
    for key, _, status, started, _ in sorted(posts.answers, key=lambda a: a[3]):
        if status == 504 and started > stopped_at + NOTICED_WITHIN_S:
            trials[partition_of[key]].append(started)
    for partition, starts in trials.items():
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(gap >= UNAVAILABLE_TIMEOUT_S - 0.5 for gap in gaps), (
            f"partition {partition}: 504s for POSTs made after the template knew, closer "
            f"together than one trial per unavailable timeout: {gaps}"
        )
