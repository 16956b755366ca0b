"""Serialization, pydantic alone: decoding the event envelope (~200 B and ~1 KB) the way
kafkaboot does (``model_validate_json``, one pass in Rust) against ``json.loads`` +
``model_validate`` and ``orjson.loads`` + ``model_validate``. This is a choice of decoder, not
kafkaboot against raw aiokafka: the consume scenario's raw baseline decodes the same way."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench.harness import Measured, Row, repeat
from bench.workload import LARGE_NOTE, Event, payload

ORJSON = "orjson_loads_then_validate"


def _rate(decode: Callable[[bytes], Any], data: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        decode(data)
    return count / (time.perf_counter() - started)


def run(count: int, runs: int) -> list[Row]:
    try:
        import orjson
    except ImportError:  # Installed with the bench extra; the suite still runs without it.
        orjson = None
    rows = []
    for label, data in (("~200 B", payload(1)), ("~1 KB", payload(1, LARGE_NOTE))):
        variants: list[Callable[[], float]] = [
            lambda d=data: _rate(Event.model_validate_json, d, count),
            lambda d=data: _rate(lambda b: Event.model_validate(json.loads(b)), d, count),
        ]
        if orjson is not None:
            variants.append(
                lambda d=data: _rate(lambda b: Event.model_validate(orjson.loads(b)), d, count)
            )
        results = repeat(runs, *variants)
        extra = {ORJSON: Measured(results[2]).median} if orjson else {}
        rows.append(
            Row(
                f"serialization (pydantic alone): model_validate_json vs json.loads + "
                f"model_validate, {label} ({len(data)} B)",
                "ops/s",
                Measured(results[0]),
                Measured(results[1]),
                note="not kafkaboot against raw aiokafka: both columns are pydantic decoders; "
                "the 'kafkaboot' column is the one kafkaboot uses (model_validate_json), which "
                "the consume scenario's raw baseline uses too"
                + (f"; orjson.loads + model_validate: {extra[ORJSON]:,.0f}/s" if extra else ""),
                extra=extra,
            )
        )
    return rows
