"""Non-blocking retries through retry topics, ending in the dead-letter topic."""

import asyncio
import itertools
import struct
import time

import pytest

from kafkaboot import (
    ConsumerRecord,
    ExponentialBackOff,
    FixedBackOff,
    ListenerRegistry,
    dlt_handler,
    kafka_listener,
    load_settings,
    retryable_topic,
)
from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import committed, create_topic, produce, read_all, unique, wait_for

pytestmark = pytest.mark.asyncio


async def started_template(bootstrap, **kafka):
    kafka["bootstrap-servers"] = bootstrap
    kafka.setdefault("consumer", {})["auto-offset-reset"] = "earliest"
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    template = KafkaTemplate(settings)
    await template.start()
    return settings, template


async def test_a_failing_record_goes_through_the_retry_topics_to_the_dlt_handler(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("g")
    deliveries = []  # (topic, value, monotonic time)
    dead = []

    @retryable_topic(attempts=3, backoff=ExponentialBackOff(0.5, 2.0, max_interval=5))
    @kafka_listener(topic, group_id=group, id="orders")
    async def on_order(record: ConsumerRecord[str, str]) -> None:
        deliveries.append((record.topic, record.value, time.monotonic()))
        if record.value == "poison":
            raise ValueError("cannot bill this order")

    @dlt_handler(on_order)
    async def on_dead_order(record: ConsumerRecord[bytes, bytes]) -> None:
        dead.append(DeadLetterRecord(record))

    settings, template = await started_template(kafka_bootstrap)
    registry = ListenerRegistry(settings, environ={}, template=template)
    registry.scan(on_order)
    assert sorted(c.listener_id for c in registry) == [
        "orders",
        "orders-dlt",
        "orders-retry-0",
        "orders-retry-1",
    ]
    try:
        await produce(kafka_bootstrap, topic, [b"poison", b"fine-1"], partitions=1)
        async with registry:
            await wait_for(lambda: dead, timeout=20, message="the dead letter")
            # The main partition did not wait: the record after the poison went first.
            main = [(v, t) for tp, v, t in deliveries if tp == topic]
            assert [v for v, _ in main] == ["poison", "fine-1"]
            assert main[1][1] - main[0][1] < 0.5
            await asyncio.sleep(0.3)
        assert await committed(kafka_bootstrap, group, topic) == {0: 2}
    finally:
        await template.stop()
    poison = [(tp, t) for tp, v, t in deliveries if v == "poison"]
    assert [tp for tp, _ in poison] == [topic, f"{topic}-retry-0", f"{topic}-retry-1"]
    waits = [b - a for (_, a), (_, b) in itertools.pairwise(poison)]
    assert waits[0] >= 0.45  # 0.5 s, then 1 s (less a little clock granularity).
    assert waits[1] >= 0.95
    [letter] = dead
    assert letter.record.value == b"poison"
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        topic,
        0,
        0,
    )
    assert letter.exception_message == "Listener failed; cannot bill this order"
    assert letter.exception_cause_fqcn == "builtins.ValueError"
    assert letter.record.partition == 0
    # Spring's retry-chain headers: kafka_original-*, and every forward's retry_topic-*.
    names = [name for name, _ in letter.record.headers]
    assert "kafka_original-topic" in names
    assert not any(name.startswith("kafka_dlt-original-topic") for name in names)
    assert names.count("retry_topic-attempts") == 3
    assert dict(letter.record.headers)["retry_topic-attempts"] == struct.pack(">i", 4)


async def test_a_record_that_succeeds_on_a_retry_topic_stops_there(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    attempts = []
    settings, template = await started_template(kafka_bootstrap)
    registry = ListenerRegistry(settings, environ={}, template=template)

    @retryable_topic(attempts=4, backoff=FixedBackOff(0.2))
    async def flaky(record: ConsumerRecord[str, str]) -> None:
        attempts.append(record.topic)
        if len(attempts) < 3:
            raise ConnectionError("briefly away")

    registry.listener(topic, group_id=unique("g"), id="flaky")(flaky)
    try:
        await produce(kafka_bootstrap, topic, [b"x"])
        async with registry:
            await wait_for(lambda: len(attempts) == 3, timeout=15, message="third attempt")
            await asyncio.sleep(1.0)
    finally:
        await template.stop()
    assert attempts == [topic, f"{topic}-retry-0", f"{topic}-retry-1"]
    assert await read_all(kafka_bootstrap, f"{topic}-dlt", 1, wait=0.5) == []


async def test_retry_topics_from_yaml_and_not_retryable_errors_skip_them(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    retry = {"topic": {"enabled": True, "attempts": 2, "delay": "100ms"}}
    settings, template = await started_template(kafka_bootstrap, retry=retry)
    registry = ListenerRegistry(settings, environ={}, template=template)
    seen = []

    @registry.listener(topic, group_id=unique("g"), id="typed")
    async def typed(value: int) -> None:  # b"not a number" cannot be decoded.
        seen.append(value)
        raise RuntimeError("retried once, then dead-lettered")

    assert sorted(c.listener_id for c in registry) == ["typed", "typed-retry-0"]
    try:
        await produce(kafka_bootstrap, topic, [b"not a number", b"7"])
        async with registry:
            letters = await read_all(kafka_bootstrap, f"{topic}-dlt", 2)
    finally:
        await template.stop()
    by_value = {r.value: DeadLetterRecord(r) for r in letters}
    assert set(by_value) == {b"not a number", b"7"}
    assert by_value[b"7"].exception_cause_fqcn == "builtins.RuntimeError"
    assert seen == [7, 7]  # Main topic and retry-0; the undecodable one was never retried.
    # Straight to the dead-letter topic from the main topic: Spring counts it as attempt 2.
    skipped = dict(by_value[b"not a number"].record.headers)
    assert skipped["retry_topic-attempts"] == struct.pack(">i", 2)
