"""Secured listeners without a JVM: the client settings block, the broker properties, the
storage-format arguments, and the layout a secured cluster saves in ``cluster.json``."""

import pytest
import yaml

from kafkaboot import load_settings
from kafkaboot.cli import main
from kafkaboot.errors import BrokerError
from kafkaboot.testing import KafkaCluster
from kafkaboot.testing.certificates import STORE_PASSWORD, SecurityFiles
from kafkaboot.testing.launch import broker_properties
from kafkaboot.testing.security import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
    client_settings_yaml,
    format_arguments,
    security_protocols,
)


@pytest.fixture
def files(tmp_path):
    return SecurityFiles(tmp_path / "security")


def _settings(tmp_path, text):
    config = tmp_path / "application.yml"
    config.write_text(text)
    return load_settings(config, environ={}).kafka


def test_sasl_ssl_block_is_yaml_with_kafkaboots_own_keys(tmp_path, files):
    text = client_settings_yaml("127.0.0.1:9092", "SASL_SSL", files)
    assert yaml.safe_load(text) == {
        "kafka": {
            "bootstrap-servers": "127.0.0.1:9092",
            "security": {
                "protocol": "SASL_SSL",
                "sasl": {
                    "mechanism": "SCRAM-SHA-512",
                    "username": SCRAM_USER,
                    "password": SCRAM_PASSWORD,
                },
                "ssl": {"ca-location": str(files.ca_pem)},
            },
        }
    }
    kafka = _settings(tmp_path, text)  # kafkaboot itself reads it as it is printed.
    assert kafka.bootstrap_servers == ["127.0.0.1:9092"]
    assert kafka.security.protocol == "SASL_SSL"
    assert kafka.security.sasl.mechanism == "SCRAM-SHA-512"
    assert kafka.security.sasl.username == SCRAM_USER
    assert kafka.security.sasl.password.get_secret_value() == SCRAM_PASSWORD
    assert str(kafka.security.ssl.ca_location) == str(files.ca_pem)


def test_ssl_block_names_the_client_certificate_and_key(tmp_path, files):
    text = client_settings_yaml("127.0.0.1:9092", "SSL", files)
    kafka = _settings(tmp_path, text)
    assert kafka.security.protocol == "SSL"
    assert kafka.security.sasl.mechanism is None
    assert str(kafka.security.ssl.certificate_location) == str(files.client_cert_pem)
    assert str(kafka.security.ssl.key_location) == str(files.client_key_pem)


def test_sasl_plaintext_block_has_no_ssl_section(tmp_path, files):
    settings = yaml.safe_load(client_settings_yaml("127.0.0.1:9092", "SASL_PLAINTEXT", files))
    assert "ssl" not in settings["kafka"]["security"]
    assert _settings(tmp_path, yaml.safe_dump(settings)).security.protocol == "SASL_PLAINTEXT"


def test_block_comments_name_every_store_and_the_other_users(files):
    text = client_settings_yaml("127.0.0.1:9092", "SASL_SSL", files)
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for path in (
        files.truststore_p12,
        files.truststore_jks,
        files.keystore_p12,
        files.keystore_jks,
        files.client_cert_pem,
        files.client_key_pem,
        files.jwks_json,
    ):
        assert str(path) in comments
    assert STORE_PASSWORD in comments
    assert f"PLAIN {PLAIN_USER} / {PLAIN_PASSWORD}" in comments


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ()),
        ("sasl_ssl", ("SASL_SSL",)),
        (["SSL", "sasl_plaintext"], ("SSL", "SASL_PLAINTEXT")),
    ],
)
def test_security_protocols_are_read_in_any_case(given, expected):
    assert security_protocols(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"), [("tls", "not known"), (["ssl", "SSL"], "given twice")]
)
def test_security_protocols_refuse_unknown_and_repeated_names(given, problem):
    with pytest.raises(BrokerError, match=problem):
        security_protocols(given)


