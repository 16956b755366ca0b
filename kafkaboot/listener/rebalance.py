"""Rebalance callbacks and seeks: where a listener's consumers start reading.

A :class:`RebalanceListener` hears about partitions revoked, assigned and lost. A
:class:`ConsumerSeekAware` listener positions newly assigned partitions through a
:class:`SeekCallback`. The same seeks can be asked for at runtime (``container.seek_to_end()``)
and run on the consumer's own task at its next poll.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

if TYPE_CHECKING:
    from kafkaboot.config.kafka import SeekProperties

__all__ = [
    "ConsumerSeekAware",
    "RebalanceListener",
    "SeekCallback",
    "SeekRequest",
    "call_maybe_async",
    "initial_seek_requests",
]


class RebalanceListener:
    """Override the callbacks you need; each may be ``def`` or ``async def``.

    Offsets of records already handled are committed before ``on_partitions_revoked`` runs.
    ``on_partitions_lost`` runs instead when partitions were taken away before their offsets
    could be committed (the group moved on, e.g. after a long pause); their uncommitted
    records will be delivered again to the new owner.
    """

    def on_partitions_revoked(
        self, partitions: set[TopicPartition], consumer: AIOKafkaConsumer
    ) -> Any:
        return None

    def on_partitions_assigned(
        self, partitions: set[TopicPartition], consumer: AIOKafkaConsumer
    ) -> Any:
        return None

    def on_partitions_lost(
        self, partitions: set[TopicPartition], consumer: AIOKafkaConsumer
    ) -> Any:
        return None


class ConsumerSeekAware:
    """A listener that decides where newly assigned partitions start (Spring's
    ``ConsumerSeekAware``)."""

    def on_partitions_assigned(
        self, assignments: dict[TopicPartition, int], seek: SeekCallback
    ) -> Any:
        """``assignments`` maps each new partition to its current position."""
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class SeekRequest:
    """One seek, for specific partitions or (``partitions is None``) all assigned ones."""

    kind: str  # "offset", "beginning", "end", "relative", "timestamp"
    partitions: tuple[TopicPartition, ...] | None
    value: int = 0

    def concerns(self, assigned: set[TopicPartition]) -> list[TopicPartition]:
        if self.partitions is None:
            return sorted(assigned)
        return [tp for tp in self.partitions if tp in assigned]


def _timestamp_ms(when: datetime | int | float) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("seek_to_timestamp needs a timezone-aware datetime (e.g. UTC)")
        return int(when.timestamp() * 1000)
    return int(when)


class SeekCallback:
    """Seeks collected now and applied together by :meth:`apply` on the consumer's task."""

    def __init__(self) -> None:
        self.requests: list[SeekRequest] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.requests.append(SeekRequest("offset", (tp,), offset))

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.requests.append(SeekRequest("beginning", partitions or None))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        self.requests.append(SeekRequest("end", partitions or None))

    def seek_relative(self, tp: TopicPartition, delta: int) -> None:
        """Move ``delta`` records from the current position (negative: back)."""
        self.requests.append(SeekRequest("relative", (tp,), delta))

    def seek_to_timestamp(self, when: datetime | int, *partitions: TopicPartition) -> None:
        """The first record at or after ``when`` (a datetime or epoch milliseconds)."""
        self.requests.append(SeekRequest("timestamp", partitions or None, _timestamp_ms(when)))


async def apply_seeks(
    consumer: AIOKafkaConsumer, requests: Iterable[SeekRequest], assigned: set[TopicPartition]
) -> list[TopicPartition]:
    """Run seek requests on ``consumer``; returns the partitions whose position changed."""
    moved: list[TopicPartition] = []
    for request in requests:
        partitions = request.concerns(assigned)
        if not partitions:
            continue
        # Beginning and end are looked up and sought as offsets: aiokafka's own
        # ``seek_to_end()`` only requests a reset, and an initial reset of the fetcher that
        # is still under way can answer it with the wrong end (a new group landed at 0).
        if request.kind == "offset":
            for tp in partitions:
                consumer.seek(tp, request.value)
        elif request.kind == "beginning":
            for tp, offset in (await consumer.beginning_offsets(partitions)).items():
                consumer.seek(tp, offset)
        elif request.kind == "end":
            for tp, offset in (await consumer.end_offsets(partitions)).items():
                consumer.seek(tp, offset)
        elif request.kind == "relative":
            for tp in partitions:
                position = await consumer.position(tp)
                consumer.seek(tp, max(0, position + request.value))
        elif request.kind == "timestamp":
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, request.value))
            past_end = [tp for tp, hit in found.items() if hit is None]
            for tp, hit in found.items():
                if hit is not None:
                    consumer.seek(tp, hit.offset)
            if past_end:
                for tp, offset in (await consumer.end_offsets(past_end)).items():
                    consumer.seek(tp, offset)
        moved += partitions
    return moved


async def call_maybe_async(function: Callable[..., Any], *args: Any) -> Any:
    """Call a callback that may be ``def`` or ``async def``."""
    result = function(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def initial_seek_requests(
    seek: SeekProperties, partitions: Iterable[TopicPartition]
) -> list[SeekRequest]:
    """The seeks ``kafka.listeners.<id>.seek`` asks for on newly assigned ``partitions``."""
    chosen = tuple(sorted(partitions))
    if not chosen or seek.to == "committed":
        return []
    if seek.to in ("beginning", "end"):
        return [SeekRequest(seek.to, chosen)]
    if seek.to == "timestamp":
        when = seek.timestamp or datetime.now(UTC) - (seek.ago or timedelta(0))
        return [SeekRequest("timestamp", chosen, _timestamp_ms(when))]
    return [
        SeekRequest("offset", (tp,), seek.offsets[tp.partition])
        for tp in chosen
        if tp.partition in seek.offsets
    ]
