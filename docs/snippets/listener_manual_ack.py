"""Manual acknowledgment: commit only what the handler confirms; nack to try again later."""

import asyncio

from kafkaboot import Acknowledgment, ConsumerRecord, ListenerRegistry

attempts: dict[int, int] = {}
stored: list[str] = []


async def store(text: str) -> bool:
    """Pretend storage that is unavailable on the first try of every record."""
    return len(text) > 0


def register(registry: ListenerRegistry, topic: str) -> None:
    @registry.listener(topic, group_id="archiver", ack_mode="manual")
    async def archive(record: ConsumerRecord[str, str], ack: Acknowledgment) -> None:
        attempts[record.offset] = attempts.get(record.offset, 0) + 1
        if attempts[record.offset] == 1:
            ack.nack(0.2)  # Redeliver this record (and those after it) in 200 ms.
            return
        if await store(record.value or ""):
            stored.append(record.value or "")
            ack.acknowledge()  # Committed after this poll; unacknowledged ones never are.


async def run(registry: ListenerRegistry, topic: str, expected: int) -> list[str]:
    register(registry, topic)
    async with registry:
        while len(stored) < expected:
            await asyncio.sleep(0.05)
    return stored
