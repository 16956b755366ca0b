"""End-to-end latency: ``POST /messages`` on the sample producer service at a fixed rate
(open loop, from a load generator in its own process: :mod:`bench.loadgen`), to the handler
of the counting central consumer (``sample_counting_consumer``), broken into its parts.

Every stamp is CLOCK_REALTIME on this one machine, taken per record:

- ``sent``: the load generator, just before it writes the request (in the body's payload);
- ``accepted``: the producer service, when FastAPI builds the ``Message`` (its ``timestamp``);
- ``appended``: the broker, when it appends the record (the topic is made with
  ``message.timestamp.type=LogAppendTime``; milliseconds);
- ``answered``: the load generator, when the 202 is read (the send's broker ack came before);
- ``handled``: the consumer's handler (its ``EVENTS_JOURNAL`` line; milliseconds).

The headline figure (accepted → handled) is the consumer's own ``/stats``, in microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import Measured, Row
from bench.services import (
    ROOT,
    get_json,
    machine_cpu,
    machine_steal,
    process_tree_cpu,
    request,
    service,
    steal_percent,
    wait_ready,
)
from kafkaboot.testing import free_ports

CONNECTIONS = 32
PARTITIONS = 15
QUANTILES = (("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999))
PARTS = {
    "client → accepted (HTTP in, FastAPI, pydantic)": ("sent", "accepted"),
    "accepted → appended (template send, linger, broker)": ("accepted", "appended"),
    "appended → answered (broker ack, HTTP answer)": ("appended", "answered"),
    "appended → handled (fetch, poll, dispatch, handler)": ("appended", "handled"),
    "accepted → handled (end to end)": ("accepted", "handled"),
    "client → answered (HTTP round trip)": ("sent", "answered"),
    "due → sent (load generator lag)": ("due", "sent"),
}
"""Each part of the path, as the two stamps it lies between."""


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {q: float("nan") for q, _ in QUANTILES}
    return {q: ordered[min(len(ordered) - 1, int(f * len(ordered)))] for q, f in QUANTILES}


async def _make_topic(bootstrap: str, topic: str) -> None:
    """The events topic, stamped by the broker on append, before the services declare it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"message.timestamp.type": "LogAppendTime"}
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def _load(port: int, rate: int, count: int, warmup: bool = False) -> list[list[int]]:
    """Run the load generator in its own process; its per-request results."""
    with tempfile.NamedTemporaryFile(prefix="bench-loadgen-", suffix=".json") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            *("--port", str(port), "--rate", str(rate), "--count", str(count)),
            *("--connections", str(CONNECTIONS), "--out", out.name),
            *(("--warmup",) if warmup else ()),
            cwd=ROOT,
        )
        if await process.wait() != 0:
            raise RuntimeError(f"the load generator exited with {process.returncode}")
        results: list[list[int]] = json.loads(Path(out.name).read_text())
        return results


