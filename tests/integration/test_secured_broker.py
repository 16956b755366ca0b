"""The secured local broker, reached with raw aiokafka: every listener and SASL mechanism it
offers works with the generated credentials and refuses wrong ones."""

import asyncio
import base64
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kafkaboot.testing import KafkaCluster


def _ssl(secured, *, client_certificate=False):
    if client_certificate:
        return create_ssl_context(
            cafile=str(secured.ca_pem),
            certfile=str(secured.client_cert_pem),
            keyfile=str(secured.client_key_pem),
        )
    return create_ssl_context(cafile=str(secured.ca_pem))


def _scram(secured):
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": _ssl(secured),
        "sasl_mechanism": secured.scram_mechanism,
        "sasl_plain_username": secured.scram_user,
        "sasl_plain_password": secured.scram_password,
    }


async def _round_trip(bootstrap, **security):
    """Produce one record to a new topic and read it back, both over ``security``."""
    topic = f"secured-{uuid.uuid4().hex[:8]}"
    value = uuid.uuid4().bytes
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"g-{topic}",
        **security,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    return record.value == value


async def _connect(bootstrap, **security):
    """One connection with ``security`` and one metadata request on it: the broker's own
    answer, unfiltered by the client's bootstrap retries (which turn every refusal into
    "unable to bootstrap")."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    conn = AIOKafkaConnection(host, int(port), request_timeout_ms=10_000, **security)
    try:
        await conn.connect()
        metadata = await conn.send(MetadataRequest([]))
    finally:
        # Until the socket is really closed: a refused connection's socket would otherwise
        # outlive the test's event loop (a ResourceWarning, an error in this suite).
        await asyncio.wait_for(conn.close(), 10)
    return [broker[0] for broker in metadata.brokers]


class EndpointTokens(AbstractTokenProvider):
    """A raw client-credentials client: one POST per token (no caching, on purpose)."""

    def __init__(self, url, client_id, client_secret):
        self.url, self.client_id, self.client_secret = url, client_id, client_secret

    def _fetch(self):
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the test token server, http.
            self.url,
            data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)["access_token"]

    async def token(self):
        return await asyncio.to_thread(self._fetch)


class FixedToken(AbstractTokenProvider):
    def __init__(self, token):
        self._token = token

    async def token(self):
        return self._token


def _oauth(secured, provider, protocol="SASL_SSL"):
    security = {
        "security_protocol": protocol,
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": provider,
    }
    if protocol == "SASL_SSL":
        security["ssl_context"] = _ssl(secured)
    return security


@pytest.mark.asyncio
async def test_sasl_ssl_with_scram_sha_512_produces_and_consumes(secured_cluster):
    assert await _round_trip(secured_cluster.bootstrap_servers, **_scram(secured_cluster))


@pytest.mark.asyncio
async def test_sasl_ssl_with_plain_produces_and_consumes(secured_cluster):
    security = _scram(secured_cluster) | {
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": secured_cluster.plain_user,
        "sasl_plain_password": secured_cluster.plain_password,
    }
    assert await _round_trip(secured_cluster.bootstrap_servers, **security)


@pytest.mark.asyncio
async def test_sasl_ssl_accepts_the_client_certificate_too(secured_cluster):
    security = _scram(secured_cluster) | {
        "ssl_context": _ssl(secured_cluster, client_certificate=True)
    }
    assert await _round_trip(secured_cluster.bootstrap_servers, **security)


@pytest.mark.asyncio
async def test_ssl_with_the_client_certificate_produces_and_consumes(secured_cluster):
    context = _ssl(secured_cluster, client_certificate=True)
    assert await _round_trip(
        secured_cluster.ssl_bootstrap_servers, security_protocol="SSL", ssl_context=context
    )


@pytest.mark.asyncio
async def test_ssl_without_a_client_certificate_is_refused(secured_cluster):
    with pytest.raises((KafkaError, OSError)):
        await _connect(
            secured_cluster.ssl_bootstrap_servers,
            security_protocol="SSL",
            ssl_context=_ssl(secured_cluster),
        )


@pytest.mark.asyncio
async def test_sasl_plaintext_with_scram_produces_and_consumes(secured_cluster):
    security = _scram(secured_cluster) | {"security_protocol": "SASL_PLAINTEXT"}
    del security["ssl_context"]
    assert await _round_trip(secured_cluster.sasl_plaintext_bootstrap_servers, **security)


@pytest.mark.asyncio
async def test_wrong_scram_password_is_refused_with_an_authentication_error(secured_cluster):
    security = _scram(secured_cluster) | {"sasl_plain_password": "not-the-password"}
    with pytest.raises(SaslAuthenticationFailed, match="Authentication failed"):
        await _connect(secured_cluster.bootstrap_servers, **security)


@pytest.mark.asyncio
async def test_wrong_plain_password_is_refused_with_an_authentication_error(secured_cluster):
    security = _scram(secured_cluster) | {
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": secured_cluster.plain_user,
        "sasl_plain_password": "not-the-password",
    }
    with pytest.raises(SaslAuthenticationFailed, match="Authentication failed"):
        await _connect(secured_cluster.bootstrap_servers, **security)


@pytest.mark.asyncio
async def test_oauthbearer_with_a_token_from_the_token_server_produces_and_consumes(
    secured_cluster,
):
    tokens = EndpointTokens(
        secured_cluster.token_endpoint_url,
        secured_cluster.oauth_client_id,
        secured_cluster.oauth_client_secret,
    )
    asked = secured_cluster.token_server.issued
    assert await _round_trip(secured_cluster.bootstrap_servers, **_oauth(secured_cluster, tokens))
    assert secured_cluster.token_server.issued > asked


@pytest.mark.asyncio
async def test_oauthbearer_over_sasl_plaintext_works_too(secured_cluster):
    token = secured_cluster.token_server.issue_token()
    security = _oauth(secured_cluster, FixedToken(token), protocol="SASL_PLAINTEXT")
    assert await _connect(secured_cluster.sasl_plaintext_bootstrap_servers, **security) == [1]


def test_token_server_refuses_a_wrong_client_secret(secured_cluster):
    tokens = EndpointTokens(
        secured_cluster.token_endpoint_url, secured_cluster.oauth_client_id, "wrong-secret"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        tokens._fetch()
    refused.value.close()
    assert refused.value.code == 401


def _foreign_token(secured):
    """A token with every claim the broker wants, signed by a key it does not trust."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = jwt.decode(secured.token_server.issue_token(), options={"verify_signature": False})
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jwt.encode(genuine, pem, algorithm="RS256", headers={"kid": secured.token_server.key_id})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(_foreign_token, id="signed-by-another-key"),
        pytest.param(
            lambda s: s.token_server.issue_token(claims={"aud": "another-service"}),
            id="another-audience",
        ),
        pytest.param(
            lambda s: s.token_server.issue_token(claims={"exp": 1_000_000_000}),
            id="expired",
        ),
    ],
)
async def test_oauthbearer_refuses_an_invalid_token(secured_cluster, forge):
    # The broker answers a bad token with an error challenge, which aiokafka 0.14 does not
    # read: it takes the exchange as done. The broker then fails the authentication at the
    # first request ("Unexpected Kafka request of type METADATA during SASL authentication"
    # in its log), answers it with no brokers and closes the connection.
    security = _oauth(secured_cluster, FixedToken(forge(secured_cluster)))
    try:
        brokers = await _connect(secured_cluster.bootstrap_servers, **security)
    except KafkaError:
        brokers = None
    assert brokers in ([], None)
    # The same connection with a good token gets the broker list.
    good = _oauth(secured_cluster, FixedToken(secured_cluster.token_server.issue_token()))
    assert await _connect(secured_cluster.bootstrap_servers, **good) == [1]


