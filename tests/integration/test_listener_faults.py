"""Faults of the listener container, proven through its public API on a real broker: a
failing filter, late acknowledgments, and the configured seek on later assignments.

Rebalance faults are in test_listener_rebalance_faults.py.
"""

import asyncio
import time
from collections import Counter

import pytest

from kafkaboot import (
    Acknowledgment,
    ConsumerRecord,
    DefaultErrorHandler,
    FixedBackOff,
    RebalanceListener,
)
from kafkaboot.errors import AcknowledgmentError

from .kafka_helpers import (
    committed,
    create_topic,
    produce,
    registry_for,
    unique,
    wait_for,
    wait_for_committed,
)

pytestmark = pytest.mark.asyncio


# -- 1. an exception raised by filter= -------------------------------------------------------


async def test_a_filter_raising_once_in_a_fresh_group_loses_no_record(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    total = 1200  # Value n goes to partition n % 3, at offset n // 3.
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(total)], partitions=3)
    group = unique("filter-once")
    registry = registry_for(kafka_bootstrap)
    partitions_seen, raised, handled = [], [], set()

    def flaky(record):
        if record.partition not in partitions_seen:
            partitions_seen.append(record.partition)
        # The first record of the second partition: mid-poll when a poll spans partitions,
        # and in a partition with nothing committed yet.
        if not raised and len(partitions_seen) == 2:
            raised.append((record.partition, record.offset))
            raise RuntimeError("the filter fails once")
        return True

    @registry.listener(topic, group_id=group, filter=flaky)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        handled.add((record.partition, record.offset))

    last = {(p, total // 3 - 1) for p in range(3)}
    async with registry:
        # Each partition's records come in order: once its last one is handled, every
        # record before it was handled or skipped.
        await wait_for(lambda: last <= handled, message="the last record of each partition")
    assert raised, "the filter never raised"
    offsets = await committed(kafka_bootstrap, group, topic, 3)
    for partition, offset in offsets.items():
        passed = [o for o in range(offset or 0) if (partition, o) not in handled]
        assert not passed, (
            f"committed offset {offset} of partition {partition} passes {len(passed)} records "
            f"never handled (offsets {passed[0]}..{passed[-1]}); the filter raised at "
            f"{raised[0]}"
        )
    missing = {(n % 3, n // 3) for n in range(total)} - handled
    assert not missing, f"{len(missing)} of {total} records never handled"


async def test_a_filter_always_raising_on_a_record_retries_then_recovers_it(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(10)])
    group = unique("filter-poison")
    recovered = []
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=3), recoverer=recovered.append)
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    filter_calls, handled = Counter(), []

    def judge(record):
        filter_calls[record.offset] += 1
        if record.value == b"5":
            raise ValueError("the filter cannot judge record 5")
        return True

    @registry.listener(topic, group_id=group, filter=judge)
    async def on_value(value: int) -> None:
        handled.append(value)

    async with registry:
        await wait_for(
            lambda: recovered or filter_calls[5] > 3,
            timeout=15,
            message="the recoverer or a fourth try of record 5",
        )
        assert [(f.record.offset, f.attempt, type(f.error)) for f in recovered] == [
            (5, 3, ValueError)
        ], f"recoverer got {recovered} after {filter_calls[5]} filter calls on record 5"
        await wait_for(lambda: 9 in handled, message="the records after record 5")
    assert filter_calls[5] == 3
    assert handled == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert await committed(kafka_bootstrap, group, topic) == {0: 10}


# -- 6. acknowledgments used after the handler returned ------------------------------------------


async def test_a_nack_after_the_handler_returned_raises(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b"])
    group = unique("late-nack")
    registry = registry_for(kafka_bootstrap)
    returned, late, handled = asyncio.Event(), [], []

    async def nack_later(ack: Acknowledgment) -> None:
        await returned.wait()
        ack.nack(0.1)

    @registry.listener(topic, group_id=group, ack_mode="manual")
    async def on_value(value: str, ack: Acknowledgment) -> None:
        handled.append(value)
        if value == "a":
            late.append((asyncio.create_task(nack_later(ack)), ack))
        else:
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: handled == ["a", "b"], message="both records")
        returned.set()  # "b" was handled, so the handler of "a" returned long ago.
        [(task, ack)] = late
        with pytest.raises(AcknowledgmentError):
            await task
        # The refused nack left the record as it was: acknowledging it still works.
        ack.acknowledge()
        await wait_for_committed(kafka_bootstrap, group, topic, {0: 2})
    assert handled == ["a", "b"]


@pytest.mark.parametrize("ack_mode", ["manual", "manual_immediate"])
async def test_an_acknowledge_after_the_handler_returned_lets_commits_advance(
    kafka_bootstrap, ack_mode
):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    group = unique("late-ack")
    registry = registry_for(kafka_bootstrap)
    release, tasks, handled = asyncio.Event(), [], []

    async def acknowledge_later(ack: Acknowledgment) -> None:
        await release.wait()
        ack.acknowledge()

    @registry.listener(topic, group_id=group, ack_mode=ack_mode)
    async def on_value(value: str, ack: Acknowledgment) -> None:
        handled.append(value)
        if value == "a":
            tasks.append(asyncio.create_task(acknowledge_later(ack)))
        else:
            ack.acknowledge()

    async with registry:
        await wait_for(lambda: len(handled) == 3, message="three records")
        release.set()
        await asyncio.gather(*tasks)
        await wait_for_committed(kafka_bootstrap, group, topic, {0: 3})
    assert handled == ["a", "b", "c"]


# -- 8. kafka.listeners.<id>.seek on later assignments ----------------------------------------


class Assigned(RebalanceListener):
    """Sets ``event`` once partitions are assigned and the configured seek (which runs
    before this callback) has resolved their positions, so records produced after the
    event are after the starting position."""

    def __init__(self):
        self.event = asyncio.Event()
        self.positions = []

    async def on_partitions_assigned(self, partitions, consumer):
        if partitions:
            # A seek to the end only resets the position; position() waits for its value.
            self.positions += [await consumer.position(tp) for tp in sorted(partitions)]
            self.event.set()


def _iso(epoch_ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))


