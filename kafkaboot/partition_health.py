"""Partition health: a circuit breaker per topic-partition, so that a send to a partition
that cannot take writes is refused at once (nothing written, safe to retry) instead of
waiting out the delivery timeout with its outcome unknown.

Some brokers may answer while a partition still cannot take writes: its leader is down,
or too few replicas are in sync for ``acks=all`` (two brokers of three down). aiokafka then
retries the partition's batches without end while idempotence is on, so each send would end
by the delivery timeout. A breaker opens when a batch of the partition stays unconfirmed for
``kafka.template.unavailable-timeout``, or when the partition's leader does not answer a
connect (or it has none). It closes when a send to the partition is confirmed (the batches
aiokafka keeps retrying are the probe), or, for an unreachable leader, when the leader (or a
new one) answers again. With nothing of the partition left in aiokafka, one send per
unavailable timeout is let through to find out (half-open).

What it reads of aiokafka beyond its public API: the producer's accumulator (which batches
are unconfirmed, since when) and partitioner, so that it refuses exactly the partition the
producer would send to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from kafkaboot.errors import PartitionUnavailableError

__all__ = ["Breaker", "PartitionHealth", "unconfirmed_batches"]

log = logging.getLogger("kafkaboot.template")

Ready = Callable[[int], Awaitable[bool]]
"""Connects to a broker by node id unless connected already; whether that worked
(aiokafka's ``client.ready``)."""

Cause = Literal["unreachable", "unconfirmed"]


@dataclass(slots=True)
class Breaker:
    """An open breaker: sends to its partition are refused, except a trial once
    ``trial_at`` has passed (only for ``unconfirmed``: an unreachable leader is asked by
    a connect instead)."""

    cause: Cause
    leader: int | None
    since: float
    trial_at: float


def unconfirmed_batches(accumulator: Any) -> dict[TopicPartition, float]:
    """When the oldest batch that aiokafka's ``accumulator`` holds unconfirmed was created,
    per partition: the batches waiting to be sent and those sent but not answered."""
    oldest: dict[TopicPartition, float] = {}
    for tp, waiting in accumulator._batches.items():
        if waiting:
            oldest[tp] = waiting[0]._ctime  # Each partition's queue is oldest first.
    for batch in accumulator._pending_batches:
        if not batch.future.done():
            created = batch._ctime
            if created < oldest.get(batch.tp, created + 1):
                oldest[batch.tp] = created
    return oldest


class PartitionHealth:
    """The template's open breakers and what opens and closes them.

    The send path reads ``topics`` (topics with an open breaker) and calls ``admit`` only
    for those; everything else happens in the template's sweeper, in done callbacks and in
    a probe task.

    Args:
        timeout: ``kafka.template.unavailable-timeout``: how long a connect to a leader may
            take, and how long an open breaker waits before it lets a trial send through.
    """

    __slots__ = (
        "_accumulator",
        "_cluster",
        "_partitioner",
        "_pending",
        "_probing",
        "_ready",
        "open",
        "recheck",
        "timeout",
        "topics",
    )

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.open: dict[TopicPartition, Breaker] = {}
        self.topics: set[str] = set()
        self.recheck = False  # Metadata changed or a send is stuck: ask the leaders.
        self._pending: set[TopicPartition] = set()
        self._probing: asyncio.Task[None] | None = None
        self._cluster: ClusterMetadata | None = None
        self._partitioner: Callable[..., int] | None = None
        self._accumulator: Any = None
        self._ready: Ready | None = None

    def start(
        self,
        cluster: ClusterMetadata,
        partitioner: Callable[..., int],
        accumulator: Any,
        ready: Ready,
    ) -> None:
        """Watch the producer's ``cluster`` metadata and ``accumulator``; ``partitioner``
        is the producer's own, ``ready`` its client's connect."""
        self.open.clear()
        self.topics.clear()
        self._pending = set()
        self._cluster, self._partitioner = cluster, partitioner
        self._accumulator, self._ready = accumulator, ready

    async def stop(self) -> None:
        self._cluster = self._accumulator = self._ready = None
        probing, self._probing = self._probing, None
        if probing is not None:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing

    # -- the send path --------------------------------------------------------------------

    def admit(
        self, topic: str, partition: int | None, key_bytes: bytes | None, key: Any
    ) -> int | None:
        """The partition a send to ``topic`` (which has an open breaker) goes to, chosen as
        the producer would, but a record without a key avoids open partitions. None when
        the producer has no metadata for the topic: it then waits for it as always.

        Raises:
            PartitionUnavailableError: that partition's breaker is open.
        """
        cluster, partitioner = self._cluster, self._partitioner
        every = cluster.partitions_for_topic(topic) if cluster is not None else None
        if partition is None:
            if not every or partitioner is None:
                return None
            closed = [
                p
                for p in cluster.available_partitions_for_topic(topic)  # type: ignore[union-attr]
                if TopicPartition(topic, p) not in self.open
            ]
            partition = partitioner(key_bytes, list(every), closed)
        tp = TopicPartition(topic, partition)
        breaker = self.open.get(tp)
        if breaker is None:
            return partition
        now = time.monotonic()
        if breaker.cause == "unconfirmed" and now >= breaker.trial_at and tp not in self._pending:
            breaker.trial_at = now + self.timeout
            log.info("letting one send through to %s to see whether it takes writes again", tp)
            return partition
        raise self._refused(tp, breaker, key, now)

    def _refused(
        self, tp: TopicPartition, breaker: Breaker, key: Any, now: float
    ) -> PartitionUnavailableError:
        leader = "no leader" if breaker.leader is None else f"leader broker {breaker.leader}"
        if breaker.cause == "unreachable":
            why = (
                "it has no leader"
                if breaker.leader is None
                else f"its leader, broker {breaker.leader}, does not answer"
            )
            until = "its leader (or a new one) answers"
        else:
            why = (
                f"a send to it ({leader}) stayed unconfirmed for "
                f"{self.timeout:g}s, so it cannot take writes now (is its leader or are "
                "enough in-sync replicas for min.insync.replicas up?)"
            )
            until = "a send to it is confirmed"
        return PartitionUnavailableError(
            f"not sent to topic {tp.topic!r} partition {tp.partition} (key {key!r}): {why} "
            f"(for {now - breaker.since:.0f}s), so nothing was written; retry later (sends "
            f"to it are accepted again once {until}; other partitions take sends as usual)",
            topic=tp.topic,
            partition=tp.partition,
            leader=breaker.leader,
            key=key,
        )

    # -- opening and closing --------------------------------------------------------------

    def opened(self, tp: TopicPartition, cause: Cause, leader: int | None, now: float) -> None:
        """Open ``tp``'s breaker, or give an open one the new ``cause``."""
        breaker = self.open.get(tp)
        if breaker is not None:
            breaker.cause, breaker.leader = cause, leader
            return
        self.open[tp] = Breaker(cause, leader, now, now + self.timeout)
        self.topics.add(tp.topic)
        log.warning(
            "sends to %s are refused: %s",
            tp,
            f"its leader {leader} does not answer"
            if cause == "unreachable"
            else f"a send to it stayed unconfirmed for {self.timeout:g}s",
        )

    def closed(self, tp: TopicPartition, why: str) -> None:
        if self.open.pop(tp, None) is None:
            return
        log.info("sends to %s are accepted again: %s", tp, why)
        if not any(t.topic == tp.topic for t in self.open):
            self.topics.discard(tp.topic)

    def delivered(self, delivery: asyncio.Future[Any]) -> None:
        """Done callback of an aiokafka delivery: a confirmed send closes its breaker."""
        if not self.open or delivery.cancelled() or delivery.exception() is not None:
            return
        metadata = delivery.result()
        self.closed(TopicPartition(metadata.topic, metadata.partition), "a send was confirmed")

    def sweep(self, now: float, stuck_after: float) -> None:
        """Open the breaker of every partition with a batch unconfirmed for ``stuck_after``
        seconds; ask the leaders when something changed. Called by the template's sweeper."""
        if self._accumulator is None or self._cluster is None:
            return
        oldest = unconfirmed_batches(self._accumulator)
        self._pending = set(oldest)
        cluster = self._cluster
        for tp, created in oldest.items():
            if created <= now - stuck_after and tp not in self.open:
                self.opened(tp, "unconfirmed", cluster.leader_for_partition(tp), now)
                self.recheck = True  # Its leader may be gone: find out.
        unreachable = any(b.cause == "unreachable" for b in self.open.values())
        if (self.recheck or unreachable) and (self._probing is None or self._probing.done()):
            self.recheck = False
            self._probing = asyncio.create_task(self.probe(), name="kafkaboot:partition-probe")

    async def probe(self) -> None:
        """Connect to the leader of every partition the producer knows (at once where it
        has a connection); open the breakers of partitions whose leader does not answer or
        is missing, close those whose leader answers again."""
        cluster = self._cluster
        if cluster is None:
            return
        leaders = {tp: cluster.leader_for_partition(tp) for tp in _known_partitions(cluster)}
        nodes = sorted({n for n in leaders.values() if n is not None and n >= 0})
        answers = await asyncio.gather(*(self._answers(node) for node in nodes))
        down = {node for node, answered in zip(nodes, answers, strict=True) if not answered}
        now = time.monotonic()
        for tp, leader in leaders.items():
            breaker = self.open.get(tp)
            if leader is None or leader < 0 or leader in down:
                if breaker is None or breaker.cause != "unreachable":
                    self.opened(
                        tp, "unreachable", None if leader is None or leader < 0 else leader, now
                    )
            elif breaker is not None and breaker.cause == "unreachable":
                self.closed(tp, f"its leader, broker {leader}, answers")

    async def _answers(self, node: int) -> bool:
        ready = self._ready
        if ready is None:
            return False
        try:
            return await asyncio.wait_for(ready(node), self.timeout)
        except (TimeoutError, KafkaError, OSError):
            return False

    def refreshed(self) -> None:
        """After each refresh of the producer's metadata (aiokafka refreshes when a broker
        connection breaks or a connect fails): leaders may have moved or gone. Told by the
        template's ``Availability``, the one watcher of the refreshes."""
        self.recheck = True


def _known_partitions(cluster: ClusterMetadata) -> Iterable[TopicPartition]:
    for topic in cluster.topics():
        for partition in cluster.partitions_for_topic(topic) or ():
            yield TopicPartition(topic, partition)