def test_secured_cluster_repr_shows_no_password(secured_cluster):
    text = repr(secured_cluster)
    for secret in (
        secured_cluster.store_password,
        secured_cluster.key_password,
        secured_cluster.scram_password,
        secured_cluster.plain_password,
        secured_cluster.oauth_client_secret,
    ):
        assert secret not in text
    assert secured_cluster.scram_user in text


def _kafkaboot(*args):
    return subprocess.run(
        [sys.executable, "-m", "kafkaboot", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.asyncio
async def test_cli_restarts_a_secured_cluster_with_its_users_and_certificates(secured_cluster):
    data_dir = secured_cluster.cluster.data_dir
    ca = secured_cluster.ca_pem.read_bytes()
    try:
        stopped = _kafkaboot("broker", "stop", "--data-dir", str(data_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert not secured_cluster.cluster.is_running()

        started = _kafkaboot("broker", "start", "--data-dir", str(data_dir))
        assert started.returncode == 0, started.stderr
    finally:
        if not secured_cluster.cluster.is_running():
            secured_cluster.cluster.start()
    assert started.stdout.strip() == secured_cluster.bootstrap_servers
    settings = yaml.safe_load(started.stderr[started.stderr.index("\nkafka:") :])
    assert settings["kafka"]["bootstrap-servers"] == secured_cluster.bootstrap_servers
    assert settings["kafka"]["security"]["protocol"] == "SASL_SSL"
    assert secured_cluster.ca_pem.read_bytes() == ca  # The clients' trust still holds.
    reloaded = KafkaCluster.load(data_dir)
    assert reloaded.security == ("SASL_SSL", "SSL", "SASL_PLAINTEXT")
    # The SCRAM user lives in the metadata log: it survives the restart.
    assert await _round_trip(secured_cluster.bootstrap_servers, **_scram(secured_cluster))
