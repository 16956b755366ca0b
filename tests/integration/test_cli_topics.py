"""``kafkaboot topics list|describe|create|delete`` against the real broker."""

import asyncio
import io
import json
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from kafkaboot import clients
from kafkaboot.cli import main
from kafkaboot.cli.cluster import EXIT_REFUSED
from tests.integration.kafka_helpers import produce, unique


@pytest.fixture(autouse=True)
def _no_service_config(monkeypatch, tmp_path):
    """No ./application.yml nor $KAFKABOOT_CONFIG of the repository's: each test says."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKABOOT_CONFIG", raising=False)


@pytest.fixture
def topics(kafka_bootstrap, capsys):
    """``topics(*argv)`` runs ``kafkaboot topics *argv --bootstrap-servers <broker>``
    in-process and returns (exit code, stdout, stderr)."""

    def run(*argv, bootstrap=kafka_bootstrap):
        capsys.readouterr()
        extra = ["--bootstrap-servers", bootstrap] if bootstrap else []
        code = main(["topics", *argv, *extra])
        out, err = capsys.readouterr()
        return code, out, err

    return run


class _Terminal(io.StringIO):
    """A stdin that a person types ``text`` on."""

    def isatty(self):
        return True


@pytest.fixture
def names(kafka_bootstrap):
    """``names()``: a unique topic name, its topic deleted after the test if still there."""
    made = []

    def name():
        made.append(unique("cli-topics"))
        return made[-1]

    yield name
    asyncio.run(_delete_existing(kafka_bootstrap, made))


async def _delete_existing(bootstrap, names):
    admin = clients.admin(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(names) & set(await admin.list_topics())
        if existing:
            await admin.delete_topics(sorted(existing))
    finally:
        await admin.close()


@pytest.fixture
def new_topic(topics, names):
    """``new_topic(*create_flags)`` creates a topic with ``kafkaboot topics create``."""

    def create(*argv):
        name = names()
        code, _, err = topics("create", name, *argv)
        assert code == 0, err
        return name

    return create


def _table(text):
    """The rows of a print_table output below its header, split on whitespace."""
    return [line.split() for line in text.splitlines()[1:]]


def test_create_prints_what_it_created(topics, names):
    name = names()
    code, out, _ = topics(
        "create", name, "--partitions", "3", "--replication-factor", "1",
        "--topic-config", "retention.ms=3600000",
    )  # fmt: skip
    assert code == 0
    assert out == (
        f"created topic {name}: 3 partition(s), replication factor 1\n  retention.ms=3600000\n"
    )


def test_create_takes_the_brokers_defaults_when_not_given(topics, names, kafka_bootstrap):
    name = names()
    code, out, _ = topics("create", name)
    assert code == 0
    partitions, replicas = asyncio.run(_broker_defaults(kafka_bootstrap))
    assert out == (
        f"created topic {name}: {partitions} partition(s), replication factor {replicas} "
        "(partitions and replication factor: the broker's default)\n"
    )
    described = json.loads(topics("describe", name, "--format", "json")[1])
    assert (len(described["partitions"]), described["replication_factor"]) == (
        partitions,
        replicas,
    )


async def _broker_defaults(bootstrap):
    """The broker's num.partitions and default.replication.factor, asked directly."""
    admin = clients.admin(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [broker] = (await admin.describe_cluster())["brokers"][:1]
        wanted = {"num.partitions": None, "default.replication.factor": None}
        resource = ConfigResource(ConfigResourceType.BROKER, str(broker["node_id"]), wanted)
        [response] = await admin.describe_configs([resource])
    finally:
        await admin.close()
    entries = response.to_object()["resources"][0]["config_entries"]
    values = {e["config_names"]: int(e["config_value"]) for e in entries}
    return values["num.partitions"], values["default.replication.factor"]


def test_list_shows_partitions_and_replication_factor(new_topic, topics):
    name = new_topic("--partitions", "2")
    code, out, _ = topics("list")
    assert code == 0
    assert out.splitlines()[0].split() == ["TOPIC", "PARTITIONS", "REPLICATION_FACTOR"]
    assert [name, "2", "1"] in _table(out)
    assert not any(row[0].startswith("__") for row in _table(out))


def test_list_internal_shows_kafkas_own_topics(topics):
    code, out, _ = topics("list", "--internal")
    assert code == 0
    internal = {row[0] for row in _table(out) if row[-1] == "True"}
    assert "__consumer_offsets" in internal


def test_list_json_is_one_document(new_topic, topics, kafka_bootstrap):
    name = new_topic("--partitions", "2")
    code, out, _ = topics("list", "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert listed["bootstrap_servers"] == kafka_bootstrap
    [entry] = [t for t in listed["topics"] if t["topic"] == name]
    assert entry == {"topic": name, "internal": False, "replication_factor": 1, "partitions": 2}


def test_describe_shows_partitions_and_the_configs_set_on_the_topic(new_topic, topics):
    name = new_topic("--partitions", "2", "--topic-config", "retention.ms=3600000")
    code, out, _ = topics("describe", name)
    assert code == 0
    head, table = out.split("\n\n")
    assert head.splitlines() == [
        f"topic:              {name}",
        "partitions:         2",
        "replication factor: 1",
        "configs set on the topic (all others are the broker's defaults):",
        "  retention.ms=3600000",
    ]
    assert table.splitlines()[0].split() == ["PARTITION", "LEADER", "REPLICAS", "ISR"]
    assert [row[0] for row in _table(table)] == ["0", "1"]
    assert all(row[1] == row[2] == row[3] for row in _table(table))  # One broker leads all.


def test_describe_json_has_only_the_configs_set_on_the_topic(new_topic, topics):
    name = new_topic("--topic-config", "retention.ms=3600000")
    code, out, _ = topics("describe", name, "--format", "json")
    assert code == 0
    described = json.loads(out)
    assert described["configs"] == {"retention.ms": "3600000"}
    [partition] = described["partitions"]
    leader = partition["leader"]
    assert partition == {
        "partition": 0,
        "leader": leader,
        "replicas": [leader],
        "isr": [leader],
        "offline_replicas": [],
    }


def test_describe_without_topic_configs_says_all_are_defaults(new_topic, topics):
    name = new_topic()
    out = topics("describe", name)[1]
    assert "configs: the broker's defaults (none set on the topic)" in out


def test_describe_unknown_topic_exits_1_naming_the_cluster(topics, kafka_bootstrap):
    name = unique("cli-missing")
    code, out, err = topics("describe", name)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: topic '{name}' does not exist at {kafka_bootstrap}; ")


def test_create_existing_topic_exits_1(new_topic, topics):
    name = new_topic("--partitions", "2")
    code, _, err = topics("create", name)
    assert code == 1
    assert f"error: topic '{name}' already exists" in err
    assert "(2 partition(s))" in err


def test_create_with_more_replicas_than_brokers_names_the_broker_count(topics, names):
    name = names()
    code, _, err = topics("create", name, "--replication-factor", "9")
    assert code == 1
    assert "replication factor 9 is more than the 1 broker(s)" in err
    assert "--replication-factor 1 or less" in err
    assert name not in topics("list")[1]


def test_create_with_an_unknown_config_exits_1_with_the_brokers_reason(topics, names):
    code, _, err = topics("create", names(), "--topic-config", "no.such.config=1")
    assert code == 1
    assert "no.such.config" in err


def test_topic_config_without_equals_is_a_usage_error(topics):
    with pytest.raises(SystemExit) as exited:
        topics("create", unique("cli-topics"), "--topic-config", "retention.ms")
    assert exited.value.code == 2


def test_delete_without_yes_off_a_terminal_is_refused(
    new_topic, topics, kafka_bootstrap, monkeypatch
):
    name = new_topic("--partitions", "2")
    asyncio.run(produce(kafka_bootstrap, name, [b"a", b"b", b"c"], partitions=2))
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # Piped: nobody to ask.
    code, out, err = topics("delete", name)
    assert code == EXIT_REFUSED
    assert out == f"would delete topic {name}: 2 partition(s), 3 record(s)\n"
    assert "add --yes" in err
    assert topics("describe", name)[0] == 0


def test_delete_on_a_terminal_deletes_when_confirmed(new_topic, topics, monkeypatch):
    name = new_topic()
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    code, out, _ = topics("delete", name)
    assert code == 0
    assert out.endswith(f"[y/N] deleted topic {name}: 1 partition(s), 0 record(s)\n")
    assert topics("describe", name)[0] == 1


def test_delete_on_a_terminal_keeps_the_topic_when_declined(new_topic, topics, monkeypatch):
    name = new_topic()
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    code, _, err = topics("delete", name)
    assert code == EXIT_REFUSED
    assert f"topic {name} not deleted" in err
    assert topics("describe", name)[0] == 0


def test_delete_yes_deletes_and_describe_then_fails(new_topic, topics, kafka_bootstrap):
    name = new_topic()
    asyncio.run(produce(kafka_bootstrap, name, [b"x"] * 4))
    code, out, _ = topics("delete", name, "--yes")
    assert code == 0
    assert out == f"deleted topic {name}: 1 partition(s), 4 record(s)\n"
    code, _, err = topics("describe", name)
    assert code == 1
    assert "does not exist" in err
    assert name not in topics("list")[1]


def test_delete_unknown_topic_exits_1(topics):
    code, _, err = topics("delete", unique("cli-missing"), "--yes")
    assert code == 1
    assert "does not exist" in err


def test_bootstrap_servers_overrides_the_config_file(new_topic, topics, tmp_path, kafka_bootstrap):
    config = tmp_path / "application.yml"
    config.write_text("kafka:\n  bootstrap-servers: 127.0.0.1:1\n")
    name = new_topic()
    code, out, _ = topics("describe", name, "--config", str(config))
    assert code == 0
    assert f"topic:              {name}" in out
    code, _, err = topics("describe", name, "--config", str(config), bootstrap=None)
    assert code == 1
    assert "error: cannot reach Kafka at 127.0.0.1:1" in err
    assert "--bootstrap-servers" in err


def test_the_config_files_bootstrap_servers_are_used(new_topic, topics, tmp_path, kafka_bootstrap):
    config = tmp_path / "application.yml"
    config.write_text(f"kafka:\n  bootstrap-servers: {kafka_bootstrap}\n")
    name = new_topic()
    code, out, _ = topics("list", "--config", str(config), bootstrap=None)
    assert code == 0
    assert name in out


def test_delete_from_a_script_exits_3_and_deletes_nothing(new_topic, topics, kafka_bootstrap):
    name = new_topic()
    command = [sys.executable, "-m", "kafkaboot", "topics", "delete", name]
    refused = subprocess.run(
        [*command, "--bootstrap-servers", kafka_bootstrap],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == EXIT_REFUSED, refused.stderr
    assert "add --yes" in refused.stderr
    assert topics("describe", name)[0] == 0


@pytest.fixture
def deleting_fails_the_test():
    """Any DeleteTopics request during the test fails it instead of reaching the broker
    (the shared broker's ``__consumer_offsets`` must survive a regression of the refusal)."""

    async def delete_topics(self, topics, *args, **kwargs):
        raise AssertionError(f"asked the broker to delete {topics}")

    with pytest.MonkeyPatch.context() as patch:  # Undone before `names` cleans up.
        patch.setattr(AIOKafkaAdminClient, "delete_topics", delete_topics)
        yield


@pytest.mark.parametrize("name", ["__consumer_offsets", "__transaction_state"])
def test_delete_refuses_kafkas_internal_topics_even_with_yes(name, topics, deleting_fails_the_test):
    code, out, err = topics("delete", name, "--yes")
    assert code == EXIT_REFUSED
    assert out == ""
    assert f"refused: {name} is one of Kafka's internal topics" in err


def test_delete_refuses_a_topic_the_broker_reports_as_internal(
    new_topic, topics, monkeypatch, deleting_fails_the_test
):
    name = new_topic()
    describe_topics = AIOKafkaAdminClient.describe_topics

    async def reported_internal(self, *args, **kwargs):
        described = await describe_topics(self, *args, **kwargs)
        return [t | {"is_internal": t["is_internal"] or t["topic"] == name} for t in described]

    monkeypatch.setattr(AIOKafkaAdminClient, "describe_topics", reported_internal)
    code, _, err = topics("delete", name, "--yes")
    assert code == EXIT_REFUSED
    assert f"refused: {name} is one of Kafka's internal topics" in err
