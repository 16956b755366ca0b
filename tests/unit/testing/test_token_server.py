"""The tests' OAuth 2.0 token endpoint: the client-credentials grant, RS256 tokens the
broker's JWKS verifies, refusals, and counting what it was asked."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest

from kafkaboot.testing import TokenServer
from kafkaboot.testing.certificates import write_security_files
from kafkaboot.testing.security import OAUTH_AUDIENCE, OAUTH_ISSUER
from kafkaboot.testing.token_server import CLIENT_ID, CLIENT_SECRET


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_security_files(tmp_path_factory.mktemp("security"))


@pytest.fixture
def server(files):
    with TokenServer(files.oauth_signing_key, jwks=files.jwks_json) as running:
        yield running


def _post(url, form, headers=None):
    request = urllib.request.Request(  # noqa: S310 - the local test server, http.
        url, data=urllib.parse.urlencode(form).encode(), headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.load(refused)


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _verify(files, token):
    jwks = jwt.PyJWKSet.from_json(files.jwks_json.read_text())
    header = jwt.get_unverified_header(token)
    return jwt.decode(
        token,
        jwks[header["kid"]].key,
        algorithms=["RS256"],
        audience=OAUTH_AUDIENCE,
        issuer=OAUTH_ISSUER,
    )


def test_client_credentials_with_basic_auth_gets_a_token_the_jwks_verifies(server, files):
    status, body = _post(
        server.token_endpoint_url,
        {"grant_type": "client_credentials", "scope": "orders"},
        _basic(CLIENT_ID, CLIENT_SECRET),
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    claims = _verify(files, body["access_token"])
    assert claims["sub"] == CLIENT_ID
    assert claims["scope"] == "orders"
    assert claims["exp"] - claims["iat"] == 3600


def test_credentials_in_the_form_work_too(server):
    status, body = _post(
        server.token_endpoint_url,
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert status == 200
    assert body["access_token"]


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({"grant_type": "client_credentials"}, _basic(CLIENT_ID, "wrong")),
        ({"grant_type": "client_credentials"}, _basic("someone-else", CLIENT_SECRET)),
        ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"}, {}),
        ({"grant_type": "client_credentials"}, {}),
    ],
    ids=["wrong-secret", "unknown-client", "wrong-secret-in-form", "no-credentials"],
)
def test_wrong_credentials_get_401(server, form, headers):
    assert _post(server.token_endpoint_url, form, headers) == (401, {"error": "invalid_client"})
    assert server.requests == 1
    assert server.issued == 0


def test_another_grant_gets_400(server):
    status, body = _post(
        server.token_endpoint_url, {"grant_type": "password"}, _basic(CLIENT_ID, CLIENT_SECRET)
    )
    assert (status, body) == (400, {"error": "unsupported_grant_type"})


def test_short_lived_tokens_and_counting(server, files):
    server.lifetime_s = 2
    for _ in range(3):
        status, body = _post(
            server.token_endpoint_url,
            {"grant_type": "client_credentials"},
            _basic(CLIENT_ID, CLIENT_SECRET),
        )
        assert (status, body["expires_in"]) == (200, 2)
    claims = _verify(files, body["access_token"])
    assert claims["exp"] - claims["iat"] == 2
    assert (server.requests, server.issued) == (3, 3)


def test_jwks_is_served(server, files):
    with urllib.request.urlopen(server.jwks_url, timeout=10) as response:  # noqa: S310
        assert json.load(response) == json.loads(files.jwks_json.read_text())


def test_repr_names_no_secret(server):
    assert CLIENT_SECRET not in repr(server)
    assert server.token_endpoint_url in repr(server)


def test_stop_frees_the_port_and_start_twice_is_an_error(files):
    server = TokenServer(files.oauth_signing_key).start()
    try:
        with pytest.raises(Exception, match="already started"):
            server.start()
    finally:
        server.stop()
    assert "not started" in repr(server)
