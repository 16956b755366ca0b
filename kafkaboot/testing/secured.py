"""One secured local broker with everything a test needs to reach it: its listeners, every
certificate and store, the users and passwords, and a token server for OAUTHBEARER."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kafkaboot.errors import BrokerError
from kafkaboot.testing.broker import KafkaCluster
from kafkaboot.testing.certificates import KEY_PASSWORD, STORE_PASSWORD
from kafkaboot.testing.security import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
)
from kafkaboot.testing.token_server import TokenServer

__all__ = ["SecuredCluster", "start_secured_cluster"]

ALL_LISTENERS = ("sasl_ssl", "ssl", "sasl_plaintext")


@dataclass(frozen=True, slots=True)
class SecuredCluster:
    """A running secured cluster as clients see it. Passwords stay out of ``repr()``."""

    bootstrap_servers: str
    """The SASL_SSL listener (SCRAM-SHA-512/-256, PLAIN, OAUTHBEARER; a client certificate
    is checked when given)."""
    ssl_bootstrap_servers: str | None
    """The SSL listener: mutual TLS, a client certificate is required."""
    sasl_plaintext_bootstrap_servers: str | None
    """The SASL_PLAINTEXT listener (the same SASL users, no TLS)."""
    plaintext_bootstrap_servers: str
    """The PLAINTEXT listener the brokers use among themselves (loopback), e.g. to create
    topics without credentials."""
    ca_pem: Path
    client_cert_pem: Path
    """The client certificate, followed by the CA's."""
    client_key_pem: Path
    """Unencrypted PKCS#8."""
    client_key_encrypted_pem: Path
    """Encrypted PKCS#8, password :attr:`key_password`."""
    truststore_p12: Path
    keystore_p12: Path
    """Key password = :attr:`store_password` (as Java expects of PKCS12)."""
    truststore_jks: Path
    keystore_jks: Path
    """Key password :attr:`key_password`."""
    store_password: str = field(repr=False)
    """Of every PKCS12 and JKS store."""
    key_password: str = field(repr=False)
    """Of the key in ``keystore.jks`` and of ``client-encrypted.key``."""
    scram_mechanism: str
    """``SCRAM-SHA-512`` (the user exists for ``SCRAM-SHA-256`` too)."""
    scram_user: str
    scram_password: str = field(repr=False)
    plain_user: str
    plain_password: str = field(repr=False)
    token_endpoint_url: str
    """The OAuth 2.0 client-credentials endpoint whose tokens the broker accepts."""
    oauth_client_id: str
    oauth_client_secret: str = field(repr=False)
    token_server: TokenServer = field(repr=False)
    """For counting token requests and issuing short-lived or deliberately wrong tokens."""
    cluster: KafkaCluster = field(repr=False)

    @classmethod
    def of(cls, cluster: KafkaCluster, token_server: TokenServer) -> SecuredCluster:
        """The facts of a started ``cluster`` that has a SASL_SSL listener.

        Raises:
            BrokerError: the cluster has no SASL_SSL listener.
        """
        files = cluster.security_files
        if files is None or "SASL_SSL" not in cluster.security:
            raise BrokerError("a SecuredCluster needs a cluster started with security sasl_ssl")

        def listener(name: str) -> str | None:
            return cluster.bootstrap_servers_for(name) if name in cluster.security else None

        return cls(
            bootstrap_servers=cluster.bootstrap_servers_for("SASL_SSL"),
            ssl_bootstrap_servers=listener("SSL"),
            sasl_plaintext_bootstrap_servers=listener("SASL_PLAINTEXT"),
            plaintext_bootstrap_servers=cluster.bootstrap_servers_for("PLAINTEXT"),
            ca_pem=files.ca_pem,
            client_cert_pem=files.client_cert_pem,
            client_key_pem=files.client_key_pem,
            client_key_encrypted_pem=files.client_key_encrypted_pem,
            truststore_p12=files.truststore_p12,
            keystore_p12=files.keystore_p12,
            truststore_jks=files.truststore_jks,
            keystore_jks=files.keystore_jks,
            store_password=STORE_PASSWORD,
            key_password=KEY_PASSWORD,
            scram_mechanism="SCRAM-SHA-512",
            scram_user=SCRAM_USER,
            scram_password=SCRAM_PASSWORD,
            plain_user=PLAIN_USER,
            plain_password=PLAIN_PASSWORD,
            token_endpoint_url=token_server.token_endpoint_url,
            oauth_client_id=token_server.client_id,
            oauth_client_secret=token_server.client_secret,
            token_server=token_server,
            cluster=cluster,
        )


@contextmanager
def start_secured_cluster(
    data_dir: str | os.PathLike[str], *, timeout_s: float = 120.0
) -> Iterator[SecuredCluster]:
    """Start a one-node cluster with SASL_SSL, SSL and SASL_PLAINTEXT listeners and a token
    server signing with the key its broker trusts; stop both on exit.

    Raises:
        BrokerError: the broker did not start (see :meth:`KafkaCluster.start`).
    """
    cluster = KafkaCluster(data_dir, nodes=1, security=ALL_LISTENERS)
    cluster.start(timeout_s)
    try:
        files = cluster.security_files
        if files is None:  # Never: security= above; this tells the type checker.
            raise BrokerError("the secured cluster has no certificates")
        with TokenServer(files.oauth_signing_key, jwks=files.jwks_json) as token_server:
            yield SecuredCluster.of(cluster, token_server)
    finally:
        cluster.stop()
