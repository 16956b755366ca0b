"""SASL settings (``sasl.mechanism``, ``sasl.jaas.config``, ``sasl.oauthbearer.*``, kafkaboot's
user name and password) → aiokafka's ``sasl_*`` arguments."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from kafkaboot.components import import_component
from kafkaboot.errors import ConfigurationError
from kafkaboot.security.jaas import JaasConfig, JaasError, parse_jaas
from kafkaboot.security.names import MECHANISMS, PASSWORD, TOKEN_PROVIDER, USERNAME, text
from kafkaboot.security.oauth import ClientCredentialsTokenProvider, UnsecuredTokenProvider

__all__ = ["sasl_kwargs"]

_PROVIDERS: dict[tuple[Any, ...], ClientCredentialsTokenProvider] = {}
"""Client-credentials token providers of this process, by their settings (the secret as a
digest: this dict is no place to keep it)."""
_OIDC_HANDLERS = {
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
}


def _jaas(props: Mapping[str, Any]) -> JaasConfig | None:
    line = text(props, "sasl.jaas.config")
    if line is None:
        return None
    try:
        return parse_jaas(line)
    except JaasError as exc:
        raise ConfigurationError(f"sasl.jaas.config: {exc}") from None


def _mechanism(props: Mapping[str, Any], jaas: JaasConfig | None) -> str:
    given = text(props, "sasl.mechanism")
    family = jaas.family if jaas is not None else None
    if given is None:
        if family == "SCRAM":
            raise ConfigurationError(
                "sasl.jaas.config uses ScramLoginModule but sasl.mechanism is not set; set it "
                "to SCRAM-SHA-256 or SCRAM-SHA-512 (kafka.properties.sasl.mechanism)"
            )
        # Java's default is GSSAPI; a login module says which mechanism is meant, and
        # kafkaboot's user name and password mean PLAIN (aiokafka's default).
        if family is None and text(props, USERNAME) is None:
            raise ConfigurationError(
                "SASL needs a mechanism and credentials: set sasl.mechanism (PLAIN, "
                "SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER) and sasl.jaas.config, or "
                "kafka.security.sasl.mechanism, .username and .password"
            )
        return family or "PLAIN"
    mechanism = given.strip().upper()
    if mechanism not in MECHANISMS:
        raise ConfigurationError(
            f"sasl.mechanism {given!r} is not supported; use one of {', '.join(MECHANISMS)}"
        )
    if family is not None and not mechanism.startswith(family):
        raise ConfigurationError(
            f"sasl.mechanism {mechanism} does not go with the login module "
            f"{jaas.login_module if jaas else ''}; use the module of that mechanism"
        )
    return mechanism


def _token_provider(props: Mapping[str, Any], jaas: JaasConfig | None) -> Any:
    path = text(props, TOKEN_PROVIDER)
    handler = text(props, "sasl.login.callback.handler.class")
    if path is None and handler is not None and handler not in _OIDC_HANDLERS:
        if ":" not in handler:
            raise ConfigurationError(
                f"sasl.login.callback.handler.class {handler!r} is a Java class a Python "
                "service cannot run: kafkaboot understands Kafka's "
                "OAuthBearerLoginCallbackHandler (with sasl.oauthbearer.token.endpoint.url), "
                "or a Python token provider given as package.module:Name "
                "(kafka.security.sasl.token-provider)"
            )
        path = handler  # A Python import path in the Java property.
    if path is not None:
        return import_component(
            path,
            "kafka.security.sasl.token-provider",
            "token provider",
            lambda found: isinstance(found, AbstractTokenProvider),
            "an aiokafka.abc.AbstractTokenProvider with async token()",
        )
    options = dict(jaas.options) if jaas is not None else {}
    url = text(props, "sasl.oauthbearer.token.endpoint.url")
    if url is None:
        subject = options.get("unsecuredLoginStringClaim_sub")
        if subject is not None:
            return UnsecuredTokenProvider(subject)
        raise ConfigurationError(
            "SASL/OAUTHBEARER needs a token: set sasl.oauthbearer.token.endpoint.url with "
            "a client id and secret, or kafka.security.sasl.token-provider (an import path)"
        )
    client_id = text(props, "sasl.oauthbearer.client.credentials.client.id") or options.get(
        "clientId"
    )
    secret = text(props, "sasl.oauthbearer.client.credentials.client.secret") or options.get(
        "clientSecret"
    )
    if not client_id or not secret:
        raise ConfigurationError(
            "sasl.oauthbearer.token.endpoint.url is set but the client id or secret is not: "
            'give them as JAAS options (clientId="…" clientSecret="…") or as '
            "sasl.oauthbearer.client.credentials.client.id / .client.secret"
        )
    timeouts = [
        int(props[key]) / 1000  # Checked when the configuration was loaded.
        for key in ("sasl.login.connect.timeout.ms", "sasl.login.read.timeout.ms")
        if props.get(key) is not None
    ]
    factor = props.get("sasl.login.refresh.window.factor")
    scope = text(props, "sasl.oauthbearer.scope") or options.get("scope")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    key = (url, client_id, digest, scope, factor, tuple(timeouts))
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


def sasl_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    """aiokafka's ``sasl_*`` arguments from merged Kafka security properties.

    Raises:
        ConfigurationError: the settings are incomplete or contradict each other.
    """
    jaas = _jaas(props)
    mechanism = _mechanism(props, jaas)
    kwargs: dict[str, Any] = {"sasl_mechanism": mechanism}
    if mechanism == "OAUTHBEARER":
        kwargs["sasl_oauth_token_provider"] = _token_provider(props, jaas)
    elif mechanism == "GSSAPI":
        service = text(props, "sasl.kerberos.service.name")
        if service is None and jaas is not None:
            service = jaas.options.get("serviceName")
        kwargs["sasl_kerberos_service_name"] = service or "kafka"
    else:
        if jaas is not None:
            user, password = jaas.options.get("username"), jaas.options.get("password")
        else:  # kafkaboot's own spelling; a sasl.jaas.config line wins over it.
            user, password = text(props, USERNAME), text(props, PASSWORD)
        if user is None or password is None:
            raise ConfigurationError(
                f"SASL/{mechanism} needs a user name and password: set "
                "kafka.security.sasl.username and .password, spring.kafka.jaas.options, or "
                'sasl.jaas.config (… required username="…" password="…";)'
            )
        kwargs["sasl_plain_username"] = user
        kwargs["sasl_plain_password"] = password
    return kwargs
