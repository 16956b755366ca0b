"""The Maven-launched Apache Kafka broker, as tests and users start it."""

import asyncio
import json
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

    await asyncio.to_thread(kafka_cluster.start_node, 3)  # Returns once it is back.
    assert node.is_running()
    assert await consume_all(node.bootstrap_server, topic, 20) == [b"x"] * 20


def status_json(data_dir):
    status = kafkaboot("broker", "status", "--json", "--data-dir", data_dir, timeout=60)
    assert status.returncode in (0, 1), status.stderr
    return status.returncode, json.loads(status.stdout)


def leaders_of(status, topic):
    return {p["partition"]: p["leader"] for p in status["partitions"] if p["topic"] == topic}


def poll_status(data_dir, condition, timeout=30):
    """The first ``status --json`` that meets ``condition``: metadata settles after a change."""
    deadline = time.monotonic() + timeout
    while True:
        code, status = status_json(data_dir)
        if condition(status) or time.monotonic() > deadline:
            return code, status
        time.sleep(0.5)


@pytest.mark.slow
def test_cli_controls_single_nodes_and_shows_their_leaders(kafka_cluster):
    data_dir = str(kafka_cluster.data_dir)
    topic = f"nodes-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_replicated_topic(kafka_cluster.bootstrap_servers, topic))

    code, status = poll_status(data_dir, lambda s: None not in leaders_of(s, topic).values())
    assert code == 0
    assert [n["state"] for n in status["nodes"]] == ["running"] * 3
    leaders = leaders_of(status, topic)
    assert set(leaders) == {0, 1, 2}
    for node in status["nodes"]:
        led = {p["partition"] for p in node["leads"] if p["topic"] == topic}
        assert led == {p for p, leader in leaders.items() if leader == node["node_id"]}
    assert kafka_cluster.leader_of(topic, 0) == leaders[0]

    # A clean stop of partition 0's leader: controlled shutdown hands its leadership over.
    leader = leaders[0]
    stopped = kafkaboot("broker", "stop", "--node", str(leader), "--data-dir", data_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped node {leader}" in stopped.stderr
    again = kafkaboot("broker", "stop", "--node", str(leader), "--data-dir", data_dir)
    assert again.returncode == 1
    assert f"node {leader} is not running (stopped)" in again.stderr
    code, status = poll_status(data_dir, lambda s: leaders_of(s, topic)[0] not in (leader, None))
    assert code == 1
    assert status["nodes"][leader - 1]["state"] == "stopped"
    assert status["nodes"][leader - 1]["pid"] is None
    assert leaders_of(status, topic)[0] not in (leader, None)

    # `start` on a cluster with a node down starts that node; "already running" it is not.
    started = kafkaboot("broker", "start", "--data-dir", data_dir)
    assert started.returncode == 0, started.stderr
    assert "already running" not in started.stderr
    assert f"starting node {leader} of Kafka" in started.stderr
    assert started.stdout.strip() == kafka_cluster.bootstrap_servers
    code, status = status_json(data_dir)
    assert code == 0

    # A kill, as a crash: the node is gone at once, and `start --node` brings it back.
    victim = kafka_cluster.leader_of(topic, 1)
    pid = status["nodes"][victim - 1]["pid"]
    killed = kafkaboot("broker", "stop", "--node", str(victim), "--kill", "--data-dir", data_dir)
    assert killed.returncode == 0, killed.stderr
    assert f"killed node {victim} (pid {pid}) with SIGKILL" in killed.stderr
    assert not process_alive(pid)
    code, status = status_json(data_dir)
    assert code == 1
    assert status["nodes"][victim - 1]["state"] == "stopped"

    started = kafkaboot("broker", "start", "--node", str(victim), "--data-dir", data_dir)
    assert started.returncode == 0, started.stderr
    assert f"node {victim} (pid " in started.stderr
    assert "is back in the cluster" in started.stderr
    code, status = status_json(data_dir)
    assert code == 0
    assert [n["state"] for n in status["nodes"]] == ["running"] * 3
    kafka_cluster.refresh()  # The fixture's object takes the pids the CLI saved.
    assert all(node.is_running() for node in kafka_cluster.nodes)
    assert kafka_cluster.node(victim).pid == status["nodes"][victim - 1]["pid"] != pid


def test_testcontainers_broker_round_trip(round_trip):
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(f"testcontainers needs Docker: {reason}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as kafka:
        _, value = asyncio.run(round_trip(kafka.get_bootstrap_server()))
    assert value == b"hello, kafka"
