"""A service for `kafkaboot run` tests: an HTTP endpoint that publishes, and a listener.

The listener appends each value to $HANDLED_FILE; a value "slow" takes 60 s (to test stop).
"""

import asyncio
import os
from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI

from kafkaboot import kafka_listener
from kafkaboot.di import ApplicationContainer
from kafkaboot.template import KafkaTemplate

TOPIC = os.environ.get("SERVICE_TOPIC", "events")

app = FastAPI()


@app.post("/publish/{value}")
@inject
async def publish(
    value: str, template: Annotated[KafkaTemplate, Depends(Provide[ApplicationContainer.template])]
) -> dict[str, int]:
    result = await template.send_and_wait(TOPIC, value)
    return {"offset": result.offset}


@kafka_listener(TOPIC, group_id="${SERVICE_GROUP:web-service}")
async def on_value(value: str) -> None:
    if value == "slow":
        await asyncio.sleep(60)
    with open(os.environ["HANDLED_FILE"], "a") as out:
        out.write(value + "\n")
