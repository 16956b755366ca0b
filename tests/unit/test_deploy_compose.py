"""deploy/docker-compose.yml is consistent: quorum voters, listeners, ports and the UI."""

import base64
import re
from pathlib import Path

import pytest
import yaml

from kafkaboot.cli import _parser
from kafkaboot.config import load_settings

COMPOSE = Path(__file__).parents[2] / "deploy" / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def brokers(compose):
    return {
        name: s
        for name, s in compose["services"].items()
        if name.startswith("kafka-") and name != "kafka-ui"
    }


def listeners(text):
    return dict(item.split("://") for item in text.split(","))


def test_three_brokers_with_distinct_node_ids(brokers):
    assert len(brokers) == 3
    ids = {s["environment"]["KAFKA_NODE_ID"] for s in brokers.values()}
    assert ids == {"1", "2", "3"}


def test_every_broker_uses_the_official_image_and_one_valid_cluster_id(brokers):
    assert {s["image"].split(":")[0] for s in brokers.values()} == {"apache/kafka"}
    [cluster_id] = {s["environment"]["CLUSTER_ID"] for s in brokers.values()}
    # Kafka's storage format requires a UUID in URL-safe base64 without padding.
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_quorum_voters_name_every_node_at_its_controller_listener(brokers):
    voters_values = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in brokers.values()}
    assert len(voters_values) == 1
    voters = dict(v.split("@") for v in voters_values.pop().split(","))
    for name, service in brokers.items():
        env = service["environment"]
        controller_port = listeners(env["KAFKA_LISTENERS"])["CONTROLLER"].rsplit(":", 1)[1]
        assert voters[env["KAFKA_NODE_ID"]] == f"{name}:{controller_port}"


def test_advertised_external_ports_match_published_ports(brokers):
    for service in brokers.values():
        env = service["environment"]
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        external_port = listeners(env["KAFKA_LISTENERS"])["EXTERNAL"].rsplit(":", 1)[1]
        [published] = service["ports"]
        host_port, container_port = published.split(":")
        assert container_port == external_port
        assert advertised["EXTERNAL"] == f"localhost:{host_port}"
    host_ports = sorted(s["ports"][0].split(":")[0] for s in brokers.values())
    assert host_ports == ["9092", "9093", "9094"]


def test_replication_settings_fit_three_brokers(brokers):
    for service in brokers.values():
        env = service["environment"]
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) <= len(brokers)
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) < int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"])


def test_ui_reaches_every_broker_on_its_internal_listener(compose, brokers):
    ui = compose["services"]["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"]
    expected = {
        listeners(s["environment"]["KAFKA_ADVERTISED_LISTENERS"])["INTERNAL"]
        for s in brokers.values()
    }
    assert set(ui.split(",")) == expected
    assert all(re.fullmatch(r"kafka-\d:\d+", address) for address in expected)


@pytest.fixture(scope="module")
def samples(compose):
    return {name: compose["services"][name] for name in ("consumer", "producer")}


def test_sample_services_build_the_projects_dockerfile(samples):
    for service in samples.values():
        build = service["build"]
        dockerfile = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile.is_file()
        copied = re.findall(r"^COPY (\S+)", dockerfile.read_text(), re.MULTILINE)
        assert {"kafkaboot", "sample_producer_service", "sample_consumer_service"} <= set(copied)


def test_sample_commands_are_valid_kafkaboot_run_invocations(samples):
    root = COMPOSE.parents[1]
    for name, service in samples.items():
        program, *args = service["command"]
        assert program == "kafkaboot"
        parsed = _parser().parse_args(args)
        assert parsed.target == f"sample_{name}_service"
        assert (root / parsed.target).is_dir()
        assert (root / parsed.config).is_file()


def test_samples_reach_every_broker_on_its_internal_listener(samples, brokers):
    expected = {
        listeners(s["environment"]["KAFKA_ADVERTISED_LISTENERS"])["INTERNAL"]
        for s in brokers.values()
    }
    for service in samples.values():
        servers = service["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
        assert set(servers.split(",")) == expected


def test_published_ports_are_the_ports_the_services_listen_on(samples):
    root = COMPOSE.parents[1]
    for service in samples.values():
        config = _parser().parse_args(service["command"][1:]).config
        [published] = service["ports"]
        container_port = int(published.rsplit(":", 1)[1])
        settings = load_settings(root / config, environ={})
        assert settings.server.port == container_port


def test_producer_scales_to_fifteen_replicas(samples):
    producer = samples["producer"]
    assert "container_name" not in producer  # A fixed name allows one replica only.
    [published] = producer["ports"]
    first, last = map(int, published.split(":")[0].split("-"))
    assert last - first + 1 >= 15


def test_producers_wait_for_the_consumer_that_creates_the_topic(samples):
    assert samples["producer"]["depends_on"] == {"consumer": {"condition": "service_healthy"}}
    probe = " ".join(samples["consumer"]["healthcheck"]["test"])
    port = samples["consumer"]["ports"][0].split(":")[1]
    assert f"127.0.0.1:{port}/actuator/health/readiness" in probe


def test_docker_waits_longer_than_the_services_graceful_stop(samples):
    root = COMPOSE.parents[1]
    for service in samples.values():
        config = _parser().parse_args(service["command"][1:]).config
        shutdown = load_settings(root / config, environ={}).kafka.listener.shutdown_timeout
        grace_s = int(service["stop_grace_period"].removesuffix("s"))
        assert grace_s >= 2 * shutdown.total_seconds()


def test_the_consumer_keeps_its_events_in_the_postgres_service(compose, samples):
    """DATABASE_URL names the compose service, its user, password and database; the
    consumer starts once PostgreSQL answers, and the data outlives the container."""
    from sqlalchemy.engine import make_url

    consumer, postgres = samples["consumer"], compose["services"]["postgres"]
    url = make_url(consumer["environment"]["DATABASE_URL"])
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port) == ("postgres", 5432)
    env = postgres["environment"]
    assert (url.username, url.password, url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    assert consumer["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert {"kafka-1", "kafka-2", "kafka-3"} <= set(consumer["depends_on"])
    # The service's own environment replaces the anchor's: the brokers are still named.
    assert consumer["environment"]["KAFKA_BOOTSTRAP_SERVERS"].count("kafka-") == 3
    [volume] = postgres["volumes"]
    assert volume.split(":")[0] in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_the_image_gives_the_consumers_sqlite_database_a_writable_volume():
    """The image runs as nobody in /app, which it cannot write: without a DATABASE_URL of
    its own, the central consumer keeps SQLite on a volume nobody owns."""
    dockerfile = (COMPOSE.parents[1] / "Dockerfile").read_text()
    [url] = re.findall(r"^ENV DATABASE_URL=(\S+)$", dockerfile, re.MULTILINE)
    path = url.removeprefix("sqlite+aiosqlite:///")
    directory = str(Path(path).parent)
    assert re.search(rf"^VOLUME {re.escape(directory)}$", dockerfile, re.MULTILINE)
    assert re.search(rf"^RUN mkdir {re.escape(directory)} && chown nobody ", dockerfile, re.M)
    assert dockerfile.index("chown nobody") < dockerfile.index("USER nobody")
