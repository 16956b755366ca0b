"""Fan-in: 16 producer processes fill the events topic (keyed by customer, as the sample
producer sends), then the central consumer service drains it with ``--workers 1`` and
``--workers 2``. Throughput counts the records the handlers received; lost and duplicates
are counted by id (customer and sequence) across the consumer's processes, against the
records the producers had acknowledged."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import Measured, Row
from bench.services import ROOT, get_json, machine_cpu, process_tree_cpu, service, wait_ready
from bench.workload import new_topic
from kafkaboot.testing import free_ports
from sample_consumer_service.sequences import unique_across

PRODUCERS = 16
PARTITIONS = 15
GROUP = "central-consumer"  # The sample consumer's group.


async def _produce(bootstrap: str, topic: str, index: int, count: int) -> None:
    from kafkaboot import load_settings
    from kafkaboot.template import KafkaTemplate, ProducerRecord
    from sample_producer_service.models import Message

    settings = load_settings(
        environ={},
        overrides={"kafka": {"bootstrap-servers": bootstrap, "producer": {"linger": "5ms"}}},
    )
    headers = {"instance-id": f"site-{index:02d}"}
    records = (
        ProducerRecord(
            topic,
            Message(customer_id=f"site{index}-c{n % 10}", sequence=n // 10, payload={"n": n}),
            key=f"site{index}-c{n % 10}",
            headers=headers,
        )
        for n in range(count)
    )
    async with KafkaTemplate(settings) as template:
        await template.send_batch(records)


async def _committed(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(GROUP)
    finally:
        await admin.close()
    return sum(
        meta.offset
        for tp, meta in offsets.items()
        if tp.topic == topic and meta is not None and meta.offset > 0
    )


async def _fill(bootstrap: str, records: int) -> str:
    topic = await new_topic(bootstrap, "fanin", PARTITIONS)
    per = records // PRODUCERS
    processes = [
        subprocess.Popen(  # noqa: S603 - our own command line.
            [sys.executable, "-m", "bench.scenarios.fanin", bootstrap, topic, str(i), str(per)],
            cwd=ROOT,
        )
        for i in range(PRODUCERS)
    ]
    for process in processes:
        if process.wait(timeout=900) != 0:
            raise RuntimeError("a fan-in producer process failed")
    return topic


async def _drain(bootstrap: str, topic: str, total: int, workers: int) -> dict[str, float]:
    (port,) = free_ports(1)
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EVENTS_TOPIC": topic}
    with service("sample_consumer_service", port, env, "--workers", str(workers)) as consumer:
        await wait_ready(port, consumer)
        machine_before, consumer_before = machine_cpu(), process_tree_cpu(consumer.pid)
        clock_before = time.monotonic()
        deadline = time.monotonic() + 900
        done = 0
        while time.monotonic() < deadline and done < total:
            await asyncio.sleep(0.2)
            done = await _committed(bootstrap, topic)
        elapsed = time.monotonic() - clock_before
        machine_after, consumer_after = machine_cpu(), process_tree_cpu(consumer.pid)
        per_process: dict[int, dict[str, Any]] = {}
        sequences: dict[int, dict[str, Any]] = {}
        for _ in range(40):  # New connections reach every worker behind the shared port.
            stats = await get_json(port, "/stats")
            per_process[stats["pid"]] = stats
            seen = await get_json(port, "/stats/sequences")
            sequences[seen["pid"]] = seen["customers"]
            if len(per_process) == len(sequences) == workers:
                break
    busy = [s for s in per_process.values() if s["first_at"] is not None]
    received = sum(s["received"] for s in per_process.values())
    # By id, across the processes: what the handlers got, against what the producers had
    # acknowledged (committed offsets would measure commit progress, not loss).
    unique = unique_across(list(sequences.values()))
    complete = len(sequences) == workers
    # From the first record any worker handled to the last one: the drain itself, without
    # process start-up and group join.
    seconds = max(s["last_at"] for s in busy) - min(s["first_at"] for s in busy) if busy else 0
    busy, wall = (machine_after[0] - machine_before[0]), (machine_after[1] - machine_before[1])
    return {
        "rate": received / seconds if seconds > 0 else 0.0,
        # How busy the machine's CPUs were while draining, and how many cores the consumer
        # processes used: on a small machine the broker needs its share too.
        "machine_busy": busy / wall if wall else float("nan"),
        "consumer_cores": (consumer_after - consumer_before) / elapsed if elapsed else 0.0,
        "lost": total - unique if complete else float("nan"),
        "duplicates": received - unique if complete else float("nan"),
    }


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    total = records // PRODUCERS * PRODUCERS
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for _ in range(runs):
        for workers in (1, 2):
            topic = loop.run_until_complete(_fill(bootstrap, total))
            results[workers].append(
                loop.run_until_complete(_drain(bootstrap, topic, total, workers))
            )
    rows = []
    for workers, found in results.items():
        rates = Measured([r["rate"] for r in found])
        lost = max(r["lost"] for r in found)
        duplicates = [r["duplicates"] for r in found]
        busy = statistics.median(r["machine_busy"] for r in found)
        cores = statistics.median(r["consumer_cores"] for r in found)
        rows.append(
            Row(
                f"fan-in: {PRODUCERS} producers → consumer --workers {workers}",
                "records/s",
                rates,
                target="lost = 0" + ("; ≥ 1.6 x workers 1" if workers == 2 else ""),
                note=f"{total:,} records over {PARTITIONS} partitions; lost {lost:.0f} "
                "(acknowledged sends never handled, by id); "
                f"duplicates {', '.join(f'{d:.0f}' for d in duplicates)}; CPUs "
                f"{busy:.0%} busy while draining, consumer used {cores:.2f} cores",
                extra={
                    "lost": lost,
                    "duplicates": duplicates,
                    "machine_busy": busy,
                    "consumer_cores": cores,
                },
            )
        )
    one, two = rows[0].kafkaboot.median, rows[1].kafkaboot.median
    rows[1].extra["speedup_vs_workers_1"] = two / one if one else None
    rows[1].note += f"; {two / one:.2f} x workers 1" if one else ""
    return rows


if __name__ == "__main__":
    bootstrap, topic, index, count = sys.argv[1:5]
    asyncio.run(_produce(bootstrap, topic, int(index), int(count)))
