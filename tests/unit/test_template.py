"""KafkaTemplate without a broker: which transactional id it takes, how headers encode."""

import asyncio
import socket
import time

import pytest

import kafkaboot.runner as runner
from kafkaboot import load_settings
from kafkaboot.errors import KafkaSendError, SerializationError
from kafkaboot.serialization import encode_headers
from kafkaboot.template import KafkaTemplate


def transactional_id(environ=None, **producer):
    producer.setdefault("transaction-id-prefix", "tx-")
    settings = load_settings(environ={}, overrides={"kafka": {"producer": producer}})
    template = KafkaTemplate(settings)
    return template.transactional_id


def test_the_transactional_id_is_prefix_host_and_worker_index(monkeypatch):
    monkeypatch.setenv("KAFKABOOT_WORKER_INDEX", "2")
    assert transactional_id() == f"tx-{socket.gethostname()}-2"
    monkeypatch.delenv("KAFKABOOT_WORKER_INDEX")
    assert transactional_id() == f"tx-{socket.gethostname()}-0"


def test_a_configured_suffix_replaces_host_and_worker_index(monkeypatch):
    monkeypatch.setenv("KAFKABOOT_WORKER_INDEX", "2")
    assert transactional_id(**{"transaction-id-suffix": "site-7"}) == "tx-site-7"


class Child:
    def __init__(self, env):
        self.env = env

    def wait(self):
        return 0

    def poll(self):
        return 0


def test_each_worker_process_gets_its_own_index(monkeypatch):
    started = []

    def popen(command, env):
        started.append(env)
        return Child(env)

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    assert runner._supervise(["svc"], 3) == 0
    assert [env["KAFKABOOT_WORKER_INDEX"] for env in started] == ["0", "1", "2"]


def test_a_header_with_a_lone_surrogate_is_a_serialization_error():
    with pytest.raises(SerializationError, match="header 'instance-id'"):
        encode_headers({"instance-id": "site-\udfff"})


class BlockedProducer:
    """aiokafka's send() can wait inside itself — for topic metadata, or for a full batch
    of the partition to drain — up to its request timeout (40 s), before the record is
    queued at all."""

    def __init__(self):
        self.entered = asyncio.Event()

    async def send(self, topic, value, key=None, partition=None, timestamp_ms=None, headers=None):
        self.entered.set()
        await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_a_send_blocked_inside_the_producer_fails_within_the_delivery_timeout():
    template = KafkaTemplate(load_settings(environ={}))
    template._producer = BlockedProducer()
    template.delivery_timeout = 0.3
    template._deliveries.start()
    try:
        started = time.monotonic()
        with pytest.raises(KafkaSendError, match="not queued within the delivery timeout"):
            await asyncio.wait_for(template.send_and_wait("events", "v", key="k"), 5)
        assert time.monotonic() - started < 2.0
    finally:
        await template._deliveries.stop()


@pytest.mark.asyncio
async def test_a_cancelled_send_still_raises_cancelled_error():
    """Only the template's own deadline turns into KafkaSendError; a caller's cancellation
    stays a cancellation."""
    template = KafkaTemplate(load_settings(environ={}))
    producer = template._producer = BlockedProducer()
    template.delivery_timeout = 30
    template._deliveries.start()
    try:
        sending = asyncio.create_task(template.send("events", "v", key="k"))
        await producer.entered.wait()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert not template._deliveries.enqueuing
    finally:
        await template._deliveries.stop()


class RecordingProducer:
    """Stands in for aiokafka's producer: takes each send and settles it when told."""

    def __init__(self):
        self.sent = []

    async def send(
        self, topic, value=None, key=None, partition=None, timestamp_ms=None, headers=None
    ):
        delivery = asyncio.get_running_loop().create_future()
        self.sent.append((topic, value, key, headers, delivery))
        return delivery

    def settle(self):
        from aiokafka.structs import RecordMetadata, TopicPartition

        for offset, (topic, *_, delivery) in enumerate(self.sent):
            if not delivery.done():
                metadata = RecordMetadata(topic, 0, TopicPartition(topic, 0), offset, 7, 0, None)
                delivery.set_result(metadata)


def started_template(**producer):
    template = KafkaTemplate(load_settings(environ={}, overrides={"kafka": {"producer": producer}}))
    template._producer = RecordingProducer()
    return template


@pytest.mark.asyncio
async def test_type_headers_follow_a_serializer_set_after_the_template_was_made():
    from kafkaboot.serialization import JsonSerializer
    from tests.json_models import Order

    template = started_template()
    await template.send("orders", Order(id=1))
    template.value_serializer = JsonSerializer()
    await template.send("orders", Order(id=2))
    first, second = template._producer.sent
    assert first[3] is None
    assert second[3] == [("__TypeId__", b"tests.json_models.Order")]


