"""Listeners of the central consumer, and GET /stats."""

import logging
import os
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from dependency_injector.wiring import Provide, inject
from fastapi import FastAPI

from kafkaboot import (
    Acknowledgment,
    ConsumerSeekAware,
    Header,
    SeekCallback,
    Topic,
    kafka_listener,
)
from kafkaboot.config import KafkaBootSettings
from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import ConfigProblem, ConfigurationError
from sample_producer_service.models import Message

log = logging.getLogger("sample_consumer_service")
EVENTS_TOPIC = os.environ.get("EVENTS_TOPIC", "events")


class Stats:
    """Counts per producer instance and per customer; gaps and duplicates by sequence."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.per_instance: Counter[str] = Counter()
        self.seen: defaultdict[str, set[int]] = defaultdict(set)
        self.duplicates = 0
        self.latencies_ms: list[float] = []
        self.first_at: float | None = None
        self.last_at: float | None = None
        """Epoch seconds of the first and the latest record handled (for drain rates)."""

    def add(self, message: Message, instance: str) -> None:
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at
        self.received += 1
        # From the producer accepting the HTTP request to this handler (same clock here).
        self.latencies_ms.append((datetime.now(UTC) - message.timestamp).total_seconds() * 1000)
        self.per_instance[instance] += 1
        seen = self.seen[message.customer_id]
        if message.sequence in seen:
            self.duplicates += 1
        seen.add(message.sequence)

    @property
    def gaps(self) -> int:
        """Sequence numbers missing below each customer's highest one (they start at 0).
        Arrival order does not matter: concurrent requests of a customer may overtake."""
        return sum(max(seen) + 1 - len(seen) for seen in self.seen.values() if seen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),  # With --workers N, each process counts its own partitions.
            "received": self.received,
            "unique": sum(len(s) for s in self.seen.values()),
            "customers": len(self.seen),
            "per_instance": dict(self.per_instance),
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "latency_ms": _percentiles(self.latencies_ms),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "p50": at(0.50),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": round(ordered[-1], 1),
        "count": len(ordered),
    }


stats = Stats()


def replay_start(value: object) -> datetime | Literal["beginning"] | None:
    """Where to replay the events topic from on start, from the ``replay:`` key:
    ``none`` (committed offsets), ``beginning``, or an ISO-8601 time with a zone.

    Raises:
        ConfigurationError: anything else, naming the key and the accepted values.
    """
    if value is None or str(value).strip().lower() in {"", "none"}:
        return None
    if str(value).strip().lower() == "beginning":
        return "beginning"
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ConfigurationError(
            [
                ConfigProblem(
                    f"replay: {value!r} is not a replay start",
                    hint="use none, beginning, or a time with a zone: 2026-11-22T08:00:00Z",
                )
            ]
        )
    return when


class Replay(ConsumerSeekAware):
    """Logs rebalances and, on start, replays the events topic as ``replay:`` says.

    Each partition is replayed once per process: a later rebalance that hands it back
    resumes from the committed offset instead of replaying again.
    """

    def __init__(self) -> None:
        self.replayed: set[Any] = set()

    @inject
    def on_partitions_assigned(
        self,
        assignments: dict[Any, int],
        seek: SeekCallback,
        settings: KafkaBootSettings = Provide[ApplicationContainer.settings],
    ) -> None:
        log.info("assigned %d partition(s): %s", len(assignments), sorted(assignments))
        start = replay_start((settings.model_extra or {}).get("replay"))
        fresh = [tp for tp in assignments if tp not in self.replayed]
        self.replayed.update(fresh)
        if start is None or not fresh:
            return
        log.info("replaying %d partition(s) from %s", len(fresh), start)
        if start == "beginning":
            seek.seek_to_beginning(*fresh)
        else:
            seek.seek_to_timestamp(start, *fresh)


@kafka_listener(
    EVENTS_TOPIC, group_id="central-consumer", ack_mode="manual", rebalance_listener=Replay()
)
async def on_event(
    message: Message,
    ack: Acknowledgment,
    instance: Annotated[str | None, Header("instance-id")] = None,
) -> None:
    stats.add(message, instance or "unknown")
    ack.acknowledge()


@kafka_listener("test-topic", group_id="ai-row-data")
async def listen(message: str, topic: Annotated[str, Topic]) -> None:
    """Mirrors the Spring original: log the message and where it came from."""
    log.info("received %r from %s", message, topic)


app = FastAPI(title="sample central consumer")


@app.get("/stats")
async def get_stats() -> dict[str, Any]:
    return stats.as_dict()


@app.delete("/stats", status_code=204)
async def reset_stats() -> None:
    """Start counting afresh (e.g. after a warm-up); committed offsets are not touched."""
    stats.reset()
