"""What a running cluster says about itself: registered brokers, and who leads each partition.

Every question is bounded by a timeout, because it is asked exactly when nodes may be down:
``kafkaboot broker status`` must answer, not hang, when no broker does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["PartitionInfo", "count_brokers", "describe_partitions", "run_sync"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, order=True)
class PartitionInfo:
    """One topic-partition as the cluster's metadata reports it."""

    topic: str
    partition: int
    leader: int | None
    """Node id of the leader; ``None`` while no replica leads (all of them down)."""
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    internal: bool
    """Kafka's own topics (``__consumer_offsets``, ``__transaction_state``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "leader": self.leader,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
            "internal": self.internal,
        }


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, also when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def count_brokers(bootstrap: str, timeout_s: float) -> int:
    """How many brokers the node(s) at ``bootstrap`` list in their metadata."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    finally:
        await client.close()


async def describe_partitions(bootstrap: str, timeout_s: float) -> list[PartitionInfo]:
    """Every topic-partition of the cluster with its leader, replicas and in-sync replicas.

    All topics are asked for, never a list of names: a metadata request that names a topic
    creates it on a broker with ``auto.create.topics.enable`` (the default).

    Raises:
        TimeoutError: no broker answered within ``timeout_s``.
        aiokafka.errors.KafkaError: the metadata request failed.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1, int(timeout_s * 1000))
    )
    last_error: KafkaError | None = None
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            while True:
                try:
                    topics = await admin.describe_topics()
                    break
                except KafkaError as exc:
                    # The client asks a random broker of the metadata, which still lists a
                    # node that just stopped; another try asks another one.
                    last_error = exc
                    await asyncio.sleep(0.1)
    except TimeoutError as exc:
        raise TimeoutError(f"last error: {last_error!r}" if last_error else "") from exc
    finally:
        # close() only closes sockets, but never let it extend the bound either.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(admin.close(), timeout_s)
    return sorted(
        PartitionInfo(
            topic=topic["topic"],
            partition=partition["partition"],
            leader=partition["leader"] if partition["leader"] >= 0 else None,
            replicas=tuple(partition["replicas"]),
            isr=tuple(partition["isr"]),
            internal=bool(topic.get("is_internal")) or topic["topic"].startswith("__"),
        )
        for topic in topics
        for partition in topic["partitions"]
    )
