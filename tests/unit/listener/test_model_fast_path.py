"""The record listener's inline path for an ``async def`` handler of one plain pydantic
model: it validates and awaits the handler itself, and must do exactly what the bound
call does for good bytes, bad bytes, nulls and a model completed after binding."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest
from aiokafka import ConsumerRecord

from kafkaboot.errorhandling.backoff import FixedBackOff
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.errors import DeserializationError
from kafkaboot.listener.acks import Acknowledgment
from kafkaboot.listener.binding import bind

from .standins import TP, StandInConsumer, stand_in_worker


class Reading(pydantic.BaseModel):
    site: str
    value: float


def _records(values: list[bytes | None]) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord("t", 0, offset, 0, 0, None, value, None, -1, 2, ())
        for offset, value in enumerate(values)
    ]


def _model_call(handler):
    return bind(handler, name="h", batch=False, manual_ack=False).model_call


def test_only_an_async_handler_of_one_plain_model_takes_the_inline_path():
    async def model(reading: Reading) -> None: ...

    async def optional(reading: Reading | None) -> None: ...

    def blocking(reading: Reading) -> None: ...

    async def text(value: str) -> None: ...

    async def with_ack(reading: Reading, ack: Acknowledgment) -> None: ...

    async def own(reading: OwnParsing) -> None: ...

    assert _model_call(model) is not None
    assert _model_call(optional) is not None
    assert _model_call(blocking) is None
    assert _model_call(text) is None
    assert _model_call(own) is None  # Its own model_validate_json must run.
    assert bind(with_ack, name="h", batch=False, manual_ack=True).model_call is None


async def _handle(handler, values, recovered):
    consumer = StandInConsumer({TP})
    error_handler = DefaultErrorHandler(
        FixedBackOff(timedelta(0), max_attempts=1),
        recoverer=lambda failed: recovered.append((failed.record.offset, failed.error)),
    )
    worker = stand_in_worker([], consumer, handler=handler, error_handler=error_handler)
    await worker.assignment.assigned({TP})
    await worker._dispatch({TP: _records(values)})
    return worker


@pytest.mark.asyncio
async def test_good_bad_and_null_values_reach_the_handler_or_the_error_handler_as_before():
    handled: list[Reading] = []
    recovered: list[tuple[int, BaseException]] = []

    async def on_reading(reading: Reading) -> None:
        handled.append(reading)

    good = b'{"site": "a", "value": 1.5}'
    worker = await _handle(on_reading, [good, b"not json", None, good], recovered)

    assert handled == [Reading(site="a", value=1.5)] * 2
    assert [offset for offset, _ in recovered] == [1, 2]
    bad, null = (exc for _, exc in recovered)
    assert isinstance(bad, DeserializationError)
    assert "t-0@1 as Reading" in str(bad)
    assert isinstance(null, DeserializationError)
    assert "Reading | None" in str(null)
    assert worker.book.get(TP).commit_offset() == 4


@pytest.mark.asyncio
async def test_a_null_reaches_a_handler_that_accepts_none():
    handled: list[Reading | None] = []

    async def on_reading(reading: Reading | None) -> None:
        handled.append(reading)

    await _handle(on_reading, [None, b'{"site": "b", "value": 2}'], [])
    assert handled == [None, Reading(site="b", value=2)]


@pytest.mark.asyncio
async def test_a_handler_error_is_not_taken_for_bad_bytes():
    recovered: list[tuple[int, BaseException]] = []

    async def on_reading(reading: Reading) -> None:
        raise ValueError("the handler's own")

    await _handle(on_reading, [b'{"site": "a", "value": 1}'], recovered)
    [(offset, exc)] = recovered
    assert offset == 0
    assert not isinstance(exc, DeserializationError)
    assert "the handler's own" in str(exc.__cause__ or exc)


class OwnParsing(Reading):
    @classmethod
    def model_validate_json(cls, data, **kwargs):  # type: ignore[override]
        return super().model_validate_json(data.upper(), **kwargs)


class Envelope(pydantic.BaseModel):
    body: Later  # Defined after the listener is bound (from __future__ annotations).


@pytest.mark.asyncio
async def test_a_model_completed_after_binding_is_validated_by_its_new_validator():
    handled: list[Envelope] = []

    async def on_envelope(envelope: Envelope) -> None:
        handled.append(envelope)

    assert _model_call(on_envelope) is not None
    global Later

    class Later(pydantic.BaseModel):  # type: ignore[no-redef]
        n: int

    await _handle(on_envelope, [b'{"body": {"n": 3}}'], [])
    assert handled[0].body.n == 3
