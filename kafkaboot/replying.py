"""ReplyingKafkaTemplate: request/reply over Kafka (Spring's ``ReplyingKafkaTemplate``).

A request carries ``kafka_replyTopic`` and ``kafka_correlationId`` headers; a listener with
``@send_to()`` answers on that topic with the same correlation id, and the reply completes
the waiting ``send_and_receive`` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from kafkaboot import clients
from kafkaboot.errors import KafkaBootError
from kafkaboot.listener.reply import CORRELATION_ID_HEADER, REPLY_TOPIC_HEADER
from kafkaboot.template import HeadersArg, KafkaTemplate

__all__ = ["ReplyTimeoutError", "ReplyingKafkaTemplate"]

log = logging.getLogger("kafkaboot.template")


class ReplyTimeoutError(KafkaBootError, TimeoutError):
    """No reply arrived in time."""

    retriable = True


class ReplyingKafkaTemplate:
    """Sends requests with a started :class:`KafkaTemplate` and waits for their replies on
    ``reply_topic``, read by a consumer of its own (no group: every instance sees its
    replies, and only its own correlation ids are awaited)."""

    def __init__(
        self,
        template: KafkaTemplate,
        reply_topic: str,
        *,
        timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        self.template = template
        self.reply_topic = reply_topic
        self.timeout = timeout
        self._pending: dict[bytes, asyncio.Future[ConsumerRecord[bytes, bytes]]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start reading replies from the end of the reply topic.

        Raises:
            KafkaBootError: already started.
        """
        if self._consumer is not None:
            raise KafkaBootError("the ReplyingKafkaTemplate is already started")
        kwargs = self.template.settings.kafka.consumer_kwargs()
        kwargs.pop("group_id", None)
        kwargs |= {"auto_offset_reset": "latest", "enable_auto_commit": False}
        consumer = clients.consumer(self.reply_topic, **kwargs)
        try:
            await consumer.start()
            for tp in consumer.assignment():
                await consumer.position(tp)  # Fix the starting point before the first request.
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10.0)
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._read_replies(consumer), name="kafkaboot:replies")

    async def stop(self, timeout: float = 10.0) -> None:
        consumer, self._consumer = self._consumer, None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.stop(), timeout)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    KafkaBootError("the ReplyingKafkaTemplate stopped before the reply came")
                )

    async def __aenter__(self) -> ReplyingKafkaTemplate:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _read_replies(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)
            except Exception as exc:  # keep reading: every waiting request depends on it
                log.error("reading replies from %s failed: %r; retrying", self.reply_topic, exc)
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    correlation = dict(record.headers).get(CORRELATION_ID_HEADER)
                    future = self._pending.get(correlation) if correlation else None
                    if future is not None and not future.done():
                        future.set_result(record)

    async def send_and_receive(
        self,
        topic: str,
        value: Any,
        *,
        key: Any = None,
        headers: HeadersArg = None,
        timeout: timedelta | None = None,
    ) -> ConsumerRecord[bytes, bytes]:
        """Send a request and wait for the reply record (raw bytes, as Spring returns the
        ``ConsumerRecord``).

        Raises:
            ReplyTimeoutError: no reply within ``timeout`` (default: the template's).
            KafkaSendError: the request could not be sent.
        """
        if self._consumer is None:
            raise KafkaBootError("the ReplyingKafkaTemplate is not started")
        correlation = uuid.uuid4().bytes
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        pairs += [(REPLY_TOPIC_HEADER, self.reply_topic), (CORRELATION_ID_HEADER, correlation)]
        reply: asyncio.Future[ConsumerRecord[bytes, bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[correlation] = reply
        wait = (timeout or self.timeout).total_seconds()
        try:
            await self.template.send_and_wait(topic, value, key=key, headers=pairs)
            return await asyncio.wait_for(reply, wait)
        except TimeoutError:
            raise ReplyTimeoutError(
                f"no reply on {self.reply_topic!r} within {wait:g}s to the request sent to "
                f"{topic!r}; is a listener with @send_to() running on that topic?"
            ) from None
        finally:
            self._pending.pop(correlation, None)
