"""Sending with KafkaTemplate: fire many sends, await them together; the simple cases."""

import asyncio

from pydantic import BaseModel

from kafkaboot import KafkaBootSettings
from kafkaboot.template import KafkaTemplate, ProducerRecord, SendResult


class Reading(BaseModel):
    site: str
    value: float


async def run(settings: KafkaBootSettings, topic: str) -> list[SendResult]:
    async with KafkaTemplate(settings) as template:
        # send() returns once the record is queued; the future completes on delivery.
        futures = [
            await template.send(topic, Reading(site=f"site-{i}", value=i), key=f"site-{i}")
            for i in range(3)
        ]
        results = list(await asyncio.gather(*futures))

        # One record, waiting for the broker's acknowledgment.
        results.append(
            await template.send_and_wait(topic, "hello", key="site-0", headers={"trace": "t-1"})
        )

        # Many records in one call; raises the first failure after all have settled.
        results += await template.send_batch(
            [ProducerRecord(topic, {"n": n}, key="batch") for n in range(2)]
        )
    return results
