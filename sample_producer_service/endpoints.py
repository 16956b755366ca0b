"""HTTP endpoints that publish to Kafka with the injected KafkaTemplate."""

import json
import os
import socket
from typing import Annotated, Any, Self

from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from kafkaboot import publishes
from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import (
    KafkaBootError,
    SendBatchError,
    SendOutcomeUnknownError,
    SerializationError,
)
from kafkaboot.template import KafkaTemplate, ProducerRecord, SendResult
from sample_producer_service.models import Message

EVENTS_TOPIC = os.environ.get("EVENTS_TOPIC", "events")
TEST_TOPIC = "test-topic"
INSTANCE_ID = os.environ.get("INSTANCE_ID") or socket.gethostname()
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", 1_000_000))
MAX_BATCH_MESSAGES = int(os.environ.get("MAX_BATCH_MESSAGES", 1000))
"""The most messages one POST /messages/batch may carry: each is a send in flight at once."""


class AsyncProvide(Provide):  # type: ignore[misc,valid-type]
    """``Provide`` for FastAPI's ``Depends``, awaited on the event loop: FastAPI runs a plain
    callable dependency (``Provide`` is one) in its thread pool on every request, a thread
    hop that cost a quarter of this service's CPU per message. ``@inject`` replaces it with
    the template either way."""

    async def __call__(self) -> Self:
        return self


app = FastAPI(title="sample producer service")
Template = Annotated[KafkaTemplate, Depends(AsyncProvide[ApplicationContainer.template])]


class BodyTooLarge(HTTPException):
    def __init__(self, size: str) -> None:
        super().__init__(413, f"request body of {size} bytes is over the limit of {MAX_BODY_BYTES}")


class BatchTooLarge(HTTPException):
    def __init__(self, count: int) -> None:
        super().__init__(
            413,
            f"a batch of {count} messages is over the limit of {MAX_BATCH_MESSAGES} "
            "(MAX_BATCH_MESSAGES): split it into smaller batches",
        )


class LimitBodySize:
    """Refuses bodies over ``MAX_BODY_BYTES`` with 413: at once when Content-Length says
    so, else (chunked uploads) as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _too_large(BodyTooLarge(length))(scope, receive, send)
            return
        read = 0

        async def limited() -> ASGIMessage:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > MAX_BODY_BYTES:
                raise BodyTooLarge(f"more than {MAX_BODY_BYTES}")
            return message

        await self.app(scope, limited, send)


def _too_large(exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=413)


app.add_middleware(LimitBodySize)


@app.exception_handler(BodyTooLarge)
async def body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
    return _too_large(exc)


@app.exception_handler(BatchTooLarge)
async def batch_too_large(request: Request, exc: BatchTooLarge) -> JSONResponse:
    return _too_large(exc)


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped, so a lone surrogate echoed back from the
    request ("\\ud800" in its JSON) is sent as written instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


@app.exception_handler(RequestValidationError)
async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own handler, but its UTF-8 rendering answered 500 for such a surrogate.
    return AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


@app.exception_handler(SerializationError)
async def not_writable(request: Request, exc: SerializationError) -> JSONResponse:
    # The message itself cannot become a record (e.g. nested too deeply for JSON): the
    # client's to fix, and Kafka is not to blame, so not a 503.
    return AsciiJSONResponse({"error": f"the message cannot be written: {exc}"}, status_code=422)


@app.exception_handler(SendOutcomeUnknownError)
async def kafka_timed_out(request: Request, exc: SendOutcomeUnknownError) -> JSONResponse:
    # 504, not 503: the message may still be written, so a blind retry may duplicate it.
    return JSONResponse({"error": f"Kafka did not confirm in time: {exc}"}, status_code=504)


@app.exception_handler(KafkaBootError)
async def kafka_unavailable(request: Request, exc: KafkaBootError) -> JSONResponse:
    # Every other failure happened before the record could be written: retrying is safe.
    return JSONResponse({"error": f"Kafka is unavailable: {exc}"}, status_code=503)


def _status(message: Message, outcome: SendResult | KafkaBootError) -> dict[str, Any]:
    """One message's line of a 207 answer, with the status it would have had alone."""
    line: dict[str, Any] = {"customer_id": message.customer_id, "sequence": message.sequence}
    if isinstance(outcome, SendResult):
        return line | {"status": 202, "partition": outcome.partition, "offset": outcome.offset}
    if isinstance(outcome, SendOutcomeUnknownError):
        status = 504
    elif isinstance(outcome.__cause__, SerializationError):
        status = 422  # This message's own data, as for a single POST /messages.
    else:
        status = 503
    return line | {"status": status, "error": str(outcome)}


UNREADABLE: dict[int | str, dict[str, Any]] = {
    # FastAPI's answer when the body is not even text (422 is for JSON that does not fit).
    400: {"description": "a body that cannot be parsed, e.g. bytes that are not UTF-8"},
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "not written: Kafka is unavailable or refused it; retrying is safe"},
    504: {"description": "not confirmed in time: it may still be written"},
}


def _headers() -> dict[str, str]:
    return {"instance-id": INSTANCE_ID}


@publishes(EVENTS_TOPIC, Message, key=str, description="one site event, keyed by customer")
@app.post(
    "/messages",
    status_code=202,
    responses={413: {"description": "a body over MAX_BODY_BYTES"}} | UNREADABLE | UNAVAILABLE,
)
@inject
async def publish(message: Message, template: Template) -> dict[str, Any]:
    result = await template.send_and_wait(
        EVENTS_TOPIC, message, key=message.customer_id, headers=_headers()
    )
    return {"partition": result.partition, "offset": result.offset}


@publishes(EVENTS_TOPIC, Message, key=str, description="each event of a batch, in order")
@app.post(
    "/messages/batch",
    status_code=202,
    responses={
        207: {"description": "some messages were not written: a status per message"},
        413: {"description": "more than MAX_BATCH_MESSAGES messages, or a body too large"},
    }
    | UNREADABLE
    | UNAVAILABLE,
)
@inject
async def publish_batch(messages: list[Message], template: Template) -> Any:
    if len(messages) > MAX_BATCH_MESSAGES:
        raise BatchTooLarge(len(messages))
    records = [
        ProducerRecord(EVENTS_TOPIC, m, key=m.customer_id, headers=_headers()) for m in messages
    ]
    try:
        results = await template.send_batch(records)
    except SendBatchError as exc:
        lines = [_status(m, o) for m, o in zip(messages, exc.outcomes, strict=True)]
        body = {"sent": len(exc.delivered), "results": lines}
        return JSONResponse(body, status_code=207)
    return {"sent": len(results)}


@app.get("/test", responses=UNAVAILABLE)
@inject
async def test(template: Template) -> str:
    """Like the Spring example this replaces: publish a fixed text to test-topic."""
    await template.send_and_wait(TEST_TOPIC, "Spring Message Test")
    return "Message sent"
