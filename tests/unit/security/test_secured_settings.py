"""A secured Spring Boot file becomes aiokafka's security arguments; secrets stay hidden."""

import logging
import ssl
import textwrap

import pytest

from kafkaboot.application import KafkaBootApplication
from kafkaboot.cli import main
from kafkaboot.config import load_settings
from kafkaboot.errors import ConfigurationError
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.settings import effective_settings
from kafkaboot.security.oauth import ClientCredentialsTokenProvider
from kafkaboot.testing.certificates import KEY_PASSWORD, STORE_PASSWORD

SECRETS = (STORE_PASSWORD, KEY_PASSWORD, "scram-pw", "oauth-secret")


def spring_file(tmp_path, files, *, store_password=STORE_PASSWORD, extra=""):
    path = tmp_path / "application.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            spring:
              kafka:
                bootstrap-servers: 127.0.0.1:9093
                security:
                  protocol: SASL_SSL
                ssl:
                  trust-store-location: file:{files.truststore_jks}
                  trust-store-password: {store_password}
                  trust-store-type: JKS
                  key-store-location: file:{files.keystore_p12}
                  key-store-password: {STORE_PASSWORD}
                  key-store-type: PKCS12
                jaas:
                  enabled: true
                  login-module: org.apache.kafka.common.security.scram.ScramLoginModule
                  options:
                    username: alice
                    password: scram-pw
                properties:
                  sasl.mechanism: SCRAM-SHA-512
            """
        )
        + textwrap.indent(textwrap.dedent(extra), "    ")
    )
    return path


def test_a_secured_spring_file_gives_tls_and_scram(tmp_path, security_files):
    settings = load_settings(spring_file(tmp_path, security_files), environ={})
    kwargs = settings.kafka.consumer_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].get_ca_certs()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("alice", "scram-pw")


def test_no_secret_in_any_repr(tmp_path, security_files):
    settings = load_settings(spring_file(tmp_path, security_files), environ={})
    endpoint = ListenerEndpoint(handler=lambda value: None, topics=("t",), group_id="g")
    shown = [
        repr(settings),
        str(settings.kafka),
        repr(settings.kafka.consumer_kwargs()),
        repr(settings.kafka.producer_kwargs()),
        repr(settings.kafka.security_properties(settings.kafka.consumer)),
        repr(effective_settings(endpoint, settings, None)),
    ]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text


def test_a_client_section_overrides_the_common_ssl_key_by_key(tmp_path, security_files):
    extra = f"""\
        consumer:
          ssl:
            trust-store-location: {security_files.truststore_p12}
            trust-store-type: PKCS12
        """
    settings = load_settings(spring_file(tmp_path, security_files, extra=extra), environ={})
    consumer = settings.kafka.security_properties(settings.kafka.consumer)
    producer = settings.kafka.security_properties(settings.kafka.producer)
    assert consumer["ssl.truststore.location"] == str(security_files.truststore_p12)
    assert consumer["ssl.keystore.location"] == f"file:{security_files.keystore_p12}"
    assert producer["ssl.truststore.location"] == f"file:{security_files.truststore_jks}"
    settings.kafka.check_security()


def test_a_properties_key_wins_over_the_typed_one(tmp_path, security_files):
    extra = """\
        consumer:
          properties:
            security.protocol: SSL
        """
    settings = load_settings(spring_file(tmp_path, security_files, extra=extra), environ={})
    assert settings.kafka.consumer_kwargs()["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in settings.kafka.consumer_kwargs()
    assert settings.kafka.producer_kwargs()["security_protocol"] == "SASL_SSL"


def test_config_check_reads_the_stores_and_names_a_bad_one(
    tmp_path, security_files, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    spring_file(tmp_path, security_files, store_password="not-it")
    assert main(["config", "check"]) == 1
    err = capsys.readouterr().err
    assert str(security_files.truststore_jks) in err
    assert "wrong password" in err
    assert "not-it" not in err


def test_config_show_masks_store_passwords_and_jaas_options(
    tmp_path, security_files, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    spring_file(tmp_path, security_files)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "trust-store-location" in out
    for secret in SECRETS:
        assert secret not in out


def test_oauthbearer_from_kafka_properties_builds_the_client_credentials_provider():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "security": {"protocol": "SASL_PLAINTEXT"},
                "properties": {
                    "sasl.mechanism": "OAUTHBEARER",
                    "sasl.jaas.config": (
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                        'required clientId="svc" clientSecret="oauth-secret" scope="kafka";'
                    ),
                    "sasl.login.callback.handler.class": "org.apache.kafka.common.security."
                    "oauthbearer.OAuthBearerLoginCallbackHandler",
                    "sasl.oauthbearer.token.endpoint.url": "http://127.0.0.1:1/token",
                },
            }
        },
    )
    provider = settings.kafka.consumer_kwargs()["sasl_oauth_token_provider"]
    assert isinstance(provider, ClientCredentialsTokenProvider)
    assert (provider.client_id, provider.scope) == ("svc", "kafka")
    assert "oauth-secret" not in repr(provider)


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"sasl.mechanism": "PLAIN"}, "needs a user name and password"),
        (
            {
                "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
                'required username="a" password="b";'
            },
            "sasl.mechanism is not set",
        ),
        (
            {
                "sasl.mechanism": "PLAIN",
                "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
                'required username="a" password="b";',
            },
            "does not go with the login module",
        ),
        ({"sasl.mechanism": "OAUTHBEARER"}, "needs a token"),
    ],
)
def test_incomplete_sasl_settings_fail_with_the_fix(properties, message):
    settings = load_settings(
        environ={},
        overrides={"kafka": {"security": {"protocol": "SASL_SSL"}, "properties": properties}},
    )
    with pytest.raises(ConfigurationError, match=message):
        settings.kafka.check_security()


def test_warned_keys_are_logged_when_the_application_prepares(caplog):
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "streams": {"application-id": "x"},
                "properties": {"max.block.ms": 1, "spring.json.remove.type.headers": True},
            }
        },
    )
    with caplog.at_level(logging.WARNING, "kafkaboot.application"):
        KafkaBootApplication(settings=settings).prepare()
    logged = caplog.text
    assert "kafka.streams.* is ignored: Kafka Streams is a Java library" in logged
    assert "kafka.properties.max.block.ms is ignored" in logged
    assert "kafka.properties.spring.json.remove.type.headers is ignored" in logged


def test_a_bundle_is_resolved_into_its_stores(tmp_path, security_files):
    path = tmp_path / "application.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            spring:
              ssl:
                bundle:
                  jks:
                    client:
                      truststore:
                        location: file:{security_files.truststore_jks}
                        password: {STORE_PASSWORD}
                      keystore:
                        location: file:{security_files.keystore_p12}
                        password: {STORE_PASSWORD}
                        type: PKCS12
                      options:
                        enabled-protocols: [TLSv1.3]
                  pem:
                    consumer:
                      truststore:
                        certificate: file:{security_files.ca_pem}
                      keystore:
                        certificate: file:{security_files.client_cert_pem}
                        private-key: {security_files.client_key_encrypted_pem}
                        private-key-password: {KEY_PASSWORD}
              kafka:
                security:
                  protocol: SSL
                ssl:
                  bundle: client
                consumer:
                  ssl:
                    bundle: consumer
            """
        )
    )
    settings = load_settings(path, environ={})
    producer = settings.kafka.security_properties(settings.kafka.producer)
    assert producer["ssl.truststore.location"] == f"file:{security_files.truststore_jks}"
    assert producer["ssl.keystore.type"] == "PKCS12"
    assert producer["ssl.enabled.protocols"] == "TLSv1.3"
    context = settings.kafka.producer_kwargs()["ssl_context"]
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    consumer = settings.kafka.security_properties(settings.kafka.consumer)
    assert consumer["ssl.truststore.type"] == "PEM"
    assert "BEGIN CERTIFICATE" in consumer["ssl.keystore.certificate.chain"]
    assert settings.kafka.consumer_kwargs()["ssl_context"].get_ca_certs()
    settings.kafka.check_security()
    for secret in (STORE_PASSWORD, KEY_PASSWORD):
        assert secret not in repr(settings)


