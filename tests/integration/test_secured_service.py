"""A secured Spring Boot ``application.yml`` runs a kafkaboot service unchanged against the
secured local broker: SASL_SSL with trust and key stores of each type, JAAS SCRAM or PLAIN,
JSON with type headers, manual_immediate acks, dead letters and ``kafkaboot dlt replay``."""

import asyncio
import gc
import logging
import time
from typing import Annotated

import pytest
import yaml
from pydantic import BaseModel

from kafkaboot import KafkaBootApplication
from kafkaboot.cli import main as cli_main
from kafkaboot.errors import ConfigurationError, KafkaBootError
from kafkaboot.listener import Header
from kafkaboot.listener.acks import Acknowledgment

from .kafka_helpers import create_topic, read_all, unique, wait_for

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    id: str
    amount: int


class Refund(BaseModel):
    order_id: str


def stores(secured, kind, tmp_path):
    """Spring's ``ssl:`` keys for a trust store and a key store of ``kind``."""
    if kind == "jks-trust-pkcs12-key":  # The set-up the issue names.
        return {
            "trust-store-location": f"file:{secured.truststore_jks}",
            "trust-store-password": secured.store_password,
            "trust-store-type": "JKS",
            "key-store-location": f"file:{secured.keystore_p12}",
            "key-store-password": secured.store_password,
            "key-store-type": "PKCS12",
        }
    if kind == "pkcs12-trust-jks-key":
        return {
            "trust-store-location": str(secured.truststore_p12),
            "trust-store-password": secured.store_password,
            "key-store-location": str(secured.keystore_jks),
            "key-store-password": secured.store_password,
            "key-password": secured.key_password,
        }
    combined = tmp_path / "client-keystore.pem"  # Kafka's PEM key store: key and chain.
    combined.write_text(
        secured.client_key_encrypted_pem.read_text() + secured.client_cert_pem.read_text()
    )
    return {
        "trust-store-location": str(secured.ca_pem),
        "trust-store-type": "PEM",
        "key-store-location": str(combined),
        "key-store-type": "PEM",
        "key-password": secured.key_password,
    }


def spring_yaml(secured, ssl, *, login="scram", group, trust_password=None):
    if trust_password is not None:
        ssl = ssl | {"trust-store-password": trust_password}
    if login == "scram":
        module = "org.apache.kafka.common.security.scram.ScramLoginModule"
        mechanism, user, password = "SCRAM-SHA-512", secured.scram_user, secured.scram_password
    else:
        module = "org.apache.kafka.common.security.plain.PlainLoginModule"
        mechanism, user, password = "PLAIN", secured.plain_user, secured.plain_password
    spring_kafka = {
        "bootstrap-servers": secured.bootstrap_servers,
        "security": {"protocol": "SASL_SSL"},
        "ssl": ssl,
        "jaas": {
            "enabled": True,
            "login-module": module,
            "options": {"username": user, "password": password},
        },
        "properties": {"sasl.mechanism": mechanism},
        "producer": {
            "key-serializer": "org.apache.kafka.common.serialization.StringSerializer",
            "value-serializer": "org.springframework.kafka.support.serializer.JsonSerializer",
            "properties": {"spring.json.add.type.headers": True},
        },
        "consumer": {
            "group-id": group,
            "auto-offset-reset": "earliest",
            "key-deserializer": "org.apache.kafka.common.serialization.StringDeserializer",
            "value-deserializer": "org.springframework.kafka.support.serializer.JsonDeserializer",
            "properties": {"spring.json.trusted.packages": "*"},
        },
        "listener": {"ack-mode": "MANUAL_IMMEDIATE", "log-container-config": True},
    }
    # kafkaboot's own addition: the error handler a Spring service builds in Java code.
    error_handler = {"backoff": {"max-attempts": 1}, "dead-letter": {"enabled": True}}
    document = {
        "spring": {"kafka": spring_kafka},
        "kafka": {"listener": {"error-handler": error_handler}},
    }
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize("kind", ["jks-trust-pkcs12-key", "pkcs12-trust-jks-key", "pem"])
async def test_a_secured_spring_service_sends_receives_dead_letters_and_replays(
    secured_cluster, tmp_path, monkeypatch, caplog, capsys, kind
):
    secured = secured_cluster
    topic = await create_topic(secured.plaintext_bootstrap_servers, partitions=2)
    config = tmp_path / "application.yml"
    login = "plain" if kind == "pkcs12-trust-jks-key" else "scram"
    config.write_text(
        spring_yaml(secured, stores(secured, kind, tmp_path), login=login, group=unique("g"))
    )
    monkeypatch.chdir(tmp_path)
    handled = []
    fixed = False
    app = KafkaBootApplication(config)

    @app.registry.listener(topic)
    async def on_message(
        message: Order | Refund, ack: Acknowledgment, type_id: Annotated[str, Header("__TypeId__")]
    ) -> None:
        if isinstance(message, Order) and message.id == "broken" and not fixed:
            raise RuntimeError("a bug, fixed later")
        handled.append((type(message).__name__, type_id))
        ack.acknowledge()

    with caplog.at_level(logging.INFO, "kafkaboot.listener"):
        async with app:
            await app.template.send(topic, Order(id="o-1", amount=5), key="o-1")
            await app.template.send(topic, Refund(order_id="o-1"), key="o-1")
            await app.template.send(topic, Order(id="broken", amount=1), key="b")
            await wait_for(lambda: len(handled) == 2, message="the order and the refund")
            dead = await read_all(secured.plaintext_bootstrap_servers, f"{topic}-dlt", 1)
            assert (
                dict(dead[0].headers)["kafka_dlt-exception-cause-fqcn"] == b"builtins.RuntimeError"
            )
            fixed = True
            code = await asyncio.to_thread(cli_main, ["dlt", "replay", f"{topic}-dlt"])
            assert code == 0
            await wait_for(lambda: len(handled) == 3, message="the replayed order")
    assert [name for name, _ in handled] == ["Order", "Refund", "Order"]
    assert handled[0][1] == f"{__name__}.Order"
    assert "re-published 1 dead letter(s)" in capsys.readouterr().out
    logged = caplog.text
    assert f"listener {on_message.__module__}" in logged or "starts with" in logged
    for secret in (
        secured.store_password,
        secured.key_password,
        secured.scram_password,
        secured.plain_password,
    ):
        assert secret not in logged


