"""Parity: the template's transactions, transactional listeners (consume-process-produce),
``@send_to`` and request/reply behave the same on the in-memory Kafka and on the real
broker."""

import asyncio
import contextlib
from datetime import timedelta
from typing import Annotated

import pytest
from aiokafka import TopicPartition

from kafkaboot import Headers, KafkaSendError, Key, Partition
from kafkaboot.listener.decorator import send_to
from kafkaboot.listener.reply import CORRELATION_ID_HEADER, REPLY_TOPIC_HEADER
from kafkaboot.replying import ReplyingKafkaTemplate, ReplyTimeoutError
from kafkaboot.template import KafkaTemplate
from kafkaboot.testing import (
    WaitTimeout,
    committed_offsets,
    create_topic,
    get_records,
    get_single_record,
    unique_name,
    wait_for_assignment,
)
from tests.integration.kafka_helpers import produce, registry_for, wait_for

pytestmark = pytest.mark.asyncio

QUIET = 0.3  # Seconds a reader looks for a record that must not be there.
REPLY_WAIT = timedelta(seconds=20)


def transactional(bootstrap, **kafka):
    """A registry whose listeners run in transactions (the template it gets is), reading
    ``read_committed``, and its template, not started."""
    kafka["producer"] = {"transaction-id-prefix": unique_name("tx") + "-"}
    kafka["consumer"] = {"isolation-level": "read_committed"}
    return with_template(registry_for(bootstrap, **kafka))


def with_template(registry):
    """The registry given a template built from its settings (for ``@send_to`` and
    transactions), and that template, not started."""
    registry.template = KafkaTemplate(registry.settings)
    return registry, registry.template


async def failing_transaction(template, topic, *sent):
    """A transaction block that sends ``sent`` and then raises."""
    async with template.transaction():
        for value in sent:
            await template.send(topic, value)
        raise RuntimeError("fails after sending")


def values(records):
    return [r.value for r in records]


async def committed_in_container(registry, topic, offset):
    """Wait until the registry's listener has committed ``offset`` on ``topic``-0."""
    tp = TopicPartition(topic, 0)
    await wait_for(
        lambda: registry.containers[0].workers[0].committed.get(tp) == offset,
        timeout=20,
        message=f"offset {offset} committed on {topic}",
    )


# -- the template's transactions -------------------------------------------------------


async def test_a_committed_template_transaction_is_read_and_an_aborted_one_is_not(bootstrap):
    topic = await create_topic(bootstrap)
    _, template = transactional(bootstrap)
    async with template:
        async with template.transaction():
            await template.send(topic, "a")
            await template.send(topic, "b")
        with pytest.raises(RuntimeError, match="fails after sending"):
            await failing_transaction(template, topic, "x", "y")
        async with template.transaction():
            await template.send(topic, "c")

    committed = await get_records(bootstrap, topic, count=3, isolation_level="read_committed")
    everything = await get_records(bootstrap, topic, count=5)
    assert values(committed) == [b"a", b"b", b"c"]
    assert values(everything) == [b"a", b"b", b"x", b"y", b"c"]
    # Each transaction's marker takes an offset: a b (commit) x y (abort) c.
    assert [r.offset for r in everything] == [0, 1, 3, 4, 6]


async def test_an_open_transaction_holds_back_later_records_from_read_committed(bootstrap):
    topic = await create_topic(bootstrap)
    _, template = transactional(bootstrap)
    async with template, template.transaction():
        await (await template.send(topic, "pending"))
        await produce(bootstrap, topic, [b"plain"])  # Not transactional, but after it.
        assert values(await get_records(bootstrap, topic, count=2)) == [b"pending", b"plain"]
        with pytest.raises(WaitTimeout, match="found none"):
            await get_single_record(
                bootstrap, topic, isolation_level="read_committed", timeout=QUIET
            )
    committed = await get_records(bootstrap, topic, count=2, isolation_level="read_committed")
    assert values(committed) == [b"pending", b"plain"]


async def test_a_send_outside_a_transaction_of_a_transactional_template_fails(bootstrap):
    topic = await create_topic(bootstrap)
    _, template = transactional(bootstrap)
    async with template:
        with pytest.raises(KafkaSendError, match="this template is transactional"):
            await template.send(topic, "outside")
        async with template.transaction():
            await template.send(topic, "inside")
    records = await get_records(bootstrap, topic, count=1, isolation_level="read_committed")
    assert values(records) == [b"inside"]


