"""Keyed: a handler that awaits 5 ms (a stand-in for a database write) on a topic of 6
partitions and 200 keys. ``ordering="partition"`` (one consumer per partition, the most
that ordering allows in one process), ``ordering="key"`` at ``max_in_flight`` 64 and 256,
and a hand-written raw aiokafka version (a task per key with a queue); every variant checks
the per-key order on every record. Then the memory of a key-ordered listener with a backlog
of 1,000,000 records (in a process of its own, ``python -m bench.scenarios.keyed``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.harness import Measured, Row, repeat
from bench.services import ROOT
from bench.workload import PARTITIONS, new_topic, registry_for
from kafkaboot import ConsumerRecord

KEYS = 200
HANDLER_S = 0.005
BACKLOG = 1_000_000

Run = Callable[[str, str, int], Awaitable[float]]


async def fill_keyed(bootstrap: str, records: int) -> str:
    """A fresh topic of ``records`` small records ``k<key>:<sequence>``, keyed by key."""
    topic = await new_topic(bootstrap, "keyed")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for start in range(0, records, 20_000):
            futures = []
            for n in range(start, min(records, start + 20_000)):
                key = f"k{n % KEYS}"
                value = f"{key}:{n // KEYS}".encode()
                futures.append(await producer.send(topic, value, key=key.encode()))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic


class Tally:
    """Counts handled records, checks each key's sequence, and times the run."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.count = 0
        self.started = 0.0
        self.last: dict[str, int] = {}
        self.out_of_order = 0
        self.done = asyncio.Event()

    def handled(self, value: str) -> None:
        if not self.started:
            self.started = time.perf_counter()
        key, _, sequence = value.partition(":")
        number = int(sequence)
        if number < self.last.get(key, -1):
            self.out_of_order += 1
        self.last[key] = number
        self.count += 1
        if self.count >= self.records:
            self.done.set()

    async def rate(self) -> float:
        await asyncio.wait_for(self.done.wait(), timeout=900)
        if self.out_of_order:
            raise AssertionError(f"{self.out_of_order} records handled out of key order")
        return self.count / (time.perf_counter() - self.started)


async def listener(
    bootstrap: str, topic: str, records: int, *, ordering: str, max_in_flight: int = 256
) -> float:
    registry, tally = registry_for(bootstrap), Tally(records)
    options: dict[str, object] = {"ordering": ordering, "max_in_flight": max_in_flight}
    if ordering == "partition":
        options = {"concurrency": PARTITIONS}

    @registry.listener(topic, group_id=f"kb-keyed-{uuid.uuid4().hex[:6]}", **options)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        await asyncio.sleep(HANDLER_S)
        tally.handled(record.value)

    async with registry:
        return await tally.rate()


