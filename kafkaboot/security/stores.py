"""Trust and key stores as Spring Boot reads them: PEM, PKCS12 and JKS, from ``file:`` URLs or
plain paths, or inline PEM text.

Every store is read once, at startup, into PEM text for :mod:`ssl`: a wrong password or an
unreadable file fails then, naming the setting and the file, not at the first connection.
PKCS12 and JKS need ``kafkaboot[security]`` (cryptography, pyjks).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kafkaboot.errors import ConfigurationError

__all__ = ["KeyMaterial", "StoreType", "read_key_store", "read_trust_store", "store_path"]

StoreType = Literal["PEM", "PKCS12", "JKS"]
_SPELLINGS = {
    "ssl.truststore.location": "kafka.ssl.trust-store-location or kafka.security.ssl.ca-location",
    "ssl.keystore.location": "kafka.ssl.key-store-location or "
    "kafka.security.ssl.certificate-location",
    "kafka.security.ssl.key-location": "",
}
"""Where a Kafka store setting may have come from, for error messages."""


def _named(setting: str) -> str:
    spelled = _SPELLINGS.get(setting)
    return f"{setting} ({spelled})" if spelled else setting


_INSTALL_HINT = "install kafkaboot[security] (pip install 'kafkaboot[security]')"


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """A client certificate chain and its private key, as PEM text (the key unencrypted:
    it lives only in memory, see :mod:`kafkaboot.security.context`)."""

    certificate_chain: str
    private_key: str = field(repr=False)


def store_path(location: str, setting: str) -> Path:
    """The file behind a Spring resource location (``file:/x``, ``file:///x`` or ``/x``).

    Raises:
        ConfigurationError: a ``classpath:`` (or other URL) location, or no such file.
    """
    text = location.strip()
    if text.startswith("classpath:"):
        raise ConfigurationError(
            f"{setting}: {text!r} is a Java classpath resource, which a Python service cannot "
            "read; give a file path (file:/etc/kafka/truststore.jks or /etc/kafka/truststore.jks)"
        )
    if text.startswith("file:"):
        text = text.removeprefix("file:")
        if text.startswith("//"):
            text = text[2:]
    elif "://" in text:
        raise ConfigurationError(
            f"{setting}: {text!r} is a URL kafkaboot does not read; give a file path"
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"{_named(setting)}: file {str(path)!r} does not exist or is not a file; give the path "
            "of the store (PEM, PKCS12 or JKS)"
        )
    return path


def store_type(given: str | None, path: Path | None) -> StoreType:
    """The store's type: as given, else from the file name, else JKS (Java's default)."""
    if given:
        name = given.strip().upper()
        if name in {"PKCS12", "P12", "PFX"}:
            return "PKCS12"
        if name in {"JKS", "PEM"}:
            return name  # type: ignore[return-value]
        raise ConfigurationError(
            f"store type {given!r} is not supported; use PEM, PKCS12 or JKS "
            "(convert others with keytool -importkeystore)"
        )
    suffix = path.suffix.lower() if path is not None else ""
    if suffix in {".p12", ".pfx", ".pkcs12"}:
        return "PKCS12"
    if suffix in {".pem", ".crt", ".cer", ".key"}:
        return "PEM"
    return "JKS"


def _read_bytes(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {str(path)!r}: {exc.strerror}") from exc


def _open(location: str, type_: str | None, setting: str) -> tuple[str, Path, bytes, StoreType]:
    """The store at ``location``: the setting's full name, its file, bytes and type."""
    name = f"{setting}.location"
    path = store_path(location, name)
    return name, path, _read_bytes(path, name), store_type(type_, path)


