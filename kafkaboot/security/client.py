"""Kafka's security properties (``security.protocol``, ``ssl.*``, ``sasl.*``) → aiokafka's
``security_protocol``, ``ssl_context`` and ``sasl_*`` arguments.

Spring Boot turns ``spring.kafka.ssl``, ``spring.kafka.security`` and the ``properties`` maps
into one map of Kafka property names, later sources overriding earlier ones key by key;
kafkaboot does the same (see :mod:`kafkaboot.config.kafka`) and reads the result here each
time a client's arguments are built (at startup, and when a listener's consumers start).
A bad store fails there, naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafkaboot.errors import ConfigurationError
from kafkaboot.security.context import build_ssl_context
from kafkaboot.security.names import BUNDLE, KEY_LOCATION, PROTOCOLS, text
from kafkaboot.security.sasl import sasl_kwargs
from kafkaboot.security.stores import read_key_store, read_trust_store, store_path

__all__ = ["security_kwargs"]


def _ssl_context(props: Mapping[str, Any]) -> Any:
    bundle = text(props, BUNDLE)
    if bundle is not None:
        raise ConfigurationError(
            f"ssl.bundle {bundle!r} was not resolved: bundles are read from spring.ssl.bundle "
            "of the same settings; load them with load_settings (or give the stores as "
            "kafka.ssl.trust-store-location / key-store-location)"
        )
    trusted = read_trust_store(
        location=text(props, "ssl.truststore.location"),
        password=text(props, "ssl.truststore.password"),
        type_=text(props, "ssl.truststore.type"),
        certificates=text(props, "ssl.truststore.certificates"),
        setting="ssl.truststore",
    )
    key_location = text(props, KEY_LOCATION)
    key_store = text(props, "ssl.keystore.location")
    if key_location is not None:
        if key_store is None:
            raise ConfigurationError(
                "kafka.security.ssl.key-location needs certificate-location too: the "
                "client's certificate and its key go together"
            )
        key = read_key_store(
            location=None,
            password=None,
            type_=None,
            key_password=text(props, "ssl.key.password"),
            certificate_chain=store_path(
                key_store, "kafka.security.ssl.certificate-location"
            ).read_text(errors="replace"),
            key=store_path(key_location, "kafka.security.ssl.key-location").read_text(
                errors="replace"
            ),
            setting="ssl.keystore",
        )
    else:
        key = read_key_store(
            location=key_store,
            password=text(props, "ssl.keystore.password"),
            type_=text(props, "ssl.keystore.type"),
            key_password=text(props, "ssl.key.password"),
            certificate_chain=text(props, "ssl.keystore.certificate.chain"),
            key=text(props, "ssl.keystore.key"),
            setting="ssl.keystore",
        )
    enabled = text(props, "ssl.enabled.protocols")
    algorithm = props.get("ssl.endpoint.identification.algorithm", "https")
    return build_ssl_context(
        trusted=trusted,
        key=key,
        protocol=text(props, "ssl.protocol"),
        enabled_protocols=[p.strip() for p in enabled.split(",") if p.strip()] or None
        if enabled
        else None,
        # Java: an empty algorithm turns host name checking off.
        check_hostname=str(algorithm or "").strip().lower() == "https",
    )


def security_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    """aiokafka's security arguments from merged Kafka security properties.

    Raises:
        ConfigurationError: a store cannot be read (naming the setting and file), or the
            SASL settings are incomplete or contradict each other.
    """
    protocol = (text(props, "security.protocol") or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise ConfigurationError(
            f"security.protocol {protocol!r} is not supported; use one of {', '.join(PROTOCOLS)}"
        )
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        kwargs["ssl_context"] = _ssl_context(props)
    if protocol.startswith("SASL"):
        kwargs |= sasl_kwargs(props)
    return kwargs
