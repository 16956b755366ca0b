"""A service started with plain `uvicorn module:app` (no kafkaboot command)."""

import os

from kafkaboot import kafka_listener
from kafkaboot.application import KafkaBootApplication
from kafkaboot.web import kafkaboot_app

seen: list[str] = []


@kafka_listener(os.environ.get("SERVICE_TOPIC", "events"), group_id="uvicorn-service")
async def on_value(value: str) -> None:
    seen.append(value)


application = KafkaBootApplication(modules=[__name__])
app = kafkaboot_app(application)
