"""The listener guide's snippets run as written."""

import importlib.util
import sys
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from kafkaboot.offset_store import SqlOffsetStore

from .kafka_helpers import committed, create_topic, produce, registry_for, unique, wait_for

SNIPPETS = Path(__file__).parents[2] / "docs" / "snippets"
pytestmark = pytest.mark.asyncio


def load(name, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"snippet_{name}", SNIPPETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


async def test_listener_quickstart(kafka_bootstrap, monkeypatch):
    topic = await create_topic(kafka_bootstrap)
    monkeypatch.setenv("ORDERS_TOPIC", topic)
    orders = [b'{"id": 1, "item": "tea"}', b'{"id": 2, "item": "jam"}']
    await produce(kafka_bootstrap, topic, orders)
    snippet = load("listener_quickstart", monkeypatch)
    orders = await snippet.run(kafka_bootstrap, expected=2)
    assert [(o.id, o.item) for o in orders] == [(1, "tea"), (2, "jam")]


async def test_listener_manual_ack(kafka_bootstrap, monkeypatch):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    snippet = load("listener_manual_ack", monkeypatch)
    stored = await snippet.run(registry_for(kafka_bootstrap), topic, expected=3)
    assert stored == ["a", "b", "c"]
    assert all(count == 2 for count in snippet.attempts.values())


async def test_template_send(kafka_bootstrap, monkeypatch):
    from kafkaboot import load_settings

    topic = await create_topic(kafka_bootstrap, partitions=2)
    snippet = load("template_send", monkeypatch)
    settings = load_settings(
        environ={}, overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}}
    )
    results = await snippet.run(settings, topic)
    assert len(results) == 6
    assert all(r.topic == topic and r.offset >= 0 for r in results)


async def test_di_container(kafka_bootstrap, monkeypatch):
    from dependency_injector import providers

    from kafkaboot import load_settings

    topic = await create_topic(kafka_bootstrap)
    monkeypatch.setenv("ORDERS_TOPIC", topic)
    await produce(kafka_bootstrap, topic, [b'{"id": 1}'])
    snippet = load("di_container", monkeypatch)
    container = snippet.Container()
    settings = load_settings(
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
            }
        }
    )
    container.settings.override(providers.Object(settings))
    registry = snippet.build(container)
    try:
        async with registry:
            await wait_for(lambda: container.repository().orders, message="the order")
    finally:
        container.unwire()
    assert container.repository().orders == [{"id": 1}]


async def test_transactions(kafka_bootstrap, monkeypatch):
    from kafkaboot import load_settings
    from kafkaboot.template import KafkaTemplate

    topic, source, sink = [await create_topic(kafka_bootstrap) for _ in range(3)]
    snippet = load("transactions", monkeypatch)
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "producer": {"transaction-id-prefix": unique("tx-")},
                "consumer": {"auto-offset-reset": "earliest", "group-id": unique("g")},
            }
        },
    )
    await produce(kafka_bootstrap, source, [b'{"id": 1}'])
    async with KafkaTemplate(settings) as template:
        await snippet.transfer(template, topic)
        registry = snippet.exactly_once(settings, template, source, sink)
        async with registry:
            await wait_for(lambda: registry.containers[0].workers[0].committed, message="a commit")
    assert await committed(kafka_bootstrap, "enricher", source) == {0: 1}


async def test_application_container_runs_topics_template_and_listeners_in_order(
    kafka_bootstrap, monkeypatch
):
    from dependency_injector import providers

    from kafkaboot import load_settings
    from kafkaboot.di import running

    topic = unique("orders")
    monkeypatch.setenv("ORDERS_TOPIC", topic)
    snippet = load("di_container", monkeypatch)
    container = snippet.Container()
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
                "topics": [{"name": topic, "partitions": 2}],
            }
        },
    )
    container.settings.override(providers.Object(settings))
    snippet.build(container)
    try:
        async with running(container):
            await (await container.template().send(topic, {"id": 9}))
            await wait_for(lambda: container.repository().orders, message="the order")
        assert not container.registry().containers[0].is_running
        assert not container.template().started  # Stopped after the listeners.
    finally:
        container.unwire()
    assert container.repository().orders == [{"id": 9}]


async def test_listener_ordering(kafka_bootstrap, monkeypatch):
    from aiokafka import AIOKafkaProducer

    topic = await create_topic(kafka_bootstrap, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for n in range(400):
            site = f"site-{n % 20}"
            value = b'{"site": "%s", "sequence": %d}' % (site.encode(), n // 20)
            await producer.send(topic, value, key=site.encode())
        await producer.flush()
    finally:
        await producer.stop()
    snippet = load("listener_ordering", monkeypatch)
    saved = await snippet.run(registry_for(kafka_bootstrap), topic, expected=400)
    assert saved == {f"site-{s}": list(range(20)) for s in range(20)}


async def test_interceptors(kafka_bootstrap, monkeypatch):
    from kafkaboot import load_settings

    topic = await create_topic(kafka_bootstrap)
    snippet = load("interceptors", monkeypatch)
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
            }
        },
    )
    handled, senders = await snippet.run(settings, topic)
    assert handled == {b"site-0": 3, b"site-1": 3}
    assert senders == {"site-gateway"}


async def test_testing_listener(kafka_bootstrap, monkeypatch):
    snippet = load("testing_listener", monkeypatch)
    await snippet.test_an_order_is_billed(kafka_bootstrap)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def either_broker(request):
    """The docs' "both brokers" snippets run on each: same test, same assertions."""
    if request.param == "memory":
        return request.getfixturevalue("memory_kafka").bootstrap_servers
    return request.getfixturevalue("kafka_bootstrap")


async def test_testing_both_brokers_http(either_broker, kafkaboot_app, monkeypatch):
    snippet = load("testing_both_brokers", monkeypatch)
    await snippet.test_an_order_taken_over_http_is_billed(either_broker, kafkaboot_app)


async def test_testing_both_brokers_dead_letter(either_broker, monkeypatch):
    snippet = load("testing_both_brokers", monkeypatch)
    await snippet.test_an_order_that_cannot_be_billed_is_dead_lettered(either_broker)


async def test_testing_both_brokers_rebalance(either_broker, monkeypatch):
    snippet = load("testing_both_brokers", monkeypatch)
    await snippet.test_the_rebalance_listener_hears_its_partitions(either_broker)


async def test_testing_listener_in_memory(memory_kafka, monkeypatch):
    snippet = load("testing_listener", monkeypatch)
    await snippet.test_an_order_is_billed(memory_kafka.bootstrap_servers)


async def test_offset_store(kafka_bootstrap, monkeypatch, tmp_path):
    topic = await create_topic(kafka_bootstrap)
    monkeypatch.setenv("EVENTS_TOPIC", topic)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    snippet = load("offset_store", monkeypatch)
    url = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    assert await snippet.run(kafka_bootstrap, url, expected=3) == ["a", "b", "c"]
    async with SqlOffsetStore(url) as store:
        assert await store.load("central", {TopicPartition(topic, 0)}) == {
            TopicPartition(topic, 0): 3
        }
