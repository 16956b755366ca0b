"""The Maven-launched Apache Kafka broker, as tests and users start it."""

import asyncio
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafkaboot.errors import BrokerError
from kafkaboot.testing import KafkaCluster
from kafkaboot.testing.broker import free_port_range, process_alive
from kafkaboot.testing.plugin import docker_unavailable_reason

pytestmark = pytest.mark.kafka


@pytest.mark.asyncio
async def test_session_broker_round_trip(kafka_bootstrap, round_trip):
    _, value = await round_trip(kafka_bootstrap)
    assert value == b"hello, kafka"


def kafkaboot(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "kafkaboot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_start_round_trip_stop_as_a_user_would(tmp_path):
    data_dir = tmp_path / "broker"
    port = free_port_range(2)

    started = kafkaboot("broker", "start", "--port", str(port), "--data-dir", str(data_dir))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"127.0.0.1:{port}"
        assert "ready in" in started.stderr

        snippet = subprocess.run(
            [sys.executable, "docs/snippets/round_trip.py", started.stdout.strip()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "round trip OK: 'hello, kafka'" in snippet.stdout, snippet.stderr

        status = kafkaboot("broker", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0
        assert "1/1 node(s) running" in status.stdout
        pid = KafkaCluster.load(data_dir).nodes[0].pid

        again = kafkaboot("broker", "start", "--data-dir", str(data_dir))
        assert again.returncode == 0
        assert "already running" in again.stderr
    finally:
        stopped = kafkaboot("broker", "stop", "--data-dir", str(data_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert not KafkaCluster.load(data_dir).is_running()
    assert not process_alive(pid)
    assert (data_dir / "node-1" / "data" / "meta.properties").is_file()  # Data is kept.

    purged = kafkaboot("broker", "stop", "--purge", "--data-dir", str(data_dir))
    assert purged.returncode == 0
    assert not data_dir.exists()


def test_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path):
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        cluster = KafkaCluster(tmp_path, nodes=1, port=port)
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            cluster.start()
    assert not cluster.is_running()


def test_fixture_stops_its_broker_when_the_session_fails(tmp_path):
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(
        textwrap.dedent(
            """\
            def test_uses_broker_then_fails(kafka_bootstrap):
                assert kafka_bootstrap.startswith("127.0.0.1:")
                raise AssertionError("deliberate failure")
            """
        )
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKABOOT_TEST_")}
    env["TMPDIR"] = str(scratch)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(test_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "deliberate failure" in result.stdout
    assert list(scratch.iterdir()) == []  # The broker's data directory was removed...
    leftover = subprocess.run(["pgrep", "-f", str(scratch)], capture_output=True, check=False)
    assert leftover.stdout == b""  # ...and its JVM is gone.


async def produce(bootstrap, topic, values):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000)
    await producer.start()
    try:
        futures = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(bootstrap, topic, count):
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values = []
    try:
        deadline = time.monotonic() + 60
        while len(values) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            values += [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    return values


async def create_replicated_topic(bootstrap, topic):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    finally:
        await admin.close()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_three_node_cluster_survives_one_node_stopped(kafka_cluster):
    assert len(kafka_cluster.nodes) == 3
    bootstrap = kafka_cluster.bootstrap_servers
    topic = f"replicated-{uuid.uuid4().hex[:8]}"
    await create_replicated_topic(bootstrap, topic)
    await produce(bootstrap, topic, [b"before-%d" % i for i in range(50)])

    await asyncio.to_thread(kafka_cluster.stop_node, 2)
    assert not kafka_cluster.node(2).is_running()
    # acks=all with min.insync.replicas=2: two of three replicas still accept writes.
    await produce(bootstrap, topic, [b"after-%d" % i for i in range(50)])

    values = await consume_all(bootstrap, topic, 100)
    assert sorted(values) == sorted(
        [b"before-%d" % i for i in range(50)] + [b"after-%d" % i for i in range(50)]
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_killed_node_restarts_and_rejoins_with_its_data(kafka_cluster):
    bootstrap = kafka_cluster.bootstrap_servers
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    await create_replicated_topic(bootstrap, topic)
    await produce(bootstrap, topic, [b"x"] * 20)

    node = kafka_cluster.node(3)
    pid = node.pid
    await asyncio.to_thread(kafka_cluster.kill_node, 3)
    assert not process_alive(pid)

    kafka_cluster.start_node(3)
    await asyncio.to_thread(kafka_cluster.wait_ready, 120, brokers=3)
    assert node.is_running()
    assert await consume_all(node.bootstrap_server, topic, 20) == [b"x"] * 20


def test_testcontainers_broker_round_trip(round_trip):
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(f"testcontainers needs Docker: {reason}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as kafka:
        _, value = asyncio.run(round_trip(kafka.get_bootstrap_server()))
    assert value == b"hello, kafka"
