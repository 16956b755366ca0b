"""Which settings hold secrets, and a dict that does not print them."""

from __future__ import annotations

from typing import Any

__all__ = ["MaskedDict", "is_secret_key", "looks_secret", "masked", "masked_url"]

_SECRET_WORDS = ("password", "secret", "jaas", "credential", "token")


def is_secret_key(key: str) -> bool:
    """Whether a setting named ``key`` holds a secret (``ssl.truststore.password``,
    ``sasl.jaas.config``, ``clientSecret``, ``sasl_plain_password``, a PEM private key)."""
    lowered = str(key).lower()
    return any(word in lowered for word in _SECRET_WORDS) or lowered.endswith(
        ("keystore.key", "key-store-key", "private-key", "private_key")
    )


class MaskedDict(dict[str, Any]):
    """A dict whose ``repr`` hides the values of secret keys: settings, and the client
    arguments built from them, are printed in logs and tracebacks."""

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key!r}: {'******' if is_secret_key(key) else repr(value)}"
            for key, value in self.items()
        )
        return "{" + shown + "}"

    __str__ = __repr__


def looks_secret(value: Any) -> bool:
    """Whether a value, whatever key it was given for, reads like it holds a secret: a JAAS
    line, a PEM private key, ``password=…`` (a section written as one string, say)."""
    text = str(value).lower()
    return any(word in text for word in _SECRET_WORDS) or "private key" in text


def masked(key: str, value: Any) -> str:
    """``repr(value)``, or ``'******'`` when ``key`` names a secret or the value looks like
    one."""
    return "'******'" if is_secret_key(key) or looks_secret(value) else repr(value)


def masked_url(url: str) -> str:
    """``url`` without its password (``scheme://user:***@host``), for messages, logs and
    ``kafkaboot config show``; any other text as it is."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
