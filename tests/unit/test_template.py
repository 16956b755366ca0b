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
