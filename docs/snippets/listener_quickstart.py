"""A listener that reads JSON orders as a pydantic model, run by a ListenerRegistry."""

import asyncio
import sys

from pydantic import BaseModel

from kafkaboot import ListenerRegistry, kafka_listener, load_settings


class Order(BaseModel):
    id: int
    item: str


received: list[Order] = []


@kafka_listener("${ORDERS_TOPIC:orders}", group_id="billing")
async def on_order(order: Order) -> None:
    received.append(order)


async def run(bootstrap_servers: str, expected: int) -> list[Order]:
    settings = load_settings(
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap_servers,
                "consumer": {"auto-offset-reset": "earliest"},
            }
        }
    )
    registry = ListenerRegistry(settings)
    registry.scan(sys.modules[__name__])  # Finds on_order.
    async with registry:  # Starts the container; stopping commits what was handled.
        while len(received) < expected:
            await asyncio.sleep(0.05)
    return received
