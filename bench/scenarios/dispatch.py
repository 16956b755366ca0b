"""Dispatch overhead without a broker: microseconds per record from a fetched
``ConsumerRecord`` to the handler's return, as the container's fast path does it (bound
call with decoding, offsets booked once per poll), against hand-written decoding and a
direct call."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from bench.harness import Measured, Row, repeat
from bench.workload import Event, payload
from kafkaboot.listener.acks import OffsetTracker
from kafkaboot.listener.binding import bind

POLL = 500  # Records per poll, as max-poll-records.


def _records(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    value = payload(1)
    return [
        ConsumerRecord("t", 0, i, 0, 0, None, value, None, -1, len(value), ()) for i in range(count)
    ]


async def _kafkaboot(handler: Callable[..., Awaitable[None]], records: list[Any]) -> float:
    invoker = bind(handler, name="bench", batch=False, manual_ack=False)
    call, tracker, tp = invoker.call, OffsetTracker(), TopicPartition("t", 0)
    started = time.perf_counter()
    for start in range(0, len(records), POLL):
        chunk = records[start : start + POLL]
        for record in chunk:
            await call(record, None, None)
        tracker.done_many(tp, chunk[-1].offset, len(chunk))
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
    ("dict", on_dict, json.loads),
    ("pydantic", on_event, Event.model_validate_json),
]


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
                note="raw: decode by hand and call the handler" if name == "str" else "",
            )
        )
    return rows
