"""Parity: error handling behaves the same on the in-memory Kafka and on the real broker:
blocking retries with back-off, dead letters (Spring's ``kafka_dlt-*`` headers, the raw
bytes, the partition moving on), undecodable records skipping the retries, and retry
topics that forward a failing record while its main partition keeps flowing."""

import asyncio
import contextlib
import itertools
import struct
import time

import pytest
from aiokafka import TopicPartition
from pydantic import BaseModel

from kafkaboot import (
    ConsumerRecord,
    DefaultErrorHandler,
    FixedBackOff,
    ListenerRegistry,
    clients,
    dlt_handler,
    load_settings,
    retryable_topic,
)
from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.template import KafkaTemplate
from kafkaboot.testing import (
    committed_offsets,
    create_topic,
    get_records,
    get_single_record,
    unique_name,
)
from tests.integration.kafka_helpers import produce, registry_for, wait_for

pytestmark = pytest.mark.asyncio

LISTENER_FAILED = "org.springframework.kafka.listener.ListenerExecutionFailedException"
DESERIALIZATION = "org.springframework.kafka.support.serializer.DeserializationException"
BACKOFF_TIMESTAMP = "retry_topic-backoff-timestamp"
DLT_HEADERS = [
    "kafka_dlt-exception-fqcn",
    "kafka_dlt-exception-cause-fqcn",
    "kafka_dlt-exception-message",
    "kafka_dlt-exception-stacktrace",
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
    "kafka_dlt-original-timestamp",
    "kafka_dlt-original-timestamp-type",
    "kafka_dlt-original-consumer-group",
]


class Order(BaseModel):
    id: int
    item: str


@contextlib.asynccontextmanager
async def registry_with_template(bootstrap, **kafka):
    """A registry whose template (dead letters, forwards to retry topics) is started."""
    kafka.setdefault("consumer", {}).setdefault("auto-offset-reset", "earliest")
    kafka["bootstrap-servers"] = bootstrap
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    template = KafkaTemplate(settings)
    await template.start()
    try:
        yield ListenerRegistry(settings, environ={}, template=template)
    finally:
        await template.stop()


async def wait_committed(bootstrap, group, expected, timeout=20.0):
    """Poll the group's committed offsets until they are ``expected``."""
    deadline = time.monotonic() + timeout
    while (found := await committed_offsets(bootstrap, group)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"group {group} committed {found}, not {expected}")
        await asyncio.sleep(0.02)


async def produce_to(bootstrap, topic, partition, values, **options):
    """Send ``values`` one by one to one partition."""
    producer = clients.producer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition, **options)
    finally:
        await producer.stop()


# -- blocking retries with back-off ---------------------------------------------------------


async def test_a_failing_record_is_retried_in_place_after_the_backoff_then_the_rest(bootstrap):
    topic, group = await create_topic(bootstrap), unique_name("backoff")
    await produce(bootstrap, topic, [b"%d" % i for i in range(5)])
    handler = DefaultErrorHandler(FixedBackOff(0.05, max_attempts=5))
    registry, seen, failed_at = registry_for(bootstrap, error_handler=handler), [], []

    @registry.listener(topic, group_id=group)
    async def on_value(value: int) -> None:
        seen.append(value)
        if value == 2 and len(failed_at) < 2:  # Fails twice, succeeds on the 3rd delivery.
            failed_at.append(time.monotonic())
            raise ConnectionError("database briefly away")
        if value == 2:
            failed_at.append(time.monotonic())

    async with registry:
        await wait_for(lambda: 4 in seen, timeout=20, message="the records after the retries")
        await wait_committed(bootstrap, group, {TopicPartition(topic, 0): 5})
    assert seen == [0, 1, 2, 2, 2, 3, 4]
    gaps = [later - earlier for earlier, later in itertools.pairwise(failed_at)]
    assert len(gaps) == 2
    assert all(gap >= 0.045 for gap in gaps), gaps  # The 50 ms back-off, each time.


