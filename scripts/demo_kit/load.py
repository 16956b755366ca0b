"""The demo's load: every site gets its share of the messages over a few keep-alive
connections, one message per request (``POST /messages``) or ``batch`` per request
(``POST /messages/batch``), and every message the service acknowledged is remembered by
id (customer, sequence), so loss is counted message by message, not by totals."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from demo_kit.client import Connection, HttpError

__all__ = ["CUSTOMERS_PER_SITE", "Tally", "drive"]

CUSTOMERS_PER_SITE = 5


@dataclass
class Tally:
    """What the sites answered, kept as the load runs (the live line reads it)."""

    total: int
    acknowledged: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """Per customer, the sequence numbers a site answered 202 for: on Kafka, acks=all."""
    sent: int = 0
    failed: int = 0
    errors: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    round_trips_ms: list[float] = field(default_factory=list)
    """One per HTTP request: from writing it to reading the whole answer."""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def fail(self, count: int, why: str) -> None:
        self.failed += count
        self.errors[why] += count


def _message(site: int, n: int) -> dict[str, Any]:
    """The site's n-th message: its customers take turns, each counting up from 0."""
    return {
        "customer_id": f"site{site}-customer{n % CUSTOMERS_PER_SITE}",
        "sequence": n // CUSTOMERS_PER_SITE,
        "payload": {"reading": n},
    }


async def _site(
    tally: Tally, site: int, port: int, count: int, connections: int, batch: int
) -> None:
    numbers = iter(range(count))

    async def lane() -> None:
        connection = Connection("127.0.0.1", port)
        try:
            while chunk := [_message(site, n) for n in islice(numbers, batch)]:
                await _post(tally, connection, chunk, batch > 1)
        finally:
            await connection.close()

    await asyncio.gather(*(lane() for _ in range(connections)))


async def _post(
    tally: Tally, connection: Connection, chunk: list[dict[str, Any]], batch: bool
) -> None:
    body = json.dumps(chunk if batch else chunk[0], separators=(",", ":")).encode()
    began = time.monotonic()
    try:
        status, answer = await connection.post("/messages/batch" if batch else "/messages", body)
    except HttpError as exc:
        tally.fail(len(chunk), str(exc))
        return
    tally.round_trips_ms.append((time.monotonic() - began) * 1000)
    if status == 202:
        delivered = chunk
    elif status == 207 and batch:  # Partly written: a status per message, in order.
        lines = json.loads(answer)["results"]
        delivered = [m for m, line in zip(chunk, lines, strict=True) if line["status"] == 202]
    else:
        delivered = []
    for message in delivered:
        tally.acknowledged[message["customer_id"]].append(message["sequence"])
    tally.sent += len(delivered)
    if len(delivered) < len(chunk):
        tally.fail(len(chunk) - len(delivered), f"HTTP {status}")


async def drive(tally: Tally, ports: list[int], connections: int, batch: int = 1) -> None:
    """Send ``tally.total`` messages spread evenly over the sites on ``ports``."""
    sites = len(ports)
    shares = [tally.total // sites + (i < tally.total % sites) for i in range(sites)]
    tally.started = time.monotonic()
    try:
        await asyncio.gather(
            *(
                _site(tally, i, port, share, connections, batch)
                for i, (port, share) in enumerate(zip(ports, shares, strict=True))
            )
        )
    finally:
        tally.finished = time.monotonic()