def test_an_undefined_bundle_names_those_defined():
    with pytest.raises(ConfigurationError, match=r"kafka.ssl.bundle 'nope'.*defined: client"):
        load_settings(
            environ={},
            overrides={
                "ssl": {"bundle": {"jks": {"client": {}}}},
                "kafka": {"ssl": {"bundle": "nope"}},
            },
        )


def test_a_listeners_own_security_properties_reach_its_consumers():
    settings = load_settings(environ={}, overrides={"kafka": {"consumer": {"group-id": "g"}}})
    endpoint = ListenerEndpoint(
        handler=lambda value: None,
        topics=("t",),
        properties={
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
            'required username="listener" password="scram-pw";',
        },
    )
    kwargs = effective_settings(endpoint, settings, None).consumer_kwargs
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "listener",
    )


def test_kafkaboots_user_and_password_go_with_a_scram_mechanism_from_properties():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "security": {"protocol": "SASL_SSL", "sasl": {"username": "u", "password": "p"}},
                "properties": {"sasl.mechanism": "SCRAM-SHA-512"},
            }
        },
    )
    kwargs = settings.kafka.admin_kwargs()
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == ("SCRAM-SHA-512", "u")


def test_a_jks_trust_store_without_a_password_is_read(security_files):
    from kafkaboot.security.stores import read_trust_store

    pem = read_trust_store(
        location=str(security_files.truststore_jks),
        password=None,
        type_="JKS",
        certificates=None,
        setting="ssl.truststore",
    )
    assert pem == security_files.ca_pem.read_text()


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({"sasl.login.refresh.window.factor": 0.3}, "between 0.5 and 1.0"),
        ({"sasl.login.connect.timeout.ms": "10s"}, "sasl.login.connect.timeout.ms"),
        ({"security.protocol": "TLS"}, "expected one of PLAINTEXT"),
    ],
)
def test_bad_security_values_fail_when_the_configuration_loads(properties, problem):
    with pytest.raises(ConfigurationError, match=problem):
        load_settings(environ={}, overrides={"kafka": {"properties": properties}})


def test_old_and_empty_tls_versions_in_enabled_protocols_are_passed_over():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "security": {"protocol": "SSL"},
                "properties": {"ssl.enabled.protocols": "TLSv1.2,TLSv1.1,"},
            }
        },
    )
    assert settings.kafka.consumer_kwargs()["ssl_context"].maximum_version is (
        ssl.TLSVersion.TLSv1_2
    )


def test_a_java_login_callback_handler_is_named_with_what_works():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "security": {"protocol": "SASL_SSL"},
                "properties": {
                    "sasl.mechanism": "OAUTHBEARER",
                    "sasl.login.callback.handler.class": "io.strimzi.kafka.oauth.client."
                    "JaasClientOauthLoginCallbackHandler",
                },
            }
        },
    )
    with pytest.raises(ConfigurationError, match="is a Java class a Python service cannot run"):
        settings.kafka.check_security()
