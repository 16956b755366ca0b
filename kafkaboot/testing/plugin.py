"""pytest plugin: real Apache Kafka for tests, registered through the ``pytest11`` entry point.

Fixtures:
    kafka_bootstrap: (session) bootstrap servers of a running broker, from, in order,
        ``$KAFKABOOT_TEST_BOOTSTRAP`` (an existing cluster); a testcontainers ``KafkaContainer``
        when ``KAFKABOOT_TEST_BROKER=testcontainers`` and Docker answers (else the test is
        skipped); else a broker launched from the Maven-fetched jars on a free port.
    kafka_cluster: a 3-node :class:`~kafkaboot.testing.KafkaCluster` whose nodes a test may
        stop, kill and restart; shared by the session, every node running again after each
        test.
    memory_kafka: an :class:`~kafkaboot.testing.InMemoryKafka` of the test's own (no broker,
        no Java): its ``bootstrap_servers`` (``memory://<name>``) goes where
        ``kafka_bootstrap`` would.
    kafkaboot_app: a factory, ``await kafkaboot_app(target, bootstrap=..., env=..., ...)``,
        that starts a service (see :func:`kafkaboot.testing.app.start_app`) and stops it
        after the test; ``env`` sets environment variables for the test (placeholders such
        as ``${ORDERS_TOPIC:orders}`` in listeners and configuration: per-test topics and
        groups).
    postgres_server: (session) a real PostgreSQL server
        (:class:`~kafkaboot.testing.postgres.PostgresServer`) in a temporary directory;
        tests that use it are skipped, with the reason, where the server binaries are not
        installed.
    postgres_url: a fresh, empty database on that server for this test alone: its
        SQLAlchemy URL (``postgresql+asyncpg://...``).

Tests that use either fixture get the ``kafka`` marker, so ``-m "not kafka"`` runs the rest.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from kafkaboot.testing.broker import KafkaCluster

if TYPE_CHECKING:
    from kafkaboot.testing.app import RunningApp
    from kafkaboot.testing.memory import InMemoryKafka
    from kafkaboot.testing.postgres import PostgresServer

__all__ = ["BrokerChoice", "choose_broker", "docker_unavailable_reason"]

BOOTSTRAP_ENV = "KAFKABOOT_TEST_BOOTSTRAP"
BROKER_ENV = "KAFKABOOT_TEST_BROKER"
_KAFKA_FIXTURES = {"kafka_bootstrap", "kafka_cluster"}
BrokerChoice = str
"""``"existing"``, ``"testcontainers"`` or ``"local"``."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a real Apache Kafka broker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def choose_broker(environ: Mapping[str, str]) -> BrokerChoice:
    """Which broker the ``kafka_bootstrap`` fixture uses (see the module docstring)."""
    if environ.get(BOOTSTRAP_ENV):
        return "existing"
    choice = environ.get(BROKER_ENV, "local").strip().lower()
    if choice not in {"local", "testcontainers"}:
        raise pytest.UsageError(
            f"{BROKER_ENV}={choice!r} is not known; use 'local' (default) or 'testcontainers'"
        )
    return choice


def _ping_docker(docker_host: str, timeout_s: float = 3.0) -> bool:
    """Ask the Docker engine's ``/_ping`` endpoint, without the docker client library."""
    if docker_host.startswith("tcp://"):
        host, _, port = docker_host.removeprefix("tcp://").rstrip("/").partition(":")
        family, address = socket.AF_INET, (host, int(port or 2375))
    else:
        family, address = socket.AF_UNIX, docker_host.removeprefix("unix://")  # type: ignore[assignment]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(address)
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        return sock.recv(64).split(b" ")[1:2] == [b"200"]


def docker_unavailable_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why testcontainers cannot run here, or ``None`` when a Docker engine answers."""
    environ = os.environ if environ is None else environ
    docker_host = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if _ping_docker(docker_host):
            return None
        problem = "it did not answer /_ping with 200"
    except (OSError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    return (
        f"no Docker engine answers at {docker_host} ({problem}); "
        f"unset {BROKER_ENV} to use the local Maven-launched broker"
    )


def _testcontainers_bootstrap() -> Iterator[str]:
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(f"{BROKER_ENV}=testcontainers: {reason}")
    from testcontainers.kafka import KafkaContainer

    container: Any = KafkaContainer().with_kraft()
    with container as kafka:
        yield str(kafka.get_bootstrap_server())


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session."""
    choice = choose_broker(os.environ)
    if choice == "existing":
        yield os.environ[BOOTSTRAP_ENV]
        return
    if choice == "testcontainers":
        yield from _testcontainers_bootstrap()
        return
    data_dir = Path(tempfile.mkdtemp(prefix="kafkaboot-broker-"))
    cluster = KafkaCluster(data_dir, nodes=1)
    try:
        cluster.start()
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def memory_kafka() -> Iterator[InMemoryKafka]:
    """An in-memory Kafka for this test alone, closed after it."""
    from kafkaboot.testing.memory import InMemoryKafka

    with InMemoryKafka() as kafka:
        yield kafka


AppStarter = Callable[..., Awaitable["RunningApp"]]


@pytest_asyncio.fixture
async def kafkaboot_app(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AppStarter]:
    """Starts services for the test; stops them (listeners commit) after it."""
    from kafkaboot.testing.app import start_app

    running: list[RunningApp] = []

    async def start(
        target: Any, *, bootstrap: str, env: Mapping[str, str] | None = None, **options: Any
    ) -> RunningApp:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        service = await start_app(target, bootstrap=bootstrap, **options)
        running.append(service)
        return service

    try:
        yield start
    finally:
        for service in reversed(running):
            await service.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test session (skips where it is not installed)."""
    from kafkaboot.testing.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """An empty database of the test's own on the session's PostgreSQL server."""
    return postgres_server.create_database()


@pytest.fixture(scope="session")
def _kafka_cluster_session() -> Iterator[KafkaCluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="kafkaboot-cluster-"))
    cluster = KafkaCluster(data_dir, nodes=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def kafka_cluster(_kafka_cluster_session: KafkaCluster) -> Iterator[KafkaCluster]:
    """A 3-node cluster; nodes stopped or killed by the test are restarted afterwards."""
    cluster = _kafka_cluster_session
    yield cluster
    cluster.refresh()  # The test may have stopped nodes through `kafkaboot broker stop --node`.
    if not all(node.is_running() for node in cluster.nodes):
        cluster.start()  # Starts the stopped nodes together: one alone may have no quorum.
