"""Fan-in: 16 producers fill the events topic (keyed by customer, as the sample
producer sends), then the counting central consumer (``sample_counting_consumer``: the
central consumer without a database, per-key concurrency) drains it with ``--workers 1``
and ``--workers 2``, each in a consumer group of its own: once with its handler as it is
(it counts in memory), and once with a handler that also spends ``WORK_US`` of CPU per
record, so that the consumer is the bottleneck and a second process has work to share.

Only the drain is timed: the consumer joins its group paused, and every worker is resumed
once the group has settled with all of them, so neither the producers nor the joins and
rebalances fall inside the time. Throughput counts the records the handlers received, from
the resume to the last record handled; lost and duplicates are counted by id (customer and
sequence) across the consumer's processes, against the records the producers had
acknowledged; CPU is read per worker process from ``/proc/<pid>/stat``."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import Measured, Row
from bench.scenarios import footprint
from bench.services import (
    machine_cpu,
    process_cpu,
    request,
    service,
    worker_pids,
)
from bench.workload import new_topic
from kafkaboot.testing import free_ports
from sample_counting_consumer.sequences import unique_across

PRODUCERS = 16
PARTITIONS = 15
WORK_US = 50
"""CPU per record of the CPU-bound handler (``CENTRAL_WORK_US``), in microseconds."""
_SETTLE_TIMEOUT_S = 60.0
_CHUNK = 1_000


async def _produce(bootstrap: str, topic: str, index: int, count: int) -> None:
    """One site's producer: ``count`` events of ten customers, sent in batches of
    ``_CHUNK`` so that sixteen of them in one process keep aiokafka's queue short."""
    from kafkaboot import load_settings
    from kafkaboot.template import KafkaTemplate, ProducerRecord
    from sample_producer_service.models import Message

    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "producer": {"linger": "5ms"},
                # A busy machine may hold a batch unconfirmed for a few seconds: that is
                # not a broker outage here.
                "template": {"unavailable-timeout": "60s"},
            }
        },
    )
    headers = {"instance-id": f"site-{index:02d}"}
    async with KafkaTemplate(settings) as template:
        for start in range(0, count, _CHUNK):
            await template.send_batch(
                ProducerRecord(
                    topic,
                    Message(
                        customer_id=f"site{index}-c{n % 10}", sequence=n // 10, payload={"n": n}
                    ),
                    key=f"site{index}-c{n % 10}",
                    headers=headers,
                )
                for n in range(start, min(start + _CHUNK, count))
            )


class CommittedOffsets:
    """The sum of a group's committed offsets on a topic, with one admin client."""

    def __init__(self, bootstrap: str) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> CommittedOffsets:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._admin.close()

    async def total(self, group: str, topic: str) -> int:
        offsets = await self._admin.list_consumer_group_offsets(group)
        return sum(
            meta.offset
            for tp, meta in offsets.items()
            if tp.topic == topic and meta is not None and meta.offset > 0
        )


async def _fill(bootstrap: str, records: int) -> str:
    """A fresh topic, filled by ``PRODUCERS`` producers (each a template of its own) in this
    process: the drain is timed after they finish, so they need no processes of their own,
    which on a small machine took far longer to start than to send."""
    topic = await new_topic(bootstrap, "fanin", PARTITIONS)
    per = records // PRODUCERS
    await asyncio.gather(*(_produce(bootstrap, topic, i, per) for i in range(PRODUCERS)))
    return topic


async def _each_process(port: int, method: str, path: str, workers: int) -> dict[int, Any]:
    """``path``'s answer from every worker process: they share the port, and each new
    connection reaches one of them."""
    answers: dict[int, Any] = {}
    for _ in range(200):
        status, body = await request(port, method, path)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}")
        answer = json.loads(body)
        answers.setdefault(answer["pid"], answer)
        if len(answers) == workers:
            return answers
    raise RuntimeError(f"{method} {path} reached {len(answers)} of {workers} processes")


