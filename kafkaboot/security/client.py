"""Kafka's security properties (``security.protocol``, ``ssl.*``, ``sasl.*``) → aiokafka's
``security_protocol``, ``ssl_context`` and ``sasl_*`` arguments.

Spring Boot turns ``spring.kafka.ssl``, ``spring.kafka.security`` and the ``properties`` maps
into one map of Kafka property names, later sources overriding earlier ones key by key;
kafkaboot does the same (see :mod:`kafkaboot.config.kafka`) and reads the result here, once
per client at startup. Stores are read then: a bad one fails startup, naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafkaboot.errors import ConfigurationError
from kafkaboot.security.context import build_ssl_context
from kafkaboot.security.jaas import JaasConfig, JaasError, parse_jaas
from kafkaboot.security.stores import read_key_store, read_trust_store

__all__ = ["BUNDLE", "KEY_LOCATION", "SECURITY_PROPERTIES", "TOKEN_PROVIDER", "security_kwargs"]

BUNDLE = "kafkaboot.ssl.bundle"
"""A Spring Boot SSL bundle named by ``kafka.ssl.bundle`` that was not resolved."""
KEY_LOCATION = "kafkaboot.ssl.key.location"
"""The PEM private key file of ``kafka.security.ssl.key-location`` (Kafka's PEM key store is
one file; kafkaboot also takes the key apart from the certificate)."""
TOKEN_PROVIDER = "kafkaboot.sasl.oauthbearer.token.provider"  # noqa: S105 - a key name.
"""An aiokafka token provider by import path (``kafka.security.sasl.token-provider``)."""

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
"""The Kafka security properties kafkaboot honours (the ones this module reads)."""

_PROVIDERS: dict[tuple[Any, ...], Any] = {}
"""Client-credentials token providers of this process, by their settings."""
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
_OIDC_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
_OIDC_HANDLERS = {
    _OIDC_HANDLER,
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
}


def _text(props: Mapping[str, Any], key: str) -> str | None:
    value = props.get(key)
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    text = str(value)
    return text if text != "" else None


def _ssl_context(props: Mapping[str, Any]) -> Any:
    bundle = _text(props, BUNDLE)
    if bundle is not None:
        raise ConfigurationError(
            f"ssl.bundle {bundle!r} was not resolved: bundles are read from spring.ssl.bundle "
            "of the same settings; load them with load_settings (or give the stores as "
            "kafka.ssl.trust-store-location / key-store-location)"
        )
    trusted = read_trust_store(
        location=_text(props, "ssl.truststore.location"),
        password=_text(props, "ssl.truststore.password"),
        type_=_text(props, "ssl.truststore.type"),
        certificates=_text(props, "ssl.truststore.certificates"),
        setting="ssl.truststore",
    )
    key_location = _text(props, KEY_LOCATION)
    key_store = _text(props, "ssl.keystore.location")
    if key_location is not None and key_store is not None:
        from kafkaboot.security.stores import store_path

        key = read_key_store(
            location=None,
            password=None,
            type_=None,
            key_password=_text(props, "ssl.key.password"),
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
            password=_text(props, "ssl.keystore.password"),
            type_=_text(props, "ssl.keystore.type"),
            key_password=_text(props, "ssl.key.password"),
            certificate_chain=_text(props, "ssl.keystore.certificate.chain"),
            key=_text(props, "ssl.keystore.key"),
            setting="ssl.keystore",
        )
    enabled = _text(props, "ssl.enabled.protocols")
    algorithm = props.get("ssl.endpoint.identification.algorithm", "https")
    return build_ssl_context(
        trusted=trusted,
        key=key,
        protocol=_text(props, "ssl.protocol"),
        enabled_protocols=[p.strip() for p in enabled.split(",")] if enabled else None,
        # Java: an empty algorithm turns host name checking off.
        check_hostname=str(algorithm or "").strip().lower() == "https",
    )


def _jaas(props: Mapping[str, Any]) -> JaasConfig | None:
    text = _text(props, "sasl.jaas.config")
    if text is None:
        return None
    try:
        return parse_jaas(text)
    except JaasError as exc:
        raise ConfigurationError(f"sasl.jaas.config: {exc}") from None


def _mechanism(props: Mapping[str, Any], jaas: JaasConfig | None) -> str:
    given = _text(props, "sasl.mechanism")
    family = jaas.family if jaas is not None else None
    if given is None:
        if family == "SCRAM":
            raise ConfigurationError(
                "sasl.jaas.config uses ScramLoginModule but sasl.mechanism is not set; set it "
                "to SCRAM-SHA-256 or SCRAM-SHA-512 (kafka.properties.sasl.mechanism)"
            )
        # Java's default is GSSAPI; a login module says which mechanism is meant.
        return family or "PLAIN"
    mechanism = given.strip().upper()
    if mechanism not in _MECHANISMS:
        raise ConfigurationError(
            f"sasl.mechanism {given!r} is not supported; use one of {', '.join(_MECHANISMS)}"
        )
    if family is not None and not mechanism.startswith(family):
        raise ConfigurationError(
            f"sasl.mechanism {mechanism} does not go with the login module "
            f"{jaas.login_module if jaas else ''}; use the module of that mechanism"
        )
    return mechanism


def _token_provider(props: Mapping[str, Any], jaas: JaasConfig | None) -> Any:
    from kafkaboot.components import import_component
    from kafkaboot.security.oauth import ClientCredentialsTokenProvider, UnsecuredTokenProvider

    path = _text(props, TOKEN_PROVIDER)
    handler = _text(props, "sasl.login.callback.handler.class")
    if path is None and handler is not None and handler not in _OIDC_HANDLERS:
        path = handler  # A Python import path in the Java property.
    if path is not None:
        from aiokafka.abc import AbstractTokenProvider

        return import_component(
            path,
            "kafka.security.sasl.token-provider",
            "token provider",
            lambda found: isinstance(found, AbstractTokenProvider),
            "an aiokafka.abc.AbstractTokenProvider with async token()",
        )
    options = dict(jaas.options) if jaas is not None else {}
    url = _text(props, "sasl.oauthbearer.token.endpoint.url")
    if url is None:
        subject = options.get("unsecuredLoginStringClaim_sub")
        if subject is not None:
            return UnsecuredTokenProvider(subject)
        raise ConfigurationError(
            "SASL/OAUTHBEARER needs a token: set sasl.oauthbearer.token.endpoint.url with "
            "a client id and secret, or kafka.security.sasl.token-provider (an import path)"
        )
    client_id = _text(props, "sasl.oauthbearer.client.credentials.client.id") or options.get(
        "clientId"
    )
    secret = _text(props, "sasl.oauthbearer.client.credentials.client.secret") or options.get(
        "clientSecret"
    )
    if not client_id or not secret:
        raise ConfigurationError(
            "sasl.oauthbearer.token.endpoint.url is set but the client id or secret is not: "
            'give them as JAAS options (clientId="…" clientSecret="…") or as '
            "sasl.oauthbearer.client.credentials.client.id / .client.secret"
        )
    timeouts = [
        int(str(props[key])) / 1000
        for key in ("sasl.login.connect.timeout.ms", "sasl.login.read.timeout.ms")
        if props.get(key) is not None
    ]
    factor = props.get("sasl.login.refresh.window.factor")
    scope = _text(props, "sasl.oauthbearer.scope") or options.get("scope")
    key = (url, client_id, secret, scope, factor, tuple(timeouts))
    # One provider per set of credentials: the producer, the admin client and every
    # listener's consumers share its token instead of each asking the endpoint.
    provider = _PROVIDERS.get(key)
    if provider is None:
        provider = _PROVIDERS[key] = ClientCredentialsTokenProvider(
            url,
            client_id,
            secret,
            scope=scope,
            refresh_window_factor=float(factor) if factor is not None else 0.8,
            timeout_s=max(timeouts) if timeouts else 10.0,
        )
    return provider


def _sasl_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    jaas = _jaas(props)
    mechanism = _mechanism(props, jaas)
    kwargs: dict[str, Any] = {"sasl_mechanism": mechanism}
    if mechanism == "OAUTHBEARER":
        kwargs["sasl_oauth_token_provider"] = _token_provider(props, jaas)
    elif mechanism == "GSSAPI":
        service = _text(props, "sasl.kerberos.service.name")
        if service is None and jaas is not None:
            service = jaas.options.get("serviceName")
        kwargs["sasl_kerberos_service_name"] = service or "kafka"
    else:
        options = jaas.options if jaas is not None else {}
        if "username" not in options or "password" not in options:
            raise ConfigurationError(
                f"SASL/{mechanism} needs a user name and password: set "
                "kafka.security.sasl.username and .password, spring.kafka.jaas.options, or "
                'sasl.jaas.config (… required username="…" password="…";)'
            )
        kwargs["sasl_plain_username"] = options["username"]
        kwargs["sasl_plain_password"] = options["password"]
    return kwargs


def security_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    """aiokafka's security arguments from merged Kafka security properties.

    Raises:
        ConfigurationError: a store cannot be read (naming the setting and file), or the
            SASL settings are incomplete or contradict each other.
    """
    protocol = (_text(props, "security.protocol") or "PLAINTEXT").strip().upper()
    if protocol not in _PROTOCOLS:
        raise ConfigurationError(
            f"security.protocol {protocol!r} is not supported; use one of {', '.join(_PROTOCOLS)}"
        )
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in {"SSL", "SASL_SSL"}:
        kwargs["ssl_context"] = _ssl_context(props)
    if protocol.startswith("SASL"):
        kwargs |= _sasl_kwargs(props)
    return kwargs
