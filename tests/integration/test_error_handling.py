"""Blocking retries with back-off, dead-letter topics and batch failures on a real broker."""

import asyncio
import contextlib
import itertools
import struct
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

from kafkaboot import (
    BatchListenerFailedError,
    ConsumerRecord,
    DefaultErrorHandler,
    ErrorAction,
    FixedBackOff,
    ListenerRegistry,
    RebalanceListener,
    load_settings,
)
from kafkaboot.cli import main as cli_main
from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import (
    committed,
    create_topic,
    produce,
    read_all,
    registry_for,
    unique,
    wait_for,
)

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    id: int
    item: str


def settings_for(bootstrap, **kafka):
    kafka.setdefault("consumer", {}).setdefault("auto-offset-reset", "earliest")
    kafka["bootstrap-servers"] = bootstrap
    return load_settings(environ={}, overrides={"kafka": kafka})


async def test_a_transient_failure_succeeds_on_the_third_attempt_after_the_backoff(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"flaky"])
    handler = DefaultErrorHandler(FixedBackOff(0.4, max_attempts=5))
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    deliveries = []

    @registry.listener(topic, group_id=unique("g"))
    async def on_value(value: str) -> None:
        deliveries.append(time.monotonic())
        if len(deliveries) < 3:
            raise ConnectionError("database briefly away")

    async with registry:
        await wait_for(lambda: len(deliveries) == 3, message="third delivery")
        await asyncio.sleep(0.5)
    gaps = [b - a for a, b in itertools.pairwise(deliveries)]
    assert len(deliveries) == 3
    assert all(0.4 <= gap < 1.5 for gap in gaps), gaps


async def produce_to(bootstrap, topic, partition, values, **options):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition, **options)
    finally:
        await producer.stop()


async def test_other_partitions_keep_flowing_while_one_backs_off(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    handler = DefaultErrorHandler(FixedBackOff(3.0, max_attempts=2))
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    seen = []

    @registry.listener(topic, group_id=unique("g"))
    async def on_record(record: ConsumerRecord[str, str]) -> None:
        seen.append((record.partition, record.value, time.monotonic()))
        if [v for _, v, _ in seen] == ["poison-once"]:
            raise RuntimeError("the first delivery fails")

    async with registry:
        await produce_to(kafka_bootstrap, topic, 0, [b"poison-once", b"after-it"])
        await wait_for(lambda: seen, message="the failing record")
        failed_at = seen[0][2]
        await produce_to(kafka_bootstrap, topic, 1, [b"p1-a", b"p1-b"])
        await wait_for(lambda: sum(p == 1 for p, _, _ in seen) == 2, message="partition 1")
        partition1_done = time.monotonic()
        await wait_for(lambda: len(seen) == 5, timeout=10, message="the retry and the rest")
    assert partition1_done - failed_at < 3.0  # Partition 1 did not wait for the back-off.
    partition0 = [(v, t) for p, v, t in seen if p == 0]
    assert [v for v, _ in partition0] == ["poison-once", "poison-once", "after-it"]
    assert partition0[1][1] - failed_at >= 3.0


class CountingRebalances(RebalanceListener):
    def __init__(self):
        self.assigned = 0
        self.revoked = 0

    def on_partitions_assigned(self, partitions, consumer):
        self.assigned += 1

    def on_partitions_revoked(self, partitions, consumer):
        self.revoked += 1


@pytest.mark.slow
async def test_a_backoff_longer_than_max_poll_interval_causes_no_rebalance(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"slow-to-succeed"])
    handler = DefaultErrorHandler(FixedBackOff(4.0, max_attempts=2))
    registry = registry_for(
        kafka_bootstrap, error_handler=handler, consumer={"max-poll-interval": "2s"}
    )
    rebalances = CountingRebalances()
    deliveries = []

    @registry.listener(topic, group_id=unique("g"), rebalance_listener=rebalances)
    async def on_value(value: str) -> None:
        deliveries.append(time.monotonic())
        if len(deliveries) == 1:
            raise RuntimeError("fails once")

    async with registry:
        await wait_for(lambda: len(deliveries) == 2, timeout=15, message="the retry")
    assert deliveries[1] - deliveries[0] >= 4.0
    assert (rebalances.assigned, rebalances.revoked) == (1, 0)


