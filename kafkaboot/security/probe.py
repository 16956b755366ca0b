"""Why a secured client cannot connect: a refused password or an untrusted certificate.

aiokafka reports both, while bootstrapping, only as "Unable to bootstrap" (the cause goes to
its log), which reads like a broker that is down and would be retried until the startup
deadline. One connection of our own tells the two apart, so startup fails at once with the
cause and the setting to fix.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from kafkaboot.errors import KafkaBootError
from kafkaboot.security.oauth import TokenEndpointRefused

__all__ = ["authentication_failure"]

_CONNECTION_ARGUMENTS = (
    "ssl_context",
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "sasl_oauth_token_provider",
)


async def authentication_failure(kwargs: Mapping[str, Any], timeout_s: float = 10.0) -> str | None:
    """What refuses a client built from ``kwargs`` (aiokafka arguments), worded with the fix;
    ``None`` when a connection authenticates, or fails for another reason (a broker down)."""
    if kwargs.get("security_protocol", "PLAINTEXT") == "PLAINTEXT":
        return None
    first = str(kwargs["bootstrap_servers"]).split(",")[0].strip()
    host, _, port = first.rpartition(":")
    arguments = {name: kwargs[name] for name in _CONNECTION_ARGUMENTS if name in kwargs}
    try:
        conn = await create_conn(
            host, int(port), request_timeout_ms=int(timeout_s * 1000), **arguments
        )
    except SaslAuthenticationFailed as exc:
        user = kwargs.get("sasl_plain_username")
        who = f" for user {user!r}" if user else ""
        return (
            f"the broker at {first} refused SASL/{kwargs.get('sasl_mechanism')} "
            f"authentication{who}: {exc}; check the user name and password (sasl.jaas.config, "
            "kafka.jaas.options or kafka.security.sasl)"
        )
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the broker at {first} has a certificate the trust store does not trust "
            f"({exc.verify_message}); check kafka.ssl.trust-store-location (or "
            "kafka.security.ssl.ca-location) and, for a host name mismatch, the broker's "
            "certificate or ssl.endpoint.identification.algorithm"
        )
    except (UnsupportedSaslMechanismError, AuthenticationMethodNotSupported) as exc:
        return (
            f"the broker at {first} does not offer SASL/{kwargs.get('sasl_mechanism')}: "
            f"{exc}; set sasl.mechanism to one its listener enables"
        )
    except IllegalSaslStateError as exc:
        return f"SASL with the broker at {first} failed: {exc}; check security.protocol"
    except ssl.SSLEOFError:
        return None  # The connection was cut (a restart, a balancer): an outage.
    except ssl.SSLError as exc:
        return f"TLS with the broker at {first} failed: {exc.reason}; check kafka.ssl.*"
    except TokenEndpointRefused as exc:
        return f"no OAUTHBEARER token for the broker at {first}: {exc}"
    except (KafkaError, OSError, ValueError, KafkaBootError):
        return None  # A broker or token endpoint that is down: worth retrying.
    conn.close()
    return None
