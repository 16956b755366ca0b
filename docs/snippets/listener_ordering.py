"""Per-key ordering: each site's events in order, different sites at the same time."""

import asyncio

from pydantic import BaseModel

from kafkaboot import ListenerRegistry


class Reading(BaseModel):
    site: str
    sequence: int


saved: dict[str, list[int]] = {}


async def save(reading: Reading) -> None:
    """Stands in for a database write: about 5 ms of waiting on I/O."""
    await asyncio.sleep(0.005)
    saved.setdefault(reading.site, []).append(reading.sequence)


def register(registry: ListenerRegistry, topic: str) -> None:
    # Records are keyed by site: one site's readings are saved one at a time, in offset
    # order; up to 256 readings of different sites are saved concurrently.
    @registry.listener(topic, group_id="readings", ordering="key", max_in_flight=256)
    async def on_reading(reading: Reading) -> None:
        await save(reading)


async def run(registry: ListenerRegistry, topic: str, expected: int) -> dict[str, list[int]]:
    register(registry, topic)
    async with registry:
        while sum(len(s) for s in saved.values()) < expected:
            await asyncio.sleep(0.05)
    return saved
