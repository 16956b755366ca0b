"""Faults of the listener container around rebalances, proven through its public API on a
real broker: finished work at revocation, pattern subscriptions, attempt counts and seeks
on assignment. Every record is counted by id, across all consumers of the group.
"""

import asyncio
import contextlib
import re
import time
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot import (
    ConsumerRecord,
    ConsumerSeekAware,
    DefaultErrorHandler,
    FixedBackOff,
    RebalanceListener,
)

from .kafka_helpers import (
    committed,
    create_topic,
    group_state,
    produce,
    registry_for,
    unique,
    wait_for,
)

pytestmark = pytest.mark.asyncio

# Heartbeats this often make a consumer notice a rebalance soon after another member joins.
QUICK = {"consumer": {"heartbeat-interval": "300ms"}}


class RevocationProbe(RebalanceListener):
    """At the first revocation: how many records were handled, and what the group has
    committed (read from the broker; the docs say handled offsets are committed first)."""

    def __init__(self, bootstrap, group, topic, handled):
        self._where = (bootstrap, group, topic)
        self._handled = handled
        self.seen = None

    async def on_partitions_revoked(self, partitions, consumer):
        if partitions and self.seen is None:
            count = len(self._handled)
            offset = (await committed(*self._where))[0]
            self.seen = (count, offset)


def _duplicates(handled):
    return len(handled) - len(set(handled))


# -- 2. finished work at revocation ---------------------------------------------------------


@pytest.mark.slow
async def test_records_finished_before_a_revocation_are_committed(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(500)])
    group, tp = unique("revoke"), TopicPartition(topic, 0)
    handled, first_position, hundred = [], [], asyncio.Event()

    async def handle(record: ConsumerRecord[str, str], consumer: AIOKafkaConsumer) -> None:
        if not first_position:
            first_position.append(await consumer.position(tp))
        await asyncio.sleep(0.01)
        handled.append(int(record.value))
        if len(handled) == 100:
            hundred.set()

    probe = RevocationProbe(kafka_bootstrap, group, topic, handled)
    first, second = registry_for(kafka_bootstrap, **QUICK), registry_for(kafka_bootstrap, **QUICK)
    first.listener(topic, group_id=group, id="first", rebalance_listener=probe)(handle)
    second.listener(topic, group_id=group, id="second")(handle)
    async with first:
        await asyncio.wait_for(hundred.wait(), 15)
        async with second:
            await wait_for(lambda: set(handled) >= set(range(500)), message="all 500")
    assert first_position == [500], "the 500 records did not come in one poll"
    assert probe.seen is not None, "no revocation"
    count, offset = probe.seen
    assert count < 500, "the revocation came after the batch: not the fault this test is about"
    assert (offset or 0) >= count, (
        f"at revocation {count} records were handled but the committed offset was {offset}"
    )
    assert _duplicates(handled) <= 1, f"{_duplicates(handled)} records handled twice"


@pytest.mark.slow
async def test_a_batch_finished_during_a_revocation_is_committed(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(500)])
    group = unique("revoke-batch")
    handled, sizes, hundred = [], [], asyncio.Event()

    async def on_batch(records: list[ConsumerRecord[str, str]]) -> None:
        sizes.append(len(records))
        for record in records:  # ~5 s for 500 records.
            await asyncio.sleep(0.01)
            handled.append(int(record.value))
            if len(handled) == 100:
                hundred.set()

    probe = RevocationProbe(kafka_bootstrap, group, topic, handled)
    first, second = registry_for(kafka_bootstrap, **QUICK), registry_for(kafka_bootstrap, **QUICK)
    first.listener(topic, group_id=group, id="first", batch=True, rebalance_listener=probe)(
        on_batch
    )
    second.listener(topic, group_id=group, id="second", batch=True)(on_batch)

    async def handled_when_rebalancing():
        while await group_state(kafka_bootstrap, group) != "PreparingRebalance":
            await asyncio.sleep(0.05)
        return len(handled)

    async with first:
        await asyncio.wait_for(hundred.wait(), 15)
        watcher = asyncio.create_task(handled_when_rebalancing())
        try:
            async with second:  # Its start returns once the rebalance is over.
                await wait_for(lambda: set(handled) >= set(range(500)), message="all 500")
            rebalancing_at = await asyncio.wait_for(watcher, 5)
        finally:
            watcher.cancel()
    assert sizes[0] == 500, "the 500 records did not come in one batch"
    # With heartbeats every 300 ms the first consumer hears of it well before the batch ends.
    assert rebalancing_at < 400, "the group began rebalancing too late to land mid-batch"
    assert probe.seen is not None, "no revocation"
    count, offset = probe.seen
    # kafka.listener.shutdown-timeout (10 s by default) lets the ~5 s batch finish first.
    assert (offset or 0) >= count == 500, (
        f"at revocation {count} records were handled but the committed offset was {offset}"
    )
    assert _duplicates(handled) == 0, f"{_duplicates(handled)} records handled twice"


# -- 11a. pattern subscriptions ----------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["new matching topic", "second member"])
async def test_a_pattern_listener_commits_before_a_revocation(kafka_bootstrap, trigger):
    prefix = unique("pattern")
    topic = await create_topic(kafka_bootstrap, prefix=prefix)
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(20)])
    group, handled = unique("pattern"), []

    async def handle(value: int) -> None:
        handled.append(value)

    def instance(probe=None):
        registry = registry_for(kafka_bootstrap, **QUICK)
        registry.listener(
            topic_pattern=re.escape(prefix) + "-.*",
            group_id=group,
            ack_mode="time",  # Nothing is committed on a timer during the test...
            ack_time=timedelta(minutes=5),
            properties={"metadata.max.age.ms": 500},  # ...and new topics are seen soon.
            rebalance_listener=probe,
        )(handle)
        return registry

    probe = RevocationProbe(kafka_bootstrap, group, topic, handled)
    async with instance(probe):
        await wait_for(lambda: len(handled) == 20, message="20 records")
        if trigger == "new matching topic":
            await create_topic(kafka_bootstrap, prefix=prefix)
            await wait_for(lambda: probe.seen is not None, message="the revocation")
        else:
            async with instance():
                await wait_for(lambda: probe.seen is not None, message="the revocation")
    assert probe.seen == (20, 20), (
        f"at revocation (handled, committed) were {probe.seen}, not (20, 20)"
    )


