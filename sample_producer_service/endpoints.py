"""HTTP endpoints that publish to Kafka with the injected KafkaTemplate."""

import os
import socket
from typing import Annotated, Any

from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import KafkaBootError
from kafkaboot.template import KafkaTemplate, ProducerRecord
from sample_producer_service.models import Message

EVENTS_TOPIC = os.environ.get("EVENTS_TOPIC", "events")
TEST_TOPIC = "test-topic"
INSTANCE_ID = os.environ.get("INSTANCE_ID") or socket.gethostname()
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", 1_000_000))

app = FastAPI(title="sample producer service")
Template = Annotated[KafkaTemplate, Depends(Provide[ApplicationContainer.template])]


@app.middleware("http")
async def limit_body_size(request: Request, call_next: Any) -> Any:
    length = request.headers.get("content-length")
    if length is not None and int(length) > MAX_BODY_BYTES:
        return JSONResponse(
            {"error": f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}"},
            status_code=413,
        )
    return await call_next(request)


@app.exception_handler(KafkaBootError)
async def kafka_unavailable(request: Request, exc: KafkaBootError) -> JSONResponse:
    # Nothing was half-sent: single sends fail as a whole; batches are all-or-error.
    return JSONResponse({"error": f"Kafka is unavailable: {exc}"}, status_code=503)


def _headers() -> dict[str, str]:
    return {"instance-id": INSTANCE_ID}


@app.post("/messages", status_code=202)
@inject
async def publish(message: Message, template: Template) -> dict[str, Any]:
    result = await template.send_and_wait(
        EVENTS_TOPIC, message, key=message.customer_id, headers=_headers()
    )
    return {"partition": result.partition, "offset": result.offset}


@app.post("/messages/batch", status_code=202)
@inject
async def publish_batch(messages: list[Message], template: Template) -> dict[str, int]:
    records = [
        ProducerRecord(EVENTS_TOPIC, m, key=m.customer_id, headers=_headers()) for m in messages
    ]
    results = await template.send_batch(records)
    return {"sent": len(results)}


@app.get("/test")
@inject
async def test(template: Template) -> str:
    """Like the Spring example this replaces: publish a fixed text to test-topic."""
    await template.send_and_wait(TEST_TOPIC, "Spring Message Test")
    return "Message sent"