async def test_the_backoff_from_configuration_grows_and_gives_up_after_max_attempts(bootstrap):
    topic, group = await create_topic(bootstrap), unique_name("config")
    await produce(bootstrap, topic, [b"ok", b"always", b"after"])
    backoff = {"initial": "30ms", "multiplier": 2, "max-attempts": 3}
    registry = registry_for(bootstrap, listener={"error-handler": {"backoff": backoff}})
    seen, deliveries = [], []

    @registry.listener(topic, group_id=group)
    async def on_value(value: str) -> None:
        seen.append(value)
        if value == "always":
            deliveries.append(time.monotonic())
            raise RuntimeError("never succeeds")

    async with registry:
        await wait_for(lambda: "after" in seen, timeout=20, message="the record after it")
        await wait_committed(bootstrap, group, {TopicPartition(topic, 0): 3})
    # Three deliveries, then recovered (logged, without a dead-letter topic) and skipped.
    assert seen == ["ok", "always", "always", "always", "after"]
    first, second = deliveries[1] - deliveries[0], deliveries[2] - deliveries[1]
    assert first >= 0.027, first  # 30 ms,
    assert second >= 0.057, second  # then 60 ms.


async def test_a_backoff_pauses_one_partition_only_and_a_stop_ends_it(bootstrap):
    topic, group = await create_topic(bootstrap, partitions=2), unique_name("pause")
    handler = DefaultErrorHandler(FixedBackOff(60.0, max_attempts=2))
    registry, seen = registry_for(bootstrap, error_handler=handler), []

    @registry.listener(topic, group_id=group)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        seen.append((record.partition, record.value))
        if record.value == "poison":
            raise RuntimeError("fails; the retry is a minute away")

    await produce_to(bootstrap, topic, 0, [b"ok", b"poison", b"never"])
    await registry.start()
    try:
        await wait_for(lambda: (0, "poison") in seen, timeout=20, message="the failure")
        # Sent during partition 0's back-off: fetched and handled while it waits.
        await produce_to(bootstrap, topic, 1, [b"x", b"y"])
        await wait_for(lambda: (1, "y") in seen, timeout=20, message="partition 1 flowing")
        await wait_committed(
            bootstrap, group, {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 2}
        )
    finally:
        started = time.monotonic()
        await registry.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 2.0  # The 60 s wait ended with the stop.
    assert [v for p, v in seen if p == 0] == ["ok", "poison"]  # Not retried, nothing after.
    assert [v for p, v in seen if p == 1] == ["x", "y"]
    assert await committed_offsets(bootstrap, group) == {
        TopicPartition(topic, 0): 1,  # The failed record stays uncommitted.
        TopicPartition(topic, 1): 2,
    }


# -- dead letters ---------------------------------------------------------------------------


DEAD_LETTERS = {"dead-letter": {"enabled": True}}


async def test_retries_exhausted_the_record_goes_to_the_dlt_and_the_partition_moves_on(
    bootstrap,
):
    topic, group = await create_topic(bootstrap, partitions=2), unique_name("dlt")
    backoff = {"initial": "10ms", "max-attempts": 3}
    kafka = {"listener": {"error-handler": {"backoff": backoff, **DEAD_LETTERS}}}
    seen = []
    async with registry_with_template(bootstrap, **kafka) as registry:

        @registry.listener(topic, group_id=group)
        async def on_record(record: ConsumerRecord[str, str]) -> None:
            seen.append(record.value)
            if record.value == "poison":
                raise RuntimeError("cannot bill this order")

        # Partition 1 of 2: the dead letter keeps it, in a DLT kafkaboot creates like the topic.
        values = [b"first", b"poison", b"after"]
        await produce_to(bootstrap, topic, 1, values, key=b"k", headers=[("trace", b"abc")])
        async with registry:
            await wait_for(lambda: "after" in seen, timeout=20, message="the record after it")
            await wait_committed(bootstrap, group, {TopicPartition(topic, 1): 3})
        letter = DeadLetterRecord(await get_single_record(bootstrap, f"{topic}-dlt"))
    assert seen == ["first", "poison", "poison", "poison", "after"]
    record = letter.record
    assert (record.partition, record.key, record.value) == (1, b"k", b"poison")
    assert [name for name, _ in record.headers] == ["trace", *DLT_HEADERS]
    assert letter.original_headers == [("trace", b"abc")]
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        topic,
        1,
        1,
    )
    assert letter.original_consumer_group == group
    assert letter.exception_fqcn == LISTENER_FAILED
    assert letter.exception_cause_fqcn == "builtins.RuntimeError"
    assert letter.exception_message == "Listener failed; cannot bill this order"
    headers = dict(record.headers)
    assert struct.unpack(">i", headers["kafka_dlt-original-partition"]) == (1,)
    assert headers["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert headers["kafka_dlt-exception-stacktrace"].startswith(
        f"{LISTENER_FAILED}: Listener failed\nCaused by: builtins.RuntimeError".encode()
    )
    assert b"Traceback" in headers["kafka_dlt-exception-stacktrace"]