def test_only_a_serializer_that_has_type_headers_on_writes_them():
    from kafkaboot.serialization import (
        AutoSerializer,
        JsonSerializer,
        StringSerializer,
        configured,
        writes_type_headers,
    )

    assert not writes_type_headers(AutoSerializer())
    on = configured(AutoSerializer(), {"spring.json.add.type.headers": "true"}, False)
    assert writes_type_headers(on)
    assert writes_type_headers(JsonSerializer())
    assert not writes_type_headers(JsonSerializer(add_type_headers=False))
    assert not writes_type_headers(StringSerializer())


@pytest.mark.asyncio
async def test_outcomes_are_told_outside_the_senders_context_as_kafka_does():
    # Kafka calls producer listeners and interceptors' onAcknowledgement on its I/O thread;
    # kafkaboot tells them in a context of their own, not a copy of each sender's.
    import contextvars

    request = contextvars.ContextVar("request", default=None)
    heard = []

    class Listener:
        def on_success(self, record, result):
            heard.append((record.value, result.offset, request.get()))

        def on_error(self, record, error):
            raise AssertionError(error)

    template = started_template()
    template.producer_listener = Listener()
    request.set("r-1")
    result = await template.send("orders", "a")
    template._producer.settle()
    assert (await result).offset == 0
    assert heard == [("a", 0, None)]


@pytest.mark.asyncio
async def test_a_silent_default_listener_is_not_called_but_a_custom_one_is():
    from kafkaboot.template import LoggingProducerListener

    class Counting(LoggingProducerListener):
        calls = 0

        def on_success(self, record, result):
            Counting.calls += 1

    template = started_template()
    assert template._deliveries.on_success is None
    template.producer_listener = Counting()
    futures = [await template.send("t", str(i)) for i in range(3)]
    template._producer.settle()
    await asyncio.gather(*futures)
    assert Counting.calls == 3


class WaitingProducer(RecordingProducer):
    """aiokafka's send() waits inside itself at times (for topic metadata, for room in a
    full batch) before it queues the record: this one waits until told, then queues it."""

    def __init__(self):
        super().__init__()
        self.room = None
        self.cleaned_up = False

    async def send(self, topic, value=None, key=None, partition=None, **kwargs):
        self.room = asyncio.get_running_loop().create_future()
        try:
            if await self.room != "room":
                raise AssertionError("the producer was not handed the value it waited for")
        finally:
            self.cleaned_up = True
        return await super().send(topic, value, key, partition, **kwargs)


@pytest.mark.asyncio
async def test_a_send_that_waits_inside_the_producer_is_queued_once_the_wait_ends():
    template = started_template()
    producer = template._producer = WaitingProducer()
    sending = asyncio.create_task(template.send("events", "v", key="k"))
    while producer.room is None:
        await asyncio.sleep(0)
    assert list(template._deliveries.enqueuing) == [sending]  # The sweeper can end the wait.
    producer.room.set_result("room")
    result = await sending
    assert not template._deliveries.enqueuing
    producer.settle()
    assert (await result).offset == 0
    assert producer.cleaned_up


@pytest.mark.asyncio
async def test_a_send_that_is_queued_at_once_leaves_nothing_registered_for_the_sweeper():
    template = started_template()
    result = await template.send("events", "v", key="k")
    assert not template._deliveries.enqueuing
    template._producer.settle()
    await result


@pytest.mark.asyncio
async def test_a_producer_error_after_a_wait_inside_it_is_a_send_error():
    from aiokafka.errors import KafkaTimeoutError

    class Failing(WaitingProducer):
        async def send(self, topic, value=None, key=None, partition=None, **kwargs):
            await asyncio.sleep(0)
            raise KafkaTimeoutError()

    template = started_template()
    template._producer = Failing()
    with pytest.raises(KafkaSendError, match="was not queued") as failure:
        await template.send("events", "v", key="k")
    assert failure.value.retriable
    assert not template._deliveries.enqueuing


@pytest.mark.asyncio
async def test_a_caller_cancelling_a_send_that_waits_inside_the_producer_stops_that_wait():
    template = started_template()
    producer = template._producer = WaitingProducer()
    sending = asyncio.create_task(template.send("events", "v", key="k"))
    while producer.room is None:
        await asyncio.sleep(0)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert producer.cleaned_up  # The cancellation reached the producer's own wait.
    assert producer.room.cancelled()
    assert not producer.sent
    assert not template._deliveries.enqueuing


@pytest.mark.asyncio
async def test_a_confirmed_send_results_in_a_send_result_naming_its_record():
    from kafkaboot.template import ProducerRecord, SendResult

    template = started_template()
    result = await template.send("events", "v", key="k", headers={"h": "1"})
    template._producer.settle()
    sent = await result
    assert type(sent) is SendResult
    assert sent == SendResult(
        ProducerRecord("events", "v", "k", headers={"h": "1"}), "events", 0, 0, 7, 2
    )
    assert sent.serialized_size == 2
    assert sent.record.headers == {"h": "1"}
