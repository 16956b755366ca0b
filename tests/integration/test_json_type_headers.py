"""Spring's JSON type headers against the broker: what the template writes, what a listener
chooses, and wire compatibility with Spring Kafka's own JsonSerializer / JsonDeserializer."""

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import pytest

from kafkaboot import (
    DeadLetterPublishingRecoverer,
    DefaultErrorHandler,
    FixedBackOff,
    Key,
    ListenerRegistry,
    load_settings,
)
from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.template import KafkaTemplate
from tests.json_models import Order, OrderKey, Refund

from .kafka_helpers import create_topic, produce, read_all, unique, wait_for
from .spring_kafka_jars import spring_kafka_classpath

pytestmark = pytest.mark.asyncio

MAPPING = "order:tests.json_models.Order,refund:tests.json_models.Refund"
SPRING_JSON = Path(__file__).parent / "java" / "SpringJson.java"


def spring_classpath():
    """spring-kafka (with jackson-databind) from Maven Central, cached as the broker's jars."""
    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("needs java and mvn to run Spring Kafka's JsonSerializer/JsonDeserializer")
    return spring_kafka_classpath()


async def spring_json(*args):
    classpath = await asyncio.to_thread(spring_classpath)
    done = await asyncio.to_thread(
        subprocess.run,
        ["java", "-cp", classpath, str(SPRING_JSON), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def settings_for(bootstrap, producer_properties=None, consumer_properties=None, **producer):
    return load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "producer": {**producer, "properties": producer_properties or {}},
                "consumer": {
                    "auto-offset-reset": "earliest",
                    "properties": consumer_properties or {},
                },
            }
        },
    )


async def send_all(settings, topic, values, **options):
    async with KafkaTemplate(settings) as template:
        for value in values:
            await template.send_and_wait(topic, value, **options)


def type_ids(records, header="__TypeId__"):
    return [dict(r.headers).get(header) for r in records]


