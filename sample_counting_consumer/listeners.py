"""Listeners of the central consumer without a database (it counts in memory), and GET /stats."""

import contextlib
import logging
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request

from kafkaboot import (
    Acknowledgment,
    Header,
    KafkaBootSettings,
    Offset,
    Partition,
    RebalanceListener,
    kafka_listener,
)
from kafkaboot.config.types import parse_duration
from sample_counting_consumer.sequences import CustomerSequences
from sample_producer_service.models import Message

log = logging.getLogger("sample_counting_consumer")
"""The events listener's consumer group (the benchmark drains one topic with several)."""
WORK_US = int(os.environ.get("CENTRAL_WORK_US", "0"))
"""Benchmark knob: CPU time each event costs on top of counting it (microseconds), as a
handler that does real work would; 0 (the default) costs nothing."""
START_PAUSED = os.environ.get("CENTRAL_START_PAUSED") == "1"
"""Benchmark knob: the events listener joins its group paused and handles nothing until
``POST /events/resume``, so that a drain is timed without the group's joins."""


LATENCY_WINDOW = 100_000
"""Latencies kept for the percentiles in /stats: the most recent ones, so memory stays
fixed however long the service runs."""


class Stats:
    """Counts per producer instance and per customer; gaps and duplicates by sequence."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.per_instance: Counter[str] = Counter()
        self.customers: defaultdict[str, CustomerSequences] = defaultdict(CustomerSequences)
        self.duplicates = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.last_offsets: dict[tuple[str, int], int] = {}
        """Per customer and partition, the offset of its latest new event."""
        self.out_of_order = 0
        """New events of a customer handled after a later one of the same partition: the
        per-key order the listener promises (ordering="key"), checked on every event."""
        self.first_at: float | None = None
        self.last_at: float | None = None
        """Epoch seconds of the first and the latest record handled (for drain rates)."""
        self.last_seen: dict[str, float] = {}
        """Per site (producer instance), epoch seconds of its latest event: the watchdog."""

    def add(self, message: Message, instance: str, partition: int = -1, offset: int = -1) -> None:
        self.last_at = time.time()
        if self.first_at is None:
            self.first_at = self.last_at
        self.received += 1
        # From the producer accepting the HTTP request to this handler (same clock here).
        self.latencies_ms.append((datetime.now(UTC) - message.timestamp).total_seconds() * 1000)
        self.per_instance[instance] += 1
        self.last_seen[instance] = self.last_at
        if not self.customers[message.customer_id].add(message.sequence):
            self.duplicates += 1  # Redelivered: its order was checked the first time.
            return
        where = (message.customer_id, partition)
        if offset < self.last_offsets.get(where, -1):
            self.out_of_order += 1
        else:
            self.last_offsets[where] = offset

    @property
    def gaps(self) -> int:
        """Arrival order does not matter: concurrent requests of a customer may overtake."""
        return sum(c.gaps for c in self.customers.values())

    def silent(self, after: float, now: float | None = None) -> dict[str, float]:
        """Sites whose latest event is older than ``after`` seconds: how long each has
        been silent (a site's service down, or its link to Kafka)."""
        now = time.time() if now is None else now
        return {
            site: round(now - seen, 1)
            for site, seen in sorted(self.last_seen.items())
            if now - seen > after
        }

    def as_dict(self, silent_after: float = 300.0) -> dict[str, Any]:
        return {
            "pid": os.getpid(),  # With --workers N, each process counts its own partitions.
            "received": self.received,
            "unique": sum(c.unique for c in self.customers.values()),
            "customers": len(self.customers),
            "per_instance": dict(self.per_instance),
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "out_of_order": self.out_of_order,
            # Over the latest LATENCY_WINDOW records.
            "latency_ms": _percentiles(list(self.latencies_ms)),
            "first_at": self.first_at,
            "last_at": self.last_at,
            "silent_after_s": silent_after,
            "silent_sites": self.silent(silent_after),
        }


class Journal:
    """With ``EVENTS_JOURNAL=path``: one line per handled event (customer, sequence,
    partition, offset, pid, epoch seconds), written straight to the kernel before the
    acknowledgment, so it survives a SIGKILL of the process. The reliability tests count
    by it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    def write(self, message: Message, partition: int, offset: int) -> None:
        line = (
            f"{message.customer_id} {message.sequence} {partition} {offset} {self._pid}"
            f" {time.time():.3f}\n"
        )
        os.write(self._fd, line.encode())


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
_journal_path = os.environ.get("EVENTS_JOURNAL")
journal = Journal(_journal_path) if _journal_path else None


class LoggingRebalance(RebalanceListener):
    """Logs every rebalance; named in application.yml (kafka.listeners.central-events)."""

    def on_partitions_assigned(self, partitions: set[Any], consumer: Any) -> None:
        log.info("assigned %d partition(s): %s", len(partitions), sorted(partitions))

    def on_partitions_revoked(self, partitions: set[Any], consumer: Any) -> None:
        log.info("revoked %d partition(s): %s", len(partitions), sorted(partitions))


# Its rebalance logging and its replay on start (seek) come from application.yml:
# kafka.listeners.central-events. Records are keyed by customer_id: with ordering="key",
# each site's events are handled in order while different sites are handled concurrently.
@kafka_listener(
    "${EVENTS_TOPIC:events}",  # Resolved from the environment when the listener registers.
    id="central-events",
    group_id="${CENTRAL_GROUP:central-counting}",
    ack_mode="manual",
    ordering="key",
)
async def on_event(
    message: Message,
    ack: Acknowledgment,
    # Raw bytes: the header only labels the statistics, so a value that is not UTF-8 must
    # not cost a valid event (kafkaboot would dead-letter it as undecodable). Decoded here
    # with the bad bytes escaped, so they still show up in per_instance.
    instance: Annotated[bytes | None, Header("instance-id")] = None,
    partition: Annotated[int, Partition] = -1,
    offset: Annotated[int, Offset] = -1,
) -> None:
    label = instance.decode(errors="backslashreplace") if instance else "unknown"
    if WORK_US:
        spend_cpu(WORK_US)
    stats.add(message, label, partition, offset)
    if journal is not None:
        journal.write(message, partition, offset)
    ack.acknowledge()


def spend_cpu(microseconds: int) -> None:
    """Busy the CPU for ``microseconds`` of this thread's own CPU time (not wall time, so
    the cost stays the same when other processes take turns on the CPU)."""
    end = time.thread_time_ns() + microseconds * 1000
    while time.thread_time_ns() < end:
        pass


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # kafkaboot's lifespan runs first (app.state.kafkaboot) but starts the application on a
    # task of its own, so pausing here comes before any consumer exists.
    if START_PAUSED:
        application = app.state.kafkaboot
        application.prepare()
        application.registry.get("central-events").pause()
    yield


app = FastAPI(title="sample central consumer", lifespan=_lifespan)


@app.get("/stats")
async def get_stats(request: Request) -> dict[str, Any]:
    """Counts, and the sites silent for longer than ``central.site-silent-after``."""
    return stats.as_dict(_silent_after(request.app.state.kafkaboot.settings))


def _silent_after(settings: KafkaBootSettings) -> float:
    central = (settings.model_extra or {}).get("central") or {}
    return parse_duration(central.get("site-silent-after", "5m")).total_seconds()


@app.get("/stats/sequences")
async def get_sequences() -> dict[str, Any]:
    """Per customer, the sequence numbers this process has seen (the contiguous prefix and
    those above it), to count across the processes of ``--workers N`` by id."""
    return {
        "pid": os.getpid(),
        "customers": {c: seen.as_dict() for c, seen in stats.customers.items()},
    }


@app.post("/events/resume")
async def resume_events(request: Request) -> dict[str, Any]:
    """Resume the events listener of this process (with ``--workers N``, each process has
    its own: call until every pid has answered); what it had handled before."""
    request.app.state.kafkaboot.registry.get("central-events").resume()
    return {"pid": os.getpid(), "received": stats.received}


@app.get("/events/assignment")
async def events_assignment(request: Request) -> dict[str, Any]:
    """This process's share of the events topic: its partitions, and whether each of its
    consumers is a settled member of the group (to know when a rebalance is over)."""
    container = request.app.state.kafkaboot.registry.get("central-events")
    return {
        "pid": os.getpid(),
        "partitions": len(container.assignment),
        "in_group": bool(container.workers) and all(w.in_group for w in container.workers),
    }


@app.delete("/stats", status_code=204)
async def reset_stats() -> None:
    """Start counting afresh (e.g. after a warm-up); committed offsets are not touched."""
    stats.reset()
