"""Produce: the same dicts serialized to JSON and sent keyed, acks=all with idempotence,
linger 5 ms, waiting for every delivery at the end: a raw ``AIOKafkaProducer.send`` loop
(serializing with pydantic-core's ``to_json``, as kafkaboot does), ``KafkaTemplate.send``,
``KafkaTemplate.send_batch`` and FastStream's ``publish`` (with its own serializer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from pydantic_core import to_json

from bench.harness import Measured, Row, repeat
from bench.workload import PARTITIONS, event, new_topic
from kafkaboot import load_settings
from kafkaboot.template import KafkaTemplate, ProducerRecord

Run = Callable[[str, list[dict[str, object]]], Awaitable[float]]


def _dumps(value: object) -> bytes:
    # pydantic-core's to_json, what kafkaboot's JSON serializer calls: the same bytes as
    # json.dumps(value, separators=(",", ":")), 3-4 µs per record sooner.
    return to_json(value)


async def raw(bootstrap: str, values: list[dict[str, object]]) -> float:
    topic = await new_topic(bootstrap, "produce")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, _dumps(v), key=str(v["site"]).encode()) for v in values
        ]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _template(bootstrap: str) -> KafkaTemplate:
    settings = load_settings(
        environ={},
        overrides={"kafka": {"bootstrap-servers": bootstrap, "producer": {"linger": "5ms"}}},
    )
    return KafkaTemplate(settings)


async def send(bootstrap: str, values: list[dict[str, object]]) -> float:
    topic = await new_topic(bootstrap, "produce")
    async with _template(bootstrap) as kafka:
        started = time.perf_counter()
        futures = [await kafka.send(topic, v, key=v["site"]) for v in values]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)


async def send_batch(bootstrap: str, values: list[dict[str, object]]) -> float:
    topic = await new_topic(bootstrap, "produce")
    async with _template(bootstrap) as kafka:
        started = time.perf_counter()
        await kafka.send_batch(ProducerRecord(topic, v, key=v["site"]) for v in values)
        return len(values) / (time.perf_counter() - started)


async def faststream(bootstrap: str, values: list[dict[str, object]]) -> float:
    from faststream.kafka import KafkaBroker

    topic = await new_topic(bootstrap, "produce")
    broker = KafkaBroker(bootstrap, acks="all", enable_idempotence=True, linger_ms=5, logger=None)
    async with broker:
        await broker.start()
        started = time.perf_counter()
        futures = [
            await broker.publish(v, topic, key=str(v["site"]).encode(), no_confirm=True)
            for v in values
        ]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)


def run(bootstrap: str, records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    values = [event(i) for i in range(records)]

    def measure(variant: Run) -> Callable[[], float]:
        return lambda: loop.run_until_complete(variant(bootstrap, values))

    raws, sends, batches, fss = repeat(
        runs, *(measure(v) for v in (raw, send, send_batch, faststream))
    )
    raw_m, fs_m = Measured(raws), Measured(fss)
    what = f"{records:,} JSON records of {len(_dumps(values[0]))} B to {PARTITIONS} partitions"
    return [
        Row(
            "produce: KafkaTemplate.send",
            "records/s",
            Measured(sends),
            raw_m,
            fs_m,
            target="≥ 0.90 x raw, ≥ 2 x FastStream",
            note=what,
        ),
        Row(
            "produce: KafkaTemplate.send_batch",
            "records/s",
            Measured(batches),
            raw_m,
            fs_m,
            target="≥ 0.95 x raw",
        ),
    ]
