"""How ``kafkaboot consume`` shows a record: as JSON-ready data (one ``--format json``
line) and as one line of text made from it.

Keys and values go through the configured deserializers (``kafka.consumer.key-deserializer``
/ ``value-deserializer``); without one, or where one fails, the bytes are shown as UTF-8
text when they are, else as ``{"base64": "..."}``: reversible, and safe in a terminal and in
JSON. Header values are shown the same way.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from kafkaboot.config import KafkaBootSettings
from kafkaboot.serialization import DeserializationFailure, Deserializer, deserializer_for

__all__ = ["configured_deserializers", "record_view", "shown_bytes", "text_line"]

Deserializers = tuple[Deserializer | None, Deserializer | None]
"""The key's and the value's, or None for none configured."""


def configured_deserializers(settings: KafkaBootSettings) -> Deserializers:
    """The service's key and value deserializers, None where none is configured; an
    ErrorHandlingDeserializer's delegate is read from ``spring.deserializer.*.delegate.class``
    as the listeners read it."""
    consumer = settings.kafka.consumer
    properties = {**settings.kafka.properties, **consumer.properties}
    found: list[Deserializer | None] = []
    for part, name in (("key", consumer.key_deserializer), ("value", consumer.value_deserializer)):
        delegate = properties.get(f"spring.deserializer.{part}.delegate.class")
        found.append(deserializer_for(name, delegate) if name else None)
    return found[0], found[1]


def shown_bytes(data: bytes | None) -> Any:
    """UTF-8 text as a str, other bytes as ``{"base64": ...}``, None as None."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _decoded(
    topic: str, data: bytes | None, deserializer: Deserializer | None
) -> tuple[Any, str | None]:
    """What ``data`` shows as, and why the deserializer could not read it (if it could not)."""
    if deserializer is None or data is None:
        return shown_bytes(data), None
    try:
        value = deserializer.deserialize(topic, data)
    except Exception as exc:  # Any deserializer, ours or the service's own: show the bytes.
        return shown_bytes(data), str(exc)
    if isinstance(value, DeserializationFailure):
        return shown_bytes(data), str(value.error)
    if isinstance(value, bytes | bytearray):
        return shown_bytes(bytes(value)), None
    return value, None


def _iso(timestamp_ms: int) -> str | None:
    if timestamp_ms < 0:
        return None
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_view(record: Any, decoders: Deserializers) -> dict[str, Any]:
    """A record as JSON-ready data: the ``--format json`` line (the text is made from it)."""
    key, key_error = _decoded(record.topic, record.key, decoders[0])
    value, value_error = _decoded(record.topic, record.value, decoders[1])
    view = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _iso(record.timestamp),
        "key": key,
        "headers": [[name, shown_bytes(data)] for name, data in record.headers or ()],
        "value": value,
    }
    view.update({k: v for k, v in (("key_error", key_error), ("value_error", value_error)) if v})
    return view


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if re.search(r"[\r\n\t]", value) else value
    if isinstance(value, dict) and set(value) == {"base64"}:
        return f"base64:{value['base64']}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def text_line(view: dict[str, Any]) -> str:
    """``partition=0 offset=12 timestamp=... key=k headers=a:1,b:2 value=...``."""
    parts = [
        f"partition={view['partition']}",
        f"offset={view['offset']}",
        f"timestamp={_text(view['timestamp'])}",
        f"key={_text(view['key'])}",
    ]
    if view["headers"]:
        parts.append("headers=" + ",".join(f"{n}:{_text(v)}" for n, v in view["headers"]))
    parts += [
        f"{part}={_text(view[part])}" for part in ("key_error", "value_error") if part in view
    ]
    parts.append(f"value={_text(view['value'])}")
    return " ".join(parts)
