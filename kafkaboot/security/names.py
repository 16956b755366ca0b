"""The names the security settings share: protocols, mechanisms, and the Kafka property names
kafkaboot reads (with a few of its own for what Kafka's names cannot say)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "BUNDLE",
    "KEY_LOCATION",
    "MECHANISMS",
    "PASSWORD",
    "PROTOCOLS",
    "SECURITY_PROPERTIES",
    "TOKEN_PROVIDER",
    "USERNAME",
    "text",
]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")

KEY_LOCATION = "kafkaboot.ssl.key.location"
"""The PEM private key file of ``kafka.security.ssl.key-location`` (Kafka's PEM key store is
one file; kafkaboot also takes the key apart from the certificate)."""
TOKEN_PROVIDER = "kafkaboot.sasl.oauthbearer.token.provider"  # noqa: S105 - a key name.
"""An aiokafka token provider by import path (``kafka.security.sasl.token-provider``)."""
USERNAME = "kafkaboot.sasl.username"
PASSWORD = "kafkaboot.sasl.password"  # noqa: S105 - a key name.
"""``kafka.security.sasl.username``/``password``: the PLAIN or SCRAM credentials when no
``sasl.jaas.config`` is given (the merged ``sasl.mechanism`` decides which)."""
BUNDLE = "kafkaboot.ssl.bundle"
"""A Spring Boot SSL bundle named by ``kafka.ssl.bundle`` that was not resolved."""

SECURITY_PROPERTIES: frozenset[str] = frozenset(
    {
        "security.protocol",
        "ssl.protocol",
        "ssl.enabled.protocols",
        "ssl.endpoint.identification.algorithm",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.type",
        "ssl.truststore.certificates",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.keystore.type",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
        "ssl.key.password",
        "sasl.mechanism",
        "sasl.jaas.config",
        "sasl.kerberos.service.name",
        "sasl.login.callback.handler.class",
        "sasl.oauthbearer.token.endpoint.url",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.client.credentials.client.id",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.login.refresh.window.factor",
        "sasl.login.connect.timeout.ms",
        "sasl.login.read.timeout.ms",
    }
)
"""The Kafka security properties kafkaboot honours."""


def text(props: Mapping[str, Any], key: str) -> str | None:
    """A setting as text (a ``SecretStr`` revealed), ``None`` when unset or empty."""
    value = props.get(key)
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    shown = str(value)
    return shown if shown != "" else None
