"""``ordering="key"`` / ``"none"`` on a real broker: each key's records in order while keys
run concurrently, a poison key that holds up only itself, back-pressure that pauses
fetching, manual acknowledgments out of order, and a member joining mid-stream. Every
record is counted by key and sequence."""

import asyncio
import random
from collections import defaultdict
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from kafkaboot import Acknowledgment, ConsumerRecord, DefaultErrorHandler, FixedBackOff

from .kafka_helpers import committed, create_topic, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio

QUICK = {"consumer": {"heartbeat-interval": "300ms"}}


async def produce_keyed(bootstrap, topic, messages):
    """Send ``(key, value)`` pairs in order; the key picks the partition (murmur2)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, v.encode(), key=k.encode()) for k, v in messages]
        return await asyncio.gather(*futures)
    finally:
        await producer.stop()


def keyed_messages(keys, per_key):
    """``per_key`` messages of each key, interleaved; the value is ``key:sequence``."""
    return [(f"k{k}", f"k{k}:{n}") for n in range(per_key) for k in range(keys)]


class Concurrency:
    def __init__(self):
        self.now = 0
        self.most = 0

    def __enter__(self):
        self.now += 1
        self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        self.now -= 1


def out_of_order(handled):
    """Per key, the sequences whose first handling came after a later sequence's."""
    seen, problems = defaultdict(list), []
    for value in handled:
        key, sequence = value.split(":")
        first = seen[key]
        if int(sequence) in first:
            continue  # A redelivery: counted as a duplicate, not as disorder.
        if first and int(sequence) < first[-1]:
            problems.append(value)
        first.append(int(sequence))
    return problems


async def wait_committed_to_end(bootstrap, group, topic, partitions, ends):
    async def all_committed():
        offsets = await committed(bootstrap, group, topic, partitions)
        return all(offsets[p] == ends[p] for p in range(partitions))

    for _ in range(300):
        if await all_committed():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"committed {await committed(bootstrap, group, topic, partitions)}, ends {ends}"
    )


def end_offsets(sent, partitions):
    ends = dict.fromkeys(range(partitions), 0)
    for metadata in sent:
        ends[metadata.partition] = max(ends[metadata.partition], metadata.offset + 1)
    return ends