async def raw(bootstrap: str, topic: str, records: int, max_in_flight: int = 256) -> float:
    """What a careful user writes by hand: a queue and a task per key, at most
    ``max_in_flight`` records taken and not handled (the poll loop waits for room), taken
    from every partition in turn (aiokafka would hand out one partition's buffered records
    first, and the queues would see only that partition's keys). It commits nothing while
    it runs, which only makes it faster."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-keyed-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    tally, taken, room = Tally(records), 0, asyncio.Event()
    queues: dict[bytes | None, asyncio.Queue[bytes]] = {}
    workers: list[asyncio.Task[None]] = []

    async def work(queue: asyncio.Queue[bytes]) -> None:
        nonlocal taken
        while True:
            value = await queue.get()
            await asyncio.sleep(HANDLER_S)
            tally.handled(value.decode())
            taken -= 1
            if taken <= max_in_flight // 4 * 3:
                room.set()

    async def poll() -> None:
        nonlocal taken
        while True:
            if taken >= max_in_flight:
                room.clear()
                await room.wait()
            partitions = consumer.assignment()
            share = max(1, (max_in_flight - taken) // max(1, len(partitions)))
            batches = {}
            for tp in partitions:
                batches.update(await consumer.getmany(tp, timeout_ms=0, max_records=share))
            if not batches:
                batches = await consumer.getmany(timeout_ms=500, max_records=share)
            for partition_records in batches.values():
                for record in partition_records:
                    taken += 1
                    queue = queues.get(record.key)
                    if queue is None:
                        queue = queues[record.key] = asyncio.Queue()
                        workers.append(asyncio.create_task(work(queue)))
                    queue.put_nowait(record.value or b"")

    await consumer.start()
    poller = asyncio.create_task(poll())
    try:
        return await tally.rate()
    finally:
        for task in (poller, *workers):
            task.cancel()
        await asyncio.gather(poller, *workers, return_exceptions=True)
        await consumer.stop()


def peak_rss_mb(bootstrap: str, topic: str, records: int, variant: str) -> tuple[float, float]:
    """The highest RSS of a process that starts from scratch and handles ``records`` of the
    backlog in ``topic`` (``variant``: ``key`` or ``raw``), sampled every 50 ms, and its RSS
    before it began."""
    output = subprocess.run(  # noqa: S603 - our own command line.
        [sys.executable, "-m", "bench.scenarios.keyed", bootstrap, topic, str(records), variant],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    measured = json.loads(output.splitlines()[-1])
    return float(measured["peak_rss_mb"]), float(measured["before_mb"])


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    topic = loop.run_until_complete(fill_keyed(bootstrap, records))
    # One consumer per partition at 5 ms a record: about 1,200/s, so fewer records suffice.
    few = max(PARTITIONS * 10, records // 20)

    def measure(variant: Callable[[], Awaitable[float]]) -> Callable[[], float]:
        return lambda: loop.run_until_complete(variant())

    partition, key64, key256, raws = repeat(
        runs,
        measure(lambda: listener(bootstrap, topic, few, ordering="partition")),
        measure(lambda: listener(bootstrap, topic, records, ordering="key", max_in_flight=64)),
        measure(lambda: listener(bootstrap, topic, records, ordering="key", max_in_flight=256)),
        measure(lambda: raw(bootstrap, topic, records)),
    )
    raw_m = Measured(raws)
    what = (
        f"{PARTITIONS} partitions, {KEYS} keys, a handler awaiting {HANDLER_S * 1000:g} ms; "
        "per-key order checked on every record"
    )
    by_partition = Measured(partition)
    rows = [
        Row(
            "keyed: ordering=partition",
            "records/s",
            by_partition,
            raw_m,
            note=f"{few:,} records; concurrency={PARTITIONS} (a consumer per partition); {what}",
        ),
        Row(
            "keyed: ordering=key, max_in_flight=64",
            "records/s",
            Measured(key64),
            raw_m,
            note=f"{records:,} records; "
            f"{Measured(key64).median / by_partition.median:.1f} x ordering=partition",
        ),
        Row(
            "keyed: ordering=key, max_in_flight=256",
            "records/s",
            Measured(key256),
            raw_m,
            target="≥ 30 x ordering=partition, ≥ 0.9 x raw",
            note=f"{records:,} records; "
            f"{Measured(key256).median / by_partition.median:.1f} x ordering=partition",
        ),
        Row(
            "keyed: raw asyncio, task per key",
            "records/s",
            None,
            raw_m,
            note="aiokafka getmany from each partition in turn, a queue and a task per key, "
            "at most 256 records taken and not handled; commits nothing while it runs",
        ),
    ]
    backlog = loop.run_until_complete(fill_keyed(bootstrap, BACKLOG)) if runs > 1 else topic
    sample = min(records, 100_000)
    rss_key, before = peak_rss_mb(bootstrap, backlog, sample, "key")
    rss_raw, _ = peak_rss_mb(bootstrap, backlog, sample, "raw")
    queued = BACKLOG if runs > 1 else records
    rows.append(
        Row(
            "keyed: peak RSS, ordering=key, max_in_flight=256",
            "MB",
            Measured([rss_key]),
            Measured([rss_raw]),
            higher_is_better=False,
            note=f"a fresh process handling {sample:,} of {queued:,} queued records; "
            f"{before:.1f} MB after its imports, before consuming (the rest: aiokafka's "
            "fetch buffers and the records in flight)",
        )
    )
    return rows


def _rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def _handle_backlog(bootstrap: str, topic: str, records: int, variant: str) -> float:
    """Handle ``records`` of the backlog; the highest resident memory seen meanwhile."""
    peak = _rss_mb()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, _rss_mb())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        if variant == "raw":
            await raw(bootstrap, topic, records)
        else:
            await listener(bootstrap, topic, records, ordering="key")
    finally:
        sampler.cancel()
    return max(peak, _rss_mb())


if __name__ == "__main__":
    bootstrap_, topic_, records_, variant_ = sys.argv[1:5]
    before_ = _rss_mb()
    peak_ = asyncio.run(_handle_backlog(bootstrap_, topic_, int(records_), variant_))
    print(json.dumps({"peak_rss_mb": round(peak_, 1), "before_mb": round(before_, 1)}))
