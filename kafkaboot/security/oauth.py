"""SASL/OAUTHBEARER tokens: an OAuth 2.0 client-credentials provider, configured with Kafka's
own property names, and a provider given by import path.

The Java client's ``OAuthBearerLoginCallbackHandler`` asks the token endpoint once, reuses the
token and asks again when 80% of its lifetime has passed (``sasl.login.refresh.window.factor``);
this provider does the same. aiokafka asks for a token on every connection it opens, so the
token is shared by all connections of one set of credentials, and fetched by one of them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.abc import AbstractTokenProvider

from kafkaboot.errors import KafkaBootError

__all__ = [
    "ClientCredentialsTokenProvider",
    "TokenEndpointError",
    "TokenEndpointRefused",
    "UnsecuredTokenProvider",
]


class TokenEndpointError(KafkaBootError):
    """The token endpoint gave no usable token (it may be down: worth asking again)."""


class TokenEndpointRefused(TokenEndpointError):
    """The token endpoint refused the client (HTTP 4xx): asking again cannot help."""


_RETRY_AFTER_FAILURE_S = 10.0
"""As the Java client's ``sasl.login.retry.backoff.max.ms`` (10 s)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


def _jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking its signature (the broker checks it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Tokens from an OAuth 2.0 token endpoint (client-credentials grant).

    Args:
        token_endpoint_url: ``sasl.oauthbearer.token.endpoint.url``.
        client_id: the JAAS option ``clientId`` (or
            ``sasl.oauthbearer.client.credentials.client.id``).
        client_secret: ``clientSecret`` (or ``…client.credentials.client.secret``).
        scope: ``scope`` (or ``sasl.oauthbearer.scope``), optional.
        refresh_window_factor: ``sasl.login.refresh.window.factor``: share of a token's
            lifetime after which a new one is asked for.
        timeout_s: ``sasl.login.connect.timeout.ms`` / ``sasl.login.read.timeout.ms``.
    """

    def __init__(
        self,
        token_endpoint_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        refresh_window_factor: float = 0.8,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.5 <= refresh_window_factor <= 1.0:
            raise ValueError("sasl.login.refresh.window.factor must be between 0.5 and 1.0")
        self.token_endpoint_url = token_endpoint_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.refresh_window_factor = refresh_window_factor
        self.timeout_s = timeout_s
        self._clock = clock
        self._token: _Token | None = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._retry_at = 0.0
        """After a failed refresh, the cached token is served until then."""
        self.fetches = 0
        """How many times the endpoint was asked (for tests and metrics)."""

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsTokenProvider(token_endpoint_url={self.token_endpoint_url!r}, "
            f"client_id={self.client_id!r}, client_secret='******', scope={self.scope!r})"
        )

    def _lock(self) -> asyncio.Lock:
        # One lock per event loop: a provider may outlive a loop (tests, restarts).
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _fresh(self, cached: _Token | None) -> bool:
        now = self._clock()
        if cached is None or now >= cached.expires_at:
            return False
        return now < cached.refresh_at or now < self._retry_at

    async def token(self) -> str:
        """A valid token: the cached one until its refresh time, else a new one.

        Raises:
            TokenEndpointError: the endpoint refused, or gave no token (and no cached token
                is still valid).
        """
        cached = self._token
        if cached is not None and self._fresh(cached):
            return cached.value
        async with self._lock():
            cached = self._token
            if cached is not None and self._fresh(cached):
                return cached.value
            try:
                self._token = await asyncio.to_thread(self._fetch)
            except TokenEndpointError:
                if cached is not None and self._clock() < cached.expires_at:
                    # Still valid: serve it, and ask the endpoint again in a while rather
                    # than at every new connection.
                    self._retry_at = self._clock() + _RETRY_AFTER_FAILURE_S
                    return cached.value
                raise
            return self._token.value

    def _fetch(self) -> _Token:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        # As Kafka's HttpAccessTokenRetriever: HTTP Basic with URL-encoded id and secret.
        basic = (
            f"{urllib.parse.quote(self.client_id, safe='')}:"
            f"{urllib.parse.quote(self._client_secret, safe='')}"
        )
        request = urllib.request.Request(  # noqa: S310 - the configured token endpoint.
            self.token_endpoint_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(basic.encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        started = self._clock()
        self.fetches += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()  # It holds the response (and its socket) open.
            if 400 <= exc.code < 500:
                raise TokenEndpointRefused(
                    f"token endpoint {self.token_endpoint_url} refused client "
                    f"{self.client_id!r}: HTTP {exc.code}; check the client id and secret"
                ) from None
            raise TokenEndpointError(
                f"token endpoint {self.token_endpoint_url} failed: HTTP {exc.code}"
            ) from None
        except (OSError, ValueError) as exc:
            raise TokenEndpointError(
                f"token endpoint {self.token_endpoint_url} gave no token: {exc}"
            ) from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise TokenEndpointError(
                f"token endpoint {self.token_endpoint_url} answered without an access_token"
            )
        expires_at = _jwt_claims(value).get("exp")
        if not isinstance(expires_at, int | float):
            expires_in = body.get("expires_in")
            if not isinstance(expires_in, int | float):
                raise TokenEndpointError(
                    f"token endpoint {self.token_endpoint_url} gave a token with no expiry "
                    "(no exp claim, no expires_in)"
                )
            expires_at = started + expires_in
        lifetime = max(0.0, expires_at - started)
        return _Token(value, started + lifetime * self.refresh_window_factor, expires_at)


class UnsecuredTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Kafka's unsecured JWS (``alg: none``) for development brokers, as the Java client's
    default ``OAuthBearerUnsecuredLoginCallbackHandler`` builds it from the JAAS option
    ``unsecuredLoginStringClaim_sub``. A production broker refuses such tokens."""

    def __init__(self, subject: str, *, lifetime_s: float = 3600.0) -> None:
        self.subject = subject
        self.lifetime_s = lifetime_s

    def __repr__(self) -> str:
        return f"UnsecuredTokenProvider(subject={self.subject!r})"

    async def token(self) -> str:
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        now = time.time()
        claims = {"sub": self.subject, "iat": now, "exp": now + self.lifetime_s}
        return f"{part({'alg': 'none'})}.{part(claims)}."
