"""Dispatch overhead without a broker: microseconds per record from a fetched
``ConsumerRecord`` to the handler's return, through the container's own record dispatcher
(bound call with decoding, each poll's run booked once in its partition state), against
hand-written decoding and a direct call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core
from aiokafka import ConsumerRecord, TopicPartition

from bench.harness import Measured, Row, repeat
from bench.workload import Event, payload
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.attempts import DeliveryAttempts
from kafkaboot.listener.binding import bind
from kafkaboot.listener.dispatch import Handling, RecordDispatcher
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import PartitionBook
from kafkaboot.listener.settings import ContainerSettings

POLL = 500  # Records per poll, as max-poll-records.


def _records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    value = payload(1)
    return [
        ConsumerRecord("t", 0, i, 0, 0, None, value, None, -1, len(value), ()) for i in range(count)
    ]


def _dispatcher(handler: Callable[..., Awaitable[None]]) -> RecordDispatcher:
    """The container's dispatcher for ``handler``, without a consumer (nothing fails, so
    nothing seeks, pauses or commits)."""
    invoker = bind(handler, name="bench", batch=False, manual_ack=False)
    settings = ContainerSettings(
        group_id="bench",
        concurrency=1,
        ack_mode=AckMode.BATCH,
        ack_count=1,
        ack_time=1.0,
        poll_timeout=1.0,
        shutdown_timeout=1.0,
        auto_startup=True,
        batch=False,
        consumer_kwargs={},
        client_id_prefix="bench",
    )
    book = PartitionBook()
    outcomes = Outcomes(
        None,  # type: ignore[arg-type]
        book,
        DeliveryAttempts(),
        DefaultErrorHandler(),
        settings,
        "bench",
        record_error=lambda error: None,
        halt=lambda reason: None,
        on_lost=lambda lost: asyncio.sleep(0),
    )
    return RecordDispatcher(Handling(invoker, None, outcomes, "bench", AckMode.BATCH))  # type: ignore[arg-type]


async def _kafkaboot(handler: Callable[..., Awaitable[None]], records: list[Any]) -> float:
    dispatcher = _dispatcher(handler)
    state = dispatcher.handling.outcomes.book.assign(TopicPartition("t", 0))
    started = time.perf_counter()
    for start in range(0, len(records), POLL):
        chunk = records[start : start + POLL]
        state.fetched(chunk[0].offset)
        await dispatcher.dispatch(state, chunk)
    return (time.perf_counter() - started) / len(records) * 1e6


async def _raw(
    handler: Callable[[Any], Awaitable[None]], decode: Callable[[bytes], Any], records: list[Any]
) -> float:
    started = time.perf_counter()
    for record in records:
        await handler(decode(record.value))
    return (time.perf_counter() - started) / len(records) * 1e6


async def on_str(value: str) -> None:
    pass


async def on_dict(value: dict[str, Any]) -> None:
    pass


async def on_event(value: Event) -> None:
    pass


CASES: list[tuple[str, Callable[..., Awaitable[None]], Callable[[bytes], Any]]] = [
    ("str", on_str, bytes.decode),
    # The decoder kafkaboot uses for a dict: the raw side gets the same, not a slower one.
    ("dict", on_dict, pydantic_core.from_json),
    # What kafkaboot's decoder calls for a plain model (what model_validate_json runs).
    ("pydantic", on_event, Event.__pydantic_validator__.validate_json),
]


def _name(case: str, decode: Callable[[bytes], Any]) -> str:
    if case == "pydantic":
        return "Event.__pydantic_validator__.validate_json"
    return str(getattr(decode, "__qualname__", decode))


def run(records: int, runs: int, loop: asyncio.AbstractEventLoop) -> list[Row]:
    batch = _records(records)
    rows = []
    for name, handler, decode in CASES:
        kb, raw = repeat(
            runs,
            lambda h=handler: loop.run_until_complete(_kafkaboot(h, batch)),
            lambda h=handler, d=decode: loop.run_until_complete(_raw(h, d, batch)),
        )
        rows.append(
            Row(
                f"dispatch: {name} payload, no broker",
                "µs/record",
                Measured(kb),
                Measured(raw),
                higher_is_better=False,
                note=f"raw: decode by hand ({_name(name, decode)}) and call the handler",
            )
        )
    return rows
