"""A record whose key or header cannot be bound is a deserialization failure: it reaches the
recoverer on its first delivery, and the rest of its partition goes on."""

from typing import Annotated

import pytest
from pydantic import BaseModel

from kafkaboot import (
    DeadLetterPublishingRecoverer,
    DefaultErrorHandler,
    FixedBackOff,
    Header,
    ListenerRegistry,
    load_settings,
)
from kafkaboot.errorhandling import DeadLetterRecord
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import committed, create_topic, produce, read_all, unique, wait_for

pytestmark = pytest.mark.asyncio


class Order(BaseModel):
    id: int


class CountingErrorHandler:
    """Notes every failure it is asked about, then lets the wrapped handler decide: one
    entry per delivery that failed."""

    def __init__(self, inner):
        self.inner = inner
        self.failures = []

    async def handle(self, failure):
        self.failures.append((failure.record.offset, failure.attempt, type(failure.error).__name__))
        return await self.inner.handle(failure)


async def test_a_valid_record_with_a_non_utf8_optional_header_is_dead_lettered_at_once(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    group = unique("g")
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": kafka_bootstrap,
                "consumer": {"auto-offset-reset": "earliest"},
            }
        },
    )
    headers = [
        [("instance-id", b"site-1")],
        [("instance-id", b"site-\xff")],  # Latin-1 from an old producer: not UTF-8.
        [("instance-id", b"site-2")],
        [],  # Absent: the parameter's default.
    ]
    values = [Order(id=i).model_dump_json().encode() for i in range(len(headers))]
    for value, record_headers in zip(values, headers, strict=True):
        await produce(kafka_bootstrap, topic, [value], headers=record_headers)
    template = KafkaTemplate(settings)
    await template.start()
    try:
        # Ten deliveries for a failure that may pass on retry; a decoding failure gets one.
        errors = CountingErrorHandler(
            DefaultErrorHandler(
                FixedBackOff(0, max_attempts=10), DeadLetterPublishingRecoverer(template)
            )
        )
        registry = ListenerRegistry(settings, environ={}, template=template, error_handler=errors)
        handled = []

        @registry.listener(topic, group_id=group)
        async def on_order(
            order: Order, instance: Annotated[str | None, Header("instance-id")] = None
        ) -> None:
            handled.append((order.id, instance))

        async with registry:
            await wait_for(lambda: len(handled) == 3, message="the records around the bad one")
    finally:
        await template.stop()

    assert handled == [(0, "site-1"), (2, "site-2"), (3, None)]
    assert errors.failures == [(1, 1, "DeserializationError")]
    assert await committed(kafka_bootstrap, group, topic) == {0: 4}
    [letter] = [DeadLetterRecord(r) for r in await read_all(kafka_bootstrap, f"{topic}-dlt", 1)]
    assert letter.record.value == values[1]
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        topic,
        0,
        1,
    )
    assert letter.original_headers == [("instance-id", b"site-\xff")]
    assert letter.exception_cause_fqcn == "kafkaboot.errors.DeserializationError"
    for named in (f"{topic}-0@1", "parameter 'instance'", "header 'instance-id'", "0xff"):
        assert named in letter.exception_message, (named, letter.exception_message)