async def test_a_wrong_store_password_fails_startup_at_once_naming_the_file(
    secured_cluster, tmp_path
):
    secured = secured_cluster
    config = tmp_path / "application.yml"
    ssl = stores(secured, "jks-trust-pkcs12-key", tmp_path)
    config.write_text(spring_yaml(secured, ssl, group=unique("g"), trust_password="wrong-pw"))
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        async with KafkaBootApplication(config):
            pass
    assert time.monotonic() - started < 10
    assert str(secured.truststore_jks) in str(caught.value)
    assert "wrong-pw" not in str(caught.value)


async def test_a_wrong_sasl_password_fails_startup_with_an_authentication_error(
    secured_cluster, tmp_path
):
    secured = secured_cluster
    config = tmp_path / "application.yml"
    text = spring_yaml(secured, stores(secured, "pem", tmp_path), group=unique("g"))
    assert secured.scram_password in text
    config.write_text(text.replace(secured.scram_password, "guessed"))
    started = time.monotonic()
    with pytest.raises(KafkaBootError) as caught:
        async with KafkaBootApplication(config, startup_deadline=60):
            pass
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "uthenticat" in message
    assert "guessed" not in message
    gc.collect()  # A client left open by the failed start would warn here, not in a later test.


def oauth_settings(secured, *, secret):
    return {
        "kafka": {
            "bootstrap-servers": secured.bootstrap_servers,
            "security": {"protocol": "SASL_SSL"},
            "ssl": {"trust-store-location": str(secured.ca_pem)},
            "properties": {
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.jaas.config": (
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                    f'required clientId="{secured.oauth_client_id}" clientSecret="{secret}" '
                    'scope="kafka";'
                ),
                "sasl.login.callback.handler.class": (
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
                ),
                "sasl.oauthbearer.token.endpoint.url": secured.token_endpoint_url,
            },
            "consumer": {"auto-offset-reset": "earliest"},
        }
    }


async def test_oauthbearer_clients_share_one_token_from_the_endpoint(secured_cluster):
    secured = secured_cluster
    topic = await create_topic(secured.plaintext_bootstrap_servers)
    # Another secret than other tests': providers are shared per set of credentials.
    issued_before = secured.token_server.issued
    app = KafkaBootApplication(
        overrides=oauth_settings(secured, secret=secured.oauth_client_secret)
    )
    received = []

    @app.registry.listener(topic, group_id=unique("g"))
    async def on_value(value: str) -> None:
        received.append(value)

    async with app:
        await app.template.send(topic, "over OAUTHBEARER")
        await wait_for(lambda: received == ["over OAUTHBEARER"], message="the record")
    # The template, the admin client and the listener's consumer: one token among them.
    assert secured.token_server.issued - issued_before <= 1


async def test_a_refused_client_secret_fails_startup_naming_the_endpoint(secured_cluster):
    secured = secured_cluster
    started = time.monotonic()
    with pytest.raises(KafkaBootError) as caught:
        async with KafkaBootApplication(overrides=oauth_settings(secured, secret="guessed")):
            pass
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "HTTP 401" in message
    assert secured.token_endpoint_url in message
    assert "guessed" not in message
    gc.collect()  # A client left open by the failed start would warn here, not in a later test.