async def test_a_failing_nested_block_aborts_the_outer_transaction(bootstrap):
    topic = await create_topic(bootstrap)
    _, template = transactional(bootstrap)

    async def outer():
        async with template.transaction():
            await template.send(topic, "outer")
            with contextlib.suppress(RuntimeError):
                await failing_transaction(template, topic, "inner")

    async with template:
        with pytest.raises(KafkaSendError, match="inside the transaction failed"):
            await outer()
        async with template.transaction():
            await template.send(topic, "later")
    committed = await get_records(bootstrap, topic, count=1, isolation_level="read_committed")
    assert values(committed) == [b"later"]
    assert values(await get_records(bootstrap, topic, count=3)) == [b"outer", b"inner", b"later"]


async def test_a_template_with_the_same_transactional_id_fences_the_older_one(bootstrap):
    topic = await create_topic(bootstrap)
    registry, _ = transactional(bootstrap)
    zombie = KafkaTemplate(registry.settings, transaction_id_suffix="same")
    successor = KafkaTemplate(registry.settings, transaction_id_suffix="same")
    async with zombie, successor:  # The successor started last: it fences the zombie.
        with pytest.raises(KafkaSendError, match="fences this one"):
            async with zombie.transaction():
                await zombie.send(topic, "zombie")
        # Fenced for good: its next transaction is refused with the same clear error.
        with pytest.raises(KafkaSendError, match="fences this one"):
            async with zombie.transaction():
                await zombie.send(topic, "zombie again")
        async with successor.transaction():
            await successor.send(topic, "successor")
    committed = await get_records(bootstrap, topic, count=1, isolation_level="read_committed")
    assert values(committed) == [b"successor"]


async def test_a_read_committed_listener_skips_aborted_records_and_commits_past_them(
    bootstrap,
):
    topic = await create_topic(bootstrap)
    registry, template = transactional(bootstrap)
    registry.template = None  # A plain listener, reading read_committed.
    group, seen = unique_name("reader"), []

    @registry.listener(topic, group_id=group)
    async def on_value(value: str) -> None:
        seen.append(value)

    async with template:
        async with template.transaction():
            await template.send(topic, "a")
        with pytest.raises(RuntimeError, match="fails after sending"):
            await failing_transaction(template, topic, "x")
        async with template.transaction():
            await template.send(topic, "b")
        async with registry:  # a (commit) x (abort) b (commit): offsets 0, 2 and 4.
            await committed_in_container(registry, topic, 5)
    assert seen == ["a", "b"]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(topic, 0): 5}


# -- transactional listeners: consume-process-produce ----------------------------------


async def test_a_transactional_listener_commits_its_output_with_its_offsets(bootstrap):
    source, sink = await create_topic(bootstrap, partitions=2), await create_topic(bootstrap)
    await produce(bootstrap, source, [b"1", b"2", b"3", b"4", b"5"], partitions=2)
    (registry, template), group = transactional(bootstrap), unique_name("eos")

    @registry.listener(source, group_id=group)
    async def copy(value: int) -> None:
        await template.send(sink, value * 10)

    async with template, registry:
        output = await get_records(
            bootstrap, sink, count=5, isolation_level="read_committed", timeout=20
        )
        await wait_for(
            lambda: (
                registry.containers[0].workers[0].committed
                == {TopicPartition(source, 0): 3, TopicPartition(source, 1): 2}
            ),
            timeout=20,
            message="every offset committed",
        )
    assert sorted(values(output)) == [b"10", b"20", b"30", b"40", b"50"]
    assert await committed_offsets(bootstrap, group) == {
        TopicPartition(source, 0): 3,
        TopicPartition(source, 1): 2,
    }