async def test_an_undecodable_record_goes_to_the_dlt_at_once_without_retries(bootstrap):
    topic, group = await create_topic(bootstrap), unique_name("undecodable")
    # A retry would wait 60 s: the good record behind the bad ones could not come in time.
    backoff = {"initial": "60s", "max-attempts": 3}
    kafka = {"listener": {"error-handler": {"backoff": backoff, **DEAD_LETTERS}}}
    poison = [b"{not json", b'{"id": "seven", "item": 3}']
    handled = []
    async with registry_with_template(bootstrap, **kafka) as registry:

        @registry.listener(topic, group_id=group)
        async def on_order(order: Order) -> None:
            handled.append(order.id)

        await produce(bootstrap, topic, [*poison, b'{"id": 3, "item": "tea"}'], key=b"k")
        async with registry:
            await wait_for(lambda: handled, timeout=20, message="the good record")
            await wait_committed(bootstrap, group, {TopicPartition(topic, 0): 3})
        records = await get_records(bootstrap, f"{topic}-dlt", count=2)
    assert handled == [3]
    letters = [DeadLetterRecord(record) for record in records]
    assert [(letter.record.key, letter.record.value) for letter in letters] == [
        (b"k", poison[0]),
        (b"k", poison[1]),
    ]
    for offset, letter in enumerate(letters):
        assert [name for name, _ in letter.record.headers] == DLT_HEADERS
        assert (letter.original_topic, letter.original_offset) == (topic, offset)
        assert letter.exception_fqcn == DESERIALIZATION
        assert letter.exception_cause_fqcn == "kafkaboot.errors.DeserializationError"
        assert letter.exception_message.startswith("failed to deserialize; ")
    assert "Invalid JSON" in letters[0].exception_message
    assert "id" in letters[1].exception_message


# -- retry topics ---------------------------------------------------------------------------


def attempts_of(record):
    """The last ``retry_topic-attempts`` header (the delivery number on that topic)."""
    return struct.unpack(">i", dict(record.headers)["retry_topic-attempts"])[0]


async def test_a_failing_record_travels_the_retry_topics_to_the_dlt_and_its_partition_flows(
    bootstrap,
):
    topic, group = await create_topic(bootstrap, partitions=2), unique_name("chain")
    deliveries, dead, after_handled = [], [], asyncio.Event()

    @retryable_topic(attempts=3, backoff=FixedBackOff(0.02))
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        deliveries.append((record.topic, record.value))
        if record.value == "after":
            after_handled.set()
        elif record.topic != topic:
            # The first retry waits for the record behind the poison on the main topic: had
            # the main partition waited for the retries, this would never come.
            await asyncio.wait_for(after_handled.wait(), 15)
            raise ValueError("still cannot bill this order")
        else:
            raise ValueError("cannot bill this order")

    @dlt_handler(on_record)
    async def on_dead(record: ConsumerRecord[bytes, bytes]) -> None:
        dead.append(record.value)

    async with registry_with_template(bootstrap) as registry:
        registry.listener(topic, group_id=group, id=unique_name("orders"))(on_record)
        await produce_to(bootstrap, topic, 1, [b"poison", b"after"], key=b"k")
        async with registry:
            await wait_for(lambda: dead, timeout=30, message="the dead letter handled")
            await wait_committed(bootstrap, group, {TopicPartition(topic, 1): 2})
            for name in ("retry-0", "retry-1", "dlt"):
                await wait_committed(
                    bootstrap, f"{group}-{name}", {TopicPartition(f"{topic}-{name}", 1): 1}
                )
        first_retry = await get_single_record(bootstrap, f"{topic}-retry-0")
        second_retry = await get_single_record(bootstrap, f"{topic}-retry-1")
        letter = DeadLetterRecord(await get_single_record(bootstrap, f"{topic}-dlt"))
    assert [value for name, value in deliveries if name == topic] == ["poison", "after"]
    assert [(name, value) for name, value in deliveries if name != topic] == [
        (f"{topic}-retry-0", "poison"),
        (f"{topic}-retry-1", "poison"),
    ]
    assert dead == [b"poison"]
    for forwarded in (first_retry, second_retry, letter.record):
        assert (forwarded.partition, forwarded.key, forwarded.value) == (1, b"k", b"poison")
    assert [attempts_of(first_retry), attempts_of(second_retry)] == [2, 3]
    assert attempts_of(letter.record) == 4  # As Spring's chain counts it.
    names = [name for name, _ in letter.record.headers]
    assert names.count("retry_topic-attempts") == 3  # One per forward, as Spring keeps them.
    assert "kafka_dlt-original-topic" not in names  # The chain's kafka_original-* instead.
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        topic,
        1,
        0,
    )
    assert letter.original_consumer_group == group
    assert letter.exception_cause_fqcn == "builtins.ValueError"
    assert letter.exception_message == "Listener failed; still cannot bill this order"


