"""The document's servers: ``kafka`` or ``kafka-secure`` by whether the connection is TLS
(``security.protocol`` SSL or SASL_SSL), and the SASL mechanism as a security scheme
(AsyncAPI's ``plain``, ``scramSha256``, ``scramSha512``, ``gssapi``, ``oauth2``), as the
AsyncAPI Kafka bindings map ``security.protocol`` and ``sasl.mechanism``."""

import pytest

from tests.unit.asyncapi.test_document import described

SCRAM = {"username": "svc", "password": "secret"}


def servers_and_schemes(**security):
    document = described(**security)
    schemes = document.get("components", {}).get("securitySchemes", {})
    return list(document["servers"].values()), schemes


def scheme_of(server, schemes):
    [ref] = server["security"]
    return schemes[ref["$ref"].removeprefix("#/components/securitySchemes/")]


@pytest.mark.parametrize(
    ("protocol", "mechanism", "wire", "scheme"),
    [
        ("SASL_PLAINTEXT", "PLAIN", "kafka", "plain"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", "kafka", "scramSha256"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-512", "kafka", "scramSha512"),
        ("SASL_SSL", "SCRAM-SHA-512", "kafka-secure", "scramSha512"),
        ("SASL_SSL", "PLAIN", "kafka-secure", "plain"),
    ],
)
def test_sasl_is_a_security_scheme_and_only_tls_makes_the_protocol_kafka_secure(
    protocol, mechanism, wire, scheme
):
    servers, schemes = servers_and_schemes(
        security={"protocol": protocol, "sasl": {"mechanism": mechanism, **SCRAM}}
    )
    for server in servers:
        assert server["protocol"] == wire
        assert scheme_of(server, schemes)["type"] == scheme
    assert len(schemes) == 1  # One scheme, referenced by every broker.


def test_gssapi_is_its_own_scheme():
    servers, schemes = servers_and_schemes(
        properties={"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI"}
    )
    assert servers[0]["protocol"] == "kafka"
    assert scheme_of(servers[0], schemes)["type"] == "gssapi"


def test_oauthbearer_is_oauth2_with_the_token_endpoint_as_client_credentials():
    servers, schemes = servers_and_schemes(
        properties={
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token",
            "sasl.oauthbearer.client.credentials.client.id": "svc",
            "sasl.oauthbearer.client.credentials.client.secret": "secret",
        }
    )
    scheme = scheme_of(servers[0], schemes)
    assert servers[0]["protocol"] == "kafka-secure"
    assert scheme["type"] == "oauth2"
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://idp.example/token"
    assert "secret" not in str(schemes)


@pytest.mark.parametrize(("protocol", "wire"), [("PLAINTEXT", "kafka"), ("SSL", "kafka-secure")])
def test_without_sasl_there_is_no_security_scheme(protocol, wire):
    servers, schemes = servers_and_schemes(security={"protocol": protocol})
    assert [s["protocol"] for s in servers] == [wire, wire]
    assert not schemes
    assert not [s for s in servers if "security" in s]


def test_no_secret_reaches_the_document():
    document = described(security={"protocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN", **SCRAM}})
    assert "secret" not in str(document)
