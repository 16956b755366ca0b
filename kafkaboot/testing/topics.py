"""Topics for a test: a name no other test uses, created on whichever broker
``bootstrap`` names (a real one, or ``memory://`` for the in-memory Kafka)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka.admin import NewTopic

from kafkaboot import clients
from kafkaboot.testing.reading import WaitTimeout

__all__ = ["create_topic", "unique_name"]

_TOPIC_ALREADY_EXISTS = 36


def unique_name(prefix: str = "test") -> str:
    """``<prefix>-<8 hex digits>``: a topic or group name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topic(
    bootstrap: str,
    name: str | None = None,
    *,
    partitions: int = 1,
    configs: dict[str, str] | None = None,
    timeout: float = 10.0,
    **admin_options: Any,
) -> str:
    """Create a topic (a unique name when ``name`` is None) and return its name.

    Raises:
        ValueError: the broker refused it (a topic of that name exists, say).
        WaitTimeout: the broker did not answer within ``timeout`` seconds.
    """
    name = name or unique_name("topic")
    admin = clients.admin(bootstrap_servers=bootstrap, **admin_options)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, partitions, 1, topic_configs=dict(configs or {}))]
            )
    except TimeoutError:
        raise WaitTimeout(
            f"create_topic: the broker at {bootstrap} did not answer within {timeout:g}s "
            f"creating {name!r}"
        ) from None
    finally:
        await admin.close()
    for topic, code, message in response.topic_errors:
        if code == _TOPIC_ALREADY_EXISTS:
            raise ValueError(f"topic {topic!r} exists already at {bootstrap}")
        if code != 0:
            raise ValueError(
                f"the broker at {bootstrap} refused topic {topic!r}: {message} ({code})"
            )
    return name
