"""Spring Boot SSL bundles: ``spring.ssl.bundle.{jks,pem}.<name>``, named by
``spring.kafka.ssl.bundle`` (and the per-client ``ssl.bundle``).

A bundle is resolved into the ``kafka.ssl`` keys it stands for when the settings are
validated, so the rest of kafkaboot sees ordinary trust and key stores.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from kafkaboot.config.section import Section
from kafkaboot.config.security import Location, SslProperties
from kafkaboot.errors import ConfigurationError
from kafkaboot.security.stores import store_path

__all__ = ["BundleProperties", "SslBundlesProperties", "resolve_bundle"]


class JksStore(Section):
    location: Location | None = None
    password: SecretStr | None = None
    type: str | None = None
    provider: str | None = None
    """A Java security provider: accepted, and means nothing here."""


class PemStore(Section):
    certificate: str | None = None
    """A location (``file:``/path) or the PEM text itself."""
    private_key: SecretStr | None = None
    """A location or the PEM text of the private key (key store only)."""
    private_key_password: SecretStr | None = None
    type: str | None = None


class BundleKey(Section):
    alias: str | None = None
    """Accepted; kafkaboot takes a store's first private key entry."""
    password: SecretStr | None = None


class BundleOptions(Section):
    ciphers: list[str] | None = None
    """Java cipher suite names: accepted, OpenSSL's defaults apply."""
    enabled_protocols: list[str] | None = None


class _Bundle(Section):
    key: BundleKey = BundleKey()
    options: BundleOptions = BundleOptions()
    protocol: str | None = None
    reload_on_update: bool = False
    """Accepted: stores are read once, at startup."""


class JksBundle(_Bundle):
    keystore: JksStore = JksStore()
    truststore: JksStore = JksStore()


class PemBundle(_Bundle):
    keystore: PemStore = PemStore()
    truststore: PemStore = PemStore()
    verify_keys: bool = False


class BundleProperties(Section):
    jks: dict[str, JksBundle] = Field(default_factory=dict)
    pem: dict[str, PemBundle] = Field(default_factory=dict)


class SslBundlesProperties(Section):
    """``ssl.*`` (Spring Boot's ``spring.ssl``): the SSL bundles."""

    bundle: BundleProperties = BundleProperties()


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _pem_text(value: str | None) -> bool:
    return value is not None and "-----BEGIN" in value


def _from_jks(bundle: JksBundle) -> dict[str, Any]:
    return {
        "trust_store_location": bundle.truststore.location,
        "trust_store_password": bundle.truststore.password,
        "trust_store_type": bundle.truststore.type,
        "key_store_location": bundle.keystore.location,
        "key_store_password": bundle.keystore.password,
        "key_store_type": bundle.keystore.type,
    }


def _pem(value: str | None, where: str) -> str | None:
    """PEM text as given, or read from the location it names (when the bundle is
    resolved: at startup).

    Raises:
        ValueError: the location cannot be read.
    """
    if value is None or _pem_text(value):
        return value
    try:
        return store_path(value, where).read_text()
    except (ConfigurationError, OSError) as exc:
        raise ValueError(str(exc)) from None


def _from_pem(bundle: PemBundle, where: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    trusted = bundle.truststore.certificate
    if _pem_text(trusted):
        fields["trust_store_certificates"] = trusted
    elif trusted is not None:
        fields |= {"trust_store_location": trusted, "trust_store_type": "PEM"}
    chain = _pem(bundle.keystore.certificate, f"{where}.keystore.certificate")
    key = _pem(_secret(bundle.keystore.private_key), f"{where}.keystore.private-key")
    if chain is not None or key is not None:
        if chain is None or key is None:
            raise ValueError(
                f"{where}: the key store needs both certificate and private-key (a location "
                "or the PEM text of each)"
            )
        fields |= {"key_store_certificate_chain": chain, "key_store_key": SecretStr(key)}
    if bundle.keystore.private_key_password is not None:
        fields["key_password"] = bundle.keystore.private_key_password
    return fields


def resolve_bundle(ssl: SslProperties, bundles: BundleProperties, where: str) -> SslProperties:
    """``ssl`` with its bundle replaced by the stores the bundle names.

    Raises:
        ValueError: no bundle has that name, or the stores are also set (as Spring Boot,
            a bundle and store keys exclude each other).
    """
    name = ssl.bundle
    if name is None:
        return ssl
    stores = {
        "key_store_location",
        "key_store_key",
        "trust_store_location",
        "trust_store_certificates",
    }
    clash = sorted(field for field in stores & ssl.model_fields_set if getattr(ssl, field))
    if clash:
        keys = ", ".join(f"{where}.{field.replace('_', '-')}" for field in clash)
        raise ValueError(f"{where}.bundle and {keys} exclude each other: use one or the other")
    if name in bundles.jks:
        bundle: JksBundle | PemBundle = bundles.jks[name]
        fields = _from_jks(bundles.jks[name])
    elif name in bundles.pem:
        bundle = bundles.pem[name]
        fields = _from_pem(bundles.pem[name], f"ssl.bundle.pem.{name}")
    else:
        known = ", ".join(sorted([*bundles.jks, *bundles.pem])) or "none"
        raise ValueError(
            f"{where}.bundle {name!r}: no bundle spring.ssl.bundle.jks.{name} or "
            f".pem.{name} is defined (defined: {known})"
        )
    if bundle.key.password is not None:
        fields["key_password"] = bundle.key.password
    fields["protocol"] = ssl.protocol or bundle.protocol
    fields = {key: value for key, value in fields.items() if value is not None}
    if bundle.options.enabled_protocols:
        fields["enabled_protocols"] = bundle.options.enabled_protocols
    return ssl.model_copy(update=fields | {"bundle": None})
