"""The many-sites demo: N producer services publish M messages over HTTP into one central
consumer service, then a summary says whether anything was lost.

Starts a local Apache Kafka broker unless $KAFKA_BOOTSTRAP_SERVERS names a cluster; every
service runs as its own process with `kafkaboot run`. Exits non-zero if a message was lost
or a service failed to start.

Usage: python scripts/demo.py [--producers N] [--messages M]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from kafkaboot.testing import KafkaCluster, free_ports, start_service

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS_PER_SITE = 5


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with tempfile.TemporaryDirectory() as data:
        say("starting a local Apache Kafka broker ...")
        with KafkaCluster(data) as cluster:
            say(f"Kafka ready at {cluster.bootstrap_servers}")
            yield cluster.bootstrap_servers


def start(service: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return start_service(
            service, port=port, config=f"{service}/application.yml", env=env, cwd=ROOT, output=out
        )


async def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"a service on port {port} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/actuator/health/readiness")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"the service on port {port} was not ready within {timeout:.0f}s")


async def drive(ports: list[int], messages: int) -> tuple[int, int, float]:
    """Send ``messages`` over all sites; each customer's sequence numbers count up."""
    per_site = [messages // len(ports) + (i < messages % len(ports)) for i in range(len(ports))]
    sent = failed = 0
    started = time.monotonic()

    async def site(index: int, port: int, count: int) -> None:
        nonlocal sent, failed
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
        ) as http:
            queue = list(range(count))

            async def worker(lane: int) -> None:
                nonlocal sent, failed
                for n in queue[lane::8]:
                    body = {
                        "customer_id": f"site{index}-customer{n % CUSTOMERS_PER_SITE}",
                        "sequence": n // CUSTOMERS_PER_SITE,
                        "payload": {"reading": n},
                    }
                    response = await http.post("/messages", json=body)
                    if response.status_code == 202:
                        sent += 1
                    else:
                        failed += 1

            await asyncio.gather(*(worker(lane) for lane in range(8)))

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            say(f"sent {sent:,} of {messages:,} ...")

    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(
            *(site(i, p, c) for i, (p, c) in enumerate(zip(ports, per_site, strict=True)))
        )
    finally:
        reporter.cancel()
    return sent, failed, time.monotonic() - started


async def wait_received(port: int, expected: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        while True:
            stats = (await http.get("/stats")).json()
            if stats["unique"] >= expected or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.5)


async def main(producers: int, messages: int) -> int:
    logs = Path(tempfile.mkdtemp(prefix="kafkaboot-demo-"))
    topic = f"events-{uuid.uuid4().hex[:6]}"
    with kafka() as bootstrap:
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic}
        consumer_port, *ports = free_ports(producers + 1)
        processes = []
        try:
            say(f"starting the central consumer (topic {topic}, 15 partitions) ...")
            consumer = start("sample_consumer_service", consumer_port, env, logs / "consumer.log")
            processes.append(consumer)
            await wait_ready(consumer_port, consumer)
            say(f"starting {producers} producer service instances ...")
            for i, port in enumerate(ports):
                processes.append(
                    start(
                        "sample_producer_service",
                        port,
                        env | {"INSTANCE_ID": f"site-{i:02d}"},
                        logs / f"producer-{i:02d}.log",
                    )
                )
            await asyncio.gather(
                *(wait_ready(p, proc) for p, proc in zip(ports, processes[1:], strict=True))
            )
            say(f"driving {messages:,} messages through the HTTP endpoints ...")
            sent, failed, seconds = await drive(ports, messages)
            say("waiting for the central consumer to take everything in ...")
            stats = await wait_received(consumer_port, sent)
        except RuntimeError as exc:
            say(f"FAILED: {exc} (logs in {logs})")
            return 2
        finally:
            say("stopping the services ...")
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
    lost = sent - stats["unique"]
    latency = stats.get("latency_ms", {})
    print()
    print("| metric | value |")
    print("| --- | --- |")
    rows = [
        ("producer instances", producers),
        ("messages sent (HTTP 202)", f"{sent:,}"),
        ("HTTP errors", failed),
        ("received by the central consumer", f"{stats['received']:,}"),
        ("unique", f"{stats['unique']:,}"),
        ("duplicates", stats["duplicates"]),
        ("lost", lost),
        ("sequence gaps", stats["gaps"]),
        ("throughput (sent/s)", f"{sent / seconds:,.0f}"),
        ("end-to-end latency p50 / p99 (ms)", f"{latency.get('p50')} / {latency.get('p99')}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    counts = stats["per_instance"]
    print(f"| per instance (min / max) | {min(counts.values()):,} / {max(counts.values()):,} |")
    print()
    ok = lost == 0 and failed == 0 and stats["gaps"] == 0
    say("OK: nothing lost" if ok else f"FAILED: lost={lost} http_errors={failed} (logs in {logs})")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=15)
    parser.add_argument("--messages", type=int, default=30_000)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.producers, args.messages)))
