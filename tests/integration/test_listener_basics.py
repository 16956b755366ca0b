"""Listeners against a real broker: payload types, poison records, filters, methods."""

import asyncio
from typing import Annotated

import pytest
from pydantic import BaseModel

from kafkaboot import ConsumerRecord, ErrorAction, Header, Key, ListenerEndpoint, kafka_listener

from .kafka_helpers import committed, create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    id: int
    item: str = "thing"


async def test_pydantic_listener_receives_every_record_and_commits(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    await produce(kafka_bootstrap, topic, [b'{"id": %d}' % i for i in range(30)], partitions=3)
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(topic, group_id="pydantic")
    async def on_order(order: Order) -> None:
        seen.append(order.id)

    async with registry:
        await wait_for(lambda: len(seen) == 30, message="30 orders")
    assert sorted(seen) == list(range(30))
    assert await committed(kafka_bootstrap, "pydantic", topic, 3) == {0: 10, 1: 10, 2: 10}


async def test_record_key_and_header_parameters(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"v"], key=b"k", headers=[("trace", b"t-1")])
    registry = registry_for(kafka_bootstrap)
    got = []

    @registry.listener(topic, group_id="params")
    async def on_record(
        record: ConsumerRecord[str, str],
        key: Annotated[str, Key],
        trace: Annotated[str, Header("trace")],
    ) -> None:
        got.append((record.value, record.offset, key, trace))

    async with registry:
        await wait_for(lambda: got, message="one record")
    assert got == [("v", 0, "k", "t-1")]


async def test_poison_record_does_not_stop_its_partition(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    values = [b'{"id": 1}', b"{broken", b'{"id": "not a number"}', b'{"id": 4}']
    await produce(kafka_bootstrap, topic, values)
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(topic, group_id="poison")
    async def on_order(order: Order) -> None:
        seen.append(order.id)

    async with registry:
        await wait_for(lambda: seen == [1, 4], message="the good records")
        container = registry.containers[0]
        assert "DeserializationError" in (container.last_error or "")
    assert await committed(kafka_bootstrap, "poison", topic) == {0: 4}


async def test_failing_handler_is_retried_in_place_then_skipped(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    registry = registry_for(kafka_bootstrap)
    calls = []

    @registry.listener(topic, group_id="retry")
    async def on_value(value: str) -> None:
        calls.append(value)
        if value == "b":
            raise RuntimeError("b always fails")

    async with registry:
        await wait_for(lambda: "c" in calls, message="c after b's retries")
    assert calls == ["a"] + ["b"] * 10 + ["c"]  # Spring's default: 10 deliveries in all.
    assert await committed(kafka_bootstrap, "retry", topic) == {0: 3}


async def test_transient_failure_succeeds_on_retry_in_order(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(5)])
    registry = registry_for(kafka_bootstrap)
    calls, failed = [], set()

    @registry.listener(topic, group_id="transient")
    async def on_value(value: int) -> None:
        if value == 2 and value not in failed:
            failed.add(value)
            raise RuntimeError("flaky")
        calls.append(value)

    async with registry:
        await wait_for(lambda: len(calls) == 5, message="all five")
    assert calls == [0, 1, 2, 3, 4]


async def test_filtered_records_count_as_handled(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"keep-1", b"drop", b"keep-2"])
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(topic, group_id="filter", filter=lambda r: r.value.startswith(b"keep"))
    async def on_value(value: str) -> None:
        seen.append(value)

    async with registry:
        await wait_for(lambda: len(seen) == 2, message="two kept records")
        await asyncio.sleep(0.3)
    assert seen == ["keep-1", "keep-2"]
    assert await committed(kafka_bootstrap, "filter", topic) == {0: 3}


class Billing:
    instances = 0

    def __init__(self) -> None:
        Billing.instances += 1
        self.seen: list[int] = []

    @kafka_listener("${billing.topic}", group_id="${billing.group:billing}", id="billing")
    async def on_order(self, order: Order) -> None:
        self.seen.append(order.id)

    @kafka_listener("${billing.topic}", group_id="billing-audit", id="audit")
    def audit(self, order: Order) -> None:  # A sync method: runs in a worker thread.
        self.seen.append(-order.id)


