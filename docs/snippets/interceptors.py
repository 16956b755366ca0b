"""Interceptors: a header stamped on every send, and a per-site count of handled records."""

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any

from kafkaboot import (
    Header,
    KafkaBootSettings,
    ListenerRegistry,
    ProducerInterceptor,
    RecordInterceptor,
)
from kafkaboot.records import ProducerRecord
from kafkaboot.template import KafkaTemplate


class StampSender(ProducerInterceptor):
    """Adds a ``sent-by`` header to every record the template sends."""

    def __init__(self, service: str) -> None:
        self.service = service

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        given = record.headers or []
        headers = list(given.items()) if isinstance(given, Mapping) else list(given)
        return record._replace(headers=[*headers, ("sent-by", self.service)])


class CountPerSite(RecordInterceptor):
    """Counts the records each site (the record key) had handled; a record that fails is
    not counted until a later delivery of it succeeds."""

    def __init__(self) -> None:
        self.handled: Counter[bytes | None] = Counter()

    def success(self, record: Any, consumer: Any) -> None:
        self.handled[record.key] += 1


async def run(settings: KafkaBootSettings, topic: str) -> tuple[Counter[bytes | None], set[str]]:
    counter, senders = CountPerSite(), set()
    registry = ListenerRegistry(settings)
    registry.add_interceptor(counter)  # Every listener of this registry.

    @registry.listener(topic, group_id="readings")
    async def on_reading(value: str, sent_by: Annotated[str, Header("sent-by")]) -> None:
        senders.add(sent_by)

    async with KafkaTemplate(settings) as template, registry:
        template.add_interceptor(StampSender("site-gateway"))
        for n in range(6):
            await template.send_and_wait(topic, f"reading {n}", key=f"site-{n % 2}")
        while sum(counter.handled.values()) < 6:
            await asyncio.sleep(0.05)
    return counter.handled, senders
