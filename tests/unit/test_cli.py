"""`kafkaboot config show|check` and the CLI's error handling."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from kafkaboot.cli import main


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("KAFKABOOT_CONFIG", "KAFKABOOT_PROFILES_ACTIVE", "SPRING_PROFILES_ACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_config_show_prints_effective_configuration_with_secrets_masked(app_dir, capsys):
    write(
        app_dir / "application.yml",
        """\
        kafka:
          bootstrap-servers: b:1
          properties:
            sasl.jaas.config: 'PlainLoginModule required username="u" password="p1";'
          security:
            sasl: {password: p2}
        billing:
          api-password: p3
        """,
    )
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    for secret in ("p1", "p2", "p3"):
        assert secret not in out
    shown = yaml.safe_load(out)
    assert shown["kafka"]["bootstrap-servers"] == "b:1"
    assert shown["kafka"]["consumer"]["enable-auto-commit"] is False
    assert shown["kafka"]["properties"] == {"sasl.jaas.config": "******"}
    assert shown["kafka"]["security"]["sasl"]["password"] == "******"
    assert shown["billing"]["api-password"] == "******"
    assert "# files: " in out


def test_config_show_with_profile(app_dir, capsys):
    write(app_dir / "application.yml", "server: {port: 1}\n")
    write(app_dir / "application-x.yml", "server: {port: 2}\n")
    assert main(["config", "show", "--profile", "x"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["server"]["port"] == 2
    assert "# active profiles: x" in out


def test_config_check_ok(app_dir, capsys):
    write(app_dir / "application.yml", "kafka: {consumer: {group-id: g}}\n")
    assert main(["config", "check"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_config_check_on_broken_file_prints_file_line_key_and_fix(app_dir, capsys):
    path = write(
        app_dir / "broken.yml",
        """\
        kafka:
          consumer:
            group-idd: orders
            max-poll-records: many
        """,
    )
    assert main(["config", "check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "2 problems" in err
    assert f"{path}:3: kafka.consumer.group-idd: unknown key" in err
    assert "did you mean kafka.consumer.group-id?" in err
    assert f"{path}:4: kafka.consumer.max-poll-records" in err


def test_config_check_reports_invalid_yaml_with_line(app_dir, capsys):
    path = write(app_dir / "application.yml", "kafka:\n  consumer: [\n")
    assert main(["config", "check"]) == 1
    assert f"{path}:3" in capsys.readouterr().err


def test_config_check_prints_notices_for_ignored_options(app_dir, capsys):
    write(app_dir / "application.yml", "kafka: {producer: {retries: 3}}\n")
    assert main(["config", "check"]) == 0
    assert "retries is ignored" in capsys.readouterr().out


def test_broker_status_without_a_started_broker(tmp_path, capsys):
    assert main(["broker", "status", "--data-dir", str(tmp_path)]) == 1
    assert "no broker has been started" in capsys.readouterr().out


def test_broker_start_refuses_a_different_layout_in_an_existing_data_dir(tmp_path, capsys):
    from kafkaboot.testing.broker import KafkaCluster

    KafkaCluster(tmp_path, nodes=1, port=39092)._save()
    assert main(["broker", "start", "--nodes", "3", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "holds a cluster with --nodes 1, not 3" in err
    assert "--purge" in err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["frobnicate"])
    assert excinfo.value.code == 2


ROOT = Path(__file__).parents[2]


def test_config_show_lists_listeners_with_where_each_setting_comes_from(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KAFKA_LISTENERS_CENTRAL_EVENTS_CONCURRENCY", "3")
    config = "sample_consumer_service/application.yml"
    assert main(["config", "show", "sample_consumer_service", "--config", config]) == 0
    listeners = list(yaml.safe_load_all(capsys.readouterr().out))[1]["listeners"]
    events = listeners["central-events"]
    assert events["concurrency"].startswith("3  [kafka.listeners.central-events (environment")
    assert events["rebalance-listener"].startswith(
        "sample_consumer_service.listeners:LoggingRebalance  [kafka.listeners.central-events ("
    )
    assert events["batch"] == "True  [decorator]"
    assert events["auto-startup"] == "True  [default]"
    assert events["offset-store"] == "sqlite+aiosqlite:///central.db  [decorator]"
    test_topic = listeners["sample_consumer_service.listeners.listen"]
    assert test_topic["offset-store"] == "none (offsets in Kafka)  [default]"


@pytest.mark.parametrize(
    "variable", ["DATABASE_URL", "KAFKA_LISTENERS_CENTRAL_EVENTS_OFFSET_STORE_URL"]
)
def test_config_show_masks_the_password_of_an_offset_store_url(monkeypatch, capsys, variable):
    """Whether the URL reaches the listener through its decorator's placeholder or through
    the configuration (then it is in the first document, the effective configuration)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(variable, "postgresql+asyncpg://central:s3cret@db/central")
    config = "sample_consumer_service/application.yml"
    assert main(["config", "show", "sample_consumer_service", "--config", config]) == 0
    out = capsys.readouterr().out
    listeners = list(yaml.safe_load_all(out))[1]["listeners"]
    store = listeners["central-events"]["offset-store"]
    assert store.startswith("postgresql+asyncpg://central:***@db/central  [")
    assert "s3cret" not in out


