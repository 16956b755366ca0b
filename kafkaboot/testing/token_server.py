"""A small OAuth 2.0 token endpoint for tests: the client-credentials grant, answered with RS256
JWTs that a secured local broker accepts for SASL/OAUTHBEARER.

It signs with the key whose public half the broker trusts (``oauth-signing.key`` and
``jwks.json`` of :class:`~kafkaboot.testing.certificates.SecurityFiles`), and counts what it
is asked, so a test can check that a client caches its token and fetches a new one before
the old one expires (make tokens short-lived with :attr:`TokenServer.lifetime_s`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kafkaboot.errors import BrokerError
from kafkaboot.testing.certificates import JWKS_KEY_ID
from kafkaboot.testing.security import OAUTH_AUDIENCE, OAUTH_ISSUER

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "TokenServer"]

CLIENT_ID = "kafkaboot-client"
CLIENT_SECRET = "kafkaboot-client-secret"  # noqa: S105 - a documented test credential.
log = logging.getLogger(__name__)


class TokenServer:
    """An OAuth 2.0 token endpoint on ``127.0.0.1`` (a thread of this process).

    ``POST /token`` with ``grant_type=client_credentials`` and the client's id and secret
    (HTTP Basic, or ``client_id``/``client_secret`` in the form; an optional ``scope``)
    answers ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``; a wrong id
    or secret gets 401 ``invalid_client``, another grant 400 ``unsupported_grant_type``.
    ``GET /jwks`` serves the public key set. Use as a context manager, or call
    :meth:`start` / :meth:`stop`.

    Args:
        signing_key: the RSA private key (PEM bytes, or the path of a PEM file).
        key_id: the ``kid`` named in each token's header, as in the broker's JWKS.
        jwks: the public key set served at ``/jwks``, if any (a path or its JSON text).
        client_id, client_secret: the one client this server knows.
        lifetime_s: how long issued tokens live (``expires_in`` and the ``exp`` claim).
        issuer, audience: the ``iss`` and ``aud`` claims (the broker checks both).
    """

    def __init__(
        self,
        signing_key: bytes | Path,
        *,
        key_id: str = JWKS_KEY_ID,
        jwks: Path | str | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        lifetime_s: float = 3600.0,
        issuer: str = OAUTH_ISSUER,
        audience: str = OAUTH_AUDIENCE,
    ) -> None:
        self._signing_key = (
            signing_key.read_bytes() if isinstance(signing_key, Path) else signing_key
        )
        self._jwks = jwks.read_text() if isinstance(jwks, Path) else jwks
        self.key_id = key_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.lifetime_s = lifetime_s
        self.issuer = issuer
        self.audience = audience
        self._lock = threading.Lock()
        self._requests = 0
        self._issued = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.token_endpoint_url if self._server is not None else "not started"
        return f"TokenServer({where}, client_id={self.client_id!r})"

    @property
    def client_secret(self) -> str:
        """The secret the one known client must present."""
        return self._client_secret

    # -- what it was asked ------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Token requests received, refused ones included."""
        with self._lock:
            return self._requests

    @property
    def issued(self) -> int:
        """Tokens issued, over HTTP or by :meth:`issue_token`."""
        with self._lock:
            return self._issued

    # -- where it is --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on.

        Raises:
            BrokerError: the server is not started.
        """
        if self._server is None:
            raise BrokerError("the token server is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def token_endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>/token``: Kafka's ``sasl.oauthbearer.token.endpoint.url``."""
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    # -- tokens -------------------------------------------------------------------------------

    def issue_token(
        self,
        *,
        subject: str | None = None,
        scope: str = "kafka",
        lifetime_s: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed JWT for ``subject`` (default: the client id); ``claims`` add or replace
        claims (e.g. ``{"aud": "other"}`` for a token the broker must refuse)."""
        import jwt

        now = int(time.time())
        lifetime = self.lifetime_s if lifetime_s is None else lifetime_s
        payload: dict[str, Any] = {
            "sub": subject or self.client_id,
            "iss": self.issuer,
            "aud": self.audience,
            "scope": scope,
            "iat": now,
            "exp": now + max(1, round(lifetime)),
            "jti": uuid.uuid4().hex,
        } | dict(claims or {})
        token = jwt.encode(
            payload, self._signing_key, algorithm="RS256", headers={"kid": self.key_id}
        )
        with self._lock:
            self._issued += 1
        return token

    def _authorized(self, form: Mapping[str, str], authorization: str | None) -> bool:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            client_id, _, secret = decoded.partition(":")
        return client_id == self.client_id and secret == self._client_secret

    def _token_response(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if not self._authorized(form, authorization):
            return 401, {"error": "invalid_client"}
        scope = form.get("scope") or "kafka"
        lifetime = max(1, round(self.lifetime_s))
        token = self.issue_token(scope=scope, lifetime_s=lifetime)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> TokenServer:
        """Listen on a free loopback port, answering from a daemon thread.

        Raises:
            BrokerError: already started.
        """
        if self._server is not None:
            raise BrokerError("the token server is already started")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, document: Any) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path.split("?")[0] != "/token":
                    self._answer(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self._answer(*server._token_response(body, self.headers.get("Authorization")))

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/jwks" and server._jwks is not None:
                    self._answer(200, json.loads(server._jwks))
                else:
                    self._answer(404, {"error": "not_found"})

            def log_message(self, format: str, *args: Any) -> None:
                # The request line only: secrets travel in the body and headers.
                log.debug("token server: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for the next poll.
            name="kafkaboot-token-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the serving thread (a no-op when not started)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self._server = self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