def test_plaintext_cluster_is_laid_out_as_before(tmp_path):
    cluster = KafkaCluster(tmp_path, nodes=3, port=20000)
    assert [(n.broker_port, n.controller_port) for n in cluster.nodes] == [
        (20000, 20003),
        (20001, 20004),
        (20002, 20005),
    ]
    assert cluster.security == ()
    assert cluster.security_files is None
    properties = broker_properties(cluster.nodes[0], cluster.nodes, {})
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:20000,CONTROLLER://127.0.0.1:20003"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in properties)


def test_secured_cluster_ports_and_listeners(tmp_path):
    cluster = KafkaCluster(tmp_path, nodes=2, port=20000, security=["sasl_ssl", "ssl"])
    first, second = cluster.nodes
    # Per node: the first secured listener, the controller, PLAINTEXT, then the others.
    assert (first.broker_port, first.controller_port, first.internal_port) == (20000, 20002, 20004)
    assert first.secured_ports == {"SASL_SSL": 20000, "SSL": 20006}
    assert second.secured_ports == {"SASL_SSL": 20001, "SSL": 20007}
    assert cluster.bootstrap_servers == "127.0.0.1:20000,127.0.0.1:20001"
    assert cluster.bootstrap_servers_for("ssl") == "127.0.0.1:20006,127.0.0.1:20007"
    assert cluster.bootstrap_servers_for("plaintext") == "127.0.0.1:20004,127.0.0.1:20005"
    with pytest.raises(BrokerError, match="no sasl_plaintext listener; its secured listeners"):
        cluster.bootstrap_servers_for("sasl_plaintext")
    properties = broker_properties(first, cluster.nodes, {}, cluster.security_files)
    assert properties["listeners"] == (
        "SASL_SSL://127.0.0.1:20000,SSL://127.0.0.1:20006,PLAINTEXT://127.0.0.1:20004,"
        "CONTROLLER://127.0.0.1:20002"
    )
    assert properties["inter.broker.listener.name"] == "PLAINTEXT"
    assert properties["listener.name.ssl.ssl.client.auth"] == "required"
    assert (
        "OAuthBearerValidatorCallbackHandler"
        in (properties["listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class"])
    )
    assert (
        f'user_{PLAIN_USER}="{PLAIN_PASSWORD}"'
        in (properties["listener.name.sasl_ssl.plain.sasl.jaas.config"])
    )


def test_scram_user_is_added_when_the_storage_is_formatted():
    assert format_arguments(["SSL"]) == []
    arguments = format_arguments(["SASL_SSL"])
    assert arguments[:2] == [
        "--add-scram",
        f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]",
    ]


def test_security_survives_saving_and_loading(tmp_path):
    cluster = KafkaCluster(tmp_path, port=20000, security=["sasl_ssl", "sasl_plaintext"])
    cluster._save()
    loaded = KafkaCluster.load(tmp_path)
    assert loaded.security == ("SASL_SSL", "SASL_PLAINTEXT")
    assert loaded.nodes == cluster.nodes
    assert loaded.bootstrap_servers_for("sasl_plaintext") == "127.0.0.1:20003"
    assert loaded.security_files == SecurityFiles(tmp_path / "security")


def test_plaintext_cluster_json_has_no_security_keys(tmp_path):
    import json

    KafkaCluster(tmp_path, port=20000)._save()
    state = json.loads((tmp_path / "cluster.json").read_text())
    assert "security" not in state
    assert set(state["nodes"][0]) == {
        "node_id",
        "broker_port",
        "controller_port",
        "directory",
        "pid",
    }


def test_cli_refuses_other_security_for_a_saved_cluster(tmp_path, capsys):
    KafkaCluster(tmp_path, port=20000)._save()
    assert main(["broker", "start", "--security", "sasl_ssl", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "--security none, not sasl_ssl" in err
    assert "--purge" in err
