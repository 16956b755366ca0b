"""Ceilings: what this machine and broker deliver without kafkaboot, asyncio or Python in the
way, measured in the same run as the consume and produce rows.

- confluent-kafka (librdkafka, C) loops doing the raw aiokafka loops' work: consume decodes
  every record into the same pydantic model and commits after each batch; produce serializes
  the same dicts to JSON, sends them keyed (acks=all, idempotence, linger 5 ms) and waits for
  every delivery report.
- Apache Kafka's own Java perf tools from the broker's jars (:mod:`bench.kafka_tools`):
  ``ProducerPerformance`` with the produce scenario's JSON records and producer settings, and
  ``ConsumerPerformance`` on a topic filled like the consume scenario's. They do less work (no
  decode, no keys): they show what a JVM client gets from the broker.

Each row bounds the kafkaboot rows of one group (``Row.ceiling_for``); the harness puts the
ratios next to those rows.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic_core import to_json

from bench import kafka_tools
from bench.harness import Measured, Row, repeat
from bench.workload import PARTITIONS, Event, event, fill, new_topic, payload

_DEADLINE_S = 300.0
_PRODUCER = {"acks": "all", "enable.idempotence": "true", "linger.ms": "5"}
"""The produce scenario's settings, in Kafka's property names."""


def _dumps(value: object) -> bytes:
    # As the produce scenario serializes (bench/scenarios/produce.py).
    return to_json(value)


def _group(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def librdkafka_consume(bootstrap: str, topic: str, records: int, decode: bool = True) -> float:
    """The raw aiokafka ``getmany`` loop's work with confluent-kafka: batches of up to 500,
    each record decoded with the model's validator (as the raw loop decodes), a synchronous
    commit per batch. ``decode=False`` leaves out the decode, to show how much of the time
    it takes. (The raw loop also awaits a handler per record: a loop without an event loop
    has no coroutine to await.)"""
    from confluent_kafka import Consumer, KafkaException

    validate = Event.__pydantic_validator__.validate_json

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": _group("rdkafka"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    count, started = 0, 0.0
    deadline = time.monotonic() + _DEADLINE_S
    try:
        while count < records:
            if time.monotonic() > deadline:
                raise RuntimeError(f"librdkafka consumer read {count} of {records} records")
            messages = consumer.consume(num_messages=500, timeout=1.0)
            if not messages:
                continue
            if not started:
                started = time.perf_counter()
            for message in messages:
                if message.error():
                    raise KafkaException(message.error())
                if decode:
                    validate(message.value())  # type: ignore[arg-type]
                count += 1
            consumer.commit(asynchronous=False)
        return count / (time.perf_counter() - started)
    finally:
        consumer.close()


def librdkafka_produce(bootstrap: str, topic: str, values: list[dict[str, object]]) -> float:
    """The raw aiokafka send loop's work with confluent-kafka: serialize, send keyed, and
    count every delivery report (a failed or missing one fails the run)."""
    from confluent_kafka import Producer

    delivered, failed = 0, []

    def on_delivery(error: object, _message: object) -> None:
        nonlocal delivered
        if error is None:
            delivered += 1
        else:
            failed.append(error)

    producer = Producer({"bootstrap.servers": bootstrap, **_PRODUCER})
    producer.list_topics(topic, timeout=10)  # Connected first, as AIOKafkaProducer.start().
    started = time.perf_counter()
    for value in values:
        while True:
            try:
                producer.produce(
                    topic, _dumps(value), key=str(value["site"]).encode(), on_delivery=on_delivery
                )
                break
            except BufferError:  # librdkafka's queue is full: serve delivery reports.
                producer.poll(0.01)
    left = producer.flush(_DEADLINE_S)
    elapsed = time.perf_counter() - started
    if left or failed or delivered != len(values):
        raise RuntimeError(
            f"librdkafka producer: {delivered} of {len(values)} delivered, {left} left, "
            f"errors {failed[:3]}"
        )
    return len(values) / elapsed


def run(
    bootstrap: str,
    consume_records: int,
    produce_records: int,
    runs: int,
    loop: asyncio.AbstractEventLoop,
) -> list[Row]:
    cp = kafka_tools.classpath()
    topic = loop.run_until_complete(fill(bootstrap, consume_records, prefix="ceiling"))
    values = [event(i) for i in range(produce_records)]

    def fresh() -> str:
        return loop.run_until_complete(new_topic(bootstrap, "ceiling-produce"))

    with tempfile.TemporaryDirectory() as work:
        payloads = Path(work) / "payloads.txt"
        payloads.write_bytes(b"\n".join(_dumps(v) for v in values[:1000]))
        variants: list[Callable[[], float]] = [
            lambda: librdkafka_consume(bootstrap, topic, consume_records),
            lambda: librdkafka_consume(bootstrap, topic, consume_records, decode=False),
            lambda: (
                kafka_tools.consume(
                    cp, bootstrap, topic, consume_records, _group("java")
                ).per_second
            ),
            lambda: librdkafka_produce(bootstrap, fresh(), values),
            lambda: (
                kafka_tools.produce(
                    cp, bootstrap, fresh(), produce_records, payloads, _PRODUCER
                ).per_second
            ),
        ]
        rdk_in, bare_in, java_in, rdk_out, java_out = repeat(runs, *variants)
    consumed = f"{consume_records:,} records of {len(payload(0))} B over {PARTITIONS} partitions"
    produced = (
        f"{produce_records:,} JSON records of {len(_dumps(values[0]))} B to {PARTITIONS} "
        "partitions, acks=all, idempotence, linger 5 ms"
    )

    bare = Measured(bare_in)

    def ceiling(
        name: str, kind: str, group: str, measured: list[float], note: str, **extra: object
    ) -> Row:
        return Row(
            name,
            "records/s",
            None,
            note=note,
            extra=extra,
            ceiling=Measured(measured),
            ceiling_kind=kind,
            ceiling_for=group,
        )

    return [
        ceiling(
            "consume ceiling: confluent-kafka (librdkafka) loop",
            "librdkafka",
            "consume",
            rdk_in,
            f"{consumed}; the raw loop's work but the handler call: pydantic decode, "
            "synchronous commit per batch of up to 500; the same loop without the decode: "
            f"{bare.median:,.0f} records/s",
            without_decode={"median": bare.median, "runs": bare.values},
        ),
        ceiling(
            "consume ceiling: Kafka's ConsumerPerformance (Java)",
            "java",
            "consume",
            java_in,
            f"{consumed}; no decode, auto-commit; records/s after the group join (fetch.nMsg.sec)",
        ),
        ceiling(
            "produce ceiling: confluent-kafka (librdkafka) loop",
            "librdkafka",
            "produce",
            rdk_out,
            f"{produced}; the raw loop's work: JSON (pydantic-core's to_json), keyed, every "
            "delivery report counted",
        ),
        ceiling(
            "produce ceiling: Kafka's ProducerPerformance (Java)",
            "java",
            "produce",
            java_out,
            f"{produced}; the same JSON bytes without keys (the tool sends none), unthrottled",
        ),
    ]
