"""End-to-end latency: ``POST /messages`` on the sample producer service at a fixed rate
(open loop), to the central consumer's handler. The producer stamps each message when it
accepts the request; the consumer measures the time to its handler (same clock)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid

from bench.harness import Measured, Row
from bench.services import Connection, get_json, request, service, wait_ready
from kafkaboot.testing import free_ports

CONNECTIONS = 32
QUANTILES = (("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999))


async def _drive(port: int, rate: int, count: int, round_trips: list[float]) -> int:
    """Send ``count`` messages at ``rate`` per second over a pool of connections; the
    number answered 202."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection(port))
    accepted = 0

    async def one(n: int) -> None:
        nonlocal accepted
        body = json.dumps({"customer_id": f"c{n % 50}", "sequence": n // 50}).encode()
        connection = await pool.get()
        try:
            sent = time.perf_counter()
            status, _ = await connection.send("POST", "/messages", body)
            round_trips.append((time.perf_counter() - sent) * 1000)
            accepted += status == 202
        finally:
            pool.put_nowait(connection)

    started = time.perf_counter()
    tasks = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return accepted


async def _measure(bootstrap: str, rate: int, seconds: float) -> dict[str, float]:
    count = int(rate * seconds)
    topic = f"bench-latency-{uuid.uuid4().hex[:6]}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic, "INSTANCE_ID": "bench"}
    consumer_port, producer_port = free_ports(2)
    with service("sample_consumer_service", consumer_port, env) as consumer:
        await wait_ready(consumer_port, consumer)
        with service("sample_producer_service", producer_port, env) as producer:
            await wait_ready(producer_port, producer)
            await _drive(producer_port, rate, min(count, 200), [])  # Warm-up.
            await asyncio.sleep(1.0)
            await request(consumer_port, "DELETE", "/stats")  # Only the measured run counts.
            baseline = 0
            round_trips: list[float] = []
            accepted = await _drive(producer_port, rate, count, round_trips)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                stats = await get_json(consumer_port, "/stats")
                if stats["received"] >= baseline + accepted:
                    break
                await asyncio.sleep(0.2)
    latency = stats["latency_ms"]
    ordered = sorted(round_trips)
    http = {q: ordered[min(len(ordered) - 1, int(f * len(ordered)))] for q, f in QUANTILES}
    return {
        "p50": latency["p50"],
        "p99": latency["p99"],
        "p99.9": latency["p99.9"],
        "http_p50": http["p50"],
        "http_p99": http["p99"],
        "http_p99.9": http["p99.9"],
        "accepted": accepted,
        "sent": count,
    }


def run(
    bootstrap: str, rates: list[int], seconds: float, runs: int, loop: asyncio.AbstractEventLoop
) -> list[Row]:
    rows = []
    for rate in rates:
        results = [loop.run_until_complete(_measure(bootstrap, rate, seconds)) for _ in range(runs)]
        for quantile in ("p50", "p99", "p99.9"):
            rows.append(
                Row(
                    f"latency: HTTP POST → listener at {rate} msg/s, {quantile}",
                    "ms",
                    Measured([r[quantile] for r in results]),
                    higher_is_better=False,
                    target="≤ 15 ms" if (rate, quantile) == (500, "p99") else "",
                    note=(
                        f"{results[-1]['accepted']:,} of {results[-1]['sent']:,} requests "
                        f"accepted in {seconds:g} s; "
                        if quantile == "p50"
                        else ""
                    )
                    + "the HTTP round trip alone (accept, send, broker ack, answer): "
                    + f"{statistics.median(r['http_' + quantile] for r in results):.1f} ms",
                    extra={
                        "http_round_trip_ms": statistics.median(
                            r["http_" + quantile] for r in results
                        )
                    },
                )
            )
    return rows
