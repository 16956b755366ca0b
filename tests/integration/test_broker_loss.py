"""When the broker is gone: sends fail within the delivery timeout and stops stay bounded."""

import asyncio
import time

import pytest

from kafkaboot import errors, load_settings
from kafkaboot.errors import KafkaBootError, KafkaSendError
from kafkaboot.template import KafkaTemplate
from kafkaboot.testing import KafkaCluster, free_ports

from .kafka_helpers import create_topic, produce, read_all, registry_for, unique, wait_for


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.asyncio
async def test_stop_is_bounded_when_the_broker_is_gone(tmp_path):
    cluster = KafkaCluster(tmp_path / "kafka", nodes=1)
    await asyncio.to_thread(cluster.start)
    try:
        bootstrap = cluster.bootstrap_servers
        topic = await create_topic(bootstrap)
        await produce(bootstrap, topic, [b"a"])
        registry = registry_for(bootstrap, listener={"shutdown-timeout": "2s"})
        seen = []

        @registry.listener(topic, group_id=unique("gone"))
        async def on_value(value: str) -> None:
            seen.append(value)

        await registry.start()
        await wait_for(lambda: seen == ["a"], message="one record")
        await asyncio.to_thread(cluster.kill_node, 1)
        started = time.monotonic()
        await asyncio.wait_for(registry.stop(), timeout=60)
        assert time.monotonic() - started < 20
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.mark.asyncio
async def test_template_start_against_no_broker_fails_clearly_and_fast():
    [port] = free_ports(1)
    settings = load_settings(
        environ={}, overrides={"kafka": {"bootstrap-servers": f"127.0.0.1:{port}"}}
    )
    started = time.monotonic()
    with pytest.raises(KafkaBootError, match=rf"cannot reach Kafka at 127\.0\.0\.1:{port}"):
        await KafkaTemplate(settings).start()
    assert time.monotonic() - started < 10


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.asyncio
async def test_send_fails_within_the_delivery_timeout_when_the_broker_dies(tmp_path):
    cluster = KafkaCluster(tmp_path / "kafka", nodes=1)
    await asyncio.to_thread(cluster.start)
    try:
        settings = load_settings(
            environ={},
            overrides={
                "kafka": {
                    "bootstrap-servers": cluster.bootstrap_servers,
                    "producer": {"delivery-timeout": "3s"},
                }
            },
        )
        template = KafkaTemplate(settings)
        await template.start()
        topic = await create_topic(cluster.bootstrap_servers)
        await template.send_and_wait(topic, "before")
        await asyncio.to_thread(cluster.kill_node, 1)

        started = time.monotonic()
        with pytest.raises(KafkaSendError) as excinfo:
            await asyncio.wait_for(template.send_and_wait(topic, "after", key="k-1"), 30)
        assert time.monotonic() - started < 15
        assert excinfo.value.topic == topic
        assert excinfo.value.key == "k-1"
        assert topic in str(excinfo.value)

        started = time.monotonic()
        await template.stop(timeout=5)
        assert time.monotonic() - started < 8
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.asyncio
async def test_a_send_the_broker_may_still_write_says_so_and_later_sends_are_refused_fast(
    tmp_path,
):
    cluster = KafkaCluster(tmp_path / "kafka", nodes=1)
    await asyncio.to_thread(cluster.start)
    try:
        bootstrap = cluster.bootstrap_servers

        def settings(**producer):
            producer["delivery-timeout"] = "3s"
            kafka = {"bootstrap-servers": bootstrap, "producer": producer}
            return load_settings(environ={}, overrides={"kafka": kafka})

        topic = await create_topic(bootstrap)
        # The record is handed over before the broker dies and lingers past the delivery
        # timeout, so it is not confirmed in time however fast the kill is: the template
        # knows nothing yet when it takes it.
        async with (
            KafkaTemplate(settings(linger="4s")) as lingering,
            KafkaTemplate(settings()) as template,
        ):
            await template.send_and_wait(topic, "before")
            handed_over = await lingering.send(topic, "unknown", key="k-1")
            await asyncio.to_thread(cluster.kill_node, 1)

            with pytest.raises(KafkaSendError) as unknown:
                await asyncio.wait_for(handed_over, 30)
            assert "outcome unknown" in str(unknown.value)
            assert isinstance(unknown.value, errors.SendOutcomeUnknownError)

            started = time.monotonic()
            with pytest.raises(KafkaSendError) as refused:
                await template.send_and_wait(topic, "refused", key="k-2")
            assert time.monotonic() - started < 1.0
            assert not isinstance(refused.value, errors.SendOutcomeUnknownError)
            assert "nothing was written" in str(refused.value)

            await asyncio.to_thread(cluster.start_node, 1)
            await asyncio.to_thread(cluster.wait_ready)
            deadline = time.monotonic() + 60
            while True:  # Refusals are fast; the template accepts sends once Kafka answers.
                try:
                    await template.send_and_wait(topic, "after")
                    break
                except KafkaSendError:
                    assert time.monotonic() < deadline, "sends still refused after a minute"
                    await asyncio.sleep(0.2)
            values = [r.value for r in await read_all(bootstrap, topic, 4, wait=10)]
        assert values[0] == b"before"
        # Reported as unknown: aiokafka kept it and wrote it once the broker was back.
        assert sorted(values) == [b"after", b"before", b"unknown"]
    finally:
        await asyncio.to_thread(cluster.stop)
