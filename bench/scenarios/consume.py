"""Consume: a pre-filled topic read by raw ``getmany`` loops, by kafkaboot listeners
(single record, batch, manual ack) and by a FastStream subscriber, all decoding every
record into the same pydantic model, awaiting the same handler with it (per record, or per
poll for the batch listener and its raw loop) and committing what they handled."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from bench.harness import Measured, Row, repeat
from bench.workload import PARTITIONS, Event, fill, payload, registry_for
from kafkaboot import Acknowledgment

Run = Callable[[str, str, int], Awaitable[float]]


def _group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class _Clock:
    def __init__(self, records: int) -> None:
        self.records = records
        self.count = 0
        self.started = 0.0
        self.done = asyncio.Event()

    def tick(self, n: int = 1) -> None:
        if not self.started:
            self.started = time.perf_counter()
        self.count += n
        if self.count >= self.records:
            self.done.set()

    async def rate(self) -> float:
        await asyncio.wait_for(self.done.wait(), timeout=900)
        return self.count / (time.perf_counter() - self.started)


@contextlib.asynccontextmanager
async def _raw_consumer(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of ``topic`` in a new group, from the beginning, committing only
    when told (the raw loops' own), stopped on the way out."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=_group("raw"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def raw(bootstrap: str, topic: str, records: int) -> float:
    """The same work as a record listener, written by hand: decode each record and await
    the same async handler with it, commit after each poll."""
    clock = _Clock(records)

    async def on_event(event: Event) -> None:
        clock.tick()

    # What Event.model_validate_json runs, without its Python frame, as kafkaboot's
    # decoder calls it: the same work, done as lean as it can be.
    decode = Event.__pydantic_validator__.validate_json
    async with _raw_consumer(bootstrap, topic) as consumer:
        while clock.count < records:
            batches = await consumer.getmany(timeout_ms=1000)
            for partition_records in batches.values():
                for record in partition_records:
                    await on_event(decode(record.value))
            if batches:
                await consumer.commit()
        return await clock.rate()


async def raw_batch(bootstrap: str, topic: str, records: int) -> float:
    """The same work as a batch listener, written by hand: decode each poll's records into
    one list and await the same async handler with it, commit after each poll."""
    clock = _Clock(records)

    async def on_events(events: list[Event]) -> None:
        clock.tick(len(events))

    decode = Event.__pydantic_validator__.validate_json
    async with _raw_consumer(bootstrap, topic) as consumer:
        while clock.count < records:
            batches = await consumer.getmany(timeout_ms=1000)
            if batches:
                await on_events([decode(r.value) for rs in batches.values() for r in rs])
                await consumer.commit()
        return await clock.rate()


async def single(bootstrap: str, topic: str, records: int) -> float:
    registry, clock = registry_for(bootstrap), _Clock(records)

    @registry.listener(topic, group_id=_group("kb"))
    async def on_event(event: Event) -> None:
        clock.tick()

    async with registry:
        return await clock.rate()


async def metered(bootstrap: str, topic: str, records: int, log_context: bool = False) -> float:
    """``single`` with Prometheus metrics on (and the record context for log lines), as
    ``kafkaboot run`` has them by default; a scrape at the end checks that every record was
    counted."""
    from kafkaboot.observability.logcontext import LogContextInterceptor
    from kafkaboot.observability.prometheus import Metrics
    from kafkaboot.template import KafkaTemplate

    registry, clock = registry_for(bootstrap), _Clock(records)
    if log_context:
        registry.add_interceptor(LogContextInterceptor())
    metrics = Metrics(registry, KafkaTemplate(registry.settings))

    @registry.listener(topic, group_id=_group("kb-metered"))
    async def on_event(event: Event) -> None:
        clock.tick()

    async with registry:
        rate = await clock.rate()
    counted = b"kafkaboot_listener_records_handled_total{group="
    line = next(x for x in metrics.exposition().splitlines() if x.startswith(counted))
    if float(line.rsplit(b" ", 1)[1]) < records:
        raise AssertionError(f"metrics counted fewer records than handled: {line!r}")
    return rate


async def observed(bootstrap: str, topic: str, records: int) -> float:
    return await metered(bootstrap, topic, records, log_context=True)


async def batch(bootstrap: str, topic: str, records: int) -> float:
    registry, clock = registry_for(bootstrap), _Clock(records)

    @registry.listener(topic, group_id=_group("kb-batch"), batch=True)
    async def on_events(events: list[Event]) -> None:
        clock.tick(len(events))

    async with registry:
        return await clock.rate()


async def manual(bootstrap: str, topic: str, records: int) -> float:
    registry, clock = registry_for(bootstrap), _Clock(records)

    @registry.listener(topic, group_id=_group("kb-manual"), ack_mode="manual")
    async def on_event(event: Event, ack: Acknowledgment) -> None:
        ack.acknowledge()
        clock.tick()

    async with registry:
        return await clock.rate()


async def faststream(bootstrap: str, topic: str, records: int) -> float:
    from faststream.kafka import KafkaBroker

    # No per-message log lines (FastStream's default): the fastest setup for the same work.
    broker, clock = KafkaBroker(bootstrap, logger=None), _Clock(records)

    @broker.subscriber(topic, group_id=_group("fs"), auto_offset_reset="earliest")
    async def on_event(event: Event) -> None:
        clock.tick()

    async with broker:
        await broker.start()
        return await clock.rate()


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    topic = loop.run_until_complete(fill(bootstrap, records))

    def measure(variant: Run) -> Callable[[], float]:
        return lambda: loop.run_until_complete(variant(bootstrap, topic, records))

    variants = (raw, single, metered, observed, raw_batch, batch, manual, faststream)
    raws, singles, metereds, observeds, raw_batches, batches, manuals, fss = repeat(
        runs, *(measure(v) for v in variants)
    )
    raw_m, fs_m = Measured(raws), Measured(fss)
    off, on, both = Measured(singles), Measured(metereds), Measured(observeds)
    what = f"{records:,} records of {len(payload(0))} B over {PARTITIONS} partitions"
    return [
        Row(
            "consume: single-record listener (pydantic)",
            "records/s",
            Measured(singles),
            raw_m,
            fs_m,
            target="≥ 0.95 x raw, ≥ 5 x FastStream",
            note=f"{what}; raw: getmany, decode, await the same async handler, commit per poll",
        ),
        Row(
            "consume: single-record listener, metrics on",
            "records/s",
            on,
            raw_m,
            fs_m,
            target="≥ 0.90 x metrics off",
            note=f"{on.median / off.median:.2f} x metrics off (single-record row, same run)",
        ),
        Row(
            "consume: single-record listener, metrics and log context on",
            "records/s",
            both,
            raw_m,
            fs_m,
            note=f"{both.median / off.median:.2f} x both off (single-record row, same run); "
            "what `kafkaboot run` has by default",
        ),
        Row(
            "consume: batch listener (list[Event])",
            "records/s",
            Measured(batches),
            Measured(raw_batches),
            fs_m,
            target="≥ 0.95 x raw",
            note="raw: the same loop handing each poll's records to the handler as one list",
        ),
        Row(
            "consume: manual-ack listener",
            "records/s",
            Measured(manuals),
            raw_m,
            fs_m,
            target="≥ 0.85 x raw",
        ),
    ]