def test_config_check_rejects_a_listener_id_that_does_not_exist(app_dir, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    write(
        app_dir / "application.yml",
        """\
        kafka:
          listeners:
            central-event:
              concurrency: 2
        """,
    )
    assert main(["config", "check", "sample_consumer_service"]) == 1
    error = capsys.readouterr().err
    assert "kafka.listeners.central-event: no listener has this id" in error
    assert "did you mean 'central-events'?" in error


# -- broker: per-node control and status, on a saved cluster without JVMs -------------------


@pytest.fixture
def saved_cluster(tmp_path):
    """A 3-node cluster as `kafkaboot broker start` saves it, with every node stopped."""
    from kafkaboot.testing import KafkaCluster

    cluster = KafkaCluster(tmp_path / "broker", nodes=3)
    cluster.data_dir.mkdir()
    cluster._save()
    return cluster


@pytest.fixture
def pretend_running(saved_cluster):
    """Make nodes look running: a process with the node's config file on its command line."""
    processes = []

    def pretend(node_id):
        node = saved_cluster.node(node_id)
        script = "import time; time.sleep(120)"
        process = subprocess.Popen([sys.executable, "-c", script, str(node.config_file)])
        processes.append(process)
        node.pid = process.pid
        saved_cluster._save()
        return process

    yield pretend
    for process in processes:
        process.kill()
        process.wait()


def broker(saved_cluster, *args):
    return main(["broker", *args, "--data-dir", str(saved_cluster.data_dir)])


@pytest.mark.parametrize("action", ["start", "stop"])
def test_broker_node_unknown_id_names_the_valid_ids(saved_cluster, capsys, action):
    assert broker(saved_cluster, action, "--node", "9") == 1
    assert "this cluster has no node 9; its nodes are 1, 2, 3" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["start", "stop"])