# -- 11b. attempt counts across rebalances -------------------------------------------------------


class Assignments(RebalanceListener):
    def __init__(self):
        self.assigned = 0
        self.revoked = 0

    def on_partitions_assigned(self, partitions, consumer):
        self.assigned += bool(partitions)

    def on_partitions_revoked(self, partitions, consumer):
        self.revoked += bool(partitions)


async def test_a_poison_record_is_recovered_after_max_attempts_despite_rebalances(
    kafka_bootstrap,
):
    topic, other_topic = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"ok-0", b"poison", b"ok-2"])
    group = unique("attempts")
    recovered = []
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=3), recoverer=recovered.append)
    registry = registry_for(kafka_bootstrap, error_handler=handler, **QUICK)
    rebalances, handled, deliveries = Assignments(), [], []

    @registry.listener(topic, group_id=group, id="poisoned", rebalance_listener=rebalances)
    async def on_value(value: str) -> None:
        if value == "poison":
            deliveries.append(value)
            # No next delivery before the test has forced a rebalance: the container
            # keeps its partitions paused across it.
            registry.get("poisoned").pause()
            raise RuntimeError("poison")
        handled.append(value)

    # A member of the same group on another topic: its joining and leaving rebalance the
    # group, and the listener gets its partition back each time.
    other = AIOKafkaConsumer(other_topic, bootstrap_servers=kafka_bootstrap, group_id=group)
    try:
        async with registry:
            container = registry.get("poisoned")
            for delivery, rebalance in ((1, other.start), (2, other.stop)):
                await wait_for(
                    lambda n=delivery: len(deliveries) == n, message=f"delivery {delivery}"
                )
                assigned = rebalances.assigned
                await rebalance()
                await wait_for(lambda n=assigned: rebalances.assigned > n, message="a rebalance")
                container.resume()
            await wait_for(lambda: len(deliveries) == 3, message="delivery 3")
            container.resume()
            await wait_for(
                lambda: recovered or len(deliveries) > 3, message="the recoverer or a 4th delivery"
            )
            assert [(f.record.value, f.attempt) for f in recovered] == [(b"poison", 3)], (
                f"recoverer got {recovered} after {len(deliveries)} deliveries and "
                f"{rebalances.revoked} revocations"
            )
            await wait_for(lambda: handled == ["ok-0", "ok-2"], message="the record after it")
    finally:
        await other.stop()
    assert (rebalances.revoked, len(deliveries)) == (2, 3)


# -- 11c. seeks on assignment -----------------------------------------------------------------


class SeekOnAssignment(ConsumerSeekAware):
    def __init__(self, kind, cutoff_ms):
        self.kind, self.cutoff_ms = kind, cutoff_ms
        self.handled = asyncio.Event()

    async def on_partitions_assigned(self, assignments, seek):
        if self.kind == "stored offset":
            # Looking offsets up in the application's own store takes a while: here until
            # a record was handled, if one is handled before the seek (at most a second).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.handled.wait(), 1.0)
        for tp in assignments:
            if self.kind in ("offset", "stored offset"):
                seek.seek(tp, 7)
            elif self.kind == "timestamp":
                seek.seek_to_timestamp(self.cutoff_ms, tp)
            else:
                seek.seek_to_end(tp)


async def _commit_at(bootstrap, group, offsets):
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )  # Else stop() commits its own position over the one given.
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("group_state", ["fresh", "committed at 2"])
@pytest.mark.parametrize("kind", ["offset", "stored offset", "timestamp", "end"])
async def test_the_first_record_after_a_seek_on_assignment_is_the_sought_one(
    kafka_bootstrap, kind, group_state
):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    now_ms = int(time.time() * 1000)
    old = now_ms - 3 * 3600 * 1000
    # Per partition, offsets 0-6 are three hours old and 7-9 new.
    stamps = [old] * 21 + [now_ms] * 9
    await produce(kafka_bootstrap, topic, [b"x"] * 30, partitions=3, timestamps=stamps)
    group = unique("seek")
    if group_state != "fresh":
        await _commit_at(kafka_bootstrap, group, {TopicPartition(topic, p): 2 for p in range(3)})
    expected = 10 if kind == "end" else 7
    registry = registry_for(kafka_bootstrap)
    first = {}
    seeker = SeekOnAssignment(kind, now_ms - 3600 * 1000)

    @registry.listener(topic, group_id=group, rebalance_listener=seeker)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        first.setdefault(record.partition, record.offset)
        seeker.handled.set()

    async with registry:
        if kind == "end":
            # Only what comes next shows where a seek to the end landed: produce until
            # every partition has handled a record (bounded; most of them are skipped).
            for _ in range(50):
                if len(first) == 3:
                    break
                await produce(kafka_bootstrap, topic, [b"after"] * 3, partitions=3)
                await asyncio.sleep(0.2)
        await wait_for(lambda: len(first) == 3, timeout=10, message="a record on each partition")
    wrong = {p: o for p, o in first.items() if o < expected}
    assert not wrong, f"first offsets handled {first}; the seek was to {expected}"