async def _settled(port: int, process: subprocess.Popen[bytes], workers: int) -> None:
    """Until the group holds every worker with a share of the partitions, twice in a row
    half a second apart (a rebalance under way would change it)."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    previous = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the consumer exited with {process.returncode}")
        try:
            answers = await _each_process(port, "GET", "/events/assignment", workers)
        except (OSError, RuntimeError, ValueError, IndexError):
            answers = {}
        shares = {pid: a["partitions"] for pid, a in answers.items() if a["in_group"]}
        settled = (
            len(shares) == workers and all(shares.values()) and sum(shares.values()) == PARTITIONS
        )
        if settled and shares == previous:
            return
        previous = shares if settled else None
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the consumer group did not settle with {workers} workers")


async def _drain(
    bootstrap: str, topic: str, total: int, workers: int, work_us: int
) -> dict[str, Any]:
    (port,) = free_ports(1)
    group = f"bench-fanin-{uuid.uuid4().hex[:8]}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": topic,
        "CENTRAL_GROUP": group,
        "CENTRAL_WORK_US": str(work_us),
        "CENTRAL_START_PAUSED": "1",
    }
    with service("sample_counting_consumer", port, env, "--workers", str(workers)) as consumer:
        async with CommittedOffsets(bootstrap) as committed:
            await _settled(port, consumer, workers)
            pids = worker_pids(consumer.pid) if workers > 1 else [consumer.pid]
            if len(pids) != workers:
                raise RuntimeError(f"{len(pids)} worker processes for --workers {workers}")
            cpu_before = {pid: process_cpu(pid) for pid in pids}
            machine_before = machine_cpu()
            started_wall, started = time.time(), time.monotonic()
            resumed = await _each_process(port, "POST", "/events/resume", workers)
            early = sum(r["received"] for r in resumed.values())  # Must be 0: paused.
            deadline = started + 900
            while time.monotonic() < deadline and await committed.total(group, topic) < total:
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
        cpu_after = {pid: process_cpu(pid) for pid in pids}
        machine_after = machine_cpu()
        per_process = await _each_process(port, "GET", "/stats", workers)
        sequences = await _each_process(port, "GET", "/stats/sequences", workers)
    received = sum(s["received"] for s in per_process.values())
    # By id, across the processes: what the handlers got, against what the producers had
    # acknowledged (committed offsets would measure commit progress, not loss).
    unique = unique_across([s["customers"] for s in sequences.values()])
    last = max((s["last_at"] for s in per_process.values() if s["last_at"]), default=None)
    seconds = last - started_wall if last is not None else 0.0
    wall = machine_after[1] - machine_before[1]
    return {
        "rate": received / seconds if seconds > 0 and not early else 0.0,
        "before_resume": early,
        # How busy the machine's CPUs were while draining, and the cores each worker process
        # used (from the resume until the last commit was seen).
        "machine_busy": (machine_after[0] - machine_before[0]) / wall if wall else float("nan"),
        "worker_cores": sorted(
            ((cpu_after[pid] - cpu_before[pid]) / elapsed for pid in pids), reverse=True
        ),
        "shares": sorted((s["received"] for s in per_process.values()), reverse=True),
        "lost": total - unique,
        "duplicates": received - unique,
    }


def _rows(total: int, work_us: int, found: dict[int, list[dict[str, Any]]]) -> list[Row]:
    handler = f"handler + {work_us} µs CPU/record" if work_us else "handler as is"
    rows = []
    for workers, runs in found.items():
        lost = max(r["lost"] for r in runs)
        early = max(r["before_resume"] for r in runs)
        busy = statistics.median(r["machine_busy"] for r in runs)
        cores = [statistics.median(r["worker_cores"][i] for r in runs) for i in range(workers)]
        shares = runs[len(runs) // 2]["shares"]
        target = "lost = 0"
        if workers == 2 and work_us:
            target += "; ≥ 1.6 x workers 1"
        rows.append(
            Row(
                f"fan-in drain, {handler}: --workers {workers}",
                "records/s",
                Measured([r["rate"] for r in runs]),
                target=target,
                note=f"{total:,} records over {PARTITIONS} partitions from {PRODUCERS} "
                f"producers, drained after they finished; lost {lost:.0f} (acknowledged "
                "sends never handled, by id); duplicates "
                f"{', '.join(str(r['duplicates']) for r in runs)}; CPU per worker process "
                f"{' + '.join(f'{c:.2f}' for c in cores)} cores; CPUs {busy:.0%} busy; "
                f"records per worker {' / '.join(f'{s:,}' for s in shares)}"
                + (f"; {early} handled before the resume (not timed)" if early else ""),
                extra={
                    "lost": lost,
                    "duplicates": [r["duplicates"] for r in runs],
                    "machine_busy": busy,
                    "worker_cores": cores,
                    "work_us": work_us,
                },
            )
        )
    rates = [[r["rate"] for r in runs] for runs in found.values()]
    paired = [b / a for a, b in zip(rates[0], rates[1], strict=True) if a]
    if paired:
        speedup = statistics.median(paired)
        rows[1].extra["speedup_vs_workers_1"] = speedup
        rows[1].extra["speedup_range"] = [min(paired), max(paired)]
        rows[
            1
        ].note += f"; {speedup:.2f} x workers 1 (paired runs: {min(paired):.2f}-{max(paired):.2f})"
    return rows


def run(
    bootstrap: str,
    records: int,
    runs: int,
    loop: asyncio.AbstractEventLoop,
    footprint_records: int | None = None,
    ready_runs: int | None = None,
) -> list[Row]:
    """The drain rows; with ``footprint_records``, also the consumer's peak RSS draining
    that many records and ``kafkaboot run``'s time to ready (``ready_runs`` times)."""
    total = records // PRODUCERS * PRODUCERS
    found: dict[int, dict[int, list[dict[str, Any]]]] = {0: {1: [], 2: []}, WORK_US: {1: [], 2: []}}
    for _ in range(runs):
        topic = loop.run_until_complete(_fill(bootstrap, total))
        for work_us, by_workers in found.items():
            for workers, results in by_workers.items():
                drained = loop.run_until_complete(_drain(bootstrap, topic, total, workers, work_us))
                results.append(drained)
    rows = [row for work_us, by in found.items() for row in _rows(total, work_us, by)]
    if footprint_records:
        rows += footprint.run(bootstrap, footprint_records, ready_runs or runs, loop)
    return rows
