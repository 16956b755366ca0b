"""``@send_to``: a handler's return value sent on, and the request/reply header names (the
same as Spring Kafka's, so either side can be Java)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from aiokafka import ConsumerRecord

from kafkaboot.errors import KafkaBootError

__all__ = ["CORRELATION_ID_HEADER", "REPLY_TOPIC_HEADER", "send_result"]

REPLY_TOPIC_HEADER = "kafka_replyTopic"
CORRELATION_ID_HEADER = "kafka_correlationId"


async def send_result(
    template: Any,
    topic: str,
    listener_id: str,
    record: ConsumerRecord[bytes, bytes],
    result: Any,
) -> None:
    """Send ``result`` (one value, a list, or an async generator: one record per element)
    to ``topic`` — or, for ``@send_to()``, to the record's reply-topic header — with the
    incoming key; delivery is confirmed before the record counts as handled.

    Raises:
        KafkaBootError: a reply is asked for but the record names no reply topic.
    """
    if result is None:
        return
    headers: list[tuple[str, bytes]] = []
    if not topic:
        found = dict(record.headers)
        reply_topic = found.get(REPLY_TOPIC_HEADER)
        if reply_topic is None:
            raise KafkaBootError(
                f"listener {listener_id} replies with @send_to() but record "
                f"{record.topic}-{record.partition}@{record.offset} has no "
                f"{REPLY_TOPIC_HEADER} header; name a topic: @send_to('topic')"
            )
        topic = reply_topic.decode()
        if CORRELATION_ID_HEADER in found:
            headers.append((CORRELATION_ID_HEADER, found[CORRELATION_ID_HEADER]))
    if inspect.isasyncgen(result):
        values = [value async for value in result]
    elif isinstance(result, list | tuple | set | frozenset) or inspect.isgenerator(result):
        values = list(result)
    else:
        values = [result]
    futures = [
        await template.send(topic, value, key=record.key, headers=headers or None)
        for value in values
    ]
    await asyncio.gather(*futures)
