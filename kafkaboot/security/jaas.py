"""Java's JAAS login configuration (``sasl.jaas.config``, ``spring.kafka.jaas.*``), read into
the SASL settings aiokafka takes.

A Kafka client has one login module. Its class decides the mechanism family and its options
carry the credentials: ``username``/``password`` for PLAIN and SCRAM, ``clientId``/
``clientSecret``/``scope`` for OAUTHBEARER, ``serviceName`` for Kerberos.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "KERBEROS",
    "OAUTHBEARER",
    "PLAIN",
    "SCRAM",
    "JaasConfig",
    "JaasError",
    "jaas_line",
    "parse_jaas",
]

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
OAUTHBEARER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
KERBEROS = "com.sun.security.auth.module.Krb5LoginModule"
_MODULES = {PLAIN: "PLAIN", SCRAM: "SCRAM", OAUTHBEARER: "OAUTHBEARER", KERBEROS: "GSSAPI"}
_FLAGS = {"required", "requisite", "sufficient", "optional"}
_TOKEN = re.compile(
    r'\s*(?:(?P<end>;)|(?P<name>[\w.$-]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s;"][^\s;]*))'
    r"|(?P<word>[\w.$-]+))"
)


class JaasError(ValueError):
    """A JAAS line that cannot be read, or names a login module aiokafka has no match for."""


@dataclass(frozen=True, slots=True)
class JaasConfig:
    """One login module line: the module's class, its flag and its options."""

    login_module: str
    control_flag: str = "required"
    options: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def family(self) -> str:
        """``PLAIN``, ``SCRAM``, ``OAUTHBEARER`` or ``GSSAPI``."""
        return _MODULES[self.login_module]


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_jaas(text: str) -> JaasConfig:
    """Read ``<LoginModule> <flag> key="value" ...;``.

    Raises:
        JaasError: the line is malformed, holds more than one module, or names a module
            aiokafka cannot stand in for.
    """
    words: list[str] = []
    options: dict[str, str] = {}
    position, ended = 0, False
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise JaasError(
                f"sasl.jaas.config cannot be read near character {position}: expected "
                '<LoginModule> required key="value" ...;'
            )
        position = match.end()
        if ended and (match["word"] or match["name"]):
            raise JaasError(
                "sasl.jaas.config holds more than one login module; a Kafka client uses one"
            )
        if match["end"]:
            ended = True
        elif match["word"]:
            words.append(match["word"])
        else:
            quoted = match["quoted"]
            options[match["name"]] = _unescape(quoted) if quoted is not None else match["bare"]
    if not words:
        raise JaasError("sasl.jaas.config names no login module")
    if not ended:
        raise JaasError(
            "sasl.jaas.config must end with ';' (as Java reads it): "
            '<LoginModule> required key="value" ...;'
        )
    module = words[0]
    flag = words[1].lower() if len(words) > 1 else "required"
    if len(words) > 2 or flag not in _FLAGS:
        raise JaasError(
            f"sasl.jaas.config: expected a control flag ({', '.join(sorted(_FLAGS))}) after "
            f"{module}, got {' '.join(words[1:])!r}"
        )
    module = next((m for m in _MODULES if m.rsplit(".", 1)[-1] == module), module)
    if module not in _MODULES:
        raise JaasError(
            f"login module {module!r} has no equivalent in aiokafka; supported: "
            + ", ".join(_MODULES)
        )
    return JaasConfig(module, flag, options)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_line(login_module: str, control_flag: str, options: Mapping[str, str]) -> str:
    """The ``sasl.jaas.config`` line for a module, its flag and options (Spring Boot's
    ``spring.kafka.jaas.*`` and kafkaboot's ``kafka.security.sasl.*`` become one)."""
    parts = [login_module, control_flag, *(f"{k}={_quote(str(v))}" for k, v in options.items())]
    return " ".join(parts) + ";"