async def _read_back(bootstrap: str, topic: str, wanted: int) -> dict[tuple[int, int], Any]:
    """Every measured record of the topic: (partition, offset) → (n, sent, accepted,
    appended), in ns."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[tuple[int, int], Any] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 30
        while len(found) < wanted and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    value = json.loads(record.value)
                    payload = value["payload"]
                    if payload.get("warmup"):
                        continue
                    accepted = datetime.fromisoformat(value["timestamp"]).timestamp()
                    found[(record.partition, record.offset)] = (
                        payload["n"],
                        payload["sent_ns"],
                        round(accepted * 1e6) * 1000,
                        record.timestamp * 1_000_000,
                    )
    finally:
        await consumer.stop()
    return found


async def _broker_ack(bootstrap: str, rate: int, seconds: float) -> dict[str, Any]:
    """The broker's acknowledgment alone: raw aiokafka ``send_and_wait`` at ``rate`` (open
    loop), with the sample producer's settings (acks=all, idempotence, no linger) and
    neither HTTP, kafkaboot nor a consumer. What the tail of the path owes to the broker
    and the machine at the time of the run."""
    topic = f"bench-ack-{uuid.uuid4().hex[:6]}"
    await _make_topic(bootstrap, topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
    )
    await producer.start()
    # A new topic's first sends can meet a leader still being elected (and retry after
    # 100 ms): one acknowledged send per partition first, then the warm-up.
    await asyncio.gather(
        *(producer.send_and_wait(topic, b"", partition=p) for p in range(PARTITIONS))
    )
    waits: list[float] = []

    async def one(key: bytes, measured: bool) -> None:
        started = time.perf_counter()
        await producer.send_and_wait(topic, b"x" * 200, key=key)
        if measured:
            waits.append((time.perf_counter() - started) * 1000)

    steal_before = machine_steal()
    try:
        for warmup, count in ((True, min(200, rate)), (False, int(rate * seconds))):
            sends = []
            begun = time.perf_counter()
            for n in range(count):
                delay = begun + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sends.append(asyncio.ensure_future(one(b"%d" % (n % 100), not warmup)))
            await asyncio.gather(*sends)
            if warmup:
                steal_before = machine_steal()
    finally:
        await producer.stop()
    return quantiles(waits) | {"steal_percent": steal_percent(steal_before, machine_steal())}


def _journal(path: Path) -> dict[tuple[int, int], int]:
    """(partition, offset) → when the handler took it, ns (the journal has milliseconds)."""
    handled = {}
    for line in path.read_text().splitlines():
        _, _, partition, offset, _, at = line.split()
        handled[(int(partition), int(offset))] = round(float(at) * 1e3) * 1_000_000
    return handled


def breakdown(
    requests: list[list[int]],
    records: dict[tuple[int, int], Any],
    handled: dict[tuple[int, int], int],
) -> dict[str, dict[str, float]]:
    """Per part of the path, its p50/p99/p99.9 in ms over the records seen at every stamp."""
    by_n = {r[0]: r for r in requests}
    spans: dict[str, list[float]] = {part: [] for part in PARTS}
    for where, (n, sent, accepted, appended) in records.items():
        if n not in by_n or where not in handled:
            continue
        _, due, _, answered, _ = by_n[n]
        stamps = {
            "due": due,
            "sent": sent,
            "accepted": accepted,
            "appended": appended,
            "answered": answered,
            "handled": handled[where],
        }
        for part, (start, end) in PARTS.items():
            spans[part].append((stamps[end] - stamps[start]) / 1e6)
    return {part: quantiles(values) | {"count": len(values)} for part, values in spans.items()}


@contextlib.contextmanager
def _journal_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        yield Path(folder) / "handled.log"


FAST = ("uvloop", "httptools")
PLAIN = ("asyncio", "h11")
"""uvicorn's event loop and HTTP parser for both services (``server.loop``, ``server.http``):
``kafkaboot[speed]`` installs the first pair, Python and uvicorn alone have the second."""


def server_choices() -> list[tuple[str, str]]:
    """The pairs this environment can run, the one ``auto`` takes first."""
    fast = all(importlib.util.find_spec(name) is not None for name in FAST)
    return [FAST, PLAIN] if fast else [PLAIN]


async def _measure(
    bootstrap: str, rate: int, seconds: float, server: tuple[str, str] = PLAIN
) -> dict[str, Any]:
    count = int(rate * seconds)
    topic = f"bench-latency-{uuid.uuid4().hex[:6]}"
    await _make_topic(bootstrap, topic)
    with _journal_file() as journal:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EVENTS_TOPIC": topic,
            "INSTANCE_ID": "bench",
            "EVENTS_JOURNAL": str(journal),
            "SERVER_LOOP": server[0],
            "SERVER_HTTP": server[1],
        }
        consumer_port, producer_port = free_ports(2)
        with service("sample_counting_consumer", consumer_port, env) as consumer:
            await wait_ready(consumer_port, consumer)
            with service("sample_producer_service", producer_port, env) as producer:
                await wait_ready(producer_port, producer)
                await _load(producer_port, rate, min(count, 200), warmup=True)
                await asyncio.sleep(1.0)
                await request(consumer_port, "DELETE", "/stats")  # Only the measured run.
                before, steal_before = _cpu(producer.pid, consumer.pid), machine_steal()
                requests = await _load(producer_port, rate, count)
                cpu = {
                    k: round(v - before[k], 2) for k, v in _cpu(producer.pid, consumer.pid).items()
                }
                steal = steal_percent(steal_before, machine_steal())
                accepted = sum(r[4] == 202 for r in requests)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    stats = await get_json(consumer_port, "/stats")
                    if stats["received"] >= accepted:
                        break
                    await asyncio.sleep(0.2)
        records = await _read_back(bootstrap, topic, accepted)
        parts = breakdown(requests, records, _journal(journal))
    latency = stats["latency_ms"]
    return {
        "p50": latency["p50"],
        "p99": latency["p99"],
        "p99.9": latency["p99.9"],
        "parts": parts,
        "accepted": accepted,
        "sent": count,
        "cpu_s": cpu,
        "steal_percent": steal,
    }


def _cpu(producer: int, consumer: int) -> dict[str, float]:
    """CPU seconds so far: each service, the load generators (children waited for) and the
    whole machine."""
    return {
        "producer": process_tree_cpu(producer),
        "consumer": process_tree_cpu(consumer),
        "load generator": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime,
        "machine": machine_cpu()[0],
    }


def _median_parts(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        part: {
            q: round(statistics.median(r["parts"][part][q] for r in results), 2)
            for q, _ in QUANTILES
        }
        for part in PARTS
    }


def run(
    bootstrap: str, rates: list[int], seconds: float, runs: int, loop: asyncio.AbstractEventLoop
) -> list[Row]:
    """Every rate with the services on the first of :func:`server_choices` (the targets'
    rows); the first rate with each other choice too, taking turns run by run."""
    rows = []
    choices = server_choices()
    targets = {(500, "p99"): "≤ 15 ms", (500, "p99.9"): "≤ 40 ms"}
    acks: list[dict[str, Any]] = []
    for rate in rates:
        measured = choices if rate == rates[0] else choices[:1]
        results: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in measured}
        for _ in range(runs):
            for choice in measured:
                results[choice].append(
                    loop.run_until_complete(_measure(bootstrap, rate, seconds, choice))
                )
            if rate == rates[0]:
                acks.append(loop.run_until_complete(_broker_ack(bootstrap, rate, seconds)))
        for choice in measured:
            main = choice == choices[0]
            rows += _rows(rate, seconds, choice, results[choice], targets, main)
        if rate == rates[0]:
            rows += _ack_rows(rate, acks)
    return rows


def _ack_rows(rate: int, acks: list[dict[str, Any]]) -> list[Row]:
    return [
        Row(
            f"latency: broker ack alone (raw aiokafka send_and_wait) at {rate} msg/s, {quantile}",
            "ms",
            None,
            Measured([round(a[quantile], 2) for a in acks]),
            higher_is_better=False,
            note=(
                "not kafkaboot: acks=all, idempotence, no linger, no HTTP and no consumer, "
                "taking turns with the rows above; what the broker's acknowledgment costs on "
                f"this machine at the time; CPU time stolen: {_steal_range(acks)}"
                if quantile == "p50"
                else ""
            ),
            extra={"steal_percent": [a["steal_percent"] for a in acks]},
        )
        for quantile in ("p50", "p99", "p99.9")
    ]


def _rows(
    rate: int,
    seconds: float,
    server: tuple[str, str],
    results: list[dict[str, Any]],
    targets: dict[tuple[int, str], str],
    main: bool,
) -> list[Row]:
    parts = _median_parts(results)
    label = "" if main else f" ({server[0]} + {server[1]})"
    rows = []
    for quantile in ("p50", "p99", "p99.9"):
        http = parts["client → answered (HTTP round trip)"][quantile]
        rows.append(
            Row(
                f"latency: HTTP POST → listener at {rate} msg/s{label}, {quantile}",
                "ms",
                Measured([r[quantile] for r in results]),
                higher_is_better=False,
                target=targets.get((rate, quantile), "") if main else "",
                note=(
                    f"services on uvicorn with {server[0]} and {server[1]}; "
                    f"{results[-1]['accepted']:,} of {results[-1]['sent']:,} requests "
                    f"accepted in {seconds:g} s; CPU time stolen by the hypervisor during "
                    f"the loads: {_steal_range(results)}; "
                    if quantile == "p50"
                    else ""
                )
                + f"the HTTP round trip alone (send, broker ack, answer): {http:.1f} ms",
                extra={
                    "server": list(server),
                    "http_round_trip_ms": http,
                    "parts_ms": {part: q[quantile] for part, q in parts.items()},
                    "cpu_s": results[-1]["cpu_s"],  # During the last run's load.
                    "steal_percent": [r["steal_percent"] for r in results],
                },
            )
        )
    return rows


def _steal_range(results: list[dict[str, Any]]) -> str:
    stolen = sorted(r["steal_percent"] for r in results)
    if stolen[0] == stolen[-1]:
        return f"{stolen[0]:g} %"
    return f"{stolen[0]:g}-{stolen[-1]:g} %"


def _print_parts(parts: dict[str, dict[str, float]]) -> None:
    print(f"{'part':56} {'p50':>8} {'p99':>8} {'p99.9':>8}")
    for part, q in parts.items():
        print(f"{part:56} {q['p50']:8.2f} {q['p99']:8.2f} {q['p99.9']:8.2f}")


if __name__ == "__main__":
    # python -m bench.scenarios.latency BOOTSTRAP RATE SECONDS: one run, its breakdown.
    result = asyncio.run(_measure(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    print({k: result[k] for k in ("p50", "p99", "p99.9", "accepted", "sent", "cpu_s")})
    _print_parts(result["parts"])
