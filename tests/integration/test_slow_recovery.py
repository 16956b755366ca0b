"""A recoverer slower than ``max.poll.interval.ms``, on a real broker.

The error handler's decision (and so a dead-letter send) runs on the consumer's poll task.
Without a bound, aiokafka takes the consumer out of its group while the recoverer runs: its
partitions go to another member, which fails on the record and recovers it again (with two
consumers, over and over). With the bound, a recoverer still running when the interval is
about to run out is cancelled and counts as a failed recovery: the record is retried, the
consumer keeps polling and keeps its partitions, and after ``recovery_attempts`` such
failures the container stops. Every record is counted by id.
"""

import asyncio
import collections
import time

import pytest

from kafkaboot import DefaultErrorHandler, FixedBackOff, RebalanceListener

from .kafka_helpers import (
    committed,
    create_topic,
    group_state,
    produce,
    registry_for,
    unique,
    wait_for,
    wait_for_committed,
)

pytestmark = pytest.mark.asyncio

INTERVAL = {"max.poll.interval.ms": "3000"}
POISON = "5"
IDS = [str(n) for n in range(10)]


class Revocations(RebalanceListener):
    def __init__(self):
        self.revoked = []

    def on_partitions_revoked(self, partitions, consumer):
        if partitions:
            self.revoked.append(sorted(p.partition for p in partitions))


class SlowRecoverer:
    """Blocks in every call until ``release`` is set, noting when it was cancelled."""

    def __init__(self):
        self.calls = 0
        self.recovered = collections.Counter()
        self.running = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, failure):
        self.calls += 1
        self.running.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.recovered[failure.record.value.decode()] += 1


async def states_until(event, bootstrap, group, timeout):
    """The group's states, read until ``event`` is set, the group leaves "Stable" (its
    consumer was taken out), or ``timeout``: whichever comes first."""
    seen = []
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        seen.append(await group_state(bootstrap, group))
        if seen[-1] != "Stable":
            break
        await asyncio.sleep(0.1)
    return seen


def poisoned_listener(registry, topic, group, handled, revocations):
    @registry.listener(
        topic, group_id=group, id="slow", properties=INTERVAL, rebalance_listener=revocations
    )
    async def on_value(value: str) -> None:
        handled[value] += 1
        if value == POISON:
            raise RuntimeError("poison")


@pytest.mark.slow
async def test_a_recovery_slower_than_max_poll_interval_is_retried_without_a_rebalance(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    group = unique("g")
    await produce(kafka_bootstrap, topic, [n.encode() for n in IDS])
    slow = SlowRecoverer()
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), recoverer=slow)
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    handled = collections.Counter()
    revocations = Revocations()
    poisoned_listener(registry, topic, group, handled, revocations)

    async with registry:
        await asyncio.wait_for(slow.running.wait(), 10)
        # Past max.poll.interval.ms (3 s) unless the recovery is cut short first.
        states = await states_until(slow.cancelled, kafka_bootstrap, group, timeout=8)
        during = await committed(kafka_bootstrap, group, topic)
        slow.release.set()  # From now on a recovery finishes at once.
        await wait_for(lambda: all(handled[n] for n in IDS), timeout=15, message="every id")
        await wait_for(lambda: slow.recovered[POISON], timeout=10, message="the recovery")
        await wait_for_committed(kafka_bootstrap, group, topic, {0: 10})
        container = registry.get("slow")
    assert states
    assert set(states) == {"Stable"}, f"the consumer left its group: {states}"
    assert slow.cancelled.is_set()
    assert revocations.revoked == []
    assert during[0] is None or during[0] <= 5  # Never past the record being recovered.
    assert container.failure is None
    # The poison was delivered again after its first recovery was cut short; nothing else.
    assert handled == {n: 2 if n == POISON else 1 for n in IDS}
    assert (slow.calls, slow.recovered) == (2, {POISON: 1})


@pytest.mark.slow
async def test_a_recovery_that_never_finishes_stops_the_container_without_a_rebalance(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    group = unique("g")
    await produce(kafka_bootstrap, topic, [n.encode() for n in IDS])
    hung = SlowRecoverer()  # Never released.
    handler = DefaultErrorHandler(
        FixedBackOff(0, max_attempts=1), recoverer=hung, recovery_attempts=2
    )
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    handled = collections.Counter()
    revocations = Revocations()
    poisoned_listener(registry, topic, group, handled, revocations)

    async with registry:
        container = registry.get("slow")
        await asyncio.wait_for(hung.running.wait(), 10)
        states = await states_until(hung.cancelled, kafka_bootstrap, group, timeout=8)
        await wait_for(lambda: container.failure is not None, timeout=15, message="the stop")
    assert states
    assert set(states) == {"Stable"}, f"the consumer left its group: {states}"
    assert revocations.revoked == []
    assert "max.poll.interval.ms" in container.failure, container.failure
    assert hung.calls == 2
    assert not hung.recovered
    assert handled == {n: 2 if n == POISON else 1 for n in IDS if n <= POISON}
    # Records before the poison are committed, the poison and what follows are not.
    assert await committed(kafka_bootstrap, group, topic) == {0: 5}