def test_broker_node_without_a_cluster_says_how_to_start_one(tmp_path, capsys, action):
    assert main(["broker", action, "--node", "1", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"no cluster has been started with data dir {tmp_path}" in err
    assert "kafkaboot broker start --nodes 3" in err


def test_broker_stop_node_that_is_stopped_says_how_to_start_it(saved_cluster, capsys):
    assert broker(saved_cluster, "stop", "--node", "2") == 1
    err = capsys.readouterr().err
    assert "node 2 is not running (stopped)" in err
    assert "kafkaboot broker start --node 2" in err


def test_broker_start_node_that_runs_says_how_to_stop_it(saved_cluster, pretend_running, capsys):
    process = pretend_running(1)
    assert broker(saved_cluster, "start", "--node", "1") == 1
    err = capsys.readouterr().err
    assert f"node 1 is already running (pid {process.pid})" in err
    assert "kafkaboot broker stop --node 1" in err


def test_broker_start_node_without_a_quorum_refuses(saved_cluster, capsys):
    assert broker(saved_cluster, "start", "--node", "1") == 1
    err = capsys.readouterr().err
    assert "no majority of the 3 controllers" in err
    assert "kafkaboot broker start --data-dir" in err


def test_broker_start_node_refuses_layout_flags(saved_cluster, capsys):
    assert broker(saved_cluster, "start", "--node", "1", "--port", "9092") == 1
    assert "--node starts one node of an existing cluster" in capsys.readouterr().err


def test_broker_stop_kill_needs_a_node_and_purge_refuses_one(saved_cluster, capsys):
    assert broker(saved_cluster, "stop", "--kill") == 1
    assert "--kill needs --node N" in capsys.readouterr().err
    assert broker(saved_cluster, "stop", "--node", "1", "--purge") == 1
    assert "does not go with --node" in capsys.readouterr().err
    assert saved_cluster.data_dir.is_dir()


def test_broker_start_with_every_node_running_says_already_running(
    saved_cluster, pretend_running, capsys
):
    for node_id in (1, 2, 3):
        pretend_running(node_id)
    assert broker(saved_cluster, "start") == 0
    out, err = capsys.readouterr()
    assert "already running" in err
    assert out.strip() == saved_cluster.bootstrap_servers


def test_broker_node_whose_pid_is_gone_or_reused_is_dead_pid(saved_cluster, capsys):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    saved_cluster.node(1).pid = exited.pid  # Gone: crashed, or killed outside kafkaboot.
    saved_cluster.node(2).pid = os.getpid()  # Alive, but not this node: a reused pid.
    saved_cluster._save()

    assert broker(saved_cluster, "status", "--json") == 1
    status = json.loads(capsys.readouterr().out)
    assert [n["state"] for n in status["nodes"]] == ["dead-pid", "dead-pid", "stopped"]
    assert status["running"] == 0
    assert status["partitions"] is None  # Nothing runs, so nothing was asked.

    assert broker(saved_cluster, "stop", "--node", "1") == 1
    assert f"node 1 is not running (its process {exited.pid} is gone)" in capsys.readouterr().err
    assert broker(saved_cluster, "status") == 1
    out = capsys.readouterr().out
    assert "node 1: dead-pid" in out
    assert "(gone: crashed or killed outside kafkaboot)" in out
    assert "Kafka " in out
    assert "0/3 node(s) running" in out


def test_broker_status_is_bounded_when_a_running_node_does_not_answer(
    saved_cluster, pretend_running, capsys
):
    pretend_running(1)
    with socket.socket() as silent:  # Accepts connections, never answers a request.
        silent.bind(("127.0.0.1", saved_cluster.node(1).broker_port))
        silent.listen()
        started = time.monotonic()
        assert broker(saved_cluster, "status", "--json", "--timeout", "1") == 1
        elapsed = time.monotonic() - started
    status = json.loads(capsys.readouterr().out)
    assert elapsed < 5
    assert [n["state"] for n in status["nodes"]] == ["running", "stopped", "stopped"]
    assert status["partitions"] is None
    assert status["nodes"][0]["leads"] is None
    assert "did not answer a metadata request within 1s" in status["metadata_error"]


def test_a_reader_that_goes_away_ends_the_command_quietly():
    import subprocess
    import sys

    code = (
        "import sys, kafkaboot.cli as cli\n"
        "def gone(args): raise BrokenPipeError\n"
        "cli._config_show = gone\n"
        "sys.exit(cli.main(['config', 'show']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (141, "")


def test_config_check_reads_its_own_settings_after_the_service_was_installed_once(
    app_dir, capsys, monkeypatch
):
    """`kafkaboot run` installs kafkaboot into the module's FastAPI app; a later look at the
    same module in the process (a test, `config check`) must still use its own settings."""
    from kafkaboot.config import load_settings
    from kafkaboot.runner import resolve_target

    monkeypatch.syspath_prepend(str(ROOT))
    resolve_target("sample_consumer_service", load_settings(environ={}))
    write(
        app_dir / "application.yml",
        "kafka:\n  listeners:\n    central-event:\n      concurrency: 2\n",
    )
    assert main(["config", "check", "sample_consumer_service"]) == 1
    assert "central-event: no listener has this id" in capsys.readouterr().err


def test_consume_refuses_to_commit_from_anywhere_but_the_groups_own_offsets(capsys):
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "consume",
                "t",
                "--group",
                "g",
                "--commit",
                "--from",
                "beginning",
                "--bootstrap-servers",
                "127.0.0.1:1",
            ]
        )
    assert exited.value.code == 2
    assert "groups reset-offsets" in capsys.readouterr().err


@pytest.fixture
def consume_start(app_dir, monkeypatch):
    """``consume_start(*from_argv)``: the ``--from`` start that ``consume`` parsed, without
    reading anything."""
    from kafkaboot.cli import consuming

    seen = []

    async def parsed_only(settings, args):
        seen.append(args.start)
        return 0

    monkeypatch.setattr(consuming, "consume_records", parsed_only)

    def start(*from_argv):
        assert main(["consume", "t", *from_argv, "--bootstrap-servers", "127.0.0.1:1"]) == 0
        return seen.pop()

    return start


def test_consume_from_a_time_ago_works_with_and_without_an_equals_sign(consume_start):
    from kafkaboot.cli.consuming import StartAt

    hour_ago_ms = (time.time() - 3600) * 1000
    for argv in (["--from", "-1h"], ["--from=-1h"], ["--from", "-PT1H"], ["--from=-PT60M"]):
        start = consume_start(*argv)
        assert start.where == "timestamp", argv
        assert abs(start.number - hour_ago_ms) < 60_000, argv
    assert consume_start("--from", "-5") == StartAt("last", 5)  # The last 5 records.
    assert consume_start("--from=-5") == StartAt("last", 5)
    assert consume_start("--from", "12") == StartAt("offset", 12)


def test_consume_from_without_a_value_is_still_a_usage_error(consume_start, capsys):
    with pytest.raises(SystemExit) as exited:
        consume_start("--from", "--follow")
    assert exited.value.code == 2
    assert "--from: expected one argument" in capsys.readouterr().err