@pytest.mark.parametrize("to", ["end", "timestamp", "ago"])
async def test_the_configured_seek_skips_nothing_once_the_group_has_committed(kafka_bootstrap, to):
    topic = await create_topic(kafka_bootstrap)
    now_ms = int(time.time() * 1000)
    old = now_ms - 3 * 3600 * 1000
    # Records 0-4, three hours old, are there before the first start: every seek skips them.
    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(5)], timestamps=[old] * 5)
    seek = {
        "end": {"to": "end"},
        "timestamp": {"to": "timestamp", "timestamp": _iso(now_ms - 3600 * 1000)},
        "ago": {"to": "timestamp", "ago": "1h"},
    }[to]
    group, seen = unique(f"seek-{to}"), []

    def instance():
        registry = registry_for(kafka_bootstrap, listeners={"tail": {"seek": seek}})
        assigned = Assigned()

        @registry.listener(topic, group_id=group, id="tail", rebalance_listener=assigned)
        async def on_value(value: int) -> None:
            seen.append(value)

        return registry, assigned

    registry, assigned = instance()
    async with registry:
        await asyncio.wait_for(assigned.event.wait(), 15)
        await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(5, 10)])
        await wait_for(lambda: 9 in seen, message="record 9")
    assert seen == [5, 6, 7, 8, 9], (
        f"a fresh group's first start skips records 0-4; it started at {assigned.positions}"
    )
    assert await committed(kafka_bootstrap, group, topic) == {0: 10}

    await produce(kafka_bootstrap, topic, [b"%d" % n for n in range(10, 15)])  # While stopped.
    registry, assigned = instance()  # A restart of the service.
    async with registry:
        await asyncio.wait_for(assigned.event.wait(), 15)
        await produce(kafka_bootstrap, topic, [b"15"])
        # In order: once 15 is handled, 10-14 were handled before it or skipped.
        await wait_for(lambda: 15 in seen, message="record 15")
    assert seen == list(range(5, 16)), (
        f"records 10-14 came while stopped, after the committed offset 10; the restart "
        f"started at {assigned.positions}"
    )
