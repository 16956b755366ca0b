"""Small helpers for integration tests: topics, producing, committed offsets, waiting.

They make their clients through ``kafkaboot.clients``, so they work on the real broker and
on the in-memory Kafka (``memory://``) alike (the parity suite uses both)."""

import asyncio
import time
import uuid

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from kafkaboot import ListenerRegistry, clients, load_settings


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(bootstrap, partitions=1, prefix="t"):
    name = unique(prefix)
    admin = clients.admin(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce(
    bootstrap, topic, values, *, partitions=1, headers=None, key=None, timestamps=None
):
    """Send ``values`` (bytes), spreading them over ``partitions`` round-robin."""
    producer = clients.producer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value,
                key=key,
                partition=index % partitions,
                headers=headers,
                timestamp_ms=timestamps[index] if timestamps else None,
            )
            for index, value in enumerate(values)
        ]
        return await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed(bootstrap, group, topic, partitions=1):
    """The group's committed offset per partition (``None`` where nothing is committed)."""
    admin = clients.admin(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    result = {}
    for partition in range(partitions):
        meta = found.get(TopicPartition(topic, partition))
        result[partition] = meta.offset if meta is not None and meta.offset >= 0 else None
    return result


async def wait_for(condition, timeout=30.0, message="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.02)


def registry_for(bootstrap, error_handler=None, **kafka):
    kafka.setdefault("consumer", {}).setdefault("auto-offset-reset", "earliest")
    kafka["bootstrap-servers"] = bootstrap
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    return ListenerRegistry(settings, environ={}, error_handler=error_handler)


async def read_all(bootstrap, topic, count, isolation_level="read_uncommitted", wait=20.0):
    """Up to ``count`` records of ``topic`` from the beginning, in (partition, offset) order;
    stops after ``wait`` seconds, so a test can also check that nothing more arrives."""
    consumer = clients.consumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    records = []
    try:
        deadline = time.monotonic() + wait
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            records += [r for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def wait_for_committed(bootstrap, group, topic, expected, partitions=1, timeout=15.0):
    """Poll the group's committed offsets until they are ``expected`` (a dict as from
    ``committed``); the assertion names what was committed instead."""
    deadline = time.monotonic() + timeout
    while True:
        found = await committed(bootstrap, group, topic, partitions)
        if found == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"group {group} committed {found} on {topic}, not {expected}, within {timeout}s"
            )
        await asyncio.sleep(0.2)


async def group_state(bootstrap, group):
    """The broker's state of a consumer group: "Stable", "PreparingRebalance", "Empty"..."""
    admin = clients.admin(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return response.to_object()["groups"][0]["state"]


def as_terminal_job():
    """``preexec_fn`` for a subprocess a test will Ctrl-C: SIGINT as a terminal's job has
    it, even when the tests run in the background (a shell starts background jobs with
    SIGINT ignored, and the child would inherit that)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
