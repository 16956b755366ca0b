"""Consumer lag per listener and partition, in records and in seconds, from the consumers'
own state: no admin round trip per scrape.

Lag in records is the partition's end offset (the high watermark of the consumer's latest
fetch; the last stable offset with ``read_committed``) minus its committed offset (or, before
the first commit, where the consumer resumes: the first unfinished record, or the position
``auto-offset-reset`` gave it). A partition the consumer does not fetch (paused, or backed up
behind records it still holds) keeps a stale high watermark; its end offset is then asked of
the broker in the background, at most every few seconds, and the scrape reads that answer.

Lag in seconds is the age of the oldest record not yet finished: its timestamp, when the
consumer holds it; otherwise (records not fetched yet) how long the lag has stood at the
same committed offset, a lower bound. It is 0 when the partition is caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["LagProbe", "PartitionLag"]

log = logging.getLogger("kafkaboot.observability")
_STALE_AFTER_S = 5.0
"""A high watermark older than this (no fetch answered for the partition) is not trusted."""
_REFRESH_EVERY_S = 2.0
"""At most this often, per consumer, the end offsets of such partitions are asked for."""
_REFRESH_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionLag:
    """One assigned partition of one listener consumer, as a scrape sees it."""

    listener: str
    group: str
    topic: str
    partition: int
    end_offset: float
    """The log end offset (NaN: not known yet)."""
    committed: float
    """The committed offset, or where the consumer resumes before the first commit (NaN:
    not known yet)."""
    lag_records: float
    lag_seconds: float
    paused: bool


class LagProbe:
    """Computes :class:`PartitionLag` for the containers of a registry (one per application).

    It remembers, per consumer, the end offsets it asked the broker for and, per partition,
    since when the lag has stood at the same committed offset.
    """

    def __init__(self) -> None:
        self._ends: dict[tuple[int, TopicPartition], tuple[int, float]] = {}
        self._asked: dict[int, float] = {}
        self._asking: dict[int, asyncio.Future[None]] = {}
        self._since: dict[tuple[str, TopicPartition], tuple[float, float]] = {}

    def snapshot(self, containers: Iterable[Any]) -> list[PartitionLag]:
        """Every assigned partition of every running listener consumer."""
        now, wall = time.monotonic(), time.time()
        found: list[PartitionLag] = []
        seen: set[tuple[str, TopicPartition]] = set()
        consumers: set[int] = set()
        for container in containers:
            group = container.settings.group_id or ""
            committed_only = (
                container.settings.consumer_kwargs.get("isolation_level") == "read_committed"
            )
            for worker in container.workers:
                consumer = worker.consumer
                consumers.add(id(consumer))
                stale: list[TopicPartition] = []
                paused = _paused(consumer) | _held(container, worker)
                for state in list(worker.book):
                    tp = state.tp
                    end = self._end_offset(consumer, tp, committed_only, now, wall, stale)
                    base = state.committed
                    if base is None:
                        base = state.resume_offset
                    if base is None:
                        base = _position(consumer, tp)
                    key = (container.listener_id, tp)
                    seen.add(key)
                    if end is None or base is None:
                        lag = seconds = math.nan
                    else:
                        lag = float(max(0, end - base))
                        seconds = self._age(key, state, base, lag, now, wall)
                    found.append(
                        PartitionLag(
                            container.listener_id,
                            group,
                            tp.topic,
                            tp.partition,
                            math.nan if end is None else float(end),
                            math.nan if base is None else float(base),
                            lag,
                            seconds,
                            tp in paused,
                        )
                    )
                if stale:
                    self._ask(consumer, stale, now)
        for key in list(self._since):
            if key not in seen:
                del self._since[key]
        self._forget_other_consumers(consumers)
        return found

    def _forget_other_consumers(self, consumers: set[int]) -> None:
        """Drop what is remembered of consumers that are gone (a container restarted)."""
        for key in [k for k in self._ends if k[0] not in consumers]:
            del self._ends[key]
        for consumer in [c for c in self._asked if c not in consumers]:
            del self._asked[consumer]
        for consumer in [c for c in self._asking if c not in consumers]:
            if self._asking[consumer].done():
                del self._asking[consumer]

    def _end_offset(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        committed_only: bool,
        now: float,
        wall: float,
        stale: list[TopicPartition],
    ) -> int | None:
        fetched = _fetch_state(consumer, tp)
        asked = self._ends.get((id(consumer), tp))
        if fetched is not None:
            end, updated_ms = fetched.highwater, fetched.timestamp
            if committed_only and fetched.lso is not None and fetched.lso >= 0:
                end = fetched.lso
            fresh = (
                end is not None
                and updated_ms is not None
                and (wall - updated_ms / 1000 < _STALE_AFTER_S)
            )
            if fresh:
                return int(end)
            if asked is not None and (end is None or asked[1] >= now - _STALE_AFTER_S):
                stale.append(tp)
                return max(asked[0], int(end)) if end is not None else asked[0]
            stale.append(tp)
            return None if end is None else int(end)
        stale.append(tp)
        return None if asked is None else asked[0]

    def _ask(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition], now: float
    ) -> None:
        """Ask the broker for ``partitions``' end offsets in the background (one question per
        consumer at a time, at most every ``_REFRESH_EVERY_S``)."""
        key = id(consumer)
        running = self._asking.get(key)
        if running is not None and not running.done():
            return
        if now - self._asked.get(key, -math.inf) < _REFRESH_EVERY_S:
            return
        self._asked[key] = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # Scraped off the event loop: the fetched high watermarks must do.
        self._asking[key] = loop.create_task(self._refresh(consumer, partitions))

    async def _refresh(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        try:
            async with asyncio.timeout(_REFRESH_TIMEOUT_S):
                ends = await consumer.end_offsets(partitions)
        except Exception as exc:  # The broker away, the consumer stopped: try again later.
            log.debug("end offsets of %s not known: %r", partitions, exc)
            return
        answered = time.monotonic()
        for tp, end in ends.items():
            self._ends[(id(consumer), tp)] = (int(end), answered)

    def _age(
        self,
        key: tuple[str, TopicPartition],
        state: Any,
        base: int,
        lag: float,
        now: float,
        wall: float,
    ) -> float:
        if lag <= 0:
            self._since.pop(key, None)
            return 0.0
        oldest = state.oldest_unfinished()
        if oldest is not None and oldest.timestamp is not None and oldest.timestamp >= 0:
            return max(0.0, wall - float(oldest.timestamp) / 1000)
        since = self._since.get(key)
        if since is None or since[0] != base:
            self._since[key] = (base, now)
            return 0.0
        return now - since[1]

    async def close(self) -> None:
        for running in self._asking.values():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
        self._asking.clear()


def _fetch_state(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Any:
    """aiokafka's per-partition fetch state (high watermark, last stable offset, when they
    were last updated); ``None`` if the partition is not assigned to it (any more)."""
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    assignment = getattr(subscription, "assignment", None)
    if assignment is None:
        return None
    try:
        return assignment.state_value(tp)
    except (KeyError, AttributeError):
        return None


def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    state = _fetch_state(consumer, tp)
    if state is None or not getattr(state, "has_valid_position", False):
        return None
    return int(state.position)


def _paused(consumer: AIOKafkaConsumer) -> set[TopicPartition]:
    try:
        return set(consumer.paused())
    except Exception:
        return set()


def _held(container: Any, worker: Any) -> set[TopicPartition]:
    """Partitions the container holds still (a paused container pauses them in the loop)."""
    return set(worker.book.partitions) if container.paused else set()