async def test_a_record_that_succeeds_on_a_retry_topic_goes_no_further(bootstrap):
    topic, group = await create_topic(bootstrap), unique_name("flaky")
    attempts, timings = [], []  # timings: (delivered at, due at), epoch ms, per retry.

    @retryable_topic(attempts=4, backoff=FixedBackOff(0.05))
    async def flaky(record: ConsumerRecord[str, str]) -> None:
        attempts.append(record.topic)
        due = [value for name, value in record.headers if name == BACKOFF_TIMESTAMP]
        if due:
            timings.append((time.time() * 1000, int.from_bytes(due[-1], "big", signed=True)))
        if len(attempts) < 3:
            raise ConnectionError("briefly away")

    async with registry_with_template(bootstrap) as registry:
        registry.listener(topic, group_id=group, id=unique_name("flaky"))(flaky)
        await produce(bootstrap, topic, [b"x"])
        async with registry:
            await wait_for(lambda: len(attempts) == 3, timeout=30, message="the third attempt")
            await wait_committed(
                bootstrap, f"{group}-retry-1", {TopicPartition(f"{topic}-retry-1", 0): 1}
            )
        # The chain's topics exist (kafkaboot created them at start-up); the last two are empty.
        assert await get_records(bootstrap, f"{topic}-retry-2", count=0) == []
        assert await get_records(bootstrap, f"{topic}-dlt", count=0) == []
    assert attempts == [topic, f"{topic}-retry-0", f"{topic}-retry-1"]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(topic, 0): 1}
    # Each retry waited until the time its record was due (50 ms after the failure before).
    assert len(timings) == 2
    assert all(delivered >= due - 1 for delivered, due in timings), timings
    assert timings[1][1] - timings[0][0] >= 49, timings


async def test_retry_topics_from_configuration_and_undecodable_records_skip_them(bootstrap):
    topic, group = await create_topic(bootstrap), unique_name("yaml")
    retry = {"topic": {"enabled": True, "attempts": 2, "delay": "20ms"}}
    seen = []
    async with registry_with_template(bootstrap, retry=retry) as registry:

        @registry.listener(topic, group_id=group, id=unique_name("typed"))
        async def typed(value: int) -> None:  # b"not a number" cannot be decoded.
            seen.append(value)
            raise RuntimeError("retried once, then dead-lettered")

        await produce(bootstrap, topic, [b"not a number", b"7"])
        async with registry:
            records = await get_records(bootstrap, f"{topic}-dlt", count=2, timeout=30)
            await wait_committed(bootstrap, group, {TopicPartition(topic, 0): 2})
    assert seen == [7, 7]  # Main topic and retry-0; the undecodable one was never retried.
    by_value = {record.value: DeadLetterRecord(record) for record in records}
    assert set(by_value) == {b"not a number", b"7"}
    assert by_value[b"7"].exception_cause_fqcn == "builtins.RuntimeError"
    assert attempts_of(by_value[b"7"].record) == 3
    skipped = by_value[b"not a number"]
    assert skipped.exception_fqcn == DESERIALIZATION
    assert attempts_of(skipped.record) == 2  # Straight from the main topic, as Spring counts.