async def test_methods_of_a_class_share_one_instance_and_resolve_placeholders(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b'{"id": 7}'])
    registry = registry_for(kafka_bootstrap)
    registry.settings = registry.settings.model_copy(update={"billing": {"topic": topic}})
    Billing.instances = 0
    containers = registry.scan(Billing)
    assert sorted(c.listener_id for c in containers) == ["audit", "billing"]
    assert registry.get("billing").settings.group_id == "billing"
    async with registry:
        instance = registry.instance(Billing)
        await wait_for(lambda: sorted(instance.seen) == [-7, 7], message="both listeners")
    assert Billing.instances == 1


async def test_explicit_endpoint_registration(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"x"])
    registry = registry_for(kafka_bootstrap)
    seen = []

    async def handle(value: str) -> None:
        seen.append(value)

    registry.register(ListenerEndpoint(handler=handle, topics=(topic,), group_id=unique("g")))
    async with registry:
        await wait_for(lambda: seen == ["x"], message="one record")


async def test_sync_handler_does_not_block_other_listeners(kafka_bootstrap):
    slow_topic = await create_topic(kafka_bootstrap)
    fast_topic = await create_topic(kafka_bootstrap)
    registry = registry_for(kafka_bootstrap)
    fast_seen = []

    @registry.listener(slow_topic, group_id="slow")
    def slow(value: str) -> None:
        import time

        time.sleep(3)

    @registry.listener(fast_topic, group_id="fast")
    async def fast(value: str) -> None:
        fast_seen.append(asyncio.get_running_loop().time())

    async with registry:
        await produce(kafka_bootstrap, slow_topic, [b"s"])
        await asyncio.sleep(0.5)  # The sync handler is now sleeping in its thread.
        started = asyncio.get_running_loop().time()
        await produce(kafka_bootstrap, fast_topic, [b"f"])
        await wait_for(lambda: fast_seen, timeout=10, message="the fast listener")
        assert fast_seen[0] - started < 2.0


async def test_topic_pattern_subscribes_to_matching_topics(kafka_bootstrap):
    prefix = unique("pattern")
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(topic_pattern=f"{prefix}-.*", group_id=unique("pattern"))
    async def on_value(record: ConsumerRecord[str, str]) -> None:
        seen.append((record.topic, record.value))

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(f"{prefix}-a", 1, 1), NewTopic(f"{prefix}-b", 1, 1)])
    await admin.close()
    await produce(kafka_bootstrap, f"{prefix}-a", [b"1"])
    await produce(kafka_bootstrap, f"{prefix}-b", [b"2"])
    async with registry:
        await wait_for(lambda: len(seen) == 2, message="records of both topics")
    assert sorted(seen) == [(f"{prefix}-a", "1"), (f"{prefix}-b", "2")]


class Collecting:
    """An async error handler that recovers at once and remembers what failed."""

    def __init__(self):
        self.failures = []

    async def handle(self, failure):
        self.failures.append((failure.record.offset, type(failure.error).__name__, failure.attempt))
        return ErrorAction.recovered()


async def test_custom_error_handler_per_listener_and_global(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"ok", b"boom", b"ok"])
    global_handler, own_handler = Collecting(), Collecting()
    registry = registry_for(kafka_bootstrap, error_handler=global_handler)

    async def explode(value: str) -> None:
        if value == "boom":
            raise ValueError("boom")

    registry.listener(topic, group_id=unique("own"), id="own", error_handler=own_handler)(explode)
    registry.listener(topic, group_id=unique("global"), id="global")(explode)
    async with registry:
        await wait_for(lambda: own_handler.failures and global_handler.failures, message="both")
    assert own_handler.failures == [(1, "ValueError", 1)]
    assert global_handler.failures == [(1, "ValueError", 1)]


class AsyncCallable:
    def __init__(self):
        self.seen = []

    async def __call__(self, value: str) -> None:
        self.seen.append(value)


async def test_object_with_async_call_is_awaited(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"x"])
    registry = registry_for(kafka_bootstrap)
    handler = AsyncCallable()
    registry.register(ListenerEndpoint(handler=handler, topics=(topic,), group_id=unique("c")))
    async with registry:
        await wait_for(lambda: handler.seen == ["x"], message="the record")
