"""Certificates and key stores for a secured local broker: a CA, a broker certificate for
127.0.0.1/localhost, a client certificate for mutual TLS, and the client-side files in every
format a Spring or Python client reads (PEM, PKCS12, JKS), plus a JWKS for OAUTHBEARER.

Everything is generated once per directory and reused, so a cluster stopped and started
again (``kafkaboot broker stop/start``) keeps the certificates its clients already trust.
The passwords are fixed and documented: these files are for local brokers and tests only.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkaboot.errors import BrokerError

__all__ = ["JWKS_KEY_ID", "KEY_PASSWORD", "STORE_PASSWORD", "SecurityFiles", "write_security_files"]

STORE_PASSWORD = "kafkaboot-store-pw"  # noqa: S105 - documented, for local brokers only.
"""Password of every PKCS12 and JKS store (and of the keys inside the PKCS12 key stores)."""
KEY_PASSWORD = "kafkaboot-key-pw"  # noqa: S105 - documented, for local brokers only.
"""Password of the private key inside ``keystore.jks`` and of ``client-encrypted.key``."""
JWKS_KEY_ID = "kafkaboot-test-key"
"""``kid`` of the OAUTHBEARER signing key in ``jwks.json``; tokens name it in their header."""
_COMPLETE = ".complete"
_VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class SecurityFiles:
    """Where the generated files of one directory are (see :func:`write_security_files`)."""

    directory: Path

    @property
    def ca_pem(self) -> Path:
        """The CA certificate (PEM) that signs the broker and client certificates."""
        return self.directory / "ca.pem"

    @property
    def client_cert_pem(self) -> Path:
        """The client certificate (PEM), for mutual TLS."""
        return self.directory / "client.pem"

    @property
    def client_key_pem(self) -> Path:
        """The client's private key, unencrypted PKCS#8 PEM."""
        return self.directory / "client.key"

    @property
    def client_key_encrypted_pem(self) -> Path:
        """The same key, encrypted PKCS#8 PEM, password :data:`KEY_PASSWORD`."""
        return self.directory / "client-encrypted.key"

    @property
    def truststore_p12(self) -> Path:
        """PKCS12 trust store holding the CA (a Java trusted-certificate entry, alias ``ca``)."""
        return self.directory / "truststore.p12"

    @property
    def keystore_p12(self) -> Path:
        """PKCS12 key store with the client key and its chain (alias ``client``)."""
        return self.directory / "keystore.p12"

    @property
    def truststore_jks(self) -> Path:
        """JKS trust store holding the CA (alias ``ca``)."""
        return self.directory / "truststore.jks"

    @property
    def keystore_jks(self) -> Path:
        """JKS key store with the client key (alias ``client``, key password
        :data:`KEY_PASSWORD`) and its chain."""
        return self.directory / "keystore.jks"

    @property
    def broker_keystore_p12(self) -> Path:
        """The broker's own PKCS12 key store (its certificate for 127.0.0.1 and localhost)."""
        return self.directory / "broker.p12"

    @property
    def jwks_json(self) -> Path:
        """The public key set the broker validates OAUTHBEARER tokens with."""
        return self.directory / "jwks.json"

    @property
    def oauth_signing_key(self) -> Path:
        """The RSA private key (PEM) whose public half is in :attr:`jwks_json`."""
        return self.directory / "oauth-signing.key"