async def test_stop_during_a_backoff_is_prompt_and_leaves_the_record_uncommitted(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"ok", b"fails"])
    group = unique("g")
    handler = DefaultErrorHandler(FixedBackOff(60.0, max_attempts=3))
    registry = registry_for(kafka_bootstrap, error_handler=handler)
    seen = []

    @registry.listener(topic, group_id=group)
    async def on_value(value: str) -> None:
        seen.append(value)
        if value == "fails":
            raise RuntimeError("always")

    await registry.start()
    await wait_for(lambda: "fails" in seen, message="the failure")
    started = time.monotonic()
    await registry.stop()
    assert time.monotonic() - started < 2.0
    assert seen == ["ok", "fails"]
    assert await committed(kafka_bootstrap, group, topic) == {0: 1}


@contextlib.asynccontextmanager
async def registry_with_template(bootstrap, **kafka):
    settings = settings_for(bootstrap, **kafka)
    template = KafkaTemplate(settings)
    await template.start()
    try:
        yield ListenerRegistry(settings, environ={}, template=template)
    finally:
        await template.stop()


DEAD_LETTERS = {"listener": {"error-handler": {"dead-letter": {"enabled": True}}}}


async def test_poison_records_land_in_the_dlt_with_raw_bytes_and_headers(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("g")
    poison = [b"{not json", b'{"id": "seven", "item": 3}']
    handled = []
    async with registry_with_template(kafka_bootstrap, **DEAD_LETTERS) as registry:

        @registry.listener(topic, group_id=group)
        async def on_order(order: Order) -> None:
            handled.append(order.id)

        for value in poison:
            await produce_to(kafka_bootstrap, topic, 1, [value], key=b"k", headers=[("t", b"1")])
        await produce_to(kafka_bootstrap, topic, 1, [b'{"id": 3, "item": "tea"}'])
        async with registry:
            await wait_for(lambda: handled == [3], message="the good record after the poison")
            await asyncio.sleep(0.2)  # The commit after the batch.
        assert await committed(kafka_bootstrap, group, topic, 2) == {0: None, 1: 3}
    letters = [DeadLetterRecord(r) for r in await read_all(kafka_bootstrap, f"{topic}-dlt", 2)]
    assert [letter.record.value for letter in letters] == poison  # Untouched bytes.
    for offset, letter in enumerate(letters):
        record = letter.record
        assert (record.partition, record.key) == (1, b"k")  # Same partition, same key.
        assert (letter.original_topic, letter.original_partition) == (topic, 1)
        assert letter.original_offset == offset
        assert letter.original_consumer_group == group
        assert letter.original_headers == [("t", b"1")]
        # As Spring's ErrorHandlingDeserializer reports it; the cause is the Python error.
        assert letter.exception_fqcn == (
            "org.springframework.kafka.support.serializer.DeserializationException"
        )
        assert letter.exception_cause_fqcn == "kafkaboot.errors.DeserializationError"
    assert "Invalid JSON" in letters[0].exception_message
    assert "id" in letters[1].exception_message
    stamps = dict(letters[0].record.headers)
    assert struct.unpack(">i", stamps["kafka_dlt-original-partition"]) == (1,)
    assert b"Traceback" in stamps["kafka_dlt-exception-stacktrace"]


async def test_a_dlt_that_cannot_be_written_leaves_the_record_uncommitted(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    # The broker refuses every dead letter: the headers alone are over 200 bytes.
    await admin.create_topics(
        [NewTopic(f"{topic}-dlt", 1, 1, topic_configs={"max.message.bytes": "200"})]
    )
    await admin.close()
    await produce(kafka_bootstrap, topic, [b"ok", b"fails", b"never-reached"])
    group = unique("g")
    seen = []
    no_retries = {"backoff": {"max-attempts": 1}, "dead-letter": {"enabled": True}}
    kafka = {"listener": {"error-handler": no_retries}}
    async with registry_with_template(kafka_bootstrap, **kafka) as registry:

        @registry.listener(topic, group_id=group, id="stuck")
        async def on_value(value: str) -> None:
            seen.append(value)
            if value == "fails":
                raise RuntimeError("always")

        await registry.start()
        container = registry.get("stuck")
        await wait_for(lambda: container.failure is not None, timeout=20, message="the stop")
        await wait_for(lambda: not container.is_running, message="stopped")
        await registry.stop()
    assert "could not recover record" in container.failure
    assert "never-reached" not in seen
    assert seen.count("fails") == 3  # One delivery per recovery try, then the stop.
    assert await committed(kafka_bootstrap, group, topic) == {0: 1}
    assert await read_all(kafka_bootstrap, f"{topic}-dlt", 1, wait=1.0) == []


async def test_batch_failure_at_index_5_commits_records_0_to_4(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [str(n).encode() for n in range(10)])
    group = unique("g")
    stop_at_failure = StopAtFailure()
    registry = registry_for(kafka_bootstrap, error_handler=stop_at_failure)
    batches = []

    @registry.listener(topic, group_id=group, id="batch", batch=True)
    async def on_batch(values: list[str]) -> None:
        batches.append(values)
        raise BatchListenerFailedError("record 5 is bad", index=values.index("5"))

    await registry.start()
    await wait_for(lambda: stop_at_failure.failures, message="the failure")
    await wait_for(lambda: not registry.get("batch").is_running, message="the stop")
    await registry.stop()
    assert batches[0][:6] == ["0", "1", "2", "3", "4", "5"]
    assert stop_at_failure.failures == [(5, "BatchListenerFailedError")]
    assert await committed(kafka_bootstrap, group, topic) == {0: 5}


class StopAtFailure:
    def __init__(self):
        self.failures = []

    def handle(self, failure):
        self.failures.append((failure.record.offset, type(failure.error).__name__))
        return ErrorAction.stop_container("stop here")


async def test_batch_failure_retries_the_failed_record_and_redelivers_the_rest(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [str(n).encode() for n in range(10)])
    registry = registry_for(
        kafka_bootstrap, error_handler=DefaultErrorHandler(FixedBackOff(0.2, max_attempts=3))
    )
    batches = []

    @registry.listener(topic, group_id=unique("g"), batch=True)
    async def on_batch(values: list[str]) -> None:
        batches.append(values)
        if len(batches) == 1:
            raise BatchListenerFailedError(index=5) from ValueError("bad record")

    async with registry:
        await wait_for(lambda: sum(map(len, batches)) >= 15, message="the redelivery")
    assert batches[0] == [str(n) for n in range(10)]
    assert [v for b in batches[1:] for v in b] == [str(n) for n in range(5, 10)]


async def test_a_whole_batch_failure_retries_then_dead_letters_every_record(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    group = unique("g")
    calls = []
    kafka = {
        "listener": {
            "error-handler": {
                "backoff": {"initial": "100ms", "max-attempts": 2},
                "dead-letter": {"enabled": True, "topic-suffix": ".DLT"},
            }
        }
    }
    async with registry_with_template(kafka_bootstrap, **kafka) as registry:

        @registry.listener(topic, group_id=group, batch=True)
        async def on_batch(values: list[str]) -> None:
            calls.append(values)
            raise RuntimeError("the whole batch fails")

        async with registry:
            letters = await read_all(kafka_bootstrap, f"{topic}.DLT", 3)
            await asyncio.sleep(0.2)
    assert calls == [["a", "b", "c"], ["a", "b", "c"]]
    assert [r.value for r in letters] == [b"a", b"b", b"c"]
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}


async def test_dlt_replay_republishes_dead_letters_to_their_original_topic(
    kafka_bootstrap, monkeypatch, tmp_path, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    topic = await create_topic(kafka_bootstrap, partitions=2)
    no_retries = {"backoff": {"max-attempts": 1}, "dead-letter": {"enabled": True}}
    handled = []
    fixed = False
    async with registry_with_template(
        kafka_bootstrap, listener={"error-handler": no_retries}
    ) as registry:

        @registry.listener(topic, group_id=unique("g"))
        async def on_record(record: ConsumerRecord[str, str]) -> None:
            if record.value.startswith("bad") and not fixed:
                raise RuntimeError("a bug, fixed later")
            handled.append((record.partition, record.value, dict(record.headers)))

        await produce_to(kafka_bootstrap, topic, 1, [b"bad-1", b"bad-2"], headers=[("t", b"1")])
        await produce_to(kafka_bootstrap, topic, 0, [b"bad-3", b"good"])
        async with registry:
            await wait_for(lambda: len(handled) == 1, message="the good record")
            await read_all(kafka_bootstrap, f"{topic}-dlt", 3)  # All three dead-lettered.
            fixed = True

            dry = await asyncio.to_thread(cli_main, ["dlt", "replay", f"{topic}-dlt", "--dry-run"])
            assert dry == 0
            assert f"would re-publish 3 dead letter(s) from {topic}-dlt to {topic}" in (
                capsys.readouterr().out
            )
            assert await asyncio.to_thread(cli_main, ["dlt", "replay", f"{topic}-dlt"]) == 0
            await wait_for(lambda: len(handled) == 4, message="the replayed records")
    out = capsys.readouterr().out
    assert f"re-published 3 dead letter(s) from {topic}-dlt to {topic}" in out
    assert "next offsets per partition (for --from-offset): 0: 1, 1: 2" in out
    replayed = {value: (partition, headers) for partition, value, headers in handled[1:]}
    assert replayed["bad-1"][0] == replayed["bad-2"][0] == 1  # Back on their partition.
    assert replayed["bad-3"][0] == 0
    assert replayed["bad-1"][1]["t"] == b"1"  # Original headers, without kafka_dlt-*.
    assert not any(name.startswith("kafka_dlt-") for name in replayed["bad-1"][1])
    assert replayed["bad-2"][1]["kafkaboot_replayed-from"] == f"{topic}-dlt-1@1".encode()


async def test_dlt_replay_to_another_topic_with_offset_and_limit(
    kafka_bootstrap, monkeypatch, tmp_path, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    dlt, target = await create_topic(kafka_bootstrap), await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, dlt, [b"0", b"1", b"2", b"3", b"4"])  # No kafka_dlt headers.
    code = await asyncio.to_thread(
        cli_main, ["dlt", "replay", dlt, "--to", target, "--from-offset", "1", "--limit", "3"]
    )
    assert code == 0
    assert [r.value for r in await read_all(kafka_bootstrap, target, 3)] == [b"1", b"2", b"3"]
    assert "next offsets per partition (for --from-offset): 0: 4" in capsys.readouterr().out

    assert await asyncio.to_thread(cli_main, ["dlt", "replay", dlt, "--limit", "1"]) == 1
    assert "name no original topic" in capsys.readouterr().out
    assert await asyncio.to_thread(cli_main, ["dlt", "replay", unique("missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


async def test_dlt_replay_sends_retry_chain_dead_letters_back_to_the_main_topic(
    kafka_bootstrap, monkeypatch, tmp_path, capsys
):
    # The end of a @RetryableTopic chain (Spring's or kafkaboot's): only kafka_original-*,
    # kafka_exception-* and retry_topic-* headers, no kafka_dlt-original-*.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    main = await create_topic(kafka_bootstrap, partitions=2)
    dlt = await create_topic(kafka_bootstrap)
    chain = [
        ("t", b"1"),
        ("kafka_original-topic", main.encode()),
        ("kafka_original-partition", struct.pack(">i", 1)),
        ("kafka_original-offset", struct.pack(">q", 41)),
        ("kafka_original-timestamp", struct.pack(">q", 1_700_000_000_000)),
        ("kafka_original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-original-consumer-group", b"billing"),
        ("retry_topic-original-timestamp", b"\x01\x8b\xcf\xe5h\x00"),
        ("retry_topic-attempts", struct.pack(">i", 4)),
        ("retry_topic-backoff-timestamp", b"\x01\x8b\xcf\xe5h\x00"),
        (
            "kafka_exception-fqcn",
            b"org.springframework.kafka.listener.ListenerExecutionFailedException",
        ),
        ("kafka_exception-cause-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_exception-message", b"Listener failed; boom"),
        ("kafka_exception-stacktrace", b"..."),
    ]
    await produce(kafka_bootstrap, dlt, [b"order-41"], key=b"k", headers=chain)
    assert await asyncio.to_thread(cli_main, ["dlt", "replay", dlt]) == 0
    assert f"re-published 1 dead letter(s) from {dlt} to {main}" in capsys.readouterr().out
    [replayed] = await read_all(kafka_bootstrap, main, 1)
    assert (replayed.partition, replayed.key, replayed.value) == (1, b"k", b"order-41")
    assert replayed.headers == (("t", b"1"), ("kafkaboot_replayed-from", f"{dlt}-0@0".encode()))


async def test_a_failed_transactional_batch_dead_letters_every_record(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    group = unique("g")
    kafka = {
        "producer": {"transaction-id-prefix": unique("tx-")},
        "consumer": {"isolation-level": "read_committed"},
        "listener": {
            "error-handler": {"backoff": {"max-attempts": 1}, "dead-letter": {"enabled": True}}
        },
    }
    async with registry_with_template(kafka_bootstrap, **kafka) as registry:

        @registry.listener(topic, group_id=group, batch=True)
        async def on_batch(values: list[str]) -> None:
            raise RuntimeError("the whole batch fails")

        async with registry:
            letters = await read_all(
                kafka_bootstrap, f"{topic}-dlt", 3, isolation_level="read_committed"
            )
            await wait_for(lambda: True)
            for _ in range(50):
                if (await committed(kafka_bootstrap, group, topic)) == {0: 3}:
                    break
                await asyncio.sleep(0.1)
    assert [r.value for r in letters] == [b"a", b"b", b"c"]
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}
