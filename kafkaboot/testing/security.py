"""Secured listeners for the local broker: which protocols, which users, and the broker and
client settings that go with them.

A secured node keeps a PLAINTEXT listener on another loopback port for traffic between
brokers and for kafkaboot's own readiness and metadata questions; clients are meant for the
secured listeners. Every SASL listener offers SCRAM-SHA-512 and SCRAM-SHA-256 (user
:data:`SCRAM_USER`, stored in the cluster metadata when the storage is formatted), PLAIN (user
:data:`PLAIN_USER`, in the listener's JAAS line) and OAUTHBEARER (RS256 JWTs checked by
Kafka's ``OAuthBearerValidatorCallbackHandler`` against the ``jwks.json`` written beside the
certificates). The SSL listener requires a client certificate; SASL_SSL asks for one and
checks it when given. Users and passwords are fixed: these brokers are for development only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, cast, get_args

from kafkaboot.errors import BrokerError
from kafkaboot.testing.certificates import (
    JWKS_KEY_ID,
    KEY_PASSWORD,
    STORE_PASSWORD,
    SecurityFiles,
)
from kafkaboot.testing.node import BrokerNode

__all__ = [
    "OAUTH_AUDIENCE",
    "OAUTH_ISSUER",
    "PLAIN_PASSWORD",
    "PLAIN_USER",
    "SASL_MECHANISMS",
    "SCRAM_PASSWORD",
    "SCRAM_USER",
    "SecurityProtocol",
    "client_settings_yaml",
    "format_arguments",
    "jvm_options",
    "secured_properties",
    "security_protocols",
]

SecurityProtocol = Literal["SASL_SSL", "SSL", "SASL_PLAINTEXT"]
SCRAM_USER = "scramuser"
SCRAM_PASSWORD = "scram-secret"  # noqa: S105 - a documented password of a local test broker.
PLAIN_USER = "plainuser"
PLAIN_PASSWORD = "plain-secret"  # noqa: S105 - a documented password of a local test broker.
OAUTH_AUDIENCE = "kafka"
"""The ``aud`` the broker expects in OAUTHBEARER tokens."""
OAUTH_ISSUER = "kafkaboot-token-server"
"""The ``iss`` the broker expects in OAUTHBEARER tokens."""
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "OAUTHBEARER")
_LOGIN_MODULES = {
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule required "
    f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";',
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
}
_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


def security_protocols(value: str | Iterable[str] | None) -> tuple[SecurityProtocol, ...]:
    """``"sasl_ssl"`` or ``["sasl_ssl", "ssl"]`` as protocol names, first one first.

    Raises:
        BrokerError: an unknown name, or one given twice.
    """
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else list(value)
    known = get_args(SecurityProtocol)
    protocols: list[SecurityProtocol] = []
    for name in names:
        upper = name.strip().upper()
        if upper not in known:
            raise BrokerError(
                f"security {name!r} is not known; use one of "
                f"{', '.join(k.lower() for k in known)} (or none for PLAINTEXT)"
            )
        if upper in protocols:
            raise BrokerError(f"security {name!r} is given twice; name each listener once")
        protocols.append(cast(SecurityProtocol, upper))
    return tuple(protocols)


def secured_properties(node: BrokerNode, files: SecurityFiles) -> dict[str, str]:
    """The ``server.properties`` lines that give ``node`` its secured listeners."""
    if node.internal_port is None:
        raise BrokerError(f"node {node.node_id} has no internal port; it is not a secured node")
    protocols = list(node.secured_ports)
    client = ",".join(f"{p}://127.0.0.1:{port}" for p, port in node.secured_ports.items())
    properties = {
        "listeners": f"{client},PLAINTEXT://127.0.0.1:{node.internal_port},"
        f"CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"{client},PLAINTEXT://127.0.0.1:{node.internal_port}",
        "listener.security.protocol.map": ",".join(
            [*(f"{p}:{p}" for p in protocols), "PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        ),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(files.broker_keystore_p12),
        "ssl.keystore.password": STORE_PASSWORD,
        "ssl.key.password": STORE_PASSWORD,
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(files.truststore_p12),
        "ssl.truststore.password": STORE_PASSWORD,
        # Mutual TLS on the SSL listener; on SASL_SSL a client certificate is checked when
        # given, so a client's key store is exercised, while SASL decides who it is.
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.sasl_ssl.ssl.client.auth": "requested",
    }
    sasl = [p for p in protocols if p.startswith("SASL")]
    if sasl:
        properties |= {
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "sasl.oauthbearer.jwks.endpoint.url": files.jwks_json.as_uri(),
            "sasl.oauthbearer.expected.audience": OAUTH_AUDIENCE,
            "sasl.oauthbearer.expected.issuer": OAUTH_ISSUER,
        }
        for protocol in sasl:
            prefix = f"listener.name.{protocol.lower()}"
            for mechanism, module in _LOGIN_MODULES.items():
                properties[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = module
            properties[f"{prefix}.oauthbearer.sasl.server.callback.handler.class"] = _VALIDATOR
    return properties


def format_arguments(protocols: Sequence[str]) -> list[str]:
    """``kafka-storage format`` arguments that store the SCRAM user in the new cluster."""
    if not any(p.startswith("SASL") for p in protocols):
        return []
    arguments = []
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        arguments += ["--add-scram", f"{mechanism}=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"]
    return arguments


def jvm_options(files: SecurityFiles) -> list[str]:
    """System properties a secured node's JVM needs: since Kafka 4.0 the OAUTHBEARER
    validator reads only URLs and files listed in these allow-lists (empty by default)."""
    return [
        f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={files.jwks_json.as_uri()}",
        f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={files.jwks_json}",
    ]


def _client_section(
    bootstrap_servers: str, protocol: SecurityProtocol, files: SecurityFiles
) -> dict[str, Any]:
    security: dict[str, Any] = {"protocol": protocol}
    if protocol.startswith("SASL"):
        security["sasl"] = {
            "mechanism": "SCRAM-SHA-512",
            "username": SCRAM_USER,
            "password": SCRAM_PASSWORD,
        }
    if protocol == "SASL_SSL":
        security["ssl"] = {"ca-location": str(files.ca_pem)}
    elif protocol == "SSL":
        security["ssl"] = {
            "ca-location": str(files.ca_pem),
            "certificate-location": str(files.client_cert_pem),
            "key-location": str(files.client_key_pem),
        }
    return {"kafka": {"bootstrap-servers": bootstrap_servers, "security": security}}


def client_settings_yaml(
    bootstrap_servers: str, protocol: SecurityProtocol, files: SecurityFiles
) -> str:
    """A ``kafka:`` block for ``application.yml`` that connects to the ``protocol``
    listener, followed by comments naming the other users and the Java-style stores."""
    import yaml

    block = yaml.safe_dump(
        _client_section(bootstrap_servers, protocol, files), sort_keys=False, width=1000
    )
    lines = [
        f"# Client settings for the {protocol} listener, for application.yml:",
        block.rstrip("\n"),
        f"# Users: SCRAM-SHA-512/-256 {SCRAM_USER} / {SCRAM_PASSWORD}; "
        f"PLAIN {PLAIN_USER} / {PLAIN_PASSWORD};",
        f"#   OAUTHBEARER: RS256 JWTs signed with {files.oauth_signing_key} (kid "
        f"{JWKS_KEY_ID}, aud {OAUTH_AUDIENCE}, iss {OAUTH_ISSUER}), checked against "
        f"{files.jwks_json}",
        f"# The CA and client certificate as stores, store password {STORE_PASSWORD}:",
        f"#   trust store: {files.truststore_p12} (PKCS12), {files.truststore_jks} (JKS)",
        f"#   key store:   {files.keystore_p12} (PKCS12, key password = store password), "
        f"{files.keystore_jks} (JKS, key password {KEY_PASSWORD})",
        f"#   PEM: {files.ca_pem}, {files.client_cert_pem}, {files.client_key_pem} "
        f"({files.client_key_encrypted_pem}: encrypted, password {KEY_PASSWORD})",
    ]
    return "\n".join(lines) + "\n"
