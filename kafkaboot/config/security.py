"""Security settings: Spring Boot's ``spring.kafka.ssl`` / ``jaas`` / ``security`` sections, per
client too, and kafkaboot's own ``kafka.security.*`` (PEM files and SASL credentials).

Each section turns itself into Kafka property names (``ssl.truststore.location``…), as Spring
Boot's ``buildProperties`` does, so that typed keys and raw ``properties`` merge key by key and
:mod:`kafkaboot.security.client` reads one map. Secrets are ``SecretStr``: masked in ``repr``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, SecretStr

from kafkaboot.config.section import SecretMap, Section, drop_none, uppercase
from kafkaboot.security.jaas import KERBEROS, OAUTHBEARER, jaas_line
from kafkaboot.security.names import BUNDLE, KEY_LOCATION, PASSWORD, TOKEN_PROVIDER, USERNAME

__all__ = [
    "ClientSecurityProperties",
    "JaasProperties",
    "PemSslProperties",
    "SaslProperties",
    "SecurityProperties",
    "SslProperties",
]

Location = Annotated[
    str, BeforeValidator(lambda v: os.fspath(v) if isinstance(v, os.PathLike) else v)
]
"""A file: a path, or a Spring resource location (``file:/etc/kafka/truststore.jks``)."""
Protocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(uppercase)
]


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


class SslProperties(Section):
    """``kafka.ssl.*`` (Spring Boot's ``spring.kafka.ssl``; also under ``consumer``,
    ``producer`` and ``admin``): trust and key stores as PEM, PKCS12 or JKS, from ``file:``
    or plain paths; inline PEM text. The type defaults from the file name, else JKS."""

    key_password: SecretStr | None = None
    """Password of the private key in the key store (or of ``key-store-key``)."""
    key_store_certificate_chain: str | None = None
    """PEM text: the client's certificate chain (with ``key-store-key``)."""
    key_store_key: SecretStr | None = None
    """PEM text: the client's private key (with ``key-store-certificate-chain``)."""
    key_store_location: Location | None = None
    key_store_password: SecretStr | None = None
    key_store_type: str | None = None
    """``PEM``, ``PKCS12`` or ``JKS``."""
    trust_store_certificates: str | None = None
    """PEM text: the certificates that sign the brokers' certificates."""
    trust_store_location: Location | None = None
    trust_store_password: SecretStr | None = None
    trust_store_type: str | None = None
    """``PEM``, ``PKCS12`` or ``JKS``."""
    protocol: str | None = None
    """``TLSv1.3`` (Kafka's default), ``TLSv1.2`` (at most 1.2) or ``TLS``."""
    enabled_protocols: list[str] | None = None
    """The TLS versions offered (Kafka's ``ssl.enabled.protocols``; also a bundle's
    ``options.enabled-protocols``)."""
    bundle: str | None = None
    """A Spring Boot SSL bundle, ``spring.ssl.bundle.{jks,pem}.<name>``, instead of the
    store keys above."""

    def kafka_properties(self) -> dict[str, Any]:
        return drop_none(
            {
                BUNDLE: self.bundle,
                "ssl.key.password": self.key_password,
                "ssl.keystore.certificate.chain": self.key_store_certificate_chain,
                "ssl.keystore.key": self.key_store_key,
                "ssl.keystore.location": self.key_store_location,
                "ssl.keystore.password": self.key_store_password,
                "ssl.keystore.type": self.key_store_type,
                "ssl.truststore.certificates": self.trust_store_certificates,
                "ssl.truststore.location": self.trust_store_location,
                "ssl.truststore.password": self.trust_store_password,
                "ssl.truststore.type": self.trust_store_type,
                "ssl.protocol": self.protocol,
                "ssl.enabled.protocols": ",".join(self.enabled_protocols)
                if self.enabled_protocols
                else None,
            }
        )


class PemSslProperties(Section):
    """``kafka.security.ssl.*``: kafkaboot's PEM-file spelling (``kafka.ssl.*`` also reads
    PKCS12 and JKS stores)."""

    ca_location: Location | None = None
    """CA bundle that signs the brokers' certificates (Spring: trust store)."""
    certificate_location: Location | None = None
    """Client certificate, for mutual TLS."""
    key_location: Location | None = None
    """Client private key, for mutual TLS."""
    key_password: SecretStr | None = None
    check_hostname: bool = True

    def kafka_properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        if self.ca_location is not None:
            props |= {"ssl.truststore.location": self.ca_location, "ssl.truststore.type": "PEM"}
        if self.certificate_location is not None or self.key_location is not None:
            props |= drop_none(
                {
                    "ssl.keystore.location": self.certificate_location,
                    "ssl.keystore.type": "PEM",
                    KEY_LOCATION: self.key_location,
                    "ssl.key.password": self.key_password,
                }
            )
        if not self.check_hostname:
            props["ssl.endpoint.identification.algorithm"] = ""
        return props


class SaslProperties(Section):
    """``kafka.security.sasl.*``: kafkaboot's spelling of the SASL settings (Spring users set
    ``sasl.mechanism`` and ``sasl.jaas.config`` in ``properties``, or ``jaas.*``)."""

    mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"] | None,
        BeforeValidator(uppercase),
    ] = None
    username: str | None = None
    password: SecretStr | None = None
    kerberos_service_name: str | None = None
    token_provider: str | None = None
    """OAUTHBEARER: an aiokafka ``AbstractTokenProvider`` by import path
    (``package.module:ClassOrObject``), instead of the built-in client-credentials one."""

    def kafka_properties(self) -> dict[str, Any]:
        return drop_none(
            {
                "sasl.mechanism": self.mechanism,
                "sasl.kerberos.service.name": self.kerberos_service_name,
                TOKEN_PROVIDER: self.token_provider,
                USERNAME: self.username,
                PASSWORD: self.password,
            }
        )


class JaasProperties(Section):
    """``kafka.jaas.*`` (Spring Boot's ``spring.kafka.jaas``): the login module, as Spring's
    ``KafkaJaasLoginModuleInitializer`` installs it; a ``sasl.jaas.config`` property wins."""

    enabled: bool = False
    login_module: str = KERBEROS
    control_flag: Annotated[
        Literal["required", "requisite", "sufficient", "optional"],
        BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
    ] = "required"
    options: SecretMap = {}  # noqa: RUF012 - pydantic copies defaults.

    def kafka_properties(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        line = jaas_line(self.login_module, self.control_flag, dict(self.options))
        props: dict[str, Any] = {"sasl.jaas.config": SecretStr(line)}
        if self.login_module == OAUTHBEARER:
            props["sasl.mechanism"] = "OAUTHBEARER"
        return props


class ClientSecurityProperties(Section):
    """``kafka.{consumer,producer,admin}.security.*``: one client's protocol."""

    protocol: Protocol | None = None

    def kafka_properties(self) -> dict[str, Any]:
        return drop_none({"security.protocol": self.protocol})


class SecurityProperties(Section):
    """``kafka.security.*``: the protocol (Spring's ``spring.kafka.security.protocol``) and
    kafkaboot's PEM and SASL spellings."""

    protocol: Protocol = "PLAINTEXT"
    ssl: PemSslProperties = PemSslProperties()
    sasl: SaslProperties = SaslProperties()

    def kafka_properties(self) -> dict[str, Any]:
        props = self.ssl.kafka_properties() | self.sasl.kafka_properties()
        if "protocol" in self.model_fields_set or self.protocol != "PLAINTEXT":
            props["security.protocol"] = self.protocol
        return props
