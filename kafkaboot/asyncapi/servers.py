"""The document's servers, from the configuration: one per bootstrap address, its protocol
``kafka-secure`` when the connection is TLS (``security.protocol`` SSL or SASL_SSL) and
``kafka`` otherwise, and SASL as a security scheme (``sasl.mechanism``) — the mapping the
AsyncAPI Kafka bindings agreed on (asyncapi/bindings#56): SASL_PLAINTEXT authenticates but
does not encrypt, so it is ``kafka`` with a scheme. Never a credential."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kafkaboot.security.names import text

if TYPE_CHECKING:
    from kafkaboot.config.kafka import KafkaProperties

__all__ = ["servers"]

_TLS = {"SSL", "SASL_SSL"}
_SCHEMES = {
    "PLAIN": "plain",
    "SCRAM-SHA-256": "scramSha256",
    "SCRAM-SHA-512": "scramSha512",
    "GSSAPI": "gssapi",
    "OAUTHBEARER": "oauth2",
}


def servers(kafka: KafkaProperties) -> tuple[dict[str, Any], dict[str, Any]]:
    """The servers of ``kafka`` and the security schemes they refer to (``{}``: none).

    Raises:
        ConfigurationError: the security settings are incomplete (as a client would fail).
    """
    arguments = kafka.producer_kwargs()  # The protocol and mechanism the clients use.
    protocol = str(arguments.get("security_protocol", "PLAINTEXT"))
    mechanism = arguments.get("sasl_mechanism")
    schemes: dict[str, Any] = {}
    security: list[dict[str, str]] = []
    if protocol.startswith("SASL") and mechanism is not None:
        scheme_id = f"sasl-{str(mechanism).lower()}"
        schemes[scheme_id] = _scheme(str(mechanism), protocol, kafka)
        security.append({"$ref": f"#/components/securitySchemes/{scheme_id}"})
    found = {}
    addresses = str(arguments["bootstrap_servers"]).split(",")
    for index, address in enumerate(addresses, start=1):
        server: dict[str, Any] = {
            "host": address.strip(),
            "protocol": "kafka-secure" if protocol in _TLS else "kafka",
            "description": f"kafka.bootstrap-servers (security protocol {protocol})",
        }
        if security:
            server["security"] = security
        found[f"broker-{index}"] = server
    return found, schemes


def _scheme(mechanism: str, protocol: str, kafka: KafkaProperties) -> dict[str, Any]:
    scheme: dict[str, Any] = {
        "type": _SCHEMES[mechanism],
        "description": f"SASL/{mechanism} (security.protocol {protocol})",
    }
    if mechanism == "OAUTHBEARER":
        # AsyncAPI's oauth2 needs its flows: Kafka's client-credentials login, when set.
        flows: dict[str, Any] = {}
        properties = kafka.security_properties(kafka.producer)
        url = text(properties, "sasl.oauthbearer.token.endpoint.url")
        if url is not None:
            scopes = (text(properties, "sasl.oauthbearer.scope") or "").split()
            flows["clientCredentials"] = {
                "tokenUrl": url,
                "availableScopes": dict.fromkeys(scopes, "asked for (sasl.oauthbearer.scope)"),
            }
        scheme["flows"] = flows
    return scheme