def _name(common_name: str) -> Any:
    from cryptography.x509 import Name, NameAttribute
    from cryptography.x509.oid import NameOID

    return Name(
        [
            NameAttribute(NameOID.ORGANIZATION_NAME, "kafkaboot local broker"),
            NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(
    subject: str, key: Any, issuer: Any, issuer_key: Any, *, ca: bool, usages: list[Any]
) -> Any:
    """A certificate for ``key``, signed by ``issuer_key`` (``issuer`` ``None``: self-signed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A day back: a clock a little behind on the client still accepts it.
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    if subject == "localhost":
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwks(signing_key: Any) -> str:
    numbers = signing_key.public_key().public_numbers()
    key = {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": JWKS_KEY_ID,
        "n": _b64url(numbers.n),
        "e": _b64url(numbers.e),
    }
    return json.dumps({"keys": [key]}, indent=2)


def _jks(entry: Any) -> bytes:
    import jks

    return bytes(jks.KeyStore.new("jks", [entry]).saves(STORE_PASSWORD))


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def write_security_files(directory: str | os.PathLike[str]) -> SecurityFiles:
    """Generate the CA, certificates, stores and JWKS in ``directory``, or reuse those an
    earlier call wrote there.

    Raises:
        BrokerError: ``cryptography`` or ``pyjks`` is not installed (``kafkaboot[security]``).
    """
    files = SecurityFiles(Path(directory).absolute())
    if (files.directory / _COMPLETE).is_file():
        return files
    try:
        import jks
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
        from cryptography.x509.oid import ExtendedKeyUsageOID
    except ImportError as exc:
        raise BrokerError(
            f"a secured broker needs {exc.name} to write its certificates; install "
            "kafkaboot[security] (pip install 'kafkaboot[security]')"
        ) from exc
    if not hasattr(pkcs12, "serialize_java_truststore"):
        raise BrokerError(
            "writing a PKCS12 trust store Java accepts needs cryptography 45 or newer; "
            "upgrade it (pip install -U cryptography)"
        )
    files.directory.mkdir(parents=True, exist_ok=True)
    ca_key, broker_key, client_key, signing_key = (_rsa_key() for _ in range(4))
    ca = _certificate("kafkaboot test CA", ca_key, None, ca_key, ca=True, usages=[])
    broker = _certificate(
        "localhost",
        broker_key,
        ca,
        ca_key,
        ca=False,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    client = _certificate(
        "kafkaboot-client",
        client_key,
        ca,
        ca_key,
        ca=False,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    pkcs8 = serialization.PrivateFormat.PKCS8
    store_password = serialization.BestAvailableEncryption(STORE_PASSWORD.encode())
    _write(files.ca_pem, ca.public_bytes(pem))
    _write(files.client_cert_pem, client.public_bytes(pem) + ca.public_bytes(pem))
    _write(
        files.client_key_pem,
        client_key.private_bytes(pem, pkcs8, serialization.NoEncryption()),
        private=True,
    )
    _write(
        files.client_key_encrypted_pem,
        client_key.private_bytes(
            pem, pkcs8, serialization.BestAvailableEncryption(KEY_PASSWORD.encode())
        ),
        private=True,
    )
    _write(
        files.truststore_p12,
        pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca, b"ca")], store_password),
    )
    _write(
        files.keystore_p12,
        pkcs12.serialize_key_and_certificates(b"client", client_key, client, [ca], store_password),
        private=True,
    )
    _write(
        files.broker_keystore_p12,
        pkcs12.serialize_key_and_certificates(b"broker", broker_key, broker, [ca], store_password),
        private=True,
    )
    _write(files.truststore_jks, _jks(jks.TrustedCertEntry.new("ca", ca.public_bytes(der))))
    key_entry = jks.PrivateKeyEntry.new(
        "client",
        [client.public_bytes(der), ca.public_bytes(der)],
        client_key.private_bytes(der, pkcs8, serialization.NoEncryption()),
    )
    key_entry.encrypt(KEY_PASSWORD)
    _write(files.keystore_jks, _jks(key_entry), private=True)
    _write(
        files.oauth_signing_key,
        signing_key.private_bytes(pem, pkcs8, serialization.NoEncryption()),
        private=True,
    )
    _write(files.jwks_json, _jwks(signing_key).encode())
    (files.directory / _COMPLETE).write_text("written by kafkaboot.testing.certificates\n")
    return files
