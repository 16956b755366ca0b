"""The client-credentials token provider: one fetch shared, refreshed before expiry."""

import asyncio
import http.server
import threading
import time

import pytest

from kafkaboot.security.oauth import (
    ClientCredentialsTokenProvider,
    TokenEndpointError,
    TokenEndpointRefused,
    UnsecuredTokenProvider,
    _jwt_claims,
)
from kafkaboot.testing.token_server import CLIENT_ID, CLIENT_SECRET, TokenServer

pytestmark = pytest.mark.asyncio


@pytest.fixture
def token_server(security_files):
    with TokenServer(security_files.oauth_signing_key, lifetime_s=100) as server:
        yield server


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _provider(server, clock=None, secret=CLIENT_SECRET):
    return ClientCredentialsTokenProvider(
        server.token_endpoint_url,
        CLIENT_ID,
        secret,
        scope="kafka",
        **({"clock": clock} if clock else {}),
    )


async def test_concurrent_connections_share_one_fetch(token_server):
    provider = _provider(token_server)
    tokens = await asyncio.gather(*(provider.token() for _ in range(10)))
    assert len(set(tokens)) == 1
    assert token_server.requests == 1
    assert _jwt_claims(tokens[0])["sub"]


async def test_a_new_token_is_fetched_after_80_percent_of_its_lifetime(token_server):
    clock = _Clock()
    provider = _provider(token_server, clock)
    clock.now = time.time()
    first = await provider.token()
    clock.now += 79
    assert await provider.token() == first
    assert token_server.requests == 1
    clock.now += 2  # Past 80 of 100 seconds.
    await provider.token()
    assert token_server.requests == 2


async def test_a_wrong_secret_names_the_endpoint_and_client_not_the_secret(token_server):
    provider = _provider(token_server, secret="guessed-wrong")
    with pytest.raises(TokenEndpointError) as caught:
        await provider.token()
    message = str(caught.value)
    assert "HTTP 401" in message
    assert CLIENT_ID in message
    assert "guessed-wrong" not in message
    assert "guessed-wrong" not in repr(provider)


async def test_an_unreachable_endpoint_is_an_error_naming_it():
    provider = ClientCredentialsTokenProvider("http://127.0.0.1:9/token", "id", "secret")
    with pytest.raises(TokenEndpointError, match=r"127.0.0.1:9/token gave no token"):
        await provider.token()


async def test_the_unsecured_token_carries_the_subject():
    token = await UnsecuredTokenProvider("alice").token()
    assert token.endswith(".")
    assert _jwt_claims(token)["sub"] == "alice"


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_a_failing_endpoint_is_an_outage_not_a_refusal():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/token"
        provider = ClientCredentialsTokenProvider(url, "id", "secret")
        with pytest.raises(TokenEndpointError, match="HTTP 503") as caught:
            await provider.token()
        assert not isinstance(caught.value, TokenEndpointRefused)
    finally:
        server.shutdown()
        server.server_close()


async def test_after_a_failed_refresh_the_valid_token_is_served_without_asking_again(
    token_server,
):
    clock = _Clock()
    clock.now = time.time()
    provider = _provider(token_server, clock)
    first = await provider.token()
    clock.now += 90  # Due for a refresh, still valid for 10 s.
    token_server.stop()  # The endpoint goes away.
    assert await provider.token() == first
    asked = provider.fetches
    assert await provider.token() == first
    assert provider.fetches == asked  # Not asked again at once.
