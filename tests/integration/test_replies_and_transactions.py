"""@send_to jobs, request/reply, and exactly-once consume-process-produce."""

import asyncio
import contextlib
from datetime import timedelta

import pytest

from kafkaboot import ListenerRegistry, load_settings
from kafkaboot.errors import KafkaSendError, ListenerDefinitionError
from kafkaboot.listener.decorator import send_to
from kafkaboot.replying import ReplyingKafkaTemplate, ReplyTimeoutError
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import committed, create_topic, produce, read_all, unique, wait_for

pytestmark = pytest.mark.asyncio


def settings_for(bootstrap, **kafka):
    kafka["bootstrap-servers"] = bootstrap
    kafka.setdefault("consumer", {}).setdefault("auto-offset-reset", "earliest")
    return load_settings(environ={}, overrides={"kafka": kafka})


async def test_send_to_splits_lines_into_words(kafka_bootstrap):
    lines, words = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, lines, [b"the quick fox", b"jumps"], key=b"doc-1")
    settings = settings_for(kafka_bootstrap)
    async with KafkaTemplate(settings) as template:
        registry = ListenerRegistry(settings, environ={}, template=template)

        @registry.listener(lines, group_id=unique("split"))
        @send_to(words)
        async def split(line: str):
            for word in line.split():
                yield word

        async with registry:
            records = await read_all(kafka_bootstrap, words, 4, "read_committed")
    assert [(r.key, r.value) for r in records] == [
        (b"doc-1", b"the"),
        (b"doc-1", b"quick"),
        (b"doc-1", b"fox"),
        (b"doc-1", b"jumps"),
    ]


async def test_send_to_needs_a_template(kafka_bootstrap):
    registry = ListenerRegistry(settings_for(kafka_bootstrap), environ={})

    @send_to("out")
    async def handler(value: str) -> str:
        return value

    with pytest.raises(ListenerDefinitionError, match="template=template"):
        registry.listener("in", group_id="g")(handler)


async def test_request_reply_round_trip(kafka_bootstrap):
    requests, replies = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    unheard = await create_topic(kafka_bootstrap)
    settings = settings_for(kafka_bootstrap)
    async with KafkaTemplate(settings) as template:
        registry = ListenerRegistry(settings, environ={}, template=template)

        @registry.listener(requests, group_id=unique("replier"))
        @send_to()
        async def double(number: int) -> int:
            return number * 2

        async with registry, ReplyingKafkaTemplate(template, replies) as replying:
            answers = await asyncio.gather(
                *(
                    replying.send_and_receive(requests, n, timeout=timedelta(seconds=20))
                    for n in range(5)
                )
            )
            with pytest.raises(ReplyTimeoutError, match="no reply"):
                await replying.send_and_receive(unheard, 1, timeout=timedelta(seconds=0.5))
    assert [int(a.value) for a in answers] == [0, 2, 4, 6, 8]


async def test_consume_process_produce_exactly_once(kafka_bootstrap):
    source, sink = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, source, [b"%d" % i for i in range(6)])
    group = unique("eos")
    settings = settings_for(
        kafka_bootstrap,
        producer={"transaction-id-prefix": unique("tx-")},
        consumer={"isolation-level": "read_committed"},
    )
    failed_once = []
    async with KafkaTemplate(settings) as template:
        registry = ListenerRegistry(settings, environ={}, template=template)

        @registry.listener(source, group_id=group)
        async def copy(value: int) -> None:
            await template.send(sink, value * 10)
            if value == 3 and not failed_once:
                failed_once.append(value)  # The send above must be aborted with the record.
                raise RuntimeError("fail after sending")

        async with registry:
            await wait_for(lambda: registry.containers[0].workers[0].committed, message="commits")
            committed_records = await read_all(kafka_bootstrap, sink, 6, "read_committed")
            await wait_for(
                lambda: (
                    registry.containers[0]
                    .workers[0]
                    .committed.get(next(iter(registry.containers[0].assignment)))
                    == 6
                ),
                message="all six offsets committed",
            )
    assert sorted(int(r.value) for r in committed_records) == [0, 10, 20, 30, 40, 50]
    everything = await read_all(kafka_bootstrap, sink, 7, isolation_level="read_uncommitted")
    assert sorted(int(r.value) for r in everything) == [0, 10, 20, 30, 30, 40, 50]  # One aborted.
    assert await committed(kafka_bootstrap, group, source) == {0: 6}


async def test_a_send_the_broker_rejects_aborts_the_whole_transaction(kafka_bootstrap):
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = unique("small")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "200"})])
    await admin.close()
    settings = settings_for(kafka_bootstrap, producer={"transaction-id-prefix": unique("tx-")})
    async with KafkaTemplate(settings) as template:

        async def fits_then_too_big():
            async with template.transaction():
                await template.send(topic, "fits")
                await template.send(topic, "x" * 1000)  # The broker refuses this one.

        with pytest.raises(KafkaSendError, match="aborting it"):
            await fits_then_too_big()
        async with template.transaction():
            await template.send(topic, "later")
    records = await read_all(kafka_bootstrap, topic, 2, "read_committed", wait=3)
    assert [r.value for r in records] == [b"later"]


async def test_a_failing_nested_block_aborts_the_outer_transaction(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    settings = settings_for(kafka_bootstrap, producer={"transaction-id-prefix": unique("tx-")})
    async with KafkaTemplate(settings) as template:

        async def outer():
            async with template.transaction():
                await template.send(topic, "outer")
                with contextlib.suppress(RuntimeError):
                    async with template.transaction():
                        await template.send(topic, "inner")
                        raise RuntimeError("inner fails")

        with pytest.raises(KafkaSendError, match="inside the transaction failed"):
            await outer()
    assert await read_all(kafka_bootstrap, topic, 1, "read_committed", wait=3) == []


@pytest.mark.slow
async def test_exactly_once_holds_when_a_second_instance_takes_partitions(kafka_bootstrap):
    source, sink = await create_topic(kafka_bootstrap, 4), await create_topic(kafka_bootstrap, 4)
    group, prefix = unique("eos-join"), unique("tx-")
    settings = settings_for(
        kafka_bootstrap,
        producer={"transaction-id-prefix": prefix},
        consumer={"isolation-level": "read_committed"},
    )
    handled = []

    def instance(template, suffix):
        registry = ListenerRegistry(settings, environ={}, template=template)

        @registry.listener(source, group_id=group, id=f"copy-{suffix}")
        async def copy(value: int) -> None:
            handled.append(value)
            await template.send(sink, value)
            await asyncio.sleep(0.002)

        return registry

    first_template = KafkaTemplate(settings, transaction_id_suffix="a")
    second_template = KafkaTemplate(settings, transaction_id_suffix="b")
    async with first_template, second_template, instance(first_template, "a"):
        await produce(kafka_bootstrap, source, [b"%d" % i for i in range(300)], partitions=4)
        await wait_for(lambda: len(handled) >= 60, message="a first part")
        async with instance(second_template, "b"):
            await produce(
                kafka_bootstrap, source, [b"%d" % i for i in range(300, 600)], partitions=4
            )
            await wait_for(lambda: set(handled) >= set(range(600)), timeout=60, message="all")
    output = await read_all(kafka_bootstrap, sink, 600, "read_committed", wait=30)
    assert sorted(int(r.value) for r in output) == list(range(600))  # Each exactly once.
