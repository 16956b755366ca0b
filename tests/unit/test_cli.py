"""`kafkaboot config show|check` and the CLI's error handling."""

import textwrap
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
    assert "did you mean 'group-id'?" in err
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
    assert events["ack-mode"] == "manual  [decorator]"
    assert events["auto-startup"] == "True  [default]"
    assert "sample_consumer_service.listeners.listen" in listeners


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