def _pkcs8(key: Any) -> str:
    """A private key object as unencrypted PKCS8 PEM (it stays in memory only)."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    return str(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode())


def _der_to_pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


def _wrong_password(setting: str, path: Path) -> ConfigurationError:
    return ConfigurationError(
        f"{setting}: cannot open {str(path)!r}: wrong password, or not a store of that type; "
        "check the store's password setting and type (PEM, PKCS12, JKS)"
    )


def _pkcs12(data: bytes, password: str | None, setting: str, path: Path) -> Any:
    try:
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting}: a PKCS12 store needs cryptography; {_INSTALL_HINT}"
        ) from exc
    try:
        return pkcs12.load_pkcs12(data, password.encode() if password else None)
    except ValueError as exc:
        raise _wrong_password(setting, path) from exc


def _jks(data: bytes, password: str | None, setting: str, path: Path) -> Any:
    try:
        import jks
    except ImportError as exc:
        raise ConfigurationError(f"{setting}: a JKS store needs pyjks; {_INSTALL_HINT}") from exc
    try:
        # No password: the store's integrity check is skipped, as Java does for a trust store.
        return jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except (jks.util.KeystoreSignatureException, jks.util.BadKeystoreFormatException) as exc:
        raise _wrong_password(setting, path) from exc


def _pem_certificates(text: str, setting: str) -> str:
    blocks = [
        block
        for block in text.split("-----END CERTIFICATE-----")
        if "-----BEGIN CERTIFICATE-----" in block
    ]
    if not blocks:
        raise ConfigurationError(
            f"{setting}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    return "".join(
        block[block.index("-----BEGIN CERTIFICATE-----") :] + "-----END CERTIFICATE-----\n"
        for block in blocks
    )


def read_trust_store(
    *,
    location: str | None,
    password: str | None,
    type_: str | None,
    certificates: str | None,
    setting: str,
) -> str | None:
    """The trusted certificates as PEM text, or ``None`` for the system's CAs.

    Raises:
        ConfigurationError: naming ``setting`` and the file when the store cannot be read.
    """
    if certificates:
        return _pem_certificates(certificates, f"{setting}.certificates")
    if not location:
        return None
    key, path, data, kind = _open(location, type_, setting)
    if kind == "PEM":
        return _pem_certificates(data.decode("utf-8", errors="replace"), key)
    if kind == "PKCS12":
        loaded = _pkcs12(data, password, key, path)
        certs = [c.certificate for c in loaded.additional_certs]
        if loaded.cert is not None:
            certs.append(loaded.cert.certificate)
        from cryptography.hazmat.primitives.serialization import Encoding

        pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in certs)
    else:
        store = _jks(data, password, key, path)
        pem = "".join(_der_to_pem(entry.cert) for entry in store.certs.values())
    if not pem:
        raise ConfigurationError(f"{key}: {str(path)!r} holds no trusted certificate")
    return pem


def _key_from_pem(text: str, password: str | None, setting: str) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if "PRIVATE KEY-----" not in text:
        raise ConfigurationError(
            f"{setting}: holds no PEM private key (-----BEGIN PRIVATE KEY-----); give the "
            "client's key"
        )
    encrypted = "ENCRYPTED" in text
    try:
        key = load_pem_private_key(
            text.encode(), password.encode() if password and encrypted else None
        )
    except TypeError as exc:  # Encrypted, and no password given.
        raise ConfigurationError(
            f"{setting}: the private key is encrypted; set its password (ssl.key.password, "
            "Spring: ssl.key-password)"
        ) from exc
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting}: cannot read the private key: wrong key password (ssl.key.password, "
            "Spring: ssl.key-password), or not a key OpenSSL reads"
        ) from exc
    return _pkcs8(key)


def _pkcs8_pem(der: bytes) -> str:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return _pkcs8(load_der_private_key(der, None))


def _jks_key(
    store: Any, key_password: str | None, store_password: str | None, setting: str, path: Path
) -> KeyMaterial:
    import jks

    entries = list(store.private_keys.values())
    if not entries:
        raise ConfigurationError(f"{setting}: {str(path)!r} holds no private key entry")
    entry = entries[0]
    for candidate in dict.fromkeys([key_password, store_password]):
        try:
            entry.decrypt(candidate or "")
            break
        except jks.util.DecryptionFailureException:
            continue
    else:
        raise ConfigurationError(
            f"{setting}: cannot decrypt the private key in {str(path)!r}: wrong key password; "
            "check key-password (Spring: ssl.key-password)"
        )
    chain = "".join(_der_to_pem(der) for _, der in entry.cert_chain)
    return KeyMaterial(chain, _pkcs8_pem(entry.pkey_pkcs8))


def read_key_store(
    *,
    location: str | None,
    password: str | None,
    type_: str | None,
    key_password: str | None,
    certificate_chain: str | None,
    key: str | None,
    setting: str,
) -> KeyMaterial | None:
    """The client certificate chain and key (mutual TLS), or ``None`` when none is set.

    Raises:
        ConfigurationError: naming ``setting`` and the file when the store cannot be read.
    """
    if certificate_chain or key:
        if not (certificate_chain and key):
            raise ConfigurationError(
                f"{setting}.certificate.chain and {setting}.key go together: set both"
            )
        return KeyMaterial(
            _pem_certificates(certificate_chain, f"{setting}.certificate.chain"),
            _key_from_pem(key, key_password, f"{setting}.key"),
        )
    if not location:
        return None
    name, path, data, kind = _open(location, type_, setting)
    if kind == "PEM":
        text = data.decode("utf-8", errors="replace")
        return KeyMaterial(_pem_certificates(text, name), _key_from_pem(text, key_password, name))
    if kind == "JKS":
        return _jks_key(_jks(data, password, name, path), key_password, password, name, path)
    from cryptography.hazmat.primitives.serialization import Encoding

    loaded = _pkcs12(data, password, name, path)
    if loaded.key is None or loaded.cert is None:
        raise ConfigurationError(f"{name}: {str(path)!r} holds no private key with a certificate")
    chain = [loaded.cert.certificate, *(c.certificate for c in loaded.additional_certs)]
    return KeyMaterial(
        "".join(cert.public_bytes(Encoding.PEM).decode() for cert in chain), _pkcs8(loaded.key)
    )