async def test_a_transactional_listener_that_fails_after_sending_aborts_that_output(bootstrap):
    source, sink = await create_topic(bootstrap), await create_topic(bootstrap)
    await produce(bootstrap, source, [b"1", b"2", b"3"])
    (registry, template), group, failed = transactional(bootstrap), unique_name("eos-fail"), []

    @registry.listener(source, group_id=group)
    async def copy(value: int) -> None:
        await template.send(sink, value * 10)
        if value == 2 and not failed:
            failed.append(value)  # Its send aborts with the record, which is retried.
            raise RuntimeError("fail after sending")

    async with template, registry:
        output = await get_records(
            bootstrap, sink, count=3, isolation_level="read_committed", timeout=20
        )
        await committed_in_container(registry, source, 3)
    assert failed == [2]
    assert values(output) == [b"10", b"20", b"30"]  # Each once: the failed try is not there.
    everything = await get_records(bootstrap, sink, count=4)
    assert values(everything) == [b"10", b"20", b"20", b"30"]  # The aborted send was written.
    # A transaction per record: each record is followed by its commit or abort marker.
    assert [r.offset for r in everything] == [0, 2, 4, 6]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(source, 0): 3}


async def test_a_record_that_always_fails_after_sending_leaves_no_committed_output(bootstrap):
    source, sink = await create_topic(bootstrap), await create_topic(bootstrap)
    await produce(bootstrap, source, [b"7"])
    attempts = {"listener": {"error-handler": {"backoff": {"max-attempts": 3}}}}
    (registry, template), group = transactional(bootstrap, **attempts), unique_name("poison")
    tries = []

    @registry.listener(source, group_id=group)
    async def copy(value: int) -> None:
        await template.send(sink, value * 10)
        tries.append(value)
        raise RuntimeError("always fails after sending")

    async with template, registry:
        # Three tries, then the error handler recovers the record (logs it) and its offset
        # commits in a transaction of its own.
        await committed_in_container(registry, source, 1)
    assert tries == [7, 7, 7]
    await produce(bootstrap, sink, [b"after"])
    # A reader that got one record reads on to the end: it would see a committed 70 too.
    committed = await get_records(bootstrap, sink, count=1, isolation_level="read_committed")
    assert values(committed) == [b"after"]
    assert values(await get_records(bootstrap, sink, count=4)) == [b"70"] * 3 + [b"after"]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(source, 0): 1}


async def test_send_to_in_a_transactional_listener_commits_the_results_with_the_offsets(
    bootstrap,
):
    source, sink = await create_topic(bootstrap), await create_topic(bootstrap)
    await produce(bootstrap, source, [b"1", b"2"])
    (registry, template), group, failed = transactional(bootstrap), unique_name("eos-to"), []

    @registry.listener(source, group_id=group)
    @send_to(sink)
    async def twice(value: int):
        if value == 2 and not failed:
            failed.append(value)
            raise RuntimeError("fails before its results are sent")
        return [value, value * 2]

    async with template, registry:
        output = await get_records(
            bootstrap, sink, count=4, isolation_level="read_committed", timeout=20
        )
        await committed_in_container(registry, source, 2)
    assert failed == [2]
    assert values(output) == [b"1", b"2", b"2", b"4"]
    assert await committed_offsets(bootstrap, group) == {TopicPartition(source, 0): 2}


# -- @send_to --------------------------------------------------------------------------


async def test_send_to_sends_each_result_keyed_like_the_incoming_record(bootstrap):
    lines, words = await create_topic(bootstrap), await create_topic(bootstrap)
    await produce(bootstrap, lines, [b"the quick fox", b"jumps"], key=b"doc-1")
    await produce(bootstrap, lines, [b"-", b"one"], key=b"doc-2")
    registry, template = with_template(registry_for(bootstrap))
    group = unique_name("split")

    @registry.listener(lines, group_id=group)
    @send_to(words)
    async def split(line: str):
        if line == "-":
            return None  # Sends nothing.
        if line == "one":
            return line  # One value: one record.
        return line.split()  # A list: one record per element.

    async with template, registry:
        records = await get_records(bootstrap, words, count=5, timeout=20)
        await committed_in_container(registry, lines, 4)
    assert [(r.key, r.value) for r in records] == [
        (b"doc-1", b"the"),
        (b"doc-1", b"quick"),
        (b"doc-1", b"fox"),
        (b"doc-1", b"jumps"),
        (b"doc-2", b"one"),
    ]
    assert [list(r.headers) for r in records] == [[]] * 5  # A named topic: no reply headers.
    assert await committed_offsets(bootstrap, group) == {TopicPartition(lines, 0): 4}


