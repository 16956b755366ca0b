"""KafkaTemplate against a real broker: every send variant, serializers, partitioning."""

import asyncio
import dataclasses
import subprocess

import pytest
from pydantic import BaseModel

from kafkaboot import errors, load_settings
from kafkaboot.errors import KafkaBootError, KafkaSendError, SerializationError
from kafkaboot.template import KafkaTemplate, ProducerRecord
from kafkaboot.testing import kafka_classpath

from .kafka_helpers import create_topic, read_all, unique

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    id: int


@dataclasses.dataclass
class Point:
    x: int


def template_for(bootstrap, **kafka):
    kafka["bootstrap-servers"] = bootstrap
    return KafkaTemplate(load_settings(environ={}, overrides={"kafka": kafka}))


async def test_send_lands_with_key_partition_headers_and_timestamp(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    async with template_for(kafka_bootstrap) as template:
        future = await template.send(
            topic,
            {"id": 1},
            key="order-1",
            partition=2,
            timestamp_ms=1_700_000_000_000,
            headers={"trace": "t-1", "raw": b"\x00"},
        )
        result = await future
    assert (result.topic, result.partition, result.timestamp) == (topic, 2, 1_700_000_000_000)
    [record] = await read_all(kafka_bootstrap, topic, 1)
    assert (record.partition, record.offset) == (2, result.offset)
    assert record.key == b"order-1"
    assert record.value == b'{"id":1}'
    assert record.timestamp == 1_700_000_000_000
    assert list(record.headers) == [("trace", b"t-1"), ("raw", b"\x00")]


async def test_values_are_serialized_by_type(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    values = ["text", b"\x01bytes", {"a": 1}, [1, 2], Order(id=3), Point(4), 5]
    async with template_for(kafka_bootstrap) as template:
        for value in values:
            await template.send_and_wait(topic, value)
    records = await read_all(kafka_bootstrap, topic, len(values))
    assert [r.value for r in records] == [
        b"text",
        b"\x01bytes",
        b'{"a":1}',
        b"[1,2]",
        b'{"id":3}',
        b'{"x":4}',
        b"5",
    ]


async def test_configured_and_per_call_serializers(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    template = template_for(
        kafka_bootstrap,
        producer={
            "key-serializer": "org.apache.kafka.common.serialization.IntegerSerializer",
            "value-serializer": "org.springframework.kafka.support.serializer.JsonSerializer",
        },
    )
    async with template:
        await template.send_and_wait(topic, "quoted", key=1)
        await template.send_and_wait(topic, "plain", key=2, value_serializer="string")
        with pytest.raises(SerializationError, match="cannot serialize a str"):
            await template.send(topic, "x", key="not an int")
    first, second = await read_all(kafka_bootstrap, topic, 2)
    assert (first.key, first.value) == (b"\x00\x00\x00\x01", b'"quoted"')
    assert (second.key, second.value) == (b"\x00\x00\x00\x02", b"plain")


async def test_many_concurrent_sends_all_resolve(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    async with template_for(kafka_bootstrap) as template:
        futures = [await template.send(topic, {"n": i}, key=str(i)) for i in range(2000)]
        results = await asyncio.gather(*futures)
    assert len({(r.partition, r.offset) for r in results}) == 2000
    assert len(await read_all(kafka_bootstrap, topic, 2000)) == 2000


async def test_send_batch_and_send_default(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    template = template_for(kafka_bootstrap, template={"default-topic": topic})
    async with template:
        results = await template.send_batch(
            [ProducerRecord(topic, f"v{i}", key=f"k{i}") for i in range(5)]
        )
        await (await template.send_default("default"))
        await template.flush()
    assert [r.offset for r in results] == [0, 1, 2, 3, 4]
    records = await read_all(kafka_bootstrap, topic, 6)
    assert records[-1].value == b"default"


async def test_send_default_without_a_default_topic_says_what_to_set(kafka_bootstrap):
    async with template_for(kafka_bootstrap) as template:
        with pytest.raises(KafkaBootError, match=r"kafka\.template\.default-topic"):
            await template.send_default("x")


async def test_unknown_partition_and_empty_record_are_clear_errors(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    async with template_for(kafka_bootstrap) as template:
        with pytest.raises(KafkaSendError, match=r"no partition 5; it has 2 \(0-1\)"):
            await template.send(topic, "x", partition=5)
        with pytest.raises(KafkaSendError, match="needs a key or a value"):
            await template.send(topic, None)


async def test_oversized_record_names_its_size_type_and_the_limit(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    template = template_for(kafka_bootstrap, producer={"properties": {"max.request.size": 1000}})
    async with template:
        with pytest.raises(KafkaSendError) as excinfo:
            await template.send(topic, b"x" * 5000, key="big")
    message = str(excinfo.value)
    assert "about 5003 bytes" in message
    assert "a bytes" in message
    assert "max.request.size = 1000" in message


async def test_producer_listener_hears_successes(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    heard = []

    class Listener:
        def on_success(self, record, result):
            heard.append((record.value, result.offset))

        def on_error(self, record, error):
            heard.append(("error", error))

    template = KafkaTemplate(
        load_settings(environ={}, overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}}),
        producer_listener=Listener(),
    )
    async with template:
        await template.send_and_wait(topic, "a")
    assert heard == [("a", 0)]


async def test_keys_land_on_the_partition_the_java_client_picks(kafka_bootstrap, tmp_path):
    partitions = 6
    topic = await create_topic(kafka_bootstrap, partitions=partitions)
    keys = [f"site-{i:03d}" for i in range(40)] + ["über", "order-42", "a", "customer-7"]
    jars = ":".join(
        str(p) for p in kafka_classpath() if "kafka-clients" in p.name or "slf4j" in p.name
    )
    java = subprocess.run(
        ["java", "-cp", jars, "tests/integration/java/Partition.java", str(partitions), *keys],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    java_partition = dict(line.rsplit(" ", 1) for line in java.stdout.splitlines())
    async with template_for(kafka_bootstrap) as template:
        results = await template.send_batch([ProducerRecord(topic, "v", key=k) for k in keys])
    assert {k: r.partition for k, r in zip(keys, results, strict=True)} == {
        k: int(java_partition[k]) for k in keys
    }


async def test_transaction_commit_is_visible_and_abort_is_not(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    template = template_for(kafka_bootstrap, producer={"transaction-id-prefix": unique("tx-")})
    async with template:
        async with template.transaction():
            await template.send(topic, "committed")

        async def send_then_fail():
            async with template.transaction():
                await template.send(topic, "aborted")
                raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError, match="changed my mind"):
            await send_then_fail()
        async with template.transaction():
            await template.send(topic, "after")
        with pytest.raises(KafkaSendError, match=r"inside `async with template\.transaction"):
            await template.send(topic, "outside")
    records = await read_all(kafka_bootstrap, topic, 2, isolation_level="read_committed")
    assert [r.value for r in records] == [b"committed", b"after"]


async def test_template_must_be_started(kafka_bootstrap):
    template = template_for(kafka_bootstrap)
    with pytest.raises(KafkaBootError, match="not started"):
        await template.send("t", "x")
    await template.start()
    with pytest.raises(KafkaBootError, match="already started"):
        await template.start()
    await template.stop()
    await template.stop()  # Stopping twice is harmless.


async def test_send_batch_reports_each_record_when_one_fails(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    heard = []

    class Listener:
        def on_success(self, record, result):
            heard.append((record.value, "delivered"))

        def on_error(self, record, error):
            heard.append((record.value, "failed"))

    template = KafkaTemplate(
        load_settings(environ={}, overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}}),
        producer_listener=Listener(),
    )
    records = [
        ProducerRecord(topic, "first", partition=0),
        ProducerRecord(topic, "no such partition", partition=5),
        ProducerRecord(topic, "third", partition=1),
    ]
    async with template:
        with pytest.raises(KafkaSendError) as excinfo:
            await template.send_batch(records)
    assert heard == [
        ("first", "delivered"),
        ("no such partition", "failed"),
        ("third", "delivered"),
    ]
    error = excinfo.value
    assert isinstance(error, errors.SendBatchError)
    assert [r.record.value for r in error.delivered] == ["first", "third"]
    [(failed_record, failure)] = error.failed
    assert failed_record is records[1]
    assert "no partition 5" in str(failure)
    assert "1 of 3 records" in str(error)
    written = await read_all(kafka_bootstrap, topic, 2)
    assert sorted(r.value for r in written) == [b"first", b"third"]