async def test_the_template_writes_the_mapping_token_or_the_qualified_name(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    mapped = settings_for(
        kafka_bootstrap, {"spring.json.type.mapping": "order:tests.json_models.Order"},
        **{"value-serializer": "org.springframework.kafka.support.serializer.JsonSerializer"},
    )  # fmt: skip
    await send_all(mapped, topic, [Order(id=1), Refund(id=2), {"id": 3}])
    records = await read_all(kafka_bootstrap, topic, 3)
    assert type_ids(records) == [b"order", b"tests.json_models.Refund", None]


async def test_add_type_headers_false_writes_none(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(
        kafka_bootstrap, {"spring.json.add.type.headers": False}, **{"value-serializer": "json"}
    )
    await send_all(settings, topic, [Order(id=1)], headers={"trace": "t"})
    [record] = await read_all(kafka_bootstrap, topic, 1)
    assert list(record.headers) == [("trace", b"t")]


async def test_a_union_listener_gets_each_record_as_its_model_and_dead_letters_an_unknown_type(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(
        kafka_bootstrap,
        {"spring.json.type.mapping": MAPPING},
        {"spring.json.type.mapping": MAPPING},
        **{"value-serializer": "json"},
    )
    await send_all(settings, topic, [Order(id=1, amount=2.5), Refund(id=2, reason="late")])
    await produce(kafka_bootstrap, topic, [b'{"id": 3}'], headers=[("__TypeId__", b"invoice")])
    await send_all(settings, topic, [Order(id=4)])
    async with KafkaTemplate(settings) as template:
        handler = DefaultErrorHandler(
            FixedBackOff(0, max_attempts=5), DeadLetterPublishingRecoverer(template)
        )
        registry = ListenerRegistry(settings, environ={}, template=template, error_handler=handler)
        seen = []

        @registry.listener(topic, group_id=unique("g"))
        async def on_event(event: Order | Refund) -> None:
            seen.append(event)

        async with registry:
            await wait_for(lambda: len(seen) == 3, message="the three typed records")
        letters = await read_all(kafka_bootstrap, f"{topic}-dlt", 1)
    assert seen == [Order(id=1, amount=2.5), Refund(id=2, reason="late"), Order(id=4)]
    [letter] = [DeadLetterRecord(r) for r in letters]
    assert letter.record.value == b'{"id": 3}'
    assert letter.original_offset == 2
    for named in ("__TypeId__='invoice'", "Order (order or", "Refund (refund or"):
        assert named in letter.exception_message, (named, letter.exception_message)


async def test_use_type_headers_false_decodes_as_the_default_type(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b'{"id": 1}'], headers=[("__TypeId__", b"order")])
    settings = settings_for(
        kafka_bootstrap,
        consumer_properties={
            "spring.json.type.mapping": MAPPING,
            "spring.json.use.type.headers": "false",
            "spring.json.value.default.type": "tests.json_models:Refund",
        },
    )
    registry = ListenerRegistry(settings, environ={})
    seen = []

    @registry.listener(topic, group_id=unique("g"))
    async def on_event(event: Order | Refund) -> None:
        seen.append(event)

    async with registry:
        await wait_for(lambda: len(seen) == 1, message="the record")
    assert seen == [Refund(id=1)]


async def test_the_key_type_header_chooses_the_key_model(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    properties = {"spring.json.type.mapping": "key:tests.json_models.OrderKey," + MAPPING}
    settings = settings_for(
        kafka_bootstrap, properties, properties,
        **{"value-serializer": "json", "key-serializer": "json"},
    )  # fmt: skip
    await send_all(settings, topic, [Order(id=1)], key=OrderKey("eu", 1))
    await send_all(settings, topic, [Order(id=2)], key=Order(id=9))
    [first, _] = await read_all(kafka_bootstrap, topic, 2)
    assert dict(first.headers) == {"__TypeId__": b"order", "__Key_TypeId__": b"key"}
    registry = ListenerRegistry(settings, environ={})
    seen = []

    @registry.listener(topic, group_id=unique("g"))
    async def on_order(order: Order, key: Annotated[OrderKey | Order, Key]) -> None:
        seen.append((key, order.id))

    async with registry:
        await wait_for(lambda: len(seen) == 2, message="the two records")
    assert seen == [(OrderKey("eu", 1), 1), (Order(id=9), 2)]


async def test_spring_json_deserializer_without_default_type_reads_kafkaboot_records(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(
        kafka_bootstrap,
        {
            "spring.json.type.mapping": MAPPING
            + ",java.util.LinkedHashMap:builtins.dict,java.util.ArrayList:builtins.list"
        },
        **{"value-serializer": "json"},
    )
    await send_all(
        settings, topic, [Order(id=1, amount=2.5), Refund(id=2, reason="late"), {"a": 1}, [1, 2]]
    )
    lines = await spring_json("consume", kafka_bootstrap, topic, "4")
    assert lines == [
        "SpringJson$Order Order(id=1, amount=2.5)",
        "SpringJson$Refund Refund(id=2, reason=late)",
        "java.util.LinkedHashMap {a=1}",
        "java.util.ArrayList [1, 2]",
    ]


@pytest.mark.parametrize(
    ("written", "mapping"),
    [
        ("mapped", MAPPING),
        (
            "plain",
            "SpringJson$Order:tests.json_models.Order,SpringJson$Refund:tests.json_models.Refund",
        ),
    ],
)
async def test_a_union_listener_reads_spring_json_serializer_records(
    kafka_bootstrap, written, mapping
):
    topic = await create_topic(kafka_bootstrap)
    await spring_json("produce", kafka_bootstrap, topic, written)
    settings = settings_for(
        kafka_bootstrap, consumer_properties={"spring.json.type.mapping": mapping}
    )
    registry = ListenerRegistry(settings, environ={})
    seen = []

    @registry.listener(topic, group_id=unique("g"))
    async def on_event(event: Order | Refund) -> None:
        seen.append(event)

    async with registry:
        await wait_for(lambda: len(seen) == 3, message="Spring's three records")
    assert seen == [Order(id=1, amount=9.5), Refund(id=2, reason="late"), Order(id=3, amount=1.0)]