async def test_each_key_stays_in_order_while_keys_run_concurrently(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    messages = keyed_messages(keys=60, per_key=40)  # 2,400 records.
    sent = await produce_keyed(kafka_bootstrap, topic, messages)
    group, handled, running = unique("keyed"), [], Concurrency()
    delays = random.Random(7)

    registry = registry_for(kafka_bootstrap)

    @registry.listener(topic, group_id=group, ordering="key", max_in_flight=64)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        with running:
            await asyncio.sleep(delays.random() * 0.004)  # Keys finish in shuffled order.
            handled.append(record.value)

    async with registry:
        await wait_for(lambda: len(set(handled)) == len(messages), message="every record")
        await wait_committed_to_end(kafka_bootstrap, group, topic, 3, end_offsets(sent, 3))
    assert out_of_order(handled) == []
    assert len(handled) == len(messages), f"{len(handled) - len(messages)} duplicates"
    assert running.most > 10, f"at most {running.most} records ran at once"
    assert running.most <= 64


async def test_a_poison_key_holds_up_only_its_own_records(kafka_bootstrap):
    """The poison key's first record fails until every other key's records are handled
    and the listener's status has shown its lane as stuck: with other keys blocked behind
    it, it would never succeed."""
    topic = await create_topic(kafka_bootstrap)
    others = keyed_messages(keys=20, per_key=10)
    messages = [("poison", "poison:0"), *others, ("poison", "poison:1")]
    await produce_keyed(kafka_bootstrap, topic, messages)
    group, handled, failures, seen_stuck = unique("poison"), [], [], []
    other_values = {v for _, v in others}

    registry = registry_for(
        kafka_bootstrap,
        error_handler=DefaultErrorHandler(
            FixedBackOff(timedelta(milliseconds=50), max_attempts=None)
        ),
    )

    @registry.listener(topic, group_id=group, id="poisoned", ordering="key")
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        if record.value == "poison:0" and not (seen_stuck and other_values <= set(handled)):
            failures.append(record.offset)
            raise RuntimeError("the poison record fails while other keys go on")
        handled.append(record.value)

    container = registry.get("poisoned")
    async with registry:
        await wait_for(lambda: other_values <= set(handled), message="the other keys")
        assert "poison:0" not in handled
        stuck = (await container.status()).stuck_lanes
        assert [(s.key, s.offset) for s in stuck] == [("poison", 0)]
        assert stuck[0].attempts >= 1
        assert stuck[0].queued == 1  # poison:1 waits behind it.
        seen_stuck.append(stuck)
        await wait_for(lambda: "poison:1" in handled, message="the poison key's records")
        await wait_committed_to_end(kafka_bootstrap, group, topic, 1, {0: len(messages)})
        assert (await container.status()).stuck_lanes == ()
    assert handled[-2:] == ["poison:0", "poison:1"]


async def test_back_pressure_pauses_fetching_until_the_lanes_drain(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    messages = [(f"k{n}", f"k{n}:0") for n in range(50)]
    await produce_keyed(kafka_bootstrap, topic, messages)
    group, handled, started, release = unique("pressure"), [], [], asyncio.Event()
    running = Concurrency()

    registry = registry_for(kafka_bootstrap)

    @registry.listener(topic, group_id=group, id="pressed", ordering="key", max_in_flight=5)
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        started.append(record.value)
        with running:
            await release.wait()
        handled.append(record.value)

    container = registry.get("pressed")
    async with registry:
        await wait_for(lambda: len(started) == 5, message="five records started")
        tp = TopicPartition(topic, 0)

        async def paused():
            status = await container.status()
            worker = container.workers[0]
            return status.backpressure and tp in worker.consumer.paused()

        for _ in range(100):
            if await paused():
                break
            await asyncio.sleep(0.05)
        status = await container.status()
        assert status.backpressure, "fetching was not paused with max-in-flight reached"
        assert (status.in_flight, status.max_in_flight) == (5, 5)
        assert len(started) == 5, f"{len(started)} records started with max-in-flight 5"
        release.set()
        await wait_for(lambda: len(handled) == 50, message="all 50 after the release")
        await wait_committed_to_end(kafka_bootstrap, group, topic, 1, {0: 50})
        assert not (await container.status()).backpressure
    assert running.most == 5


async def test_manual_acknowledgments_in_any_order_commit_only_the_finished_prefix(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    messages = [(f"k{n % 10}", f"k{n % 10}:{n // 10}") for n in range(100)]
    await produce_keyed(kafka_bootstrap, topic, messages)
    group, acks = unique("manual-keyed"), {}

    registry = registry_for(kafka_bootstrap)

    @registry.listener(topic, group_id=group, ordering="key", ack_mode="manual")
    async def on_record(record: ConsumerRecord[str, str], ack: Acknowledgment) -> None:
        acks[record.offset] = ack  # Acknowledged later, from the test.

    async with registry:
        await wait_for(lambda: len(acks) == 100, message="100 records delivered")
        for offset in range(99, 0, -1):  # Everything but offset 0, last first.
            acks[offset].acknowledge()
        await asyncio.sleep(0.5)  # Several commit rounds: none may pass offset 0.
        assert (await committed(kafka_bootstrap, group, topic))[0] is None
        acks[0].acknowledge()
        await wait_committed_to_end(kafka_bootstrap, group, topic, 1, {0: 100})


@pytest.mark.slow
async def test_a_member_joining_mid_stream_loses_nothing_and_keeps_key_order(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=4)
    messages = keyed_messages(keys=40, per_key=50)  # 2,000 records, ~5 ms each.
    sent = await produce_keyed(kafka_bootstrap, topic, messages)
    group, handled = unique("keyed-join"), {"first": [], "second": []}
    quarter = asyncio.Event()

    def listener(name):
        async def on_record(record: ConsumerRecord[str, str]) -> None:
            await asyncio.sleep(0.005)
            handled[name].append(record.value)
            if len(handled["first"]) == len(messages) // 4:
                quarter.set()

        return on_record

    first, second = registry_for(kafka_bootstrap, **QUICK), registry_for(kafka_bootstrap, **QUICK)
    options = {"group_id": group, "ordering": "key", "max_in_flight": 16}
    first.listener(topic, id="first", **options)(listener("first"))
    second.listener(topic, id="second", **options)(listener("second"))
    everything = {v for _, v in messages}
    async with first:
        await asyncio.wait_for(quarter.wait(), 30)
        async with second:
            await wait_for(
                lambda: set(handled["first"]) | set(handled["second"]) >= everything,
                timeout=60,
                message="every record by one member or the other",
            )
            await wait_committed_to_end(kafka_bootstrap, group, topic, 4, end_offsets(sent, 4))
    assert handled["second"], "the second member handled nothing: no rebalance was tested"
    for name, values in handled.items():
        assert out_of_order(values) == [], f"{name} handled a key out of order"
    total = len(handled["first"]) + len(handled["second"])
    # Only what was in hand when the partitions moved may come twice.
    assert total - len(messages) <= 16, f"{total - len(messages)} records handled twice"


async def test_a_stop_commits_what_finished_and_the_next_run_gets_the_rest(kafka_bootstrap):
    """One key's record hangs past the shutdown timeout while the other keys finish: the
    stop commits up to the hung record (never past it), and the next run of the group gets
    it again, with the records after it, in key order."""
    topic = await create_topic(kafka_bootstrap)
    messages = [
        ("early", "early:0"),
        ("stuck", "stuck:0"),
        *keyed_messages(keys=5, per_key=4),
        ("stuck", "stuck:1"),
    ]
    await produce_keyed(kafka_bootstrap, topic, messages)
    group, first_run, second_run, hanging = unique("keyed-stop"), [], [], asyncio.Event()

    first = registry_for(kafka_bootstrap, listener={"shutdown-timeout": "300ms"})

    @first.listener(topic, group_id=group, id="first", ordering="key")
    async def hang_on_stuck(record: ConsumerRecord[str, str]) -> None:
        if record.value == "stuck:0":
            hanging.set()
            await asyncio.Event().wait()  # Never finishes: the stop cancels it.
        first_run.append(record.value)

    others = {v for k, v in messages if k != "stuck"}
    async with first:
        await asyncio.wait_for(hanging.wait(), 15)
        await wait_for(lambda: others <= set(first_run), message="the other keys")
    assert (await committed(kafka_bootstrap, group, topic))[0] == 1  # Up to the hung record.

    second = registry_for(kafka_bootstrap)

    @second.listener(topic, group_id=group, id="second", ordering="key")
    async def take_the_rest(record: ConsumerRecord[str, str]) -> None:
        second_run.append(record.value)

    async with second:
        await wait_for(lambda: "stuck:1" in second_run, message="the stuck key's records")
        await wait_committed_to_end(kafka_bootstrap, group, topic, 1, {0: len(messages)})
    assert [v for v in second_run if v.startswith("stuck")] == ["stuck:0", "stuck:1"]
    # The others after it come again (duplicates); the one before it does not.
    assert set(second_run) == {v for _, v in messages} - {"early:0"}
    assert out_of_order(second_run) == []
