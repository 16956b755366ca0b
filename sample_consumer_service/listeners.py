"""Listeners of the central consumer, and GET /stats."""

import logging
import os
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI

from kafkaboot import Acknowledgment, Header, RebalanceListener, Topic, kafka_listener
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


class LoggingRebalance(RebalanceListener):
    """Logs every rebalance; named in application.yml (kafka.listeners.central-events)."""

    def on_partitions_assigned(self, partitions: set[Any], consumer: Any) -> None:
        log.info("assigned %d partition(s): %s", len(partitions), sorted(partitions))

    def on_partitions_revoked(self, partitions: set[Any], consumer: Any) -> None:
        log.info("revoked %d partition(s): %s", len(partitions), sorted(partitions))


# Its rebalance logging and its replay on start (seek) come from application.yml:
# kafka.listeners.central-events.
@kafka_listener(EVENTS_TOPIC, id="central-events", group_id="central-consumer", ack_mode="manual")
async def on_event(
    message: Message,
    ack: Acknowledgment,
    # Raw bytes: the header only labels the statistics, so a value that is not UTF-8 must
    # not cost a valid event (kafkaboot would dead-letter it as undecodable). Decoded here
    # with the bad bytes escaped, so they still show up in per_instance.
    instance: Annotated[bytes | None, Header("instance-id")] = None,
) -> None:
    label = instance.decode(errors="backslashreplace") if instance else "unknown"
    stats.add(message, label)
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
