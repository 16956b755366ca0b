"""One :class:`ssl.SSLContext` from the stores that were read at startup.

:meth:`ssl.SSLContext.load_cert_chain` reads only files, so a client key taken from a PKCS12
or JKS store is handed to it through an in-memory file (``memfd`` on Linux) and never touches
the disk; elsewhere a private temporary file is used and removed at once.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator

from kafkaboot.errors import ConfigurationError
from kafkaboot.security.stores import KeyMaterial

__all__ = ["build_ssl_context"]

_VERSIONS = {
    "TLSV1.2": ssl.TLSVersion.TLSv1_2,
    "TLSV1.3": ssl.TLSVersion.TLSv1_3,
}
"""Java's protocol names. As in the Java client, ``ssl.protocol: TLSv1.2`` caps the version at
1.2, while ``TLSv1.3`` (Kafka's default) and ``TLS`` still fall back to 1.2 for an older broker;
``ssl.enabled.protocols`` narrows the versions offered."""


def _version(name: str, setting: str) -> ssl.TLSVersion | None:
    upper = name.strip().upper()
    if upper in {"TLS", "TLSV1", "TLSV1.1"}:
        return None  # TLS 1.0 and 1.1 are refused by OpenSSL's defaults here, as by Java's.
    if upper not in _VERSIONS:
        raise ConfigurationError(
            f"{setting}: {name!r} is not supported; use TLSv1.2, TLSv1.3 or TLS"
        )
    return _VERSIONS[upper]


@contextlib.contextmanager
def _memory_file(text: str) -> Iterator[str]:
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kafkaboot-client-key", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="kafkaboot-tls-") as directory:
        path = os.path.join(directory, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path


def build_ssl_context(
    *,
    trusted: str | None,
    key: KeyMaterial | None,
    protocol: str | None = None,
    enabled_protocols: list[str] | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context that trusts ``trusted`` (PEM; ``None``: the system's CAs) and, for
    mutual TLS, presents ``key``.

    Raises:
        ConfigurationError: the protocol is unknown, or the key does not match its certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=trusted)
    capped = bool(protocol) and _version(protocol or "", "ssl.protocol") is ssl.TLSVersion.TLSv1_2
    versions = [_version(name, "ssl.enabled.protocols") for name in enabled_protocols or []]
    chosen = [v for v in versions if v is not None]
    if chosen:
        context.minimum_version = min(chosen)
        context.maximum_version = max(chosen)
    if capped:
        context.minimum_version = min(context.minimum_version, ssl.TLSVersion.TLSv1_2)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    if not check_hostname:
        # Java's ssl.endpoint.identification.algorithm="" still checks the chain.
        context.verify_mode = ssl.CERT_REQUIRED
    if key is not None:
        with _memory_file(key.certificate_chain + key.private_key) as path:
            try:
                context.load_cert_chain(path)
            except ssl.SSLError as exc:
                raise ConfigurationError(
                    "the client key does not match its certificate (or is not a key "
                    f"OpenSSL reads): {exc.reason}; check the key store"
                ) from exc
    return context