async def test_send_to_an_async_generator_sends_each_yielded_value(bootstrap):
    lines, words = await create_topic(bootstrap), await create_topic(bootstrap)
    await produce(bootstrap, lines, [b"a b c"], key=b"k")
    registry, template = with_template(registry_for(bootstrap))

    @registry.listener(lines, group_id=unique_name("gen"))
    @send_to(words)
    async def split(line: str):
        for word in line.split():
            yield word.upper()

    async with template, registry:
        records = await get_records(bootstrap, words, count=3, timeout=20)
    assert [(r.key, r.value) for r in records] == [(b"k", b"A"), (b"k", b"B"), (b"k", b"C")]


# -- request/reply ---------------------------------------------------------------------


async def test_a_request_is_answered_by_a_send_to_listener_and_the_reply_correlated(bootstrap):
    requests, replies = await create_topic(bootstrap), await create_topic(bootstrap)
    registry, template = with_template(registry_for(bootstrap))
    seen = []

    @registry.listener(requests, group_id=unique_name("replier"))
    @send_to()  # To the request's reply topic.
    async def double(
        number: int, key: Annotated[str | None, Key], headers: Annotated[dict[str, bytes], Headers]
    ) -> int:
        seen.append((key, headers))
        return number * 2

    async with template, registry, ReplyingKafkaTemplate(template, replies) as replying:
        await wait_for_assignment(registry, timeout=20)
        first = await replying.send_and_receive(requests, 21, key="k", timeout=REPLY_WAIT)
        more = [await replying.send_and_receive(requests, n, timeout=REPLY_WAIT) for n in (1, 2)]
    answers = [first, *more]
    assert [(a.topic, a.key, a.value) for a in answers] == [
        (replies, b"k", b"42"),
        (replies, None, b"2"),
        (replies, None, b"4"),
    ]
    assert [[name for name, _ in a.headers] for a in answers] == [[CORRELATION_ID_HEADER]] * 3
    sent = [h[CORRELATION_ID_HEADER] for _, h in seen]
    assert len(set(sent)) == 3  # Each request its own id, and each reply echoes its own.
    assert [dict(a.headers)[CORRELATION_ID_HEADER] for a in answers] == sent
    assert [(k, h[REPLY_TOPIC_HEADER]) for k, h in seen] == [
        ("k", replies.encode()),
        (None, replies.encode()),
        (None, replies.encode()),
    ]


async def test_concurrent_requests_over_several_partitions_each_get_their_own_reply(
    bootstrap,
):
    requests = await create_topic(bootstrap, partitions=3)
    replies = await create_topic(bootstrap, partitions=3)
    registry, template = with_template(registry_for(bootstrap))
    request_partitions = {}

    @registry.listener(requests, group_id=unique_name("replier"))
    @send_to()
    async def square(number: int, partition: Annotated[int, Partition]) -> str:
        request_partitions[number] = partition
        return f"{number}^2={number * number}"

    async with template, registry, ReplyingKafkaTemplate(template, replies) as replying:
        await wait_for_assignment(registry, partitions=3, timeout=20)
        answers = await asyncio.gather(
            *(
                replying.send_and_receive(requests, n, key=f"key-{n}", timeout=REPLY_WAIT)
                for n in range(12)
            )
        )
    assert [(a.key, a.value) for a in answers] == [
        (f"key-{n}".encode(), f"{n}^2={n * n}".encode()) for n in range(12)
    ]
    # Keyed like its request, each reply lands on the partition of the same number.
    assert [a.partition for a in answers] == [request_partitions[n] for n in range(12)]
    assert len({a.partition for a in answers}) > 1


async def test_a_request_nobody_answers_times_out_with_reply_timeout_error(bootstrap):
    unheard, replies = await create_topic(bootstrap), await create_topic(bootstrap)
    _, template = with_template(registry_for(bootstrap))
    async with template, ReplyingKafkaTemplate(template, replies) as replying:
        with pytest.raises(ReplyTimeoutError, match="no reply") as caught:
            await replying.send_and_receive(unheard, 1, timeout=timedelta(seconds=0.3))
    assert isinstance(caught.value, TimeoutError)
    request = await get_single_record(bootstrap, unheard)  # The request was sent all the same.
    assert request.value == b"1"
    assert dict(request.headers)[REPLY_TOPIC_HEADER] == replies.encode()
    assert len(dict(request.headers)[CORRELATION_ID_HEADER]) == 16
